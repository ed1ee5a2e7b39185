/**
 * The `ocr` kernel end to end on honest fixtures (text rendered by sharp at test time), plus the image
 * decoder's refusals, the bounded queue and provider fallback.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { ApiError } from '../src/problems/api-error.js';
import { decodeImage, inspectImage } from '../src/inference/image.js';
import { createSession } from '../src/inference/providers.js';
import { RunnerPool } from '../src/inference/runners/pool.js';
import { WorkQueue } from '../src/inference/queue.js';
import { OcrKernel, ocrModelPaths, type OcrResult } from '../src/inference/ocr/index.js';
import { renderTextWithLayout, type LineSpec, type RenderOptions, type RenderedText } from './helpers/render-text.js';

let kernel: OcrKernel;
/** One pool for the whole file: kernels loaded here share their model workers, as in one gateway. */
const runners = new RunnerPool();

before(async () => {
  kernel = await OcrKernel.load({ providers: ['cuda', 'cpu'] }, runners);
});
after(() => runners.close());

/** Every line comes back word for word and in order; every box lies in the image and covers its line's ink. */
function assertReads(r: RenderedText, result: OcrResult): void {
  assert.deepEqual(
    result.predictions.map((p) => p.text),
    r.lines.map((l) => l.text),
  );
  result.predictions.forEach((p, i) => {
    const ink = r.lines[i]!;
    for (const [x, y] of p.box) {
      assert.ok(x >= 0 && x <= r.width && y >= 0 && y <= r.height, `box point ${x},${y} outside ${r.width}x${r.height}`);
    }
    assert.equal(p.x_min, Math.min(...p.box.map((q) => q[0])));
    assert.equal(p.y_max, Math.max(...p.box.map((q) => q[1])));
    // DB boxes hug the ink: allow a few pixels (antialiasing, accents of the ink box) but not a wrong place.
    const tol = Math.max(3, 0.15 * ink.height);
    const msg = `"${p.text}": box [${p.x_min},${p.y_min},${p.x_max},${p.y_max}] vs ink [${ink.left},${ink.top},${ink.left + ink.width},${ink.top + ink.height}]`;
    assert.ok(p.x_min <= ink.left + tol && p.y_min <= ink.top + tol, `box starts inside the ink: ${msg}`);
    assert.ok(p.x_max >= ink.left + ink.width - tol && p.y_max >= ink.top + ink.height - tol, `box ends inside the ink: ${msg}`);
    assert.ok(p.x_min >= ink.left - ink.height && p.x_max <= ink.left + ink.width + ink.height, `box too wide: ${msg}`);
    assert.ok(p.y_min >= ink.top - ink.height && p.y_max <= ink.top + 2 * ink.height, `box too tall: ${msg}`);
    assert.ok(p.confidence > 0.5 && p.confidence <= 1, `confidence ${p.confidence}`);
  });
  assert.equal(result.provider, 'cpu');
  assert.ok(result.duration_ms > 0);
}

async function reads(lines: (LineSpec | string)[], opts: RenderOptions = {}): Promise<void> {
  const r = await renderTextWithLayout(lines, opts);
  assertReads(r, await kernel.recognize(r.png));
}

