/**
 * Issue 7 hardening of custom models (items 2, 3, 6, 14): replacing or deleting a model during a run,
 * decoding inside the queue (memory bounded by the queue), hostile ONNX uploads, and per-tenant fairness.
 * Models are real ONNX files written by hand (test/helpers/onnx.ts) or PaddleOCR's direction classifier.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { ocrModelPaths } from '../src/inference/ocr/index.js';
import { ADMIN, ALICE, BOB, ROOT, startGateway, type TestGateway, type TestKeypair } from './helpers/gateway.js';
import { constantOfShapeModel, externalDataModel, loopForeverModel, loopOnInputModel, tinyClassifier } from './helpers/onnx.js';
import { assertProblem } from './helpers/problems.js';

const json = (v: unknown) => JSON.stringify(v);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const H = 8, W = 8;
const config = (name: string) => ({ name, task: 'classify', input: { width: W, height: H }, labels: ['a', 'b'], top_k: 2 });

/** Resident memory of a process, bytes (Linux). */
export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
  return m ? Number(m[1]) * 1024 : 0;
}

/** Child processes of `pid` (Linux). */
function children(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'latin1');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

async function until(what: string, check: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) assert.fail(`timed out waiting for: ${what}`);
    await sleep(50);
  }
}

const upload = (gw: TestGateway, name: string, onnx: Buffer, as: TestKeypair = ADMIN) =>
  gw.signed({ method: 'POST', target: '/models', as, body: json({ ...config(name), model: onnx.toString('base64') }), timeoutMs: 60_000 });

async function session(gw: TestGateway, as: TestKeypair, name: string, image: string): Promise<void> {
  const res = await gw.signed({ method: 'POST', target: '/session', as, body: json({ name, image }) });
  assert.ok(res.status === 201 || res.status === 200, res.text);
}

const infer = (gw: TestGateway, as: TestKeypair, name: string, body: Buffer, timeoutMs = 60_000) =>
  gw.signed({ method: 'POST', target: `/session/${name}/infer`, as, body, contentType: 'image/png', timeoutMs });

