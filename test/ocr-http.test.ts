/**
 * The `ocr` kernel over HTTP on a spawned gateway: the three ways to send an image, reading order,
 * bad images as problem documents, the bounded queue's 503, and signed requests staying fast while
 * OCR keeps the CPU busy. Fixtures are rendered at test time (helpers/render-text.ts).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { ALICE, startGateway, type Response, type TestGateway } from './helpers/gateway.js';
import { renderText, renderTextWithLayout, type RenderedText } from './helpers/render-text.js';
import { assertProblem } from './helpers/problems.js';

const BASE = 'https://api.backend.ai/probs/';
const MAX_IMAGE_BYTES = 60_000;


interface Prediction {
  text: string;
  confidence: number;
  box: number[][];
  x_min: number;
  y_min: number;
  x_max: number;
  y_max: number;
}

/** The result shape, word for word text, and every coordinate inside the image. */
function assertReads(res: Response, r: RenderedText): void {
  assert.equal(res.status, 200, res.text);
  assert.match(String(res.headers['content-type']), /^application\/json/);
  const body = res.json as { predictions: Prediction[]; duration_ms: number; provider: string };
  assert.deepEqual(
    body.predictions.map((p) => p.text),
    r.lines.map((l) => l.text),
  );
  assert.equal(body.provider, 'cpu');
  assert.equal(typeof body.duration_ms, 'number');
  assert.ok(body.duration_ms > 0);
  for (const p of body.predictions) {
    assert.ok(p.confidence > 0.5 && p.confidence <= 1, `confidence ${p.confidence}`);
    assert.equal(p.box.length, 4);
    for (const pt of p.box) {
      assert.equal(pt.length, 2);
      assert.ok(pt[0]! >= 0 && pt[0]! <= r.width && pt[1]! >= 0 && pt[1]! <= r.height, `box point ${pt} outside ${r.width}x${r.height}`);
    }
    assert.ok(0 <= p.x_min && p.x_min < p.x_max && p.x_max <= r.width, `x ${p.x_min}..${p.x_max} of ${r.width}`);
    assert.ok(0 <= p.y_min && p.y_min < p.y_max && p.y_max <= r.height, `y ${p.y_min}..${p.y_max} of ${r.height}`);
    assert.equal(p.x_min, Math.min(...p.box.map((pt) => pt[0]!)));
    assert.equal(p.y_max, Math.max(...p.box.map((pt) => pt[1]!)));
  }
  // Reading order: each line starts below the previous one.
  for (let i = 1; i < body.predictions.length; i++) {
    assert.ok(body.predictions[i]!.y_min > body.predictions[i - 1]!.y_min, 'lines come top to bottom');
  }
}

function multipart(fields: Array<{ name: string; filename?: string; type?: string; data: Buffer | string }>) {
  const boundary = `----kernelgate-test-${randomBytes(8).toString('hex')}`;
  const parts: Buffer[] = [];
  for (const f of fields) {
    let head = `--${boundary}\r\nContent-Disposition: form-data; name="${f.name}"`;
    if (f.filename !== undefined) head += `; filename="${f.filename}"`;
    head += '\r\n';
    if (f.type) head += `Content-Type: ${f.type}\r\n`;
    parts.push(Buffer.from(`${head}\r\n`), Buffer.from(f.data), Buffer.from('\r\n'));
  }
  parts.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(parts), contentType: `multipart/form-data; boundary=${boundary}` };
}

/** A valid 4x4 24-bit BMP (a format sharp does not decode here: refused as unsupported). */
function bmp(): Buffer {
  const w = 4;
  const h = 4;
  const row = w * 3; // already a multiple of 4
  const pixels = Buffer.alloc(row * h, 0x80);
  const header = Buffer.alloc(54);
  header.write('BM', 0, 'latin1');
  header.writeUInt32LE(54 + pixels.length, 2);
  header.writeUInt32LE(54, 10);
  header.writeUInt32LE(40, 14);
  header.writeInt32LE(w, 18);
  header.writeInt32LE(h, 22);
  header.writeUInt16LE(1, 26);
  header.writeUInt16LE(24, 28);
  header.writeUInt32LE(pixels.length, 34);
  return Buffer.concat([header, pixels]);
}

const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};

