/**
 * `kernelgate worker` over the wire, and the gateway's remote runner against it: the specification's
 * binary and JSON examples answered by a running worker (byte layout, header length, `{"error": ...}`),
 * bearer-token authentication, limits and malformed bodies (400, never 500); the remote runner gives the
 * same numbers as the local ONNX Runtime runner in binary and JSON tensors; a job is retried on another
 * backend only when the first never received it; a Triton model repository export; tensors of every
 * datatype in and out as the model's metadata declares them, exact.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { Registry } from 'prom-client';
import { configFromObject } from '../src/config/config.js';
import { DEFAULT_CTC_OPTIONS } from '../src/inference/ocr/ctc.js';
import { ocrModelPaths } from '../src/inference/ocr/index.js';
import { loadDictionary } from '../src/inference/ocr/models.js';
import { BackendSet } from '../src/inference/runners/kserve/backends.js';
import { concatEncoded, decodeInferResponse, encodeInferRequest, type Tensor } from '../src/inference/runners/kserve/protocol.js';
import { modelPath } from '../src/inference/runners/kserve/names.js';
import { KServeRunner, type TensorEncoding } from '../src/inference/runners/kserve/runner.js';
import { startWorkerRunner } from '../src/inference/runners/ort-worker.js';
import { parseModelConfig } from '../src/inference/store/model-config.js';
import { ApiError } from '../src/problems/api-error.js';
import { WorkerModels } from '../src/worker/models.js';
import { exportRepository, fileMetadata } from '../src/worker/triton-export.js';
import { bearerMatches } from '../src/worker/token.js';
import { BIN, rawRequest } from './helpers/gateway.js';
import { freePort } from './helpers/redis-server.js';
import { typedTensorsModel } from './helpers/onnx.js';
import { cropBatch, lineCrop } from './helpers/rec-crops.js';
import { startWorker, type TestWorker } from './helpers/worker.js';

const TOKEN = 'worker-test-token-abcdefghijklmnop';
const auth = { authorization: `Bearer ${TOKEN}` };
const CLS_INPUT = [1, 3, 48, 192];

/** A deterministic ocr-cls input: a gradient, so both classes get non-trivial scores. */
const clsInput = () => Float32Array.from({ length: 3 * 48 * 192 }, (_, i) => ((i % 192) / 96 - 1) * (i % 7 === 0 ? -1 : 1));

/** Worker counters from its /metrics. */
async function inferCount(w: TestWorker): Promise<number> {
  const m = await rawRequest(w.port, { method: 'GET', target: '/metrics', headers: auth });
  return m.text.split('\n').filter((l) => l.startsWith('kernelgate_worker_requests_total{route="infer"')).reduce((a, l) => a + Number(l.split(' ').pop()), 0);
}

/** A peer that reads a whole request, then drops the connection (a worker dying mid-job), or never answers. */
function fakeDeadPeer(mode: 'drop' | 'hang'): Promise<{ url: string; requests: () => number; close: () => void }> {
  let requests = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    let buf = Buffer.alloc(0);
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const length = Number(/content-length: (\d+)/i.exec(buf.subarray(0, end).toString())?.[1] ?? 0);
      if (buf.length >= end + 4 + length) {
        if (buf.subarray(0, 5).toString() === 'POST ') requests++;
        buf = Buffer.alloc(0);
        if (mode === 'drop') s.destroy();
      }
    });
    s.on('error', () => undefined);
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      resolve({ url: `http://127.0.0.1:${port}`, requests: () => requests, close: () => { for (const s of sockets) s.destroy(); server.close(); } });
    }),
  );
}

