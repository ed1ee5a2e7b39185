/**
 * README "Inference", "Images" and "Custom models" claims that had no test over HTTP: 503 for a full
 * queue or a job that waited past its deadline, 504 for one that ran past it, 5xx answers not kept by
 * idempotency, a client that disconnects while waiting leaving the queue, HEIC → 415, and running
 * sessions picking up a replaced model on their next request.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import sharp from 'sharp';
import { ocrModelPaths } from '../src/inference/ocr/index.js';
import { signRequest } from '../src/signing/sign-request.js';
import { ADMIN, ALICE, startGateway, type Response, type TestGateway } from './helpers/gateway.js';
import { assertProblem } from './helpers/problems.js';
import { renderText } from './helpers/render-text.js';

const LINES = Array.from({ length: 14 }, (_, i) => `Line ${i + 1} of a long page with words ${1000 + i * 37}`);

async function metric(gw: TestGateway, name: string, model = 'ocr'): Promise<number> {
  const text = (await gw.request({ method: 'GET', target: '/metrics' })).text;
  const m = new RegExp(`^kernelgate_inference_${name}\\{model="${model}"\\} (\\d+)`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

async function until(check: () => Promise<boolean>, withinMs: number, what: string): Promise<void> {
  const started = Date.now();
  while (Date.now() - started < withinMs) {
    if (await check()) return;
    await sleep(10);
  }
  assert.fail(`${what}: not within ${withinMs} ms`);
}

const header = (res: Response, name: string) => (res.headers[name] === undefined ? undefined : String(res.headers[name]));

describe('README "Inference": deadlines over HTTP (concurrency 1, max_queue 1, timeout_ms 50)', () => {
  let gw: TestGateway;
  let page: Buffer;
  let small: Buffer;
  const infer = (body: Buffer, headers: Record<string, string> = {}) =>
    gw.signed({ method: 'POST', target: '/session/reader/infer', as: ALICE, body, contentType: 'image/png', headers });

  before(async () => {
    [gw, page, small] = await Promise.all([
      startGateway({ keypairs: [ALICE], config: '[inference]\nconcurrency = 1\nmax_queue = 1\ntimeout_ms = 50\n' }),
      renderText(LINES, { size: 30, width: 1400, height: 1300 }),
      renderText(['Hi'], { size: 24 }),
    ]);
    assert.equal((await gw.signed({ method: 'POST', target: '/session', as: ALICE, body: JSON.stringify({ name: 'reader', image: 'ocr' }) })).status, 201);
    // Load the model (loading is not part of a job's deadline); the answer itself may be a timeout.
    await infer(small);
  });
  after(() => gw?.stop());

  it('running past the deadline → 504; a job that cannot start in time → 503 with Retry-After at once', async () => {
    const timedOutBefore = await metric(gw, 'timed_out');
    const rejectedBefore = await metric(gw, 'rejected');
    // Three at once; which one reaches the queue first is up to the scheduler, so they are told apart by answer.
    const all = await Promise.all([infer(page), sleep(5).then(() => infer(page)), sleep(10).then(() => infer(page))]);
    const by = (status: number, detail?: RegExp) => all.filter((r) => r.status === status && (detail === undefined || detail.test(String(r.json?.detail))));
    const summary = all.map((r) => `${r.status} ${r.json?.detail}`).join(' | ');
    assert.equal(by(504).length, 1, `one job ran past its deadline: ${summary}`);
    // The others are refused: by the estimate (the warm-up gave the queue a run time, and no wait fits in
    // 50 ms: "would take"), by the per-tenant or global cap ("busy"), or, on a wrong estimate, by the
    // deadline while waiting ("wait exceeded"); which check answers first is up to the scheduler.
    // Never a 504, never a 200.
    const refusedAll = by(503, /would take|busy|wait exceeded/i);
    assert.equal(refusedAll.length, 2, `two refused with 503: ${summary}`);
    const [running] = by(504);
    assertProblem(running, 504, 'gateway-timeout');
    for (const r of refusedAll) {
      assertProblem(r, 503, 'service-unavailable');
      assert.match(String(header(r, 'retry-after')), /^[1-9]\d*$/);
    }
    assert.equal(header(running, 'retry-after'), undefined);
    assert.ok((await metric(gw, 'timed_out')) >= timedOutBefore + 1, 'the deadline is counted');
    assert.ok((await metric(gw, 'rejected')) >= rejectedBefore + 1, 'the refusal is counted');
    // None of it is a 500, and the gateway still answers everything else.
    assert.equal((await gw.signed({ method: 'GET', target: '/auth/test', as: ALICE })).status, 200);
  });

  it('a 503/504 from the queue is not stored for an Idempotency-Key: the retry runs again', async () => {
    await until(async () => (await metric(gw, 'running')) === 0, 30_000, 'the queue drained');
    const key = `ocr-5xx-${Date.now()}`;
    const first = await infer(page, { 'Idempotency-Key': key });
    assert.ok(first.status === 503 || first.status === 504, first.text);
    const timedOut = await metric(gw, 'timed_out');
    await until(async () => (await metric(gw, 'running')) === 0, 30_000, 'the queue drained');
    const retry = await infer(page, { 'Idempotency-Key': key });
    assert.ok(retry.status === 503 || retry.status === 504, `not a replay and not 409: ${retry.status} ${retry.text}`);
    assert.equal(header(retry, 'idempotent-replayed'), undefined, 'a 5xx was replayed');
    assert.notEqual(retry.json.instance, first.json.instance, 'a new answer, not the stored one');
    assert.ok((await metric(gw, 'timed_out')) > timedOut, 'the retry reached the queue again');
  });
});

describe('README "Inference" and "Images": disconnects, HEIC, replaced models (concurrency 1, max_queue 1)', () => {
  let gw: TestGateway;
  let page: Buffer;
  let small: Buffer;
  let upright: Buffer;
  const infer = (body: Buffer, name = 'reader') =>
    gw.signed({ method: 'POST', target: `/session/${name}/infer`, as: ALICE, body, contentType: 'image/png' });

  before(async () => {
    [gw, page, small] = await Promise.all([
      startGateway({ keypairs: [ALICE, ADMIN], config: '[server]\nbody_limit_bytes = 4194304\n[inference]\nconcurrency = 1\nmax_queue = 1\nmax_image_pixels = 4000000\n' }),
      renderText(LINES, { size: 30, width: 1400, height: 1300 }),
      renderText(['Hi'], { size: 24 }),
    ]);
    const line = await renderText([{ text: 'Kernelgate reads text', size: 40 }], { padding: 8 });
    upright = await sharp(line).resize(384, 96, { fit: 'fill' }).png().toBuffer();
    assert.equal((await gw.signed({ method: 'POST', target: '/session', as: ALICE, body: JSON.stringify({ name: 'reader', image: 'ocr' }) })).status, 201);
    assert.equal((await infer(small)).status, 200);
  });
  after(() => gw?.stop());

  it('a client that disconnects while its job waits takes the job out of the queue (it never runs)', async () => {
    const completedBefore = await metric(gw, 'completed');
    const first = infer(page);
    await until(async () => (await metric(gw, 'running')) === 1, 5_000, 'the first job runs');

    // The second client: a raw signed request whose socket we destroy once its job is queued.
    const host = `127.0.0.1:${gw.port}`;
    const signed = signRequest({ method: 'POST', target: '/session/reader/infer', host, accessKey: ALICE.accessKey, secretKey: ALICE.secretKey, body: page, contentType: 'image/png' });
    const req = httpRequest({ host: '127.0.0.1', port: gw.port, method: 'POST', path: '/session/reader/infer', headers: { ...signed.headers, Host: host, 'Content-Length': String(page.length) }, agent: false });
    let answered = false;
    req.on('response', () => (answered = true));
    req.on('error', () => undefined);
    req.end(page);
    await until(async () => (await metric(gw, 'queued')) === 1, 5_000, 'the second job waits');
    const stillRunning = (await metric(gw, 'running')) === 1;
    assert.ok(stillRunning, 'the first job must still run for this test to mean anything (use a larger page)');
    req.destroy();
    // Out of the queue at once, while the first job still holds the slot.
    await until(async () => (await metric(gw, 'queued')) === 0, 2_000, 'the abandoned job left the queue');

    const done = await first;
    assert.equal(done.status, 200, done.text);
    await until(async () => (await metric(gw, 'running')) === 0, 10_000, 'idle again');
    await sleep(300);
    assert.equal(await metric(gw, 'completed'), completedBefore + 1, 'only the first job ran; the abandoned one never did');
    assert.equal(answered, false);
    // The slot is free for the next client.
    assert.equal((await infer(small)).status, 200);
    // README "Inference": the provider that loaded is in every result and on /health/detail (admins; public
    // /health says only ok/degraded per part).
    const result = await infer(small);
    assert.equal(result.json.provider, 'cpu');
    const health = (await gw.signed({ method: 'GET', target: '/health/detail', as: ADMIN })).json;
    assert.equal(health.inference.models.ocr.loaded, true);
    assert.equal(health.inference.models.ocr.provider, result.json.provider);
  });

  it('a running job whose client disconnects stops at its next stage: the slot frees long before a full run', async (t) => {
    await until(async () => (await metric(gw, 'running')) === 0 && (await metric(gw, 'queued')) === 0, 30_000, 'idle');
    const baseline = await infer(page);
    assert.equal(baseline.status, 200, baseline.text);
    const fullMs = baseline.json.duration_ms as number;

    const host = `127.0.0.1:${gw.port}`;
    const signed = signRequest({ method: 'POST', target: '/session/reader/infer', host, accessKey: ALICE.accessKey, secretKey: ALICE.secretKey, body: page, contentType: 'image/png' });
    const req = httpRequest({ host: '127.0.0.1', port: gw.port, method: 'POST', path: '/session/reader/infer', headers: { ...signed.headers, Host: host, 'Content-Length': String(page.length) }, agent: false });
    req.on('error', () => undefined);
    req.end(page);
    await until(async () => (await metric(gw, 'running')) === 1, 5_000, 'the job runs');
    const aborted = performance.now();
    req.destroy();
    // The next client waits for the slot: for the rest of the first stage, not for the whole page.
    const next = await infer(small);
    const waitedMs = performance.now() - aborted;
    assert.equal(next.status, 200, next.text);
    t.diagnostic(`full run ${fullMs} ms; slot free ${waitedMs.toFixed(0)} ms after the disconnect (next job included)`);
    assert.ok(waitedMs < fullMs * 0.6, `the slot freed ${waitedMs.toFixed(0)} ms after the disconnect; a full run takes ${fullMs} ms`);
  });

  it('HEIC is refused with 415 (an ISO-BMFF ftyp box with a heic brand)', async () => {
    const ftyp = Buffer.alloc(32);
    ftyp.writeUInt32BE(24, 0);
    ftyp.write('ftypheic', 4, 'latin1');
    ftyp.writeUInt32BE(0, 12);
    ftyp.write('mif1heic', 16, 'latin1');
    ftyp.writeUInt32BE(8, 24);
    ftyp.write('meta', 28, 'latin1');
    const heic = Buffer.concat([ftyp, Buffer.alloc(256, 0x11)]);
    for (const type of ['image/heic', 'image/png', 'application/octet-stream']) {
      const res = await gw.signed({ method: 'POST', target: '/session/reader/infer', as: ALICE, body: heic, contentType: type });
      assertProblem(res, 415, 'unsupported-media-type');
      assert.match(res.json.detail, /HEIC/);
    }
    // The same in a JSON wrapper.
    const json = await gw.signed({ method: 'POST', target: '/session/reader/infer', as: ALICE, body: JSON.stringify({ image: heic.toString('base64') }) });
    assertProblem(json, 415, 'unsupported-media-type');
    // PDF, the other format the README names that no test sent.
    const pdf = Buffer.from('%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n');
    assertProblem(await gw.signed({ method: 'POST', target: '/session/reader/infer', as: ALICE, body: pdf, contentType: 'application/pdf' }), 415, 'unsupported-media-type');
    assertProblem(await gw.signed({ method: 'POST', target: '/session/reader/infer', as: ALICE, body: pdf, contentType: 'image/png' }), 415, 'unsupported-media-type');
  });

  it('over max_image_pixels → 413 from the header, without taking a model slot', async () => {
    // 3000 × 3000 = 9 M pixels against a limit of 4 M; a blank image compresses to a few kB.
    const huge = await sharp({ create: { width: 3000, height: 3000, channels: 3, background: '#ffffff' } }).png().toBuffer();
    assert.ok(huge.length < 200_000, `${huge.length} bytes`);
    const completed = await metric(gw, 'completed');
    const t0 = performance.now();
    const res = await gw.signed({ method: 'POST', target: '/session/reader/infer', as: ALICE, body: huge, contentType: 'image/png' });
    const ms = performance.now() - t0;
    assertProblem(res, 413, 'request-too-large');
    assert.match(res.json.detail, /pixel/i);
    assert.ok(ms < 2_000, `${ms.toFixed(0)} ms`);
    assert.equal(await metric(gw, 'completed'), completed, 'no job ran for it');
  });

  it('running sessions pick up a replaced model on their next request', async () => {
    const onnx = readFileSync(ocrModelPaths().classifier);
    const config = { name: 'textdir', task: 'classify', input: { width: 192, height: 48 }, normalize: { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] }, top_k: 2 };
    const install = (labels: string[], file: Buffer) =>
      gw.signed({ method: 'POST', target: '/models', as: ADMIN, body: JSON.stringify({ ...config, labels, model: file.toString('base64') }) });
    const top = async () => {
      const res = await infer(upright, 'dir');
      assert.equal(res.status, 200, res.text);
      return res.json.predictions[0].label as string;
    };
    const listed = async () => (await gw.signed({ method: 'GET', target: '/models', as: ALICE })).json.models.find((m: { name: string }) => m.name === 'textdir');

    assert.equal((await install(['up', 'down'], onnx)).status, 201);
    assert.equal((await gw.signed({ method: 'POST', target: '/session', as: ALICE, body: JSON.stringify({ name: 'dir', image: 'textdir' }) })).status, 201);
    assert.equal(await top(), 'up');
    const before = await listed();
    assert.equal(before.loaded, true);

    // A new file (the same network with a different doc_string, ModelProto field 6) and relabelled outputs.
    const doc = Buffer.from('replaced by the README test');
    const changed = Buffer.concat([onnx, Buffer.from([0x32, doc.length]), doc]);
    const replaced = await install(['UPRIGHT', 'UPSIDE-DOWN'], changed);
    assert.equal(replaced.status, 200, replaced.text);
    const after = await listed();
    assert.notEqual(after.sha256, before.sha256, 'the new file is stored');
    // Files named by content hash beside a JSON config; the replaced file is gone, no temporary file is left.
    const files = readdirSync(join(gw.dir, 'models', 'default')).sort();
    assert.deepEqual(files, [`textdir.${after.sha256.slice(0, 16)}.onnx`, 'textdir.json'], files.join(' '));
    assert.equal(createHash('sha256').update(changed).digest('hex'), after.sha256);
    assert.equal(await top(), 'UPRIGHT', 'the running session answers with the replacement on its next request');
    assert.equal((await listed()).loaded, true, 'the replacement is the loaded one');

    // A replacement that changes only the config (same file) is picked up as well.
    assert.equal((await install(['A', 'B'], changed)).status, 200);
    assert.equal(await top(), 'A', 'a config-only replacement is picked up too');
  });
});