describe('ocr kernel reads rendered text word for word', () => {
  test('reports the CPU provider after CUDA fails to load', () => {
    assert.equal(kernel.provider, 'cpu');
  });

  test('DejaVu Sans 32 px, three lines', () =>
    reads(['Invoice 2026 total 431.50', 'Paid by card ending 4417', 'Thank you for your order'], { font: 'DejaVu Sans', size: 32 }));

  test('DejaVu Serif 26 px', () => reads(['The quick brown fox jumps', 'over the lazy dog 12345'], { font: 'DejaVu Serif', size: 26 }));

  test('DejaVu Sans Mono 22 px', () => reads(['Order number 88231', 'Shipping 12.99'], { font: 'DejaVu Sans Mono', size: 22 }));

  test('mixed sizes, small text and bold', () =>
    reads([{ text: 'Quarterly Report', size: 44, bold: true }, { text: 'Revenue grew by 18 percent', size: 18 }, { text: 'Page 3 of 12', size: 16 }]));

  test('large type whose words the detector splits is still one line', () => reads(['Large heading 9'], { size: 90 }));

  test('a line rotated 180 degrees is turned upright by the classifier', () =>
    reads(['First line here', { text: 'Invoice 2026 total 431.50', rotate180: true }, 'Last line 77'], { size: 30 }));

  test('noisy photo-like background', () =>
    reads(['Meeting at 10 am', 'Room 204 north wing'], { background: 'noisy', seed: 7, size: 34, font: 'DejaVu Sans' }));

  test('noisy background, serif, three lines', () =>
    reads(['Delivery window 9 to 17', 'Gate B entrance', 'Contact 555 0142'], { background: 'noisy', seed: 42, size: 28, font: 'DejaVu Serif' }));

  test('JPEG with EXIF orientation 6 is auto-rotated; boxes are in the upright image', async () => {
    const r = await renderTextWithLayout(['Rotated by EXIF 2026'], { size: 30 });
    // Store the pixels turned 90° counter-clockwise and tag them "rotate 90° clockwise to display".
    const jpeg = await sharp(r.png).rotate(270).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toBuffer();
    const result = await kernel.recognize(jpeg);
    assertReads(r, result);
  });

  test('WebP and GIF inputs', async () => {
    const r = await renderTextWithLayout(['Format check 314'], { size: 28 });
    for (const buf of [await sharp(r.png).webp({ quality: 90 }).toBuffer(), await sharp(r.png).gif().toBuffer()]) {
      assertReads(r, await kernel.recognize(buf));
    }
  });

  test('an image with no text gives no predictions', async () => {
    const blank = await sharp({ create: { width: 320, height: 120, channels: 3, background: '#ffffff' } }).png().toBuffer();
    assert.deepEqual((await kernel.recognize(blank)).predictions, []);
  });

  test('800x256 image: per-stage timings, event loop stays responsive', async (t) => {
    const r = await renderTextWithLayout(['Invoice 2026 total 431.50', 'Paid by card ending 4417', 'Thank you for your order'], {
      size: 40,
      width: 800,
      height: 256,
      background: 'noisy',
      seed: 3,
    });
    assert.equal(r.width, 800);
    assert.equal(r.height, 256);
    await kernel.recognize(r.png); // warm-up (JIT, ORT arenas)
    const delay = monitorEventLoopDelay({ resolution: 5 });
    delay.enable();
    const { result, timings } = await kernel.recognizeWithTimings(r.png);
    delay.disable();
    assertReads(r, result);
    const ms = Object.fromEntries(Object.entries(timings).map(([k, v]) => [k, Math.round(v * 10) / 10]));
    t.diagnostic(`timings ${JSON.stringify(ms)}`);
    t.diagnostic(`event loop max delay ${(delay.max / 1e6).toFixed(1)} ms`);
    assert.ok(timings.jsMs < 150, `JS stages took ${timings.jsMs} ms`);
    assert.ok(delay.max / 1e6 < 250, `event loop blocked ${delay.max / 1e6} ms`);
  });
});

/** Assert `p` rejects with an ApiError of `status` within `ms`. */
async function rejectsWith(p: Promise<unknown>, status: number, ms = 1000): Promise<ApiError> {
  const t0 = performance.now();
  try {
    await p;
  } catch (err) {
    const took = performance.now() - t0;
    assert.ok(err instanceof ApiError, `expected ApiError, got ${String(err)}`);
    assert.equal(err.status, status, `status for: ${err.message}`);
    assert.ok(took < ms, `took ${took.toFixed(0)} ms`);
    return err;
  }
  assert.fail(`expected a ${status}`);
}

// Minimal PNG writer so that headers can lie about dimensions.
const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(buf: Buffer): number {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}
function pngClaiming(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 0, 0, 0, 0], 8); // 8-bit grey
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(Buffer.alloc(1024))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}
function bmp2x2(): Buffer {
  const row = 8; // 2 px × 3 bytes, padded to 4
  const buf = Buffer.alloc(54 + row * 2);
  buf.write('BM', 0, 'latin1');
  buf.writeUInt32LE(buf.length, 2);
  buf.writeUInt32LE(54, 10);
  buf.writeUInt32LE(40, 14);
  buf.writeInt32LE(2, 18);
  buf.writeInt32LE(2, 22);
  buf.writeUInt16LE(1, 26);
  buf.writeUInt16LE(24, 28);
  buf.writeUInt32LE(row * 2, 34);
  return buf;
}

