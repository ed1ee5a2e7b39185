/**
 * Inference on Open Inference Protocol servers, end to end with real parts: two `kernelgate worker`
 * processes (the built-in PP-OCR and BlazeFace models, an uploaded classifier and an uploaded YOLO-layout
 * detector, on ONNX Runtime) and two gateways sharing one models folder, one running models locally and one
 * with `backend = "kserve"` over both workers. OCR, classify, face and detect answer the same on both; a worker killed under load costs at most the jobs
 * that were on it, the other serves the rest, and a restarted worker is used again.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { ocrModelPaths } from '../src/inference/ocr/index.js';
import { A0, A2, A4, LABELS, ROWS } from './helpers/detect-fixtures.js';
import { ADMIN, ALICE, rawRequest, startGateway, type TestGateway } from './helpers/gateway.js';
import { constantDetector, yolov8Values } from './helpers/onnx.js';
import { photo } from './helpers/photos.js';
import { renderText } from './helpers/render-text.js';
import { startWorker, type TestWorker } from './helpers/worker.js';

const TOKEN = 'test-worker-token-0123456789abcdef';
const TEXTDIR = {
  name: 'textdir',
  task: 'classify',
  input: { width: 192, height: 48 },
  normalize: { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] },
  labels: ['0', '180'],
  top_k: 2,
};

/** A YOLOv8-layout detector (64x64 input, output [1, 6, 5]) whose known anchors land as A0, A2, A4 on a 200x100 image. */
const V8 = yolov8Values(ROWS);
const OBJECTS = { name: 'objects', task: 'detect', format: 'yolov8', input: { width: 64, height: 64 }, labels: LABELS };

/** A counter of a Prometheus text exposition, summed over the series whose labels contain `labels`. */
function metric(text: string, name: string, labels = ''): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (labels && !line.includes(labels)) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