describe('ocr over HTTP', () => {
  let gw: TestGateway;
  let single: RenderedText;
  let three: RenderedText;
  const infer = (body: Buffer | string, contentType: string, name = 'reader') =>
    gw.signed({ method: 'POST', target: `/session/${name}/infer`, as: ALICE, body, contentType });

  before(async () => {
    [gw, single, three] = await Promise.all([
      startGateway({ config: `[inference]\nmax_image_bytes = ${MAX_IMAGE_BYTES}\nconcurrency = 1\nmax_queue = 1\n` }),
      renderTextWithLayout(['Invoice 2026 total 431.50'], { size: 32 }),
      renderTextWithLayout(['Quarterly report 2026', 'Revenue grew 18 percent', 'Page 3 of 12'], { size: 30 }),
    ]);
    const created = await gw.signed({ method: 'POST', target: '/session', as: ALICE, body: JSON.stringify({ name: 'reader', image: 'ocr' }) });
    assert.equal(created.status, 201, created.text);
    // Load the model before anything is timed.
    assert.equal((await infer(single.png, 'image/png')).status, 200);
  });
  after(() => gw?.stop());

  it('reads a raw image/png body word for word', async () => {
    assertReads(await infer(single.png, 'image/png'), single);
  });

  it('reads a multipart/form-data "image" file field', async () => {
    const form = multipart([
      { name: 'note', data: 'ignored' },
      { name: 'image', filename: 'invoice.png', type: 'image/png', data: single.png },
    ]);
    assertReads(await infer(form.body, form.contentType), single);
  });

  it('finds the multipart "image" part after other file parts, and without a filename', async () => {
    // A form that also uploads another file (a thumbnail, a metadata.json) before the image.
    const afterOther = multipart([
      { name: 'metadata', filename: 'meta.json', type: 'application/json', data: '{"source":"scanner"}' },
      { name: 'image', filename: 'invoice.png', type: 'image/png', data: single.png },
    ]);
    assertReads(await infer(afterOther.body, afterOther.contentType), single);
    // curl -F 'image=<invoice.png;type=image/png' sends the part with no filename.
    const noFilename = multipart([{ name: 'image', type: 'image/png', data: single.png }]);
    assertReads(await infer(noFilename.body, noFilename.contentType), single);
  });

  it('reads JSON {"image": base64} (plain and as a data URL)', async () => {
    assertReads(await infer(JSON.stringify({ image: single.png.toString('base64') }), 'application/json'), single);
    assertReads(await infer(JSON.stringify({ image: `data:image/png;base64,${single.png.toString('base64')}` }), 'application/json'), single);
  });

  it('returns several lines in reading order', async () => {
    assertReads(await infer(three.png, 'image/png'), three);
    const form = multipart([{ name: 'image', filename: 'report.png', type: 'image/png', data: three.png }]);
    assertReads(await infer(form.body, form.contentType), three);
  });

  it('refuses bad images quickly with problem documents, and keeps serving', async () => {
    const big = await renderText(['Meeting at 10 am', 'Room 204 north wing'], { background: 'noisy', seed: 7, size: 34 });
    assert.ok(big.length > MAX_IMAGE_BYTES, `fixture is ${big.length} bytes`);
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20"><text x="2" y="15">Hi</text></svg>');
    const noImage = multipart([{ name: 'file', filename: 'x.png', type: 'image/png', data: single.png }, { name: 'note', data: 'hello' }]);
    const cases: Array<[string, () => Promise<Response>, number, string | undefined]> = [
      ['truncated PNG', () => infer(single.png.subarray(0, Math.floor(single.png.length / 2)), 'image/png'), 400, 'invalid-image'],
      ['PNG header only', () => infer(single.png.subarray(0, 40), 'image/png'), 400, 'invalid-image'],
      ['random bytes as image/png', () => infer(randomBytes(4096), 'image/png'), 400, 'invalid-image'],
      ['random bytes as octet-stream', () => infer(randomBytes(4096), 'application/octet-stream'), 400, 'invalid-image'],
      ['empty body', () => infer(Buffer.alloc(0), 'image/png'), 400, 'invalid-image'],
      ['BMP', () => infer(bmp(), 'image/bmp'), 415, 'unsupported-media-type'],
      ['SVG', () => infer(svg, 'image/svg+xml'), 415, 'unsupported-media-type'],
      ['SVG labelled PNG', () => infer(svg, 'image/png'), 415, 'unsupported-media-type'],
      ['text/plain', () => infer('just some text', 'text/plain'), 415, 'unsupported-media-type'],
      ['too large raw', () => infer(big, 'image/png'), 413, 'request-too-large'],
      ['too large multipart', () => {
        const f = multipart([{ name: 'image', filename: 'big.png', type: 'image/png', data: big }]);
        return infer(f.body, f.contentType);
      }, 413, 'request-too-large'],
      ['too large JSON', () => infer(JSON.stringify({ image: big.toString('base64') }), 'application/json'), 413, 'request-too-large'],
      ['multipart without an image field', () => infer(noImage.body, noImage.contentType), 400, undefined],
      ['multipart without a boundary', () => infer(noImage.body, 'multipart/form-data'), 400, undefined],
      ['JSON with non-base64', () => infer(JSON.stringify({ image: 'this is *not* base64!' }), 'application/json'), 400, undefined],
      ['JSON without image', () => infer(JSON.stringify({ picture: 'abc' }), 'application/json'), 400, undefined],
      ['JSON with base64 of garbage', () => infer(JSON.stringify({ image: randomBytes(300).toString('base64') }), 'application/json'), 400, 'invalid-image'],
    ];
    for (const [label, send, status, slug] of cases) {
      const t0 = performance.now();
      const res = await send();
      const ms = performance.now() - t0;
      assert.doesNotThrow(() => assertProblem(res, status, slug), (e: unknown) => {
        throw new Error(`${label}: ${(e as Error).message}`);
      });
      assert.ok(ms < 2000, `${label} took ${ms.toFixed(0)} ms`);
    }
    assertReads(await infer(single.png, 'image/png'), single);
  });

  it('a full queue answers 503 service-unavailable with Retry-After, never 500', async () => {
    const large = await renderTextWithLayout(
      ['Line one of many', 'Second line here 22', 'Third line 333', 'Fourth line 4444', 'Fifth line five'],
      { size: 28, width: 1200, height: 900 },
    );
    assert.ok(large.png.length <= MAX_IMAGE_BYTES);
    const results = await Promise.all(Array.from({ length: 8 }, () => infer(large.png, 'image/png')));
    const statuses = results.map((r) => r.status);
    assert.ok(statuses.every((s) => s === 200 || s === 503), `statuses ${statuses.join()}`);
    const refused = results.filter((r) => r.status === 503);
    assert.ok(refused.length >= 1, `no 503 among ${statuses.join()}`);
    assert.ok(statuses.filter((s) => s === 200).length >= 1, `statuses ${statuses.join()}`);
    for (const r of refused) {
      assertProblem(r, 503, 'service-unavailable');
      assert.match(String(r.headers['retry-after']), /^[1-9]\d*$/);
    }
    for (const r of results.filter((r) => r.status === 200)) assertReads(r, large);
    // After the burst the queue drains and serves again.
    assertReads(await infer(single.png, 'image/png'), single);
    // The refusals and completions are visible to Prometheus.
    const metrics = (await gw.request({ method: 'GET', target: '/metrics' })).text;
    const value = (name: string) => Number(new RegExp(`^${name}\\{model="ocr"\\} (\\d+)`, 'm').exec(metrics)?.[1]);
    assert.equal(value('kernelgate_inference_rejected'), refused.length);
    assert.ok(value('kernelgate_inference_completed') >= statuses.filter((s) => s === 200).length + 1);
    assert.equal(value('kernelgate_inference_queued'), 0);
    assert.match(metrics, /^kernelgate_degraded\{part="ratelimit"\} 0$/m);
  });

  it('signed /auth/test stays fast while OCR runs continuously', async () => {
    let stop = false;
    let inferences = 0;
    const bad: string[] = [];
    // Two back-to-back loops keep the one model slot busy (1 running + 1 queued fits max_queue = 1).
    const loop = async () => {
      while (!stop) {
        const r = await infer(three.png, 'image/png');
        if (r.status === 200) inferences++;
        else bad.push(`${r.status} ${r.text}`);
      }
    };
    const loops = [loop(), loop()];
    await new Promise((r) => setTimeout(r, 200));
    const latencies: number[] = [];
    const until = performance.now() + 3000;
    while (performance.now() < until) {
      const t0 = performance.now();
      const res = await gw.signed({ method: 'GET', target: '/auth/test?echo=ping', as: ALICE });
      latencies.push(performance.now() - t0);
      assert.equal(res.status, 200, res.text);
      await new Promise((r) => setTimeout(r, 5));
    }
    stop = true;
    await Promise.all(loops);
    const p50 = percentile(latencies, 50);
    const p99 = percentile(latencies, 99);
    const max = Math.max(...latencies);
    console.log(`# /auth/test under OCR load: n=${latencies.length} p50=${p50.toFixed(1)} ms p99=${p99.toFixed(1)} ms max=${max.toFixed(1)} ms; ${inferences} inferences in ~3.2 s`);
    assert.deepEqual(bad, []);
    assert.ok(inferences >= 3, `only ${inferences} inferences ran: the load was not real`);
    assert.ok(latencies.length >= 30, `only ${latencies.length} samples`);
    assert.ok(p99 < 250, `p99 ${p99.toFixed(1)} ms`);
  });
});