describe('bad images are refused with the right ApiError, quickly', () => {
  let goodPng: Buffer;
  before(async () => {
    goodPng = (await renderTextWithLayout(['Truncate me 123'], { size: 30, background: 'noisy', seed: 5 })).png;
  });

  test('truncated PNG → 400 invalid-image', async () => {
    const e = await rejectsWith(kernel.recognize(goodPng.subarray(0, Math.floor(goodPng.length / 2))), 400);
    assert.equal(e.slug, 'invalid-image');
  });
  test('random bytes → 400', async () => {
    assert.equal((await rejectsWith(kernel.recognize(randomBytes(4096)), 400)).slug, 'invalid-image');
  });
  test('zero bytes → 400', async () => {
    assert.equal((await rejectsWith(kernel.recognize(Buffer.alloc(0)), 400)).slug, 'invalid-image');
  });
  test('PNG signature with garbage after it → 400', async () => {
    await rejectsWith(decodeImage(Buffer.concat([goodPng.subarray(0, 8), randomBytes(200)])), 400);
  });
  test('header claiming 50000x50000 pixels → 413 before decoding', async () => {
    const e = await rejectsWith(kernel.recognize(pngClaiming(50_000, 50_000)), 413);
    assert.equal(e.slug, 'request-too-large');
  });
  test('more pixels than a configured limit → 413', async () => {
    await rejectsWith(inspectImage(goodPng, { maxPixels: 1000 }), 413);
  });
  test('more bytes than the limit → 413', async () => {
    await rejectsWith(decodeImage(goodPng, { maxBytes: 100 }), 413);
  });
  test('BMP → 415 unsupported-media-type', async () => {
    const e = await rejectsWith(kernel.recognize(bmp2x2()), 415);
    assert.equal(e.slug, 'unsupported-media-type');
  });
  test('SVG → 415 (never rendered)', async () => {
    const svg = Buffer.from('<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>');
    await rejectsWith(kernel.recognize(svg), 415);
    await rejectsWith(kernel.recognize(Buffer.from('  <svg width="10" height="10"></svg>')), 415);
  });
  test('PDF → 415', async () => {
    await rejectsWith(decodeImage(Buffer.from('%PDF-1.7\n%...')), 415);
  });
});