describe('kserve backend: two kernelgate workers behind a gateway', () => {
  const modelsDir = mkdtempSync(join(tmpdir(), 'kernelgate-kserve-models-'));
  const workerConfig = `[inference]\nmodels_dir = ${JSON.stringify(modelsDir)}\nconcurrency = 2\n`;
  let w1: TestWorker;
  let w2: TestWorker;
  let local: TestGateway;
  let remote: TestGateway;
  let page: Buffer;
  let upright: Buffer;
  let flipped: Buffer;

  before(async () => {
    [w1, w2] = await Promise.all([startWorker({ config: workerConfig, token: TOKEN }), startWorker({ config: workerConfig, token: TOKEN })]);
    local = await startGateway({ config: `[server]\nbody_limit_bytes = 4194304\n[inference]\nmodels_dir = ${JSON.stringify(modelsDir)}\n` });
    remote = await startGateway({
      config:
        `[server]\nbody_limit_bytes = 4194304\n[inference]\nmodels_dir = ${JSON.stringify(modelsDir)}\nconcurrency = 4\nmax_queue = 64\n` +
        `backend = "kserve"\nkserve_urls = [${JSON.stringify(w1.url)}, ${JSON.stringify(w2.url)}]\nkserve_token = ${JSON.stringify(TOKEN)}\n` +
        'kserve_health_interval_ms = 200\nkserve_eject_ms = 300\nkserve_timeout_ms = 20000\n',
    });
    page = await renderText(['Quarterly report 2026', 'Revenue grew 18 percent'], { size: 30 });
    const line = await renderText([{ text: 'Kernelgate reads text', size: 40 }], { padding: 8 });
    upright = await sharp(line).resize(384, 96, { fit: 'fill' }).png().toBuffer();
    flipped = await sharp(upright).rotate(180).png().toBuffer();
    // The upload goes through the kserve gateway: it is checked there on the local runtime, then stored
    // in the shared folder, where both workers find it as "default.textdir".
    const up = await remote.signed({ method: 'POST', target: '/models', as: ADMIN, body: JSON.stringify({ ...TEXTDIR, model: readFileSync(ocrModelPaths().classifier).toString('base64') }) });
    assert.equal(up.status, 201, up.text);
    const det = await remote.signed({ method: 'POST', target: '/models', as: ADMIN, body: JSON.stringify({ ...OBJECTS, model: constantDetector(64, 64, V8.dims, V8.values).toString('base64') }) });
    assert.equal(det.status, 201, det.text);
    for (const gw of [local, remote]) {
      for (const [name, image] of [['reader', 'ocr'], ['dir', 'textdir'], ['faces', 'face'], ['objects', 'objects']]) {
        const res = await gw.signed({ method: 'POST', target: '/session', as: ALICE, body: JSON.stringify({ name, image }) });
        assert.equal(res.status, 201, res.text);
      }
    }
  });

  after(async () => {
    await Promise.allSettled([w1?.stop(), w2?.stop(), local?.stop(), remote?.stop()]);
    rmSync(modelsDir, { recursive: true, force: true });
  });

  const infer = (gw: TestGateway, session: string, image: Buffer) =>
    gw.signed({ method: 'POST', target: `/session/${session}/infer`, as: ALICE, body: image, contentType: 'image/png' });

  it('OCR, classify, face and detect give the same results as the local runner', async () => {
    const [a, b] = [await infer(local, 'reader', page), await infer(remote, 'reader', page)];
    assert.equal(a.status, 200, a.text);
    assert.equal(b.status, 200, b.text);
    assert.deepEqual(b.json.predictions.map((p: { text: string }) => p.text), ['Quarterly report 2026', 'Revenue grew 18 percent']);
    assert.deepEqual(b.json.predictions, a.json.predictions, 'same texts, confidences and boxes');
    assert.equal(a.json.provider, 'cpu');
    assert.equal(b.json.provider, 'kserve');
    for (const image of [upright, flipped]) {
      const [x, y] = [await infer(local, 'dir', image), await infer(remote, 'dir', image)];
      assert.equal(y.status, 200, y.text);
      assert.deepEqual(y.json.predictions, x.json.predictions);
    }
    assert.equal((await infer(remote, 'dir', flipped)).json.predictions[0].label, '180');
    // The face kernel reads all four BlazeFace outputs: the runner asks the worker for every one.
    const astronaut = photo('astronaut');
    const [f, g] = [await infer(local, 'faces', astronaut), await infer(remote, 'faces', astronaut)];
    assert.equal(g.status, 200, g.text);
    assert.equal(g.json.predictions.length, 1, g.text);
    assert.deepEqual(g.json.predictions, f.json.predictions);
    // Detect: the letterboxed tensor goes to the worker, the YOLO output comes back and is decoded here.
    const scene = await sharp({ create: { width: 200, height: 100, channels: 3, background: '#3a6' } }).png().toBuffer();
    const [d, e] = [await infer(local, 'objects', scene), await infer(remote, 'objects', scene)];
    assert.equal(e.status, 200, e.text);
    assert.equal(e.json.provider, 'kserve');
    assert.deepEqual(e.json.predictions, d.json.predictions);
    assert.deepEqual(
      e.json.predictions.map((p: { label: string; x_min: number; y_min: number; x_max: number; y_max: number }) => [p.label, p.x_min, p.y_min, p.x_max, p.y_max]),
      [A0, A2, A4].map((a) => [a.label, a.x_min, a.y_min, a.x_max, a.y_max]),
    );
    // Both workers took part (least outstanding, ties rotate) and counted their jobs.
    for (const w of [w1, w2]) {
      const m = await rawRequest(w.port, { method: 'GET', target: '/metrics', headers: { authorization: `Bearer ${TOKEN}` } });
      assert.equal(m.status, 200);
      assert.ok(metric(m.text, 'kernelgate_worker_requests_total', 'route="infer",status="200"') > 0, `worker ${w.port} ran no job`);
    }
    const gm = await remote.request({ method: 'GET', target: '/metrics' });
    assert.ok(metric(gm.text, 'kernelgate_kserve_request_duration_seconds_count', `model="ocr-det"`) >= 1);
    assert.ok(metric(gm.text, 'kernelgate_kserve_request_duration_seconds_count', `model="default.textdir"`) >= 1);
  });

  it('a worker killed under load costs at most the jobs on it; a restarted worker is used again', async () => {
    const statuses: number[] = [];
    let killedAt = -1;
    const jobs = 40;
    let sent = 0;
    // Four clients, one request at a time each: at most four jobs are in flight, spread over both workers.
    const client = async () => {
      while (sent < jobs) {
        sent++;
        const res = await infer(remote, 'dir', sent % 2 ? upright : flipped);
        statuses.push(res.status);
        if (res.status !== 200) assert.equal(res.headers['content-type'], 'application/problem+json', res.text);
        if (statuses.length === 8 && killedAt < 0) {
          killedAt = statuses.length;
          void w1.kill();
        }
      }
    };
    await Promise.all([client(), client(), client(), client()]);
    const failed = statuses.filter((s) => s !== 200);
    assert.ok(failed.every((s) => s === 503), `only 503 for jobs lost with the worker: ${failed}`);
    assert.ok(failed.length <= 4, `at most the jobs that were on the killed worker failed: ${statuses}`);
    // SIGKILL lands a moment after it is sent: the jobs in flight then (at most four) may fail; every one after them succeeds.
    assert.ok(statuses.slice(0, killedAt).every((s) => s === 200), `${statuses}`);
    let lastFailure = -1;
    statuses.forEach((s, i) => s !== 200 && (lastFailure = i));
    assert.ok(lastFailure < killedAt + 12, `after the jobs that were in flight, the other worker served everything: ${statuses}`);
    assert.ok(statuses.slice(-20).every((s) => s === 200), `${statuses}`);

    const gm = await remote.request({ method: 'GET', target: '/metrics' });
    assert.ok(metric(gm.text, 'kernelgate_kserve_ejections_total', `backend="${w1.url}"`) >= 1, 'the dead worker was ejected');
    assert.equal(metric(gm.text, 'kernelgate_kserve_backend_available', `backend="${w1.url}"`), 0);

    // The same port again: health probes bring it back and it takes jobs.
    const port = w1.port;
    w1 = await startWorker({ config: workerConfig, token: TOKEN, port });
    const deadline = Date.now() + 10_000;
    for (;;) {
      const m = await remote.request({ method: 'GET', target: '/metrics' });
      if (metric(m.text, 'kernelgate_kserve_backend_available', `backend="${w1.url}"`) === 1) break;
      assert.ok(Date.now() < deadline, 'the restarted worker came back within 10 s');
      await new Promise((r) => setTimeout(r, 100));
    }
    const more = await Promise.all(Array.from({ length: 6 }, (_, i) => infer(remote, 'dir', i % 2 ? upright : flipped)));
    assert.deepEqual(more.map((r) => r.status), [200, 200, 200, 200, 200, 200]);
    const m1 = await rawRequest(w1.port, { method: 'GET', target: '/metrics', headers: { authorization: `Bearer ${TOKEN}` } });
    assert.ok(metric(m1.text, 'kernelgate_worker_requests_total', 'route="infer",status="200"') > 0, 'the restarted worker ran jobs');
  });
});
