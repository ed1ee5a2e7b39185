/**
 * Uploads streamed to disk (README "Upload limits and spooling"): on the upload routes a multipart or zip body
 * goes to a private spool file within server.upload_limit_bytes, not into memory within body_limit_bytes, and
 * every spool file is gone when the request ends, however it ends. Real gateway processes, real ONNX models.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { signRequest } from '../src/signing/sign-request.js';
import { multipartBody } from './helpers/deepstack.js';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ADMIN, ALICE, BIN, startGateway, writeKeypairWithApiKey, type TestGateway } from './helpers/gateway.js';
import { heavyClassifier } from './helpers/onnx.js';
import { assertProblem } from './helpers/problems.js';

const MiB = 1024 * 1024;
const config = (name: string) => ({ name, task: 'classify', input: { width: 32, height: 32 }, labels: ['cold', 'warm'], top_k: 2 });

/** The gateway's spool folder (kernelgate-spools-<uid>/<pid>-<random> under its TMPDIR) and what is in it. */
function spoolOf(tmp: string): string {
  const parent = join(tmp, `kernelgate-spools-${process.getuid!()}`);
  const dirs = readdirSync(parent).filter((d) => !d.endsWith('.owner'));
  assert.equal(dirs.length, 1, `one spool folder in ${parent}: ${dirs.join(', ')}`);
  return join(parent, dirs[0]!);
}

