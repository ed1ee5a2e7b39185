/**
 * Zip backups over HTTP on spawned gateways: DeepStack's /v1/backup and /v1/restore (admin_key form field or
 * a signature) and the zip form of /models/backup and /models/restore. Every hostile archive is a 400 after
 * which the store is byte for byte what it was (files on disk, the listing, an inference); a good backup
 * restores onto an empty gateway and its real classifier (PaddleOCR's direction model) infers the same;
 * domains stay apart.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { extractModelArchive } from '../src/inference/store/model-archive.js';
import { ocrModelPaths } from '../src/inference/ocr/index.js';
import { ADMIN, ALICE, BIN, OTHER_ADMIN, OTHER_DOMAIN_USER, ROOT, startGateway, type Response, type TestGateway, type TestKeypair } from './helpers/gateway.js';
import { craftZip } from './helpers/zip.js';
import { goodEntries, hostileArchives, unloadableArchives } from './helpers/hostile-zips.js';
import { tinyClassifier } from './helpers/onnx.js';
import { assertProblem } from './helpers/problems.js';
import { renderText } from './helpers/render-text.js';

const run = promisify(execFile);
const CLS_ONNX = readFileSync(ocrModelPaths().classifier);
const TEXTDIR = { name: 'textdir', task: 'classify', input: { width: 192, height: 48 }, normalize: { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] }, labels: ['0', '180'], top_k: 2 };
const TINY = (name: string) => ({ name, task: 'classify', input: { width: 8, height: 8 }, labels: ['a', 'b'], model: tinyClassifier(8, 8).toString('base64') });
const CONFIG = '[server]\nbody_limit_bytes = 4194304\n[auth]\nschemes = ["backendai", "apikey"]\n';

function multipart(fields: Record<string, string>, file?: { name: string; data: Buffer }): { body: Buffer; contentType: string } {
  const b = 'kgzipboundary7';
  const parts: Buffer[] = [];
  for (const [k, v] of Object.entries(fields)) parts.push(Buffer.from(`--${b}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`));
  if (file) parts.push(Buffer.from(`--${b}\r\nContent-Disposition: form-data; name="${file.name}"; filename="Backup.backup"\r\nContent-Type: application/octet-stream\r\n\r\n`), file.data, Buffer.from('\r\n'));
  parts.push(Buffer.from(`--${b}--\r\n`));
  return { body: Buffer.concat(parts), contentType: `multipart/form-data; boundary=${b}` };
}

async function addKey(dir: string, accessKey: string): Promise<string> {
  const r = await run(process.execPath, [BIN, 'keypair', 'apikey', 'add', accessKey, '--dir', dir, '--json']);
  return (JSON.parse(r.stdout) as { api_key: string }).api_key;
}

/** Every file under models_dir (dot folders included: a staging folder left behind shows), with its hash. */
function files(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, rel: string) => {
    let entries: string[];
    try {
      entries = readdirSync(d).sort();
    } catch {
      return;
    }
    for (const e of entries) {
      const st = lstatSync(join(d, e));
      if (st.isDirectory()) walk(join(d, e), `${rel}${e}/`);
      else out.push(`${rel}${e} ${st.isFile() ? createHash('sha256').update(readFileSync(join(d, e))).digest('hex') : 'not a file'} ${st.mode.toString(8)}`);
    }
  };
  walk(dir, '');
  return out;
}

/** A DeepStack answer to an error: a problem document with success false, error = detail, duration 0. */
function assertDeepStackProblem(res: Response, status: number, slug?: string): void {
  assertProblem(res, status, slug);
  assert.equal(res.json.success, false);
  assert.equal(res.json.error, res.json.detail);
  assert.equal(res.json.duration, 0);
  assert.equal(res.headers['content-length'], String(res.body.length));
}

