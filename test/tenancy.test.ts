/**
 * Authority and leaks across tenants (issue 7, items 7, 8, 13 and part of 19), over HTTP on real
 * gateway processes: unsigned bodies in `body_hash = "backendai"` mode, models that belong to a
 * domain, upload errors without server paths, public /health and /metrics without tenants' detail.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { ocrModelPaths } from '../src/inference/ocr/index.js';
import { ADMIN, ALICE, OTHER_ADMIN, OTHER_DOMAIN_USER, ROOT, startGateway, type TestGateway } from './helpers/gateway.js';
import { assertProblem } from './helpers/problems.js';

const CLS_ONNX = readFileSync(ocrModelPaths().classifier);
const TEXTDIR = {
  name: 'textdir',
  task: 'classify',
  input: { width: 192, height: 48 },
  normalize: { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] },
  labels: ['0', '180'],
  top_k: 2,
};
const json = (v: unknown) => JSON.stringify(v);
const names = (res: { json: { models: Array<{ name: string }> } }) => res.json.models.map((m) => m.name).sort();

describe('body_hash = "backendai": nothing in an unsigned body widens authority (item 7)', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway({ config: '[auth]\nbody_hash = "backendai"\n' });
  });
  after(() => gw.stop());

  it('refuses owner_access_key in a body covered only by the empty-body hash; the signed query still works', async () => {
    // What a captured admin request replayed with another body looks like: the signature covers no body.
    const replayed = await gw.signed({
      method: 'POST',
      target: '/session',
      as: ADMIN,
      body: json({ name: 'stolen', image: 'ocr', owner_access_key: ALICE.accessKey }),
      sign: { bodyHashMode: 'backendai' },
    });
    assertProblem(replayed, 400, 'invalid-api-params');
    assert.match(replayed.json.detail, /query string/);
    const alices = await gw.signed({ method: 'GET', target: '/session', as: ALICE });
    assert.deepEqual(alices.json.sessions, [], 'nothing was created for alice');

    // The same authority from the signed query string is honoured.
    const viaQuery = await gw.signed({
      method: 'POST',
      target: `/session?owner_access_key=${ALICE.accessKey}`,
      as: ADMIN,
      body: json({ name: 'by-query', image: 'ocr' }),
      sign: { bodyHashMode: 'backendai' },
    });
    assert.equal(viaQuery.status, 201, viaQuery.text);
    assert.equal(viaQuery.json.owner_access_key, ALICE.accessKey);

    // A body whose exact hash was signed is covered, so its owner_access_key counts.
    const signedBody = await gw.signed({ method: 'POST', target: '/session', as: ADMIN, body: json({ name: 'by-body', image: 'ocr', owner_access_key: ALICE.accessKey }) });
    assert.equal(signedBody.status, 201, signedBody.text);
    assert.equal(signedBody.json.owner_access_key, ALICE.accessKey);

    // An unsigned body without authority-bearing members is still accepted (what the SDKs send).
    const plain = await gw.signed({ method: 'POST', target: '/session', as: ALICE, body: json({ name: 'plain', image: 'ocr' }), sign: { bodyHashMode: 'backendai' } });
    assert.equal(plain.status, 201, plain.text);
  });

  it('never reads a body on GET: owner_access_key there is ignored', async () => {
    assert.equal((await gw.signed({ method: 'POST', target: '/session', as: ALICE, body: json({ name: 'alices', image: 'ocr' }) })).status, 201);
    for (const bodyHashMode of ['strict', 'backendai'] as const) {
      const res = await gw.signed({ method: 'GET', target: '/session', as: ADMIN, body: json({ owner_access_key: ALICE.accessKey }), sign: { bodyHashMode } });
      assert.equal(res.status, 200, res.text);
      const listed = res.json.sessions.map((s: { session_name?: string; sessionName?: string; owner_access_key: string }) => s.owner_access_key);
      assert.ok(!listed.includes(ALICE.accessKey), `${bodyHashMode}: the GET body chose the owner: ${res.text}`);
    }
  });

  it('refuses a model domain named in an unsigned body', async () => {
    const res = await gw.signed({
      method: 'POST',
      target: '/models',
      as: ROOT,
      body: json({ ...TEXTDIR, domain: 'other', model: CLS_ONNX.toString('base64') }),
      sign: { bodyHashMode: 'backendai' },
    });
    assertProblem(res, 400, 'invalid-api-params');
    assert.match(res.json.detail, /query string/);
  });
});

describe('models belong to a domain (item 8), upload errors and health without leaks (item 13)', () => {
  let gw: TestGateway;
  let modelsDir: string;
  let png: Buffer;
  const models = (as = ADMIN, query = '') => gw.signed({ method: 'GET', target: `/models${query}`, as });
  const install = (as: typeof ADMIN, extra: object = {}, query = '') =>
    gw.signed({ method: 'POST', target: `/models${query}`, as, body: json({ ...TEXTDIR, model: CLS_ONNX.toString('base64'), ...extra }) });

  before(async () => {
    // A models folder from before domains: one model at the top level, in the old layout.
    modelsDir = mkdtempSync(join(tmpdir(), 'kernelgate-models-'));
    const sha256 = createHash('sha256').update(CLS_ONNX).digest('hex');
    const file = `legacy.${sha256.slice(0, 16)}.onnx`;
    writeFileSync(join(modelsDir, file), CLS_ONNX);
    writeFileSync(
      join(modelsDir, 'legacy.json'),
      json({ config: { ...TEXTDIR, name: 'legacy', input: { ...TEXTDIR.input, color: 'RGB' } }, file, sha256, bytes: CLS_ONNX.length, createdAt: new Date().toISOString() }),
    );
    mkdirSync(join(modelsDir, 'unrelated-empty'), { recursive: true });
    gw = await startGateway({ config: `[server]\nbody_limit_bytes = 4194304\n[inference]\nmodels_dir = ${JSON.stringify(modelsDir)}\n` });
    png = await sharp({ create: { width: 96, height: 24, channels: 3, background: '#fff' } }).png().toBuffer();
  });
  after(async () => {
    await gw.stop();
    rmSync(modelsDir, { recursive: true, force: true });
  });

  it('models stored before domains belong to the default domain', async () => {
    assert.deepEqual(names(await models(ALICE)), ['face', 'legacy', 'ocr']);
    assert.deepEqual(names(await models(OTHER_DOMAIN_USER)), ['face', 'ocr']);
  });

  it("an admin manages only its own domain's models; another domain's are 404, as if absent", async () => {
    const first = await install(ADMIN);
    assert.equal(first.status, 201, first.text);
    assert.equal(first.json.domain, 'default');
    const before = (await models(ADMIN)).json.models.find((m: { name: string }) => m.name === 'textdir');
    assert.equal(before.domain, 'default');

    // d2 sees none of d1's models, and cannot run, remove or back them up.
    assert.deepEqual(names(await models(OTHER_ADMIN)), ['face', 'ocr']);
    assert.deepEqual(names(await models(OTHER_DOMAIN_USER)), ['face', 'ocr']);
    assertProblem(await gw.signed({ method: 'POST', target: '/session', as: OTHER_DOMAIN_USER, body: json({ name: 'steal', image: 'textdir' }) }), 404, 'model-not-found');
    assertProblem(await gw.signed({ method: 'DELETE', target: '/models/textdir', as: OTHER_ADMIN }), 404, 'model-not-found');
    assertProblem(await gw.signed({ method: 'DELETE', target: '/models/legacy', as: OTHER_ADMIN }), 404, 'model-not-found');
    assert.deepEqual((await gw.signed({ method: 'GET', target: '/models/backup', as: OTHER_ADMIN })).json.models, []);
    // Naming the other domain outright is forbidden (for admins and users alike).
    assertProblem(await models(OTHER_ADMIN, '?domain=default'), 403, 'generic-forbidden');
    assertProblem(await gw.signed({ method: 'GET', target: '/models/backup?domain=default', as: OTHER_ADMIN }), 403, 'generic-forbidden');
    assertProblem(await gw.signed({ method: 'DELETE', target: '/models/textdir?domain=default', as: OTHER_ADMIN }), 403, 'generic-forbidden');
    assertProblem(await install(OTHER_ADMIN, { domain: 'default' }), 403, 'generic-forbidden');
    assertProblem(await models(OTHER_DOMAIN_USER, '?domain=default'), 403, 'generic-forbidden');

    // The same name in d2 is d2's own model: created (201), not a replacement of d1's.
    const own = await install(OTHER_ADMIN);
    assert.equal(own.status, 201, own.text);
    assert.equal(own.json.replaced, false);
    assert.equal(own.json.domain, 'other');
    const after = (await models(ADMIN)).json.models.find((m: { name: string }) => m.name === 'textdir');
    assert.equal(after.created_at, before.created_at, "d1's model is untouched");

    // Sessions resolve their image in the owner's domain.
    assert.equal((await gw.signed({ method: 'POST', target: '/session', as: OTHER_DOMAIN_USER, body: json({ name: 'mine', image: 'textdir' }) })).status, 201);
    const ran = await gw.signed({ method: 'POST', target: '/session/mine/infer', as: OTHER_DOMAIN_USER, body: png, contentType: 'image/png' });
    assert.equal(ran.status, 200, ran.text);
    assertProblem(await gw.signed({ method: 'POST', target: '/session', as: OTHER_DOMAIN_USER, body: json({ name: 'old', image: 'legacy' }) }), 404, 'model-not-found');

    // d2's backup holds d2's model only; removing it leaves d1's in place.
    const backup = await gw.signed({ method: 'GET', target: '/models/backup', as: OTHER_ADMIN });
    assert.deepEqual(backup.json.models.map((m: { name: string; domain: string }) => `${m.domain}/${m.name}`), ['other/textdir']);
    assert.equal((await gw.signed({ method: 'DELETE', target: '/models/textdir', as: OTHER_ADMIN })).status, 200);
    assert.deepEqual(names(await models(ADMIN)), ['face', 'legacy', 'ocr', 'textdir']);
    assertProblem(await gw.signed({ method: 'POST', target: '/session/mine/infer', as: OTHER_DOMAIN_USER, body: png, contentType: 'image/png' }), 404, 'model-not-found');

    // Restoring an admin's backup writes into the restoring admin's own domain.
    const d1backup = await gw.signed({ method: 'GET', target: '/models/backup', as: ADMIN });
    assert.deepEqual(d1backup.json.models.map((m: { name: string; domain: string }) => `${m.domain}/${m.name}`), ['default/legacy', 'default/textdir']);
    const restored = await gw.signed({ method: 'POST', target: '/models/restore', as: OTHER_ADMIN, body: d1backup.text });
    assert.equal(restored.status, 200, restored.text);
    assert.deepEqual(names(await models(OTHER_ADMIN)), ['face', 'legacy', 'ocr', 'textdir']);
    assert.equal((await gw.signed({ method: 'DELETE', target: '/models/legacy', as: OTHER_ADMIN })).status, 200);
    assert.deepEqual(names(await models(ADMIN)), ['face', 'legacy', 'ocr', 'textdir'], "d1's copy stays");
  });

  it('a superadmin manages every domain: lists all, names one with ?domain=, restores into the domains of the document', async () => {
    const all = (await models(ROOT)).json.models.map((m: { name: string; domain?: string }) => (m.domain ? `${m.domain}/${m.name}` : m.name)).sort();
    assert.deepEqual(all, ['default/legacy', 'default/textdir', 'face', 'ocr', 'other/textdir']);
    assert.deepEqual(names(await models(ROOT, '?domain=other')), ['face', 'ocr', 'textdir']);
    // owner_access_key selects the owner's domain too.
    assert.deepEqual(names(await models(ROOT, `?owner_access_key=${OTHER_DOMAIN_USER.accessKey}`)), ['face', 'ocr', 'textdir']);
    const backup = await gw.signed({ method: 'GET', target: '/models/backup', as: ROOT });
    assert.deepEqual(backup.json.models.map((m: { name: string; domain: string }) => `${m.domain}/${m.name}`).sort(), ['default/legacy', 'default/textdir', 'other/textdir']);
    assert.equal((await gw.signed({ method: 'DELETE', target: '/models/textdir?domain=other', as: ROOT })).status, 200);
    assert.equal((await gw.signed({ method: 'DELETE', target: '/models/legacy?domain=default', as: ROOT })).status, 200);
    assertProblem(await gw.signed({ method: 'DELETE', target: '/models/textdir?domain=other', as: ROOT }), 404, 'model-not-found');
    const restored = await gw.signed({ method: 'POST', target: '/models/restore', as: ROOT, body: backup.text });
    assert.equal(restored.status, 200, restored.text);
    assert.deepEqual(names(await models(ADMIN)), ['face', 'legacy', 'ocr', 'textdir']);
    assert.deepEqual(names(await models(OTHER_ADMIN)), ['face', 'ocr', 'textdir']);
    const up = await install(ROOT, {}, '?domain=third');
    assert.equal(up.status, 201, up.text);
    assert.equal(up.json.domain, 'third');
    assert.deepEqual(names(await models(ROOT, '?domain=third')), ['face', 'ocr', 'textdir']);
    // A domain no folder name can hold is a 400, not a failed write.
    assertProblem(await install(ROOT, {}, `?domain=${encodeURIComponent('é'.repeat(100))}`), 400, 'invalid-api-params');
    assertProblem(await install(ROOT, { domain: 'é'.repeat(100) }), 400, 'invalid-api-params');
  });

  it('a failed upload says why without server paths or ONNX Runtime internals; the log has the detail (item 13)', async () => {
    const res = await install(ADMIN, { name: 'broken', model: Buffer.from('definitely not an onnx protobuf').toString('base64') });
    assertProblem(res, 400, 'invalid-api-params');
    assert.match(res.json.detail, /^The model could not be loaded by ONNX Runtime: /);
    for (const leak of [modelsDir, gw.dir, tmpdir(), '.onnx', 'upload-', 'onnxruntime', '.cc:', 'ORT']) {
      assert.ok(!res.text.includes(leak), `the answer shows ${JSON.stringify(leak)}: ${res.text}`);
    }
    assert.doesNotMatch(res.text, /"\/|\s\/[a-z]/, 'no absolute path');
    const mismatch = await install(ADMIN, { name: 'threelabels', labels: ['a', 'b', 'c'] });
    assertProblem(mismatch, 400, 'invalid-api-params');
    assert.match(mismatch.json.detail, /outputs 2 scores for 3 labels/);
    const deadline = Date.now() + 5_000;
    while (!gw.output.some((l) => l.includes('model upload refused')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.ok(gw.output.some((l) => l.includes('model upload refused')), 'the log records the refused upload');
  });

  it('public /health says ok/degraded per part only; GET /health/detail is for signed admins, per domain (item 13)', async () => {
    // Load d1's custom model so that it has a provider and queue figures to leak.
    await gw.signed({ method: 'POST', target: '/session', as: ALICE, body: json({ name: 'hc', image: 'textdir' }) });
    assert.equal((await gw.signed({ method: 'POST', target: '/session/hc/infer', as: ALICE, body: png, contentType: 'image/png' })).status, 200);

    const pub = await gw.request({ method: 'GET', target: '/health' });
    assert.equal(pub.status, 200);
    assert.equal(pub.json.status, 'ok');
    for (const word of ['textdir', 'legacy', 'queue', 'loaded', 'provider', 'third']) assert.ok(!pub.text.includes(word), `public /health shows ${word}: ${pub.text}`);
    for (const part of ['ratelimit', 'keypairs', 'inference', 'sessions']) assert.equal(pub.json[part].status, 'ok', pub.text);
    assert.equal(pub.json.keypairs.loaded, undefined, 'no keypair count');

    assertProblem(await gw.request({ method: 'GET', target: '/health/detail' }), 401, 'auth-failed');
    assertProblem(await gw.signed({ method: 'GET', target: '/health/detail', as: ALICE }), 403, 'generic-forbidden');
    const d1 = await gw.signed({ method: 'GET', target: '/health/detail', as: ADMIN });
    assert.equal(d1.status, 200, d1.text);
    assert.equal(d1.json.inference.models['default/textdir'].loaded, true);
    assert.equal(d1.json.inference.models['default/textdir'].provider, 'cpu');
    assert.ok(d1.json.inference.models.ocr, 'built-ins are listed for every domain');
    assert.ok(!d1.text.includes('other/') && !d1.text.includes('third/'), `an admin sees only its domain: ${d1.text}`);
    const root = await gw.signed({ method: 'GET', target: '/health/detail', as: ROOT });
    assert.ok(root.json.inference.models['other/textdir'] && root.json.inference.models['third/textdir'], root.text);
    assert.equal(typeof root.json.keypairs.loaded, 'number');

    // Loopback may scrape by default; per-model figures are there for the operator.
    const metrics = await gw.request({ method: 'GET', target: '/metrics' });
    assert.equal(metrics.status, 200);
    assert.match(metrics.text, /kernelgate_inference_completed\{model="default\/textdir"\} [1-9]/);
  });
});

describe('GET /metrics is served only to server.metrics_allow (item 13)', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway({ config: '[server]\ntrusted_proxies = ["127.0.0.1/32"]\nmetrics_allow = ["10.0.0.0/8"]\n' });
  });
  after(() => gw.stop());

  it('refuses addresses outside the list and serves those inside it', async () => {
    assertProblem(await gw.request({ method: 'GET', target: '/metrics' }), 403, 'generic-forbidden');
    const outside = await gw.request({ method: 'GET', target: '/metrics', headers: { 'X-Forwarded-For': '203.0.113.7' } });
    assertProblem(outside, 403, 'generic-forbidden');
    assert.match(outside.json.detail, /server\.metrics_allow/);
    assert.ok(!outside.text.includes('kernelgate_'), 'no metrics in the refusal');
    const inside = await gw.request({ method: 'GET', target: '/metrics', headers: { 'X-Forwarded-For': '10.1.2.3' } });
    assert.equal(inside.status, 200, inside.text);
    assert.match(inside.text, /kernelgate_http_requests_total/);
    // /health stays public.
    assert.equal((await gw.request({ method: 'GET', target: '/health', headers: { 'X-Forwarded-For': '203.0.113.7' } })).status, 200);
  });

  it('by default only loopback may scrape: a visitor behind a trusted proxy may not', async () => {
    const proxied = await startGateway({ config: '[server]\ntrusted_proxies = ["127.0.0.1/32"]\n' });
    try {
      assertProblem(await proxied.request({ method: 'GET', target: '/metrics', headers: { 'X-Forwarded-For': '203.0.113.7' } }), 403, 'generic-forbidden');
      assertProblem(await proxied.request({ method: 'GET', target: '/metrics', headers: { 'X-Forwarded-For': '2001:db8::7' } }), 403, 'generic-forbidden');
      assert.equal((await proxied.request({ method: 'GET', target: '/metrics' })).status, 200, 'the proxy host itself (loopback) may');
    } finally {
      await proxied.stop();
    }
  });
});