async function waitFor(what: string, check: () => boolean, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('uploads streamed to disk', () => {
  let gw: TestGateway;
  let tmp: string;
  let spool: string;
  let keypairDir: string;
  let adminKey: string;
  let png: Buffer;
  const model3 = heavyClassifier(32, 32, 3 * MiB + 12345);
  const files = () => readdirSync(spool);

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'kernelgate-upload-tmp-'));
    keypairDir = mkdtempSync(join(tmpdir(), 'kernelgate-upload-keys-'));
    adminKey = writeKeypairWithApiKey(keypairDir, ADMIN);
    writeKeypairWithApiKey(keypairDir, ALICE);
    gw = await startGateway({
      keypairs: [],
      keypairDir,
      env: { TMPDIR: tmp },
      config: `[server]\nbody_limit_bytes = ${MiB}\nupload_limit_bytes = ${8 * MiB}\n[auth]\nschemes = ["backendai", "apikey"]\n`,
    });
    spool = spoolOf(tmp);
    png = await sharp({ create: { width: 40, height: 30, channels: 3, background: { r: 200, g: 60, b: 20 } } }).png().toBuffer();
  });
  after(async () => {
    await gw.stop();
    rmSync(tmp, { recursive: true, force: true });
    rmSync(keypairDir, { recursive: true, force: true });
  });

  const runs = async (model: string, session: string) => {
    assert.equal((await gw.signed({ method: 'POST', target: '/session', as: ALICE, body: JSON.stringify({ name: session, image: model }) })).status, 201);
    const res = await gw.signed({ method: 'POST', target: `/session/${session}/infer`, as: ALICE, body: png, contentType: 'image/png' });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json.predictions.map((p: { label: string }) => p.label), ['warm', 'cold']);
  };
  const modelForm = (name: string, onnx: Buffer, extra: Array<{ name: string; value: string }> = []) =>
    multipartBody([...extra, { name: 'model', file: onnx, filename: 'model.onnx' }, { name: 'config', file: Buffer.from(JSON.stringify(config(name))), filename: 'config.json' }]);

  it('keeps its spool folder private (0700)', () => {
    assert.equal(statSync(spool).mode & 0o777, 0o700);
    assert.deepEqual(files(), []);
  });

  it('a 3 MiB model uploads through multipart POST /models with a 1 MiB body limit, then runs', async () => {
    // The same model as base64 JSON is over the body limit: the in-memory route is unchanged.
    const asJson = await gw.signed({ method: 'POST', target: '/models', as: ADMIN, body: JSON.stringify({ ...config('big'), model: model3.toString('base64') }) });
    assertProblem(asJson, 413, 'request-too-large');
    const form = modelForm('big', model3);
    const res = await gw.signed({ method: 'POST', target: '/models', as: ADMIN, body: form.body, contentType: form.contentType });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.json.bytes, model3.length);
    assert.equal(res.json.sha256, createHash('sha256').update(model3).digest('hex'));
    await runs('big', 's-big');
    assert.deepEqual(files(), [], 'no spool file is left');
  });

  it('a 3 MiB model uploads through /v1/vision/addmodel with admin_key read from the spooled form, then runs', async () => {
    const form = modelForm('big2', model3, [{ name: 'admin_key', value: adminKey }, { name: 'name', value: 'big2' }]);
    const res = await gw.request({ method: 'POST', target: '/v1/vision/addmodel', headers: { 'content-type': form.contentType }, body: form.body });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.message, 'model registered');
    await runs('big2', 's-big2');
    // A wrong admin_key in a spooled form: the same 401 as in memory, and nothing kept.
    const wrong = modelForm('big3', model3, [{ name: 'admin_key', value: `kg_${'A'.repeat(32)}` }]);
    const refused = await gw.request({ method: 'POST', target: '/v1/vision/addmodel', headers: { 'content-type': wrong.contentType }, body: wrong.body });
    assert.equal(refused.status, 401, refused.text);
    assert.deepEqual(files(), []);
  });

  it('`kernelgate model upload` sends a multipart form: a model over the body limit uploads from the CLI', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kernelgate-upload-cli-'));
    try {
      writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config('fromcli'), domain: 'default' }));
      writeFileSync(join(dir, 'model.onnx'), model3);
      const env = { ...process.env, KERNELGATE_ENDPOINT: gw.url, KERNELGATE_ACCESS_KEY: ADMIN.accessKey, KERNELGATE_SECRET_KEY: ADMIN.secretKey };
      const out = await promisify(execFile)(process.execPath, [BIN, 'model', 'upload', '--config', join(dir, 'config.json'), '--onnx', join(dir, 'model.onnx')], { env });
      const uploaded = JSON.parse(out.stdout);
      assert.equal(uploaded.name, 'fromcli');
      assert.equal(uploaded.bytes, model3.length);
      assert.equal(uploaded.domain, 'default');
      assert.deepEqual(files(), []);
      assert.equal((await gw.signed({ method: 'DELETE', target: '/models/fromcli', as: ADMIN })).status, 200);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a body over upload_limit_bytes gets 413 (announced or streamed) with Connection: close, and leaves no spool file', async () => {
    const big = heavyClassifier(32, 32, 9 * MiB);
    const form = modelForm('huge', big);
    const announced = await gw.signed({ method: 'POST', target: '/models', as: ADMIN, body: form.body, contentType: form.contentType });
    assertProblem(announced, 413, 'request-too-large');
    assert.match(announced.json.detail, /server\.upload_limit_bytes/);
    assert.equal(announced.headers.connection, 'close');
    // Chunked (no Content-Length): the limit is enforced while the body streams to disk.
    const signed = signRequest({ method: 'POST', target: '/models', host: `127.0.0.1:${gw.port}`, accessKey: ADMIN.accessKey, secretKey: ADMIN.secretKey, body: form.body, contentType: form.contentType });
    const streamed = await chunkedRequest(gw.port, '/models', signed.headers, form.body);
    assert.match(streamed.head, /^HTTP\/1\.1 413 /);
    assert.match(streamed.head, /\r\nconnection: close\r\n/i);
    assert.match(streamed.head, /application\/problem\+json/);
    await waitFor('the spool file to go', () => files().length === 0);
    const list = await gw.signed({ method: 'GET', target: '/models', as: ADMIN });
    assert.ok(!list.json.models.some((m: { name: string }) => m.name === 'huge'));
  });

  it('a client that aborts mid-body leaves no spool file (the file is 0600 while it exists)', async () => {
    const form = modelForm('gone', model3);
    const signed = signRequest({ method: 'POST', target: '/models', host: `127.0.0.1:${gw.port}`, accessKey: ADMIN.accessKey, secretKey: ADMIN.secretKey, body: form.body, contentType: form.contentType });
    const socket = connect(gw.port, '127.0.0.1');
    await new Promise((r) => socket.once('connect', r));
    const head = [`POST /models HTTP/1.1`, `Host: 127.0.0.1:${gw.port}`, ...Object.entries(signed.headers).map(([k, v]) => `${k}: ${v}`), `Content-Length: ${form.body.length}`, '', ''].join('\r\n');
    socket.write(head);
    socket.write(form.body.subarray(0, Math.floor(form.body.length / 2)));
    await waitFor('a spool file', () => files().length === 1);
    assert.equal(statSync(join(spool, files()[0]!)).mode & 0o777, 0o600);
    socket.destroy();
    await waitFor('the spool file to go', () => files().length === 0);
    const list = await gw.signed({ method: 'GET', target: '/models', as: ADMIN });
    assert.ok(!list.json.models.some((m: { name: string }) => m.name === 'gone'));
  });

  it('a tampered byte in a streamed body gets 401: the signature covers the spooled bytes; no file is left', async () => {
    const form = modelForm('tampered', model3);
    const signed = signRequest({ method: 'POST', target: '/models', host: `127.0.0.1:${gw.port}`, accessKey: ADMIN.accessKey, secretKey: ADMIN.secretKey, body: form.body, contentType: form.contentType });
    const body = Buffer.from(form.body);
    const at = body.indexOf(model3.subarray(0, 64)) + 2 * MiB;
    body[at] = body[at]! ^ 0x01;
    const res = await gw.request({ method: 'POST', target: '/models', headers: signed.headers, body });
    assertProblem(res, 401, 'auth-failed');
    assert.deepEqual(files(), []);
    const list = await gw.signed({ method: 'GET', target: '/models', as: ADMIN });
    assert.ok(!list.json.models.some((m: { name: string }) => m.name === 'tampered'));
  });

  it('restores a zip bigger than body_limit_bytes (POST /models/restore and /v1/restore), all of it, from the spool', async () => {
    const backup = await gw.signed({ method: 'GET', target: '/models/backup', as: ADMIN, headers: { accept: 'application/zip' } });
    assert.equal(backup.status, 200);
    assert.ok(backup.body.length > 2 * MiB, `the zip (${backup.body.length} bytes) is over the 1 MiB body limit`);
    for (const name of ['big', 'big2']) assert.equal((await gw.signed({ method: 'DELETE', target: `/models/${name}`, as: ADMIN })).status, 200);
    const restored = await gw.signed({ method: 'POST', target: '/models/restore', as: ADMIN, body: backup.body, contentType: 'application/zip' });
    assert.equal(restored.status, 200, restored.text);
    assert.deepEqual(restored.json.restored.sort(), ['big', 'big2']);
    await runs('big', 's-restored');
    assert.equal((await gw.signed({ method: 'DELETE', target: '/models/big', as: ADMIN })).status, 200);
    const form = multipartBody([{ name: 'admin_key', value: adminKey }, { name: 'file', file: backup.body, filename: 'Backup.backup' }]);
    const v1 = await gw.request({ method: 'POST', target: '/v1/restore', headers: { 'content-type': form.contentType }, body: form.body });
    assert.equal(v1.status, 200, v1.text);
    assert.equal(v1.json.success, true);
    await runs('big', 's-restored-v1');
    // A hostile (truncated) zip from the spool is refused whole, as from memory.
    const cut = await gw.signed({ method: 'POST', target: '/models/restore', as: ADMIN, body: backup.body.subarray(0, backup.body.length - 100), contentType: 'application/zip' });
    assertProblem(cut, 400, 'invalid-api-params');
    assert.deepEqual(files(), []);
  });
});