describe('kernelgate worker and the remote runner', () => {
  const modelsDir = mkdtempSync(join(tmpdir(), 'kernelgate-worker-models-'));
  let w: TestWorker;
  let expected: Float32Array;
  const sets: BackendSet[] = [];
  const backends = (urls: string[], extra: Partial<ConstructorParameters<typeof BackendSet>[0]> = {}) => {
    const set = new BackendSet({ urls, token: TOKEN, timeoutMs: 20_000, connectTimeoutMs: 2000, healthIntervalMs: 60_000, ejectMs: 60_000, maxResponseBytes: 1 << 26, metrics: new Registry(), ...extra });
    sets.push(set);
    return set;
  };

  before(async () => {
    w = await startWorker({ token: TOKEN, config: `[inference]\nmodels_dir = ${JSON.stringify(modelsDir)}\nconcurrency = 1\nmax_queue = 0\n[worker]\nmax_body_bytes = 1048576\n` });
    // The local ONNX Runtime runner's answer for the same input: what every remote answer must equal.
    const local = await startWorkerRunner(ocrModelPaths().classifier, { providers: ['cpu'] });
    expected = (await local.run({ x: { data: clsInput(), dims: CLS_INPUT } }))[local.outputNames[0]!]!.data;
    await local.close();
  });
  after(async () => {
    for (const s of sets) s.close();
    await w?.stop();
    rmSync(modelsDir, { recursive: true, force: true });
  });

  it('answers the binary extension: JSON header of Inference-Header-Content-Length bytes, then the FP32 output', async () => {
    const req = encodeInferRequest({ id: '42', inputs: [{ name: 'x', datatype: 'FP32', shape: CLS_INPUT, data: clsInput() }], binaryOutput: true }, { binary: true });
    const body = concatEncoded(req);
    const res = await rawRequest(w.port, { method: 'POST', target: '/v2/models/ocr-cls/infer', headers: { ...auth, 'content-type': 'application/octet-stream', 'inference-header-content-length': String(req.headerLength) }, body });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.headers['content-type'], 'application/octet-stream');
    const hl = Number(res.headers['inference-header-content-length']);
    assert.equal(res.body.length, hl + 8, 'a [1, 2] FP32 output is 8 bytes after the JSON');
    assert.deepEqual(JSON.parse(res.body.subarray(0, hl).toString()), {
      model_name: 'ocr-cls',
      model_version: '1',
      id: '42',
      outputs: [{ name: 'softmax_0.tmp_0', shape: [1, 2], datatype: 'FP32', parameters: { binary_data_size: 8 } }],
    });
    assert.deepEqual([res.body.readFloatLE(hl), res.body.readFloatLE(hl + 4)], [...expected]);

    // JSON tensors in and out, as in the specification's JSON example: the same numbers.
    const jreq = concatEncoded(encodeInferRequest({ id: '42', inputs: [{ name: 'x', datatype: 'FP32', shape: CLS_INPUT, data: clsInput() }], outputs: [{ name: 'softmax_0.tmp_0' }] }, { binary: false }));
    const jres = await rawRequest(w.port, { method: 'POST', target: '/v2/models/ocr-cls/infer', headers: { ...auth, 'content-type': 'application/json' }, body: jreq });
    assert.equal(jres.status, 200, jres.text);
    assert.equal(jres.headers['inference-header-content-length'], undefined);
    assert.deepEqual(jres.json, { model_name: 'ocr-cls', model_version: '1', id: '42', outputs: [{ name: 'softmax_0.tmp_0', shape: [1, 2], datatype: 'FP32', data: [...expected] }] });
  });

  it('refuses malformed and mismatched bodies with 400 {"error"} and unknown models with 404', async () => {
    const post = (body: Buffer | string, headers: Record<string, string> = {}, model = 'ocr-cls') =>
      rawRequest(w.port, { method: 'POST', target: `/v2/models/${model}/infer`, headers: { ...auth, ...headers }, body });
    const ONE_BINARY = '{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":4}}]}';
    const specExample = '{"id":"42","inputs":[{"name":"input0","shape":[2,2],"datatype":"UINT32","data":[1,2,3,4]},{"name":"input1","shape":[3],"datatype":"BOOL","data":[true,false,true]}],"outputs":[{"name":"output0"}]}';
    const cases: Array<[Buffer | string, Record<string, string>, RegExp]> = [
      ['not json', {}, /not JSON/],
      [specExample, {}, /has no input "input0"/], // parsed in full, then refused for this model
      ['{"inputs":[{"name":"x","shape":[1,3,48,192],"datatype":"FP32","parameters":{"binary_data_size":8}}]}', { 'inference-header-content-length': '500' }, /exceeds the body/],
      ['{"inputs":[]}', {}, /must not be empty/],
      ['{"inputs":[{"name":"x","shape":[1,3,48,192],"datatype":"FP32","data":[1]}]}', {}, /elements/],
      ['{"inputs":[{"name":"x","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]}', {}, /has shape \[1, 3\]/],
      ['{"inputs":[{"name":"x","shape":[1],"datatype":"INT32","data":[1]}]}', {}, /must be FP32/],
      [Buffer.concat([Buffer.from(ONE_BINARY), Buffer.alloc(9)]), { 'inference-header-content-length': String(ONE_BINARY.length) }, /5 bytes after the last binary tensor/],
      ['{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}', { 'inference-header-content-length': '+5' }, /Inference-Header-Content-Length/],
    ];
    for (const [body, headers, why] of cases) {
      const res = await post(body, headers);
      assert.equal(res.status, 400, `${String(body).slice(0, 60)}: ${res.text}`);
      assert.equal(res.headers['content-type'], 'application/json');
      assert.match(res.json.error, why);
    }
    const unknown = await post('{}', {}, 'no-such-model');
    assert.equal(unknown.status, 404);
    assert.match(unknown.json.error, /unknown model/);
    const big = await rawRequest(w.port, { method: 'POST', target: '/v2/models/ocr-cls/infer', headers: auth, body: Buffer.alloc(1048577) }).catch(() => undefined);
    if (big) assert.equal(big.status, 413); // or the connection was closed while the body was still being sent
  });

  it('a full queue is 503 with Retry-After (max_queue = 0, one job at a time)', async () => {
    const body = concatEncoded(encodeInferRequest({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3, 256, 256], data: new Float32Array(3 * 256 * 256) }] }, { binary: true }));
    const hl = String(body.indexOf(Buffer.from('}]}')) + 3);
    const all = await Promise.all(Array.from({ length: 4 }, () => rawRequest(w.port, { method: 'POST', target: '/v2/models/ocr-det/infer', headers: { ...auth, 'inference-header-content-length': hl }, body })));
    const busy = all.filter((r) => r.status === 503);
    assert.ok(all.some((r) => r.status === 200), all.map((r) => r.status).join());
    assert.ok(busy.length > 0, all.map((r) => r.status).join());
    for (const r of busy) {
      assert.match(r.json.error, /busy/);
      assert.match(String(r.headers['retry-after']), /^\d+$/);
    }
  });

  it('requires the bearer token on everything but the health probes (constant-time compare)', async () => {
    assert.equal((await rawRequest(w.port, { method: 'GET', target: '/v2/health/live' })).status, 200);
    assert.equal((await rawRequest(w.port, { method: 'GET', target: '/v2/health/ready' })).status, 200);
    for (const target of ['/v2', '/v2/models/ocr-cls', '/v2/models/ocr-cls/ready', '/metrics']) {
      for (const headers of [{}, { authorization: `Bearer ${TOKEN.slice(0, -1)}x` }, { authorization: TOKEN }, { authorization: `bearer ${TOKEN}` }] as Record<string, string>[]) {
        const res = await rawRequest(w.port, { method: 'GET', target, headers });
        assert.equal(res.status, 401, `${target} ${JSON.stringify(headers)}`);
        assert.equal(res.headers['www-authenticate'], 'Bearer');
        assert.deepEqual(res.json, { error: 'a valid bearer token is required' });
      }
      assert.equal((await rawRequest(w.port, { method: 'GET', target, headers: auth })).status, 200, target);
    }
    const post = await rawRequest(w.port, { method: 'POST', target: '/v2/models/ocr-cls/infer', body: '{}' });
    assert.equal(post.status, 401);
    assert.equal(bearerMatches(`Bearer ${TOKEN}`, TOKEN), true);
    assert.equal(bearerMatches(`Bearer ${TOKEN} `, TOKEN), false);
    assert.equal(bearerMatches(`Bearer  ${TOKEN}`, TOKEN), false);
    assert.equal(bearerMatches(undefined, TOKEN), false);
  });

  it('refuses to listen off loopback without a token (before binding anything)', async () => {
    const port = await freePort();
    const proc = spawn(process.execPath, [BIN, 'worker', '--host', '0.0.0.0', '--port', String(port)], { env: { ...process.env, KERNELGATE_WORKER_TOKEN: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise((r) => proc.once('exit', r));
    assert.equal(code, 78);
    assert.match(stderr, /refusing to listen on 0\.0\.0\.0 without a token/);
    const short = spawn(process.execPath, [BIN, 'worker', '--port', String(port), '--token', 'short'], { stdio: ['ignore', 'pipe', 'pipe'] });
    assert.equal(await new Promise((r) => short.once('exit', r)), 78);
  });

  it('the remote runner gives the local runner numbers, in binary and in JSON tensors', async () => {
    for (const tensors of ['auto', 'json'] as TensorEncoding[]) {
      const runner = await KServeRunner.load('ocr-cls', { backends: backends([w.url]), tensors });
      assert.equal(runner.binary, tensors === 'auto', 'auto: the worker lists binary_tensor_data');
      assert.deepEqual(runner.inputNames, ['x']);
      assert.deepEqual(runner.outputShapes, [['?', 2]]);
      const out = await runner.run({ x: { data: clsInput(), dims: CLS_INPUT } });
      assert.deepEqual([...out['softmax_0.tmp_0']!.data], [...expected]);
      await assert.rejects(runner.run({ x: { data: new Float32Array(3), dims: [1, 3] } }), (e: ApiError) => e.status === 503 && /does not take input x \[1, 3\]/.test(e.message));
    }
    await assert.rejects(KServeRunner.load('no-such-model', { backends: backends([w.url]), tensors: 'auto' }), (e: ApiError) => e.status === 503 && /not ready/.test(e.message));
  });

  it('retries on another backend only a job the first never received', async () => {
    // Refused: never received, so it goes to the worker; the refusing backend is ejected.
    const closed = `http://127.0.0.1:${await freePort()}`;
    const refused = backends([closed, w.url]);
    const before = await inferCount(w);
    const runner = await KServeRunner.load('ocr-cls', { backends: refused, tensors: 'binary' });
    const out = await runner.run({ x: { data: clsInput(), dims: CLS_INPUT } });
    assert.deepEqual([...out['softmax_0.tmp_0']!.data], [...expected]);
    assert.equal(refused.backends[0]!.available(Date.now()), false, 'the refusing backend is out');
    assert.equal(await inferCount(w), before + 1, 'the job ran once');

    // Dropped after the whole request was written, or never answered: it may have run there, so it is
    // not sent again (503 / 504), and the backend is ejected; the next job goes to the worker.
    const drop = await fakeDeadPeer('drop');
    const hang = await fakeDeadPeer('hang');
    const req = encodeInferRequest({ inputs: [{ name: 'x', datatype: 'FP32', shape: CLS_INPUT, data: clsInput() }], binaryOutput: true }, { binary: true });
    const job = { method: 'POST' as const, path: '/v2/models/ocr-cls/infer', headers: { 'inference-header-content-length': req.headerLength! }, chunks: req.chunks };
    try {
      for (const [peer, status] of [[drop, 503], [hang, 504]] as const) {
        const count = await inferCount(w);
        const set = backends([peer.url, w.url], { timeoutMs: 1000 });
        await assert.rejects(set.exchange('ocr-cls', job), (e: ApiError) => e instanceof ApiError && e.status === status);
        assert.equal(peer.requests(), 1, 'the peer had the whole request');
        assert.equal(await inferCount(w), count, 'and the job was not sent again');
        assert.equal(set.backends[0]!.available(Date.now()), false, 'the failing backend is ejected');
        const next = await set.exchange('ocr-cls', job);
        assert.equal(next.backend, set.backends[1]);
        assert.equal(next.res.status, 200);
        assert.equal(await inferCount(w), count + 1);
      }
    } finally {
      drop.close();
      hang.close();
    }
  });

  it('exports a Triton model repository under the same names', async () => {
    const cfg = configFromObject({ inference: { models_dir: modelsDir, providers: ['cpu'] } });
    const models = new WorkerModels(cfg.inference, pino({ level: 'silent' }));
    const cls = readFileSync(ocrModelPaths().classifier);
    models.store.save('acme.com', parseModelConfig({ name: 'textdir', task: 'classify', input: { width: 192, height: 48 }, labels: ['0', '180'] }), cls);
    const dir = join(modelsDir, 'repository');
    const names = exportRepository(models, dir);
    await models.close();
    assert.deepEqual(names, ['ocr-det', 'ocr-cls', 'ocr-rec', 'face-front', 'face-back', 'acme%2Ecom.textdir']);
    assert.equal(
      readFileSync(join(dir, 'ocr-cls', 'config.pbtxt'), 'utf8'),
      [
        'name: "ocr-cls"',
        'platform: "onnxruntime_onnx"',
        'max_batch_size: 0',
        'input [\n  {\n    name: "x"\n    data_type: TYPE_FP32\n    dims: [ -1, 3, -1, -1 ]\n  }\n]',
        'output [\n  {\n    name: "softmax_0.tmp_0"\n    data_type: TYPE_FP32\n    dims: [ -1, 2 ]\n  }\n]',
        '',
      ].join('\n'),
    );
    const rec = readFileSync(join(dir, 'ocr-rec', 'config.pbtxt'), 'utf8');
    assert.match(rec, /dims: \[ -1, -1, 6625 \]/);
    // The recognizer with its reduced outputs, listed for Triton as the worker lists them.
    const watch = DEFAULT_CTC_OPTIONS(await loadDictionary(ocrModelPaths().dictionary)).spaceIndex;
    assert.ok(
      rec.endsWith(
        [
          '    dims: [ -1, -1, 6625 ]\n  },',
          '  {\n    name: "kg_argmax"\n    data_type: TYPE_INT64\n    dims: [ -1, -1 ]\n  },',
          '  {\n    name: "kg_maxprob"\n    data_type: TYPE_FP32\n    dims: [ -1, -1 ]\n  },',
          `  {\n    name: "kg_watch_${watch}"\n    data_type: TYPE_FP32\n    dims: [ -1, -1 ]\n  }`,
          ']\n',
        ].join('\n'),
      ),
      rec,
    );
    assert.ok(readFileSync(join(dir, 'acme%2Ecom.textdir', '1', 'model.onnx')).equals(cls));
    assert.ok(readFileSync(join(dir, 'ocr-det', '1', 'model.onnx')).equals(readFileSync(ocrModelPaths().detection)));
    // The same declared types and shapes as the worker serves from a loaded session.
    for (const name of ['ocr-det', 'ocr-cls', 'ocr-rec']) {
      const served = await rawRequest(w.port, { method: 'GET', target: `/v2/models/${name}`, headers: auth });
      assert.deepEqual(fileMetadata(name, readFileSync(join(dir, name, '1', 'model.onnx'))), served.json, name);
    }
    assert.throws(() => exportRepository(models, dir), /not empty/);
  });

  it('the recognizer: only its reduced [N, T] outputs cross, equal to the local arg-max; without them, the full output', async () => {
    const paths = ocrModelPaths();
    const watch = DEFAULT_CTC_OPTIONS(await loadDictionary(paths.dictionary)).spaceIndex;
    const crops = await Promise.all(['Invoice 2026 total 431.50', 'Rate limits live in Redis'].map((t, i) => lineCrop(t, 30 + 8 * i)));
    const input = () => ({ x: cropBatch(crops) });
    const local = await startWorkerRunner(paths.recognition, { providers: ['cpu'] });
    const want = await local.runArgmax(input(), watch);
    await local.close();

    // The same recognizer uploaded as a plain model: served as it is (as by a Triton with the original file).
    const store = new WorkerModels(configFromObject({ inference: { models_dir: modelsDir } }).inference, pino({ level: 'silent' }));
    store.store.save('acme.com', parseModelConfig({ name: 'plainrec', task: 'classify', input: { width: 320, height: 48 }, labels: ['x'] }), readFileSync(paths.recognition));
    await store.close();

    for (const [model, reduced] of [['ocr-rec', true], ['acme%2Ecom.plainrec', false]] as const) {
      const set = backends([w.url]);
      const answered: number[] = [];
      const exchange = set.exchange.bind(set);
      set.exchange = async (...args) => {
        const r = await exchange(...args);
        if (args[1].method === 'POST') answered.push(r.res.body.length);
        return r;
      };
      const runner = await KServeRunner.load(model, { backends: set, tensors: 'binary' });
      assert.equal(runner.outputNames.includes(`kg_watch_${watch}`), reduced, runner.outputNames.join());
      const got = await runner.runArgmax(input(), watch);
      assert.deepEqual(got, want, model);
      const rows = want.batch * want.steps;
      if (reduced) assert.ok(answered[0]! < rows * 16 + 1000, `${answered[0]} bytes for ${rows} steps`);
      else assert.ok(answered[0]! >= rows * 6625 * 4, `${answered[0]} bytes: the whole output`);
      // Another watched class than the model's: the full output, reduced here, the same numbers.
      if (reduced) assert.deepEqual((await runner.runArgmax(input(), 5)).index, want.index);
    }
  });

  it('takes inputs and answers outputs in the datatypes its metadata declares, exact (INT64 past 2^24, BOOL, UINT8, FP16, FP64), binary and JSON', async () => {
    const store = new WorkerModels(configFromObject({ inference: { models_dir: modelsDir } }).inference, pino({ level: 'silent' }));
    const saved = store.store.save('acme.com', parseModelConfig({ name: 'typed', task: 'classify', input: { width: 4, height: 4 }, labels: ['x'] }), typedTensorsModel());
    await store.close();
    const model = 'acme%2Ecom.typed';
    const meta = (await rawRequest(w.port, { method: 'GET', target: modelPath(model), headers: auth })).json;
    assert.deepEqual(meta.inputs, [
      { name: 'n', datatype: 'INT64', shape: [-1] },
      { name: 'offset', datatype: 'INT64', shape: [1] },
      { name: 'b', datatype: 'BOOL', shape: [-1] },
      { name: 'h', datatype: 'FP16', shape: [-1] },
    ]);
    const declared = (meta.outputs as Array<{ name: string; datatype: string }>).map((o) => [o.name, o.datatype]);
    assert.deepEqual(declared, [['big', 'INT64'], ['flag', 'BOOL'], ['small', 'UINT8'], ['half', 'FP16'], ['hecho', 'FP16'], ['wide', 'FP64']]);

    // 2^40 + 1 is no float32 (it would arrive as 2^40): exact only if the INT64 input stays 64-bit.
    const OFFSET = 2n ** 40n + 1n;
    const inputs: Tensor[] = [
      { name: 'n', datatype: 'INT64', shape: [3], data: BigInt64Array.from([3n, 5n, 200n]) },
      { name: 'offset', datatype: 'INT64', shape: [1], data: BigInt64Array.from([OFFSET]) },
      { name: 'b', datatype: 'BOOL', shape: [3], data: Uint8Array.from([1, 0, 1]) },
      { name: 'h', datatype: 'FP16', shape: [3], data: Uint16Array.from([0x3c00, 0xc000, 0x7bff]) }, // 1, -2, 65504
    ];
    const big = [OFFSET + 3n, OFFSET + 5n, OFFSET + 200n];
    const want: Record<string, unknown[]> = {
      big,
      flag: [1, 1, 0], // [true, false, true] xor n > 4
      small: [3, 5, 200],
      half: [0x4200, 0x4500, 0x5a40], // 3, 5, 200 as half-precision bits
      hecho: [0x3c00, 0xc000, 0x7bff],
      wide: big.map(Number),
    };
    const post = (req: ReturnType<typeof encodeInferRequest>) =>
      rawRequest(w.port, {
        method: 'POST',
        target: `${modelPath(model)}/infer`,
        headers: { ...auth, 'content-type': req.contentType, ...(req.headerLength !== undefined ? { 'inference-header-content-length': String(req.headerLength) } : {}) },
        body: concatEncoded(req),
      });
    for (const binary of [true, false]) {
      const res = await post(encodeInferRequest({ id: 't', inputs, binaryOutput: binary }, { binary }));
      assert.equal(res.status, 200, res.text);
      const hl = res.headers['inference-header-content-length'] as string | undefined;
      assert.equal(hl !== undefined, binary);
      const decoded = decodeInferResponse(res.body, hl === undefined ? undefined : Number(hl));
      assert.deepEqual(decoded.outputs.map((o) => [o.name, o.datatype]), declared, 'every output in the datatype the metadata declares');
      for (const o of decoded.outputs) assert.deepEqual([...(o.data as Uint8Array)], want[o.name], `${o.name} (${binary ? 'binary' : 'JSON'})`);
      if (binary) {
        // The extension's layout: INT64 8 bytes, BOOL 1 byte, UINT8 1 byte, FP16 its 2 raw bytes, FP64 8 bytes.
        const header = JSON.parse(res.body.subarray(0, Number(hl)).toString()) as { outputs: Array<{ name: string; parameters: { binary_data_size: number } }> };
        assert.deepEqual(header.outputs.map((o) => o.parameters.binary_data_size), [24, 3, 3, 6, 6, 24]);
        assert.equal(res.body.readBigInt64LE(Number(hl)), OFFSET + 3n);
        assert.deepEqual([...res.body.subarray(Number(hl) + 24, Number(hl) + 27)], [1, 1, 0]);
        assert.equal(res.body.readUInt16LE(Number(hl) + 30), 0x4200);
      } else {
        // JSON: INT64 as exact numbers, BOOL as booleans, FP16 as the numbers its bits stand for.
        const data = Object.fromEntries((res.json.outputs as Array<{ name: string; data: unknown[] }>).map((o) => [o.name, o.data]));
        assert.deepEqual(data, {
          big: [1099511627780, 1099511627782, 1099511627977],
          flag: [true, true, false],
          small: [3, 5, 200],
          half: [3, 5, 200],
          hecho: [1, -2, 65504],
          wide: [1099511627780, 1099511627782, 1099511627977],
        });
      }
    }

    // The built-in models' path (a worker thread, not the uploads' child process) passes the same values.
    const local = await startWorkerRunner(saved.path, { providers: ['cpu'] });
    const feeds = Object.fromEntries(inputs.map((t) => [t.name, { type: { INT64: 'int64', BOOL: 'bool', FP16: 'float16' }[t.datatype as 'INT64']!, data: (t.data as Uint8Array).slice(), dims: t.shape }]));
    const raw = await local.runRaw(feeds, { outputs: local.outputNames });
    await local.close();
    for (const [name, values] of Object.entries(want)) assert.deepEqual([...(raw[name]!.data as Uint8Array)], values, name);

    // A datatype other than the declared one, or bytes that do not fit it: 400 with why.
    const wrong: Array<[Tensor[], RegExp]> = [
      [[{ ...inputs[0]!, datatype: 'FP32', data: Float32Array.from([3, 5, 200]) }, ...inputs.slice(1)], /input n must be INT64, not FP32/],
      [[...inputs.slice(0, 2), { ...inputs[2]!, datatype: 'UINT8' }, inputs[3]!], /input b must be BOOL, not UINT8/],
      [[...inputs.slice(0, 3), { ...inputs[3]!, datatype: 'FP32', data: Float32Array.from([1, -2, 65504]) }], /input h must be FP16, not FP32/],
      [[{ ...inputs[0]!, shape: [1, 3] }, ...inputs.slice(1)], /input n has shape \[1, 3\]; the model takes \[-1\]/],
    ];
    for (const binary of [true, false]) {
      for (const [list, why] of wrong) {
        const res = await post(encodeInferRequest({ inputs: list }, { binary }));
        assert.equal(res.status, 400, res.text);
        assert.match(res.json.error, why);
      }
    }
    const short = '{"inputs":[{"name":"n","shape":[3],"datatype":"INT64","parameters":{"binary_data_size":12}}]}';
    const res = await rawRequest(w.port, { method: 'POST', target: `${modelPath(model)}/infer`, headers: { ...auth, 'inference-header-content-length': String(short.length) }, body: Buffer.concat([Buffer.from(short), Buffer.alloc(12)]) });
    assert.equal(res.status, 400);
    assert.match(res.json.error, /INT64 tensor of 3 elements needs 24 bytes, got 12/);
  });
});