describe('custom models under stress', () => {
  let white: Buffer;
  before(async () => {
    white = await sharp({ create: { width: W, height: H, channels: 3, background: '#ffffff' } }).png().toBuffer();
  });

  describe('replace and delete during a run (item 2), fairness between tenants (item 14)', () => {
    let gw: TestGateway;
    before(async () => {
      gw = await startGateway({ config: '[inference]\nconcurrency = 1\nmax_queue = 4\ntimeout_ms = 60000\n' });
    });
    after(() => gw.stop());

    it('keeps serving when a model is replaced and then deleted while jobs run on it; the old session is released after them', async () => {
      // ~0.5-1 s per run on a white image (a Loop of 3·8·8 × 3000 iterations).
      assert.equal((await upload(gw, 'slow', loopOnInputModel(H, W, 3000))).status, 201);
      await session(gw, ALICE, 'slow', 'slow');
      const running = [1, 2, 3].map(() => infer(gw, ALICE, 'slow', white));
      await sleep(400); // the first job is running, the others wait behind it
      const replaced = await upload(gw, 'slow', loopOnInputModel(H, W, 3001));
      assert.equal(replaced.status, 200, replaced.text);
      const deleted = await gw.signed({ method: 'DELETE', target: '/models/slow', as: ADMIN });
      assert.equal(deleted.status, 200, deleted.text);
      const results = await Promise.all(running);
      for (const r of results) assert.equal(r.status, 200, `jobs already in flight finish on the old session: ${r.text}`);
      assert.equal(gw.proc.exitCode, null, 'the gateway is alive');
      // Every model process is released once its last job is over.
      await until('no model process is left', () => children(gw.proc.pid!).length === 0);
      assertProblem(await infer(gw, ALICE, 'slow', white), 404, 'model-not-found');
      assert.equal((await upload(gw, 'slow', loopOnInputModel(H, W, 10))).status, 201);
      assert.equal((await infer(gw, ALICE, 'slow', white)).status, 200, 'later requests work');
    });

    it('serves a quiet tenant while a noisy one floods the same model; the noisy one gets 503 + Retry-After', async () => {
      assert.equal((await upload(gw, 'shared', loopOnInputModel(H, W, 2000))).status, 201);
      await session(gw, BOB, 'noisy', 'shared');
      await session(gw, ALICE, 'quiet', 'shared');
      const flood = Array.from({ length: 8 }, () => infer(gw, BOB, 'noisy', white));
      await sleep(200);
      const quiet = await infer(gw, ALICE, 'quiet', white);
      assert.equal(quiet.status, 200, `the quiet tenant is served: ${quiet.text}`);
      const noisy = await Promise.all(flood);
      const refused = noisy.filter((r) => r.status === 503);
      assert.ok(refused.length > 0, 'the noisy tenant is throttled');
      for (const r of refused) assert.ok(Number(r.headers['retry-after']) >= 1, 'with Retry-After');
      assert.ok(noisy.every((r) => r.status === 200 || r.status === 503), noisy.map((r) => r.status).join());
    });
  });

  describe('fail fast (item 5)', () => {
    let gw: TestGateway;
    before(async () => {
      gw = await startGateway({ config: '[inference]\nconcurrency = 1\nmax_queue = 16\ntimeout_ms = 4000\n' });
    });
    after(() => gw.stop());

    it('refuses at once with 503 + Retry-After a job whose wait cannot end within the deadline', async () => {
      assert.equal((await upload(gw, 'second', loopOnInputModel(H, W, 5000))).status, 201); // ~1 s a run
      await session(gw, ALICE, 'a', 'second');
      await session(gw, BOB, 'b', 'second');
      assert.equal((await infer(gw, ALICE, 'a', white)).status, 200, 'learns how long a run takes');
      const sent = Date.now();
      const answers = await Promise.all(
        Array.from({ length: 8 }, (_, i) => infer(gw, i % 2 ? ALICE : BOB, i % 2 ? 'a' : 'b', white).then((r) => ({ r, ms: Date.now() - sent }))),
      );
      const fast = answers.filter(({ r, ms }) => r.status === 503 && ms < 2000);
      assert.ok(fast.length > 0, `some were refused well before the 4 s deadline: ${answers.map(({ r, ms }) => `${r.status}@${ms}`).join(' ')}`);
      for (const { r } of fast) {
        assert.ok(Number(r.headers['retry-after']) >= 1);
        assert.match(r.json.detail, /deadline/);
      }
      assert.ok(answers.some(({ r }) => r.status === 200), 'the first ones are served');
    });
  });

  describe('decoding inside the queue (item 3)', () => {
    let gw: TestGateway;
    before(async () => {
      gw = await startGateway({ config: '[inference]\nconcurrency = 1\nmax_queue = 32\ntimeout_ms = 180000\n' });
    });
    after(() => gw.stop());

    // Measured on this 2-core box with 32 such requests in flight: ad15a97 (decode before the queue)
    // peaked at 3834 MB; decoding inside the queue peaks at 385 MB (one decode at a time).
    const BOUND = 1200 * 1024 * 1024;

    it('keeps the gateway under 1.2 GB with 32 requests of 128 KB PNGs declaring 40 MP in flight', async () => {
      const big = await sharp({ create: { width: 6324, height: 6324, channels: 3, background: '#ffffff' } }).png({ compressionLevel: 9 }).toBuffer();
      assert.ok(big.length < 200_000, `a small file (${big.length} bytes) for 40 MP`);
      assert.equal((await upload(gw, 'tiny', tinyClassifier(H, W))).status, 201);
      await session(gw, ALICE, 'big', 'tiny');
      await session(gw, BOB, 'big', 'tiny');
      let peak = 0;
      const sampler = setInterval(() => (peak = Math.max(peak, rssBytes(gw.proc.pid!))), 20);
      try {
        const all = await Promise.all(Array.from({ length: 32 }, (_, i) => infer(gw, i % 2 ? ALICE : BOB, 'big', big, 170_000)));
        for (const r of all) assert.ok([200, 503].includes(r.status), `${r.status} ${r.text}`);
        assert.ok(all.filter((r) => r.status === 200).length >= 16, 'most of them are served');
      } finally {
        clearInterval(sampler);
      }
      console.log(`peak gateway RSS with 32 x 40 MP in flight: ${Math.round(peak / 1048576)} MB`);
      assert.ok(peak < BOUND, `peak RSS ${Math.round(peak / 1048576)} MB`);
    });
  });

  describe('hostile uploads (item 6)', () => {
    let gw: TestGateway;
    before(async () => {
      gw = await startGateway({ config: '[inference]\ntimeout_ms = 6000\nmodel_memory_mb = 512\n' });
    });
    after(() => gw.stop());

    it('gives up on a self-test that never ends (Loop with a huge trip count): 400, its process killed', async () => {
      const began = Date.now();
      const res = await upload(gw, 'forever', loopForeverModel(H, W));
      assertProblem(res, 400, 'invalid-api-params');
      assert.match(res.json.detail, /did not finish within 6000 ms/);
      assert.ok(Date.now() - began < 20_000);
      await until('the probe process is gone', () => children(gw.proc.pid!).length === 0);
      const list = await gw.signed({ method: 'GET', target: '/models', as: ADMIN });
      assert.ok(!list.json.models.some((m: { name: string }) => m.name === 'forever'), 'nothing was kept');
    });

    it('caps what a model may allocate (ConstantOfShape of 4 GB): 400, the gateway itself stays small', async () => {
      const res = await upload(gw, 'hog', constantOfShapeModel(H, W, 1e9));
      assertProblem(res, 400, 'invalid-api-params');
      assert.match(res.json.detail, /more than 512 MB.*inference\.model_memory_mb/);
      assert.equal(gw.proc.exitCode, null);
      assert.ok(rssBytes(gw.proc.pid!) < 600 * 1024 * 1024, `gateway RSS ${rssBytes(gw.proc.pid!)}`);
    });

    it('refuses ONNX external data, inside the models folder or anywhere else', async () => {
      // A file beside the models: ONNX Runtime itself would read it for a model loaded from that folder.
      writeFileSync(join(gw.dir, 'models', 'secret.bin'), Buffer.from('SECRETS!'));
      for (const location of ['secret.bin', '/etc/passwd', '../config.toml']) {
        const res = await upload(gw, 'leak', externalDataModel(H, W, location));
        assertProblem(res, 400, 'invalid-api-params');
        assert.match(res.json.detail, /external data/);
        assert.ok(!res.text.includes(gw.dir), 'no server paths in the answer');
      }
    });

    it('stops a run that never ends (504), serves other tenants meanwhile and afterwards, and SIGTERM still exits at once', async () => {
      assert.equal((await upload(gw, 'trap', loopOnInputModel(H, W))).status, 201, 'a blank self-test passes');
      assert.equal((await upload(gw, 'tiny', tinyClassifier(H, W))).status, 201);
      await session(gw, ALICE, 'trap', 'trap');
      await session(gw, BOB, 'tiny', 'tiny');
      const began = Date.now();
      const stuck = infer(gw, ALICE, 'trap', white);
      await sleep(500);
      const meanwhile = await infer(gw, BOB, 'tiny', white);
      assert.equal(meanwhile.status, 200, meanwhile.text);
      assert.ok(Date.now() - began < 5000, 'another model is served while the trap runs');
      const res = await stuck;
      assertProblem(res, 504, 'gateway-timeout');
      assert.ok(Date.now() - began < 15_000);
      await until('the stuck process was killed', () => children(gw.proc.pid!).length <= 1);
      assert.equal((await infer(gw, BOB, 'tiny', white)).status, 200, 'served afterwards');
      const ocr = await gw.signed({ method: 'GET', target: '/models', as: ROOT });
      assert.equal(ocr.status, 200);

      // A run stuck again; SIGTERM must not wait for it.
      const again = infer(gw, ALICE, 'trap', white).catch((e: unknown) => e);
      await until('the trap runs again', () => children(gw.proc.pid!).length >= 2);
      await sleep(300);
      const exited = new Promise<number>((r) => gw.proc.once('exit', () => r(Date.now())));
      const signalled = Date.now();
      gw.proc.kill('SIGTERM');
      const at = await exited;
      assert.ok(at - signalled < 3000, `exited ${at - signalled} ms after SIGTERM`);
      assert.equal(gw.proc.signalCode, null, 'by itself, not killed');
      await again;
    });
  });
});