describe('uploads streamed to disk: memory, sign methods, body_hash = "backendai"', () => {
  let gw: TestGateway;
  let tmp: string;

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'kernelgate-upload-mem-'));
    gw = await startGateway({ env: { TMPDIR: tmp }, config: `[server]\nupload_limit_bytes = ${128 * MiB}\n[auth]\nbody_hash = "backendai"\n` });
  });
  after(async () => {
    await gw.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('a streamed body is hashed with the sign method\'s algorithm (sha512), and the SDKs\' empty-body hash is accepted', async () => {
    const form = multipartBody([{ name: 'model', file: heavyClassifier(32, 32, 2 * MiB), filename: 'model.onnx' }, { name: 'config', file: Buffer.from(JSON.stringify(config('signed512'))), filename: 'config.json' }]);
    const sha512 = await gw.signed({ method: 'POST', target: '/models', as: ADMIN, body: form.body, contentType: form.contentType, sign: { algorithm: 'sha512' } });
    assert.equal(sha512.status, 201, sha512.text);
    const tampered = Buffer.from(form.body);
    tampered[tampered.length - 200] ^= 1;
    const headers = signRequest({ method: 'POST', target: '/models', host: `127.0.0.1:${gw.port}`, accessKey: ADMIN.accessKey, secretKey: ADMIN.secretKey, body: form.body, contentType: form.contentType, algorithm: 'sha512' }).headers;
    assertProblem(await gw.request({ method: 'POST', target: '/models', headers, body: tampered }), 401, 'auth-failed');
    // The official SDKs sign the empty-body hash: accepted in backendai mode without the body being hashed for it.
    const sdk = await gw.signed({ method: 'POST', target: '/models', as: ADMIN, body: form.body, contentType: form.contentType, sign: { bodyHashMode: 'backendai' } });
    assert.equal(sdk.status, 200, sdk.text);
    assert.equal(sdk.json.replaced, true);
    assert.deepEqual(readdirSync(spoolOf(tmp)), []);
  });

  it("the gateway's resident memory does not grow by the size of a 64 MiB upload while it streams", async () => {
    const big = heavyClassifier(32, 32, 64 * MiB);
    const form = multipartBody([{ name: 'model', file: big, filename: 'model.onnx' }, { name: 'config', file: Buffer.from(JSON.stringify(config('sixtyfour'))), filename: 'config.json' }]);
    const pid = gw.proc.pid!;
    const rss = () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'latin1'))![1]) * 1024;
    // Warm the route (and its modules) with a small upload first, so that the measure is of the upload alone.
    const small = multipartBody([{ name: 'model', file: heavyClassifier(32, 32, 1000), filename: 'model.onnx' }, { name: 'config', file: Buffer.from(JSON.stringify(config('warmup'))), filename: 'config.json' }]);
    assert.equal((await gw.signed({ method: 'POST', target: '/models', as: ADMIN, body: small.body, contentType: small.contentType })).status, 201);
    const before = rss();
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, rss())), 5);
    const started = Date.now();
    const res = await gw.signed({ method: 'POST', target: '/models', as: ADMIN, body: form.body, contentType: form.contentType, timeoutMs: 60_000 });
    clearInterval(sampler);
    peak = Math.max(peak, rss());
    assert.equal(res.status, 201, res.text);
    assert.equal(res.json.bytes, big.length);
    const grew = peak - before;
    console.log(`64 MiB upload: gateway RSS ${Math.round(before / MiB)} MiB -> peak ${Math.round(peak / MiB)} MiB (+${Math.round(grew / MiB)} MiB), ${Date.now() - started} ms`);
    // Held in memory, the body alone would be 64 MiB (and the form parser's copy another 64). Streamed, what
    // grows is chunks not yet collected: generously bounded below the upload's size.
    assert.ok(grew < 56 * MiB, `RSS grew by ${Math.round(grew / MiB)} MiB during a 64 MiB upload`);
    assert.deepEqual(readdirSync(spoolOf(tmp)), []);
  });
});