describe('bounded work queue', () => {
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  test('overflow → 503 service-unavailable with Retry-After', async () => {
    const q = new WorkQueue({ concurrency: 1, maxQueued: 1, timeoutMs: 5000 });
    const a = q.run(() => sleep(50).then(() => 'a'));
    const b = q.run(() => sleep(10).then(() => 'b'));
    const e = await rejectsWith(q.run(async () => 'c'), 503, 50);
    assert.equal(e.slug, 'service-unavailable');
    assert.match(e.headers['Retry-After'] ?? '', /^[1-9]\d*$/);
    assert.deepEqual(await Promise.all([a, b]), ['a', 'b']);
    assert.equal(q.stats.rejected, 1);
  });

  test('concurrency limit holds', async () => {
    const q = new WorkQueue({ concurrency: 2, maxQueued: 10, timeoutMs: 5000 });
    let running = 0, peak = 0;
    await Promise.all(
      Array.from({ length: 8 }, () =>
        q.run(async () => {
          peak = Math.max(peak, ++running);
          await sleep(5);
          running--;
        }),
      ),
    );
    assert.equal(peak, 2);
  });

  test('a job that times out while queued is dropped and never runs', async () => {
    const q = new WorkQueue({ concurrency: 1, maxQueued: 5, timeoutMs: 5000 });
    let ran = false;
    const a = q.run(() => sleep(80));
    const e = await rejectsWith(q.run(async () => { ran = true; }, { timeoutMs: 20 }), 503, 200);
    assert.ok(e.headers['Retry-After']);
    await a;
    await sleep(10);
    assert.equal(ran, false);
    assert.equal(q.stats.queued, 0);
  });

  test('a running job past its deadline: caller gets 504, result discarded, slot held until it ends', async () => {
    const q = new WorkQueue({ concurrency: 1, maxQueued: 5, timeoutMs: 5000 });
    let aborted = false;
    const slow = q.run(async (signal) => {
      await sleep(60);
      aborted = signal.aborted;
      return 'late';
    }, { timeoutMs: 20 });
    const e = await rejectsWith(slow, 504, 200);
    assert.equal(e.slug, 'gateway-timeout');
    assert.equal(q.stats.running, 1); // still busy: the CPU is not free yet
    assert.equal(await q.run(async () => 'next'), 'next');
    assert.equal(aborted, true);
  });

  test('a job that throws frees its slot', async () => {
    const q = new WorkQueue({ concurrency: 1, maxQueued: 0, timeoutMs: 1000 });
    await assert.rejects(q.run(async () => { throw new Error('boom'); }), /boom/);
    assert.equal(await q.run(async () => 1), 1);
  });

  test("a many-line page takes turns: another tenant's one-line image is read between its stages, not after it", async () => {
    const fair = await OcrKernel.load({ providers: ['cpu'], queue: { concurrency: 1, maxQueued: 8 } }, runners);
    const words = ['invoice', 'total', 'amount', 'shipping', 'address', 'payment', 'number', 'customer'];
    const page = (await renderTextWithLayout(Array.from({ length: 16 }, (_, i) => `${words[i % 8]} line ${i + 1} of the long page`), { size: 22 })).png;
    const small = (await renderTextWithLayout(['Quick one'], { size: 28 })).png;
    await fair.recognize(small); // warm: the first run of a shape is slower
    const done: string[] = [];
    const big = fair.recognize(page, { owner: 'tenant-a' }).then((r) => (done.push('page'), r));
    // Sent once the page holds the slot (its decoding has begun), as a second tenant's request would arrive.
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(fair.queueStats.running, 1);
    const quick = fair.recognize(small, { owner: 'tenant-b' }).then((r) => (done.push('quick'), r));
    const [pageResult, quickResult] = await Promise.all([big, quick]);
    assert.deepEqual(done, ['quick', 'page'], 'the one-line image did not wait for the whole page');
    assert.equal(quickResult.predictions[0]?.text, 'Quick one');
    assert.equal(pageResult.predictions.length, 16, 'the page still reads every line');
    assert.equal(pageResult.predictions[15]?.text, 'customer line 16 of the long page');
    assert.deepEqual([fair.queueStats.running, fair.queueStats.queued], [0, 0]);
  });

  test('the OCR kernel answers 503 + Retry-After when its queue is full', async () => {
    const busy = await OcrKernel.load({ providers: ['cpu'], queue: { concurrency: 1, maxQueued: 0 } }, runners);
    const png = (await renderTextWithLayout(['Queue test 1'], { size: 24 })).png;
    const results = await Promise.allSettled([busy.recognize(png), busy.recognize(png), busy.recognize(png)]);
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    for (const r of results.filter((r): r is PromiseRejectedResult => r.status === 'rejected')) {
      assert.ok(r.reason instanceof ApiError);
      assert.equal(r.reason.status, 503);
      assert.ok(Number(r.reason.headers['Retry-After']) >= 1);
    }
  });
});

describe('execution providers', () => {
  test('["cuda","cpu"]: CUDA fails cleanly with a reason, CPU runs', async () => {
    const { session, provider, skipped } = await createSession(ocrModelPaths().classifier, { providers: ['cuda', 'cpu'], intraOpNumThreads: 1 });
    assert.equal(provider, 'cpu');
    assert.equal(skipped[0]?.provider, 'cuda');
    assert.ok(skipped[0]!.reason.length > 0);
    await session.release();
  });

  test('unknown providers are skipped; none loadable is an error', async () => {
    const path = ocrModelPaths().classifier;
    assert.equal((await createSession(path, { providers: ['nope', 'cpu'], intraOpNumThreads: 1 })).provider, 'cpu');
    await assert.rejects(createSession(path, { providers: ['nope', 'cuda'] }), /no execution provider/);
  });

  test('one shared session per model and provider list', async () => {
    const path = ocrModelPaths().detection;
    const [a, b] = await Promise.all([runners.shared(path, { providers: ['cpu'] }), runners.shared(path, { providers: ['cpu'] })]);
    assert.equal(a, b);
    assert.equal(a.provider, 'cpu');
  });
});