describe('zip backups over HTTP (/v1/backup, /v1/restore, /models/backup, /models/restore)', () => {
  let gw: TestGateway;
  let empty: TestGateway;
  let adminKey: string;
  let aliceKey: string;
  let otherAdminKey: string;
  let flipped: Buffer;
  let work: string;

  const v1 = (g: TestGateway, path: string, fields: Record<string, string>, file?: Buffer) => {
    const { body, contentType } = multipart(fields, file && { name: 'file', data: file });
    return g.request({ method: 'POST', target: path, headers: { 'Content-Type': contentType }, body });
  };
  const infer = async (g: TestGateway, as: TestKeypair) => {
    const res = await g.signed({ method: 'POST', target: '/session/dir/infer', as, body: flipped, contentType: 'image/png' });
    assert.equal(res.status, 200, res.text);
    return res.json.predictions;
  };
  const listing = async (g: TestGateway) => (await g.signed({ method: 'GET', target: '/models', as: ROOT })).json.models;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'kg-zip-http-'));
    [gw, empty] = await Promise.all([startGateway({ config: CONFIG }), startGateway({ config: CONFIG })]);
    [adminKey, aliceKey, otherAdminKey] = await Promise.all([addKey(gw.keypairDir, ADMIN.accessKey), addKey(gw.keypairDir, ALICE.accessKey), addKey(gw.keypairDir, OTHER_ADMIN.accessKey)]);
    const line = await renderText([{ text: 'Kernelgate reads text', size: 40 }], { padding: 8 });
    flipped = await sharp(line).resize(384, 96, { fit: 'fill' }).rotate(180).png().toBuffer();
    const install = async (as: TestKeypair, body: object) => {
      const res = await gw.signed({ method: 'POST', target: '/models', as, body: JSON.stringify(body) });
      assert.equal(res.status, 201, res.text);
    };
    await install(ADMIN, { ...TEXTDIR, model: CLS_ONNX.toString('base64') });
    await install(ADMIN, TINY('tiny'));
    await install(OTHER_ADMIN, TINY('theirs'));
    assert.equal((await gw.signed({ method: 'POST', target: '/session', as: ALICE, body: JSON.stringify({ name: 'dir', image: 'textdir' }) })).status, 201);
    // The keys are live once the watched keypair folder is re-read.
    for (let i = 0; i < 200 && (await gw.request({ method: 'GET', target: '/auth/test', headers: { 'x-api-key': otherAdminKey } })).status !== 200; i++) await new Promise((r) => setTimeout(r, 25));
  });
  after(async () => {
    await Promise.all([gw?.stop(), empty?.stop()]);
    rmSync(work, { recursive: true, force: true });
  });

  it("backs up a domain's models as DeepStack does: an attachment with Content-Length, admins only", async () => {
    const res = await v1(gw, '/v1/backup', { admin_key: adminKey });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.headers['content-type'], 'application/octet-stream');
    assert.match(String(res.headers['content-disposition']), /^attachment; filename=Backup_\d{8}T\d{6}Z\.backup$/);
    assert.equal(res.headers['content-length'], String(res.body.length));
    assert.equal(res.headers['transfer-encoding'], undefined);
    const dir = mkdtempSync(join(work, 'x-'));
    const models = await extractModelArchive(res.body, dir);
    assert.deepEqual(models.map((m) => `${m.domain}/${m.config.name}`).sort(), ['default/textdir', 'default/tiny']);
    assert.equal(models.find((m) => m.config.name === 'textdir')!.sha256, createHash('sha256').update(CLS_ONNX).digest('hex'));

    // The other domain's admin gets its own models only, and may not name another domain; a superadmin gets all.
    const theirs = await extractModelArchive((await v1(gw, '/v1/backup', { admin_key: otherAdminKey })).body, mkdtempSync(join(work, 'x-')));
    assert.deepEqual(theirs.map((m) => `${m.domain}/${m.config.name}`), ['other/theirs']);
    assertDeepStackProblem(await v1(gw, '/v1/backup?domain=default', { admin_key: otherAdminKey }), 403, 'generic-forbidden');
    assertDeepStackProblem(await gw.signed({ method: 'POST', target: '/v1/backup?domain=default', as: OTHER_ADMIN }), 403, 'generic-forbidden');
    const all = await gw.signed({ method: 'POST', target: '/v1/backup', as: ROOT });
    assert.equal(all.status, 200);
    assert.deepEqual((await extractModelArchive(all.body, mkdtempSync(join(work, 'x-')))).map((m) => `${m.domain}/${m.config.name}`).sort(), ['default/textdir', 'default/tiny', 'other/theirs']);

    // A user, a user's key as admin_key, a wrong key: refused with real statuses and DeepStack's members.
    assertDeepStackProblem(await gw.signed({ method: 'POST', target: '/v1/backup', as: ALICE }), 403, 'generic-forbidden');
    assertDeepStackProblem(await v1(gw, '/v1/backup', { admin_key: aliceKey }), 401, 'auth-failed');
    assertDeepStackProblem(await v1(gw, '/v1/backup', { admin_key: `kg_${'x'.repeat(32)}` }), 401, 'auth-failed');
    assertDeepStackProblem(await v1(gw, '/v1/backup', {}), 401, 'auth-failed');
  });

  it('refuses every hostile archive whole with a 400, and the store stays byte for byte as it was', async () => {
    const modelsDir = join(gw.dir, 'models');
    // Inference first: it loads the model, which the listing reports.
    const inference = await infer(gw, ALICE);
    const before = { files: files(modelsDir), listing: await listing(gw), inference };
    assert.ok(before.files.length >= 6, before.files.join('\n'));
    const archives = [...hostileArchives(), ...unloadableArchives()];
    for (const hostile of archives) {
      const res = await v1(gw, '/v1/restore', { admin_key: adminKey }, hostile.zip);
      assertDeepStackProblem(res, 400, 'invalid-api-params');
      assert.match(res.json.detail, hostile.says, hostile.name);
      assert.match(res.json.detail, /nothing was changed/);
      assert.deepEqual(files(modelsDir), before.files, `the files changed after ${hostile.name}`);
    }
    // The same through /models/restore's zip form, by a superadmin (no domain rule to stop it early).
    for (const hostile of archives.slice(0, 6)) {
      const res = await gw.signed({ method: 'POST', target: '/models/restore', as: ROOT, body: hostile.zip, contentType: 'application/zip' });
      assertProblem(res, 400, 'invalid-api-params');
    }
    // Not an archive at all, or no file part.
    assertDeepStackProblem(await v1(gw, '/v1/restore', { admin_key: adminKey }), 400, 'invalid-api-params');
    assertDeepStackProblem(await v1(gw, '/v1/restore', { admin_key: adminKey, file: 'PK' }), 400, 'invalid-api-params');
    assertDeepStackProblem(await v1(gw, '/v1/restore', { api_key: aliceKey }, archives[0]!.zip), 403, 'generic-forbidden');
    const after = await infer(gw, ALICE);
    assert.deepEqual({ files: files(modelsDir), listing: await listing(gw), inference: after }, before);
  });

  it('restores a backup onto an empty gateway, where the restored model infers the same', async () => {
    const backup = (await v1(gw, '/v1/backup', { admin_key: adminKey })).body;
    const { body, contentType } = multipart({}, { name: 'file', data: backup });
    const res = await empty.signed({ method: 'POST', target: '/v1/restore', as: ADMIN, body, contentType });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.success, true);
    assert.equal(typeof res.json.duration, 'number');
    assert.equal(res.headers['content-length'], String(res.body.length));
    assert.equal((await empty.signed({ method: 'POST', target: '/session', as: ALICE, body: JSON.stringify({ name: 'dir', image: 'textdir' }) })).status, 201);
    const there = await infer(empty, ALICE);
    assert.equal(there[0].label, '180');
    assert.deepEqual(there, await infer(gw, ALICE), 'the same predictions, confidences included');
    const pick = (ms: Array<{ name: string; domain?: string; sha256?: string }>) => ms.filter((m) => m.domain).map((m) => `${m.domain}/${m.name} ${m.sha256}`).sort();
    assert.deepEqual(pick(await listing(empty)), pick(await listing(gw)).filter((m) => m.startsWith('default/')));
    assert.deepEqual(readdirSync(join(empty.dir, 'models')), ['default'], 'no staging folder is left');
  });

  it("restores into the admin's own domain only; a superadmin's restore puts each model back in its domain", async () => {
    const all = (await gw.signed({ method: 'GET', target: '/models/backup', as: ROOT, headers: { accept: 'application/zip' } }));
    assert.equal(all.status, 200);
    assert.equal(all.headers['content-type'], 'application/zip');
    assert.match(String(all.headers['content-disposition']), /^attachment; filename=kernelgate-models-\d{8}T\d{6}Z\.zip$/);
    const defaultBefore = files(join(empty.dir, 'models', 'default'));

    // The other domain's admin restores the all-domain backup: everything lands in "other", nothing else moves.
    const mine = await empty.signed({ method: 'POST', target: '/models/restore', as: OTHER_ADMIN, body: all.body, contentType: 'application/zip' });
    assert.equal(mine.status, 200, mine.text);
    assert.deepEqual(files(join(empty.dir, 'models', 'default')), defaultBefore, "the default domain's files did not change");
    const seen = (await empty.signed({ method: 'GET', target: '/models', as: OTHER_DOMAIN_USER })).json.models.map((m: { name: string }) => m.name).sort();
    assert.deepEqual(seen, ['face', 'ocr', 'textdir', 'theirs', 'tiny']);
    assertProblem(await empty.signed({ method: 'POST', target: '/models/restore?domain=default', as: OTHER_ADMIN, body: all.body, contentType: 'application/zip' }), 403, 'generic-forbidden');

    // One name in two domains cannot go into one domain: refused whole.
    const clash = craftZip(goodEntries({ models: [{ domain: 'default', name: 'same' }, { domain: 'other', name: 'same' }] }));
    const refused = await empty.signed({ method: 'POST', target: '/models/restore', as: ADMIN, body: clash, contentType: 'application/zip' });
    assertProblem(refused, 400, 'invalid-api-params');
    assert.match(refused.json.detail, /two models would be restored as "same"/);
    // A superadmin restores it as it is: each model into the domain the archive names.
    const root = await empty.signed({ method: 'POST', target: '/models/restore', as: ROOT, body: clash, contentType: 'application/zip' });
    assert.equal(root.status, 200, root.text);
    const byDomain = (await listing(empty)).filter((m: { name: string }) => m.name === 'same').map((m: { domain: string }) => m.domain).sort();
    assert.deepEqual(byDomain, ['default', 'other']);
  });

  it('keeps the JSON form (now all or nothing too) and the CLI: model backup --zip, model restore FILE.zip', async () => {
    const json = await gw.signed({ method: 'GET', target: '/models/backup', as: ADMIN });
    assert.equal(json.status, 200);
    assert.equal(json.json.models.length, 2);
    const before = files(join(empty.dir, 'models'));
    const tiny = json.json.models.find((m: { name: string }) => m.name === 'tiny');
    const broken = { models: [{ ...tiny, name: 'fresh' }, { ...TINY('broken'), model: Buffer.from('not onnx').toString('base64') }] };
    assertProblem(await empty.signed({ method: 'POST', target: '/models/restore', as: ADMIN, body: JSON.stringify(broken) }), 400, 'invalid-api-params');
    assert.deepEqual(files(join(empty.dir, 'models')), before, 'a JSON restore with one bad model changes nothing');

    const adminFile = join(gw.keypairDir, `${ADMIN.accessKey}.toml`);
    const cli = async (g: TestGateway, args: string[]) => (await run(process.execPath, [BIN, 'model', ...args, '-k', adminFile, '--endpoint', g.url], { maxBuffer: 64 * 1024 * 1024 })).stdout;
    const zipFile = join(work, 'models.zip');
    assert.deepEqual(Object.keys(JSON.parse(await cli(gw, ['backup', '--zip', zipFile]))), ['written', 'bytes']);
    assert.equal((await extractModelArchive(readFileSync(zipFile), mkdtempSync(join(work, 'x-')))).length, 2);
    assert.deepEqual(JSON.parse(await cli(empty, ['restore', zipFile])).restored.sort(), ['textdir', 'tiny']);
  });
});