/** A request sent with Transfer-Encoding: chunked; resolves with the response head once it arrives. */
function chunkedRequest(port: number, target: string, headers: Record<string, string>, body: Buffer): Promise<{ head: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let received = '';
    socket.on('error', () => undefined);
    socket.on('data', (d: Buffer) => {
      received += d.toString('latin1');
      const end = received.indexOf('\r\n\r\n');
      if (end !== -1) {
        resolve({ head: received.slice(0, end + 2) });
        socket.destroy();
      }
    });
    socket.on('close', () => reject(new Error(`closed without an answer: ${received.slice(0, 200)}`)));
    socket.on('connect', async () => {
      const fields = Object.entries(headers).filter(([k]) => k.toLowerCase() !== 'content-length');
      socket.write([`POST ${target} HTTP/1.1`, `Host: 127.0.0.1:${port}`, ...fields.map(([k, v]) => `${k}: ${v}`), 'Transfer-Encoding: chunked', '', ''].join('\r\n'));
      for (let i = 0; i < body.length && !socket.destroyed; i += 256 * 1024) {
        const chunk = body.subarray(i, i + 256 * 1024);
        socket.write(`${chunk.length.toString(16)}\r\n`);
        socket.write(chunk);
        if (!socket.write('\r\n')) await new Promise((r) => socket.once('drain', r).once('close', r));
      }
      if (!socket.destroyed) socket.write('0\r\n\r\n');
    });
  });
}
