/**
 * Issue 10 item 1: static API keys (x-api-key, DeepStack api_key / admin_key form fields) when "apikey"
 * is in [auth] schemes; scope read; unknown, revoked and expired keys one 401; never in a log.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ADMIN, ALICE, BIN, BOB, rawRequest, startGateway, type TestGateway, type TestKeypair } from './helpers/gateway.js';
import { assertProblem } from './helpers/problems.js';
import { renderText } from './helpers/render-text.js';

const run = promisify(execFile);
const LIMITED: TestKeypair = { accessKey: 'AKIAKGATELIMITED0011', secretKey: 'limitedSecretKey0000000000000000000000L1', rateLimit: 37 };

async function addKey(dir: string, accessKey: string, extra: string[] = []): Promise<{ id: string; api_key: string }> {
  const r = await run(process.execPath, [BIN, 'keypair', 'apikey', 'add', accessKey, '--dir', dir, '--json', ...extra]);
  return JSON.parse(r.stdout) as { id: string; api_key: string };
}

/** Waits until the gateway accepts `key` (the keypair folder is watched; changes take milliseconds). */
async function until(check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('condition never held');
}

function multipart(fields: Record<string, string>, file?: { name: string; data: Buffer }): { body: Buffer; contentType: string } {
  const b = 'kgboundary42';
  const parts: Buffer[] = [];
  for (const [k, v] of Object.entries(fields)) parts.push(Buffer.from(`--${b}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`));
  if (file) {
    parts.push(Buffer.from(`--${b}\r\nContent-Disposition: form-data; name="${file.name}"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n`), file.data, Buffer.from('\r\n'));
  }
  parts.push(Buffer.from(`--${b}--\r\n`));
  return { body: Buffer.concat(parts), contentType: `multipart/form-data; boundary=${b}` };
}

describe('static API keys ([auth] schemes includes "apikey")', () => {
  let gw: TestGateway;
  let full: { id: string; api_key: string };
  let read: { id: string; api_key: string };
  let admin: { id: string; api_key: string };
  let limited: { id: string; api_key: string };
  let png: Buffer;
  const secrets: string[] = [];

  before(async () => {
    gw = await startGateway({ config: '[log]\nlevel = "debug"\n[auth]\nschemes = ["backendai", "apikey"]\n', keypairs: [ALICE, BOB, ADMIN, LIMITED] });
    full = await addKey(gw.keypairDir, ALICE.accessKey);
    read = await addKey(gw.keypairDir, BOB.accessKey, ['--scope', 'read']);
    admin = await addKey(gw.keypairDir, ADMIN.accessKey);
    limited = await addKey(gw.keypairDir, LIMITED.accessKey);
    secrets.push(full.api_key, read.api_key, admin.api_key, limited.api_key);
    png = await renderText(['Key works']);
    for (const k of [full, read, admin, limited]) {
      await until(async () => (await gw.request({ method: 'GET', target: '/auth/test', headers: { 'x-api-key': k.api_key } })).status === 200);
    }
  });
  after(async () => {
    // The key is never in the gateway's output (log level debug), whatever happened above.
    const log = gw.output.join('\n');
    for (const s of secrets) assert.ok(!log.includes(s), 'an API key appears in the gateway log');
    await gw.stop();
  });

  it('accepts x-api-key on a signed route, charged to the keypair (its own limit)', async () => {
    const res = await gw.request({ method: 'GET', target: '/auth/test', headers: { 'x-api-key': limited.api_key } });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.headers['x-ratelimit-limit'], '37');
  });

  it('the keypair file holds only the hash; list never prints keys', async () => {
    const text = readFileSync(join(gw.keypairDir, `${ALICE.accessKey}.toml`), 'utf8');
    assert.ok(!text.includes(full.api_key));
    assert.ok(text.includes(createHash('sha256').update(full.api_key).digest('hex')));
    assert.match(full.api_key, /^kg_[A-Za-z0-9]{32}$/);
    assert.match(full.id, /^[A-Za-z0-9]{6,8}$/);
    const listed = await run(process.execPath, [BIN, 'keypair', 'apikey', 'list', ALICE.accessKey, '--dir', gw.keypairDir]);
    assert.match(listed.stdout, new RegExp(`id=${full.id}  scope=full`));
    assert.ok(!listed.stdout.includes(full.api_key));
    assert.ok(!listed.stdout.includes('kg_'));
  });

  it('accepts api_key as a urlencoded form field (POST /session) and as a multipart field (infer with an image)', async () => {
    const created = await gw.request({
      method: 'POST',
      target: '/session',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `name=formkey&image=ocr&api_key=${full.api_key}`,
    });
    assert.equal(created.status, 201, created.text);
    const form = multipart({ api_key: full.api_key }, { name: 'image', data: png });
    const inferred = await gw.request({ method: 'POST', target: '/session/formkey/infer', headers: { 'content-type': form.contentType }, body: form.body });
    assert.equal(inferred.status, 200, inferred.text);
    assert.equal(inferred.json.predictions[0].text, 'Key works');
    const listed = await gw.request({ method: 'GET', target: '/session', headers: { 'x-api-key': full.api_key } });
    assert.ok(listed.json.sessions.some((s: { sessionName: string }) => s.sessionName === 'formkey'));
  });

  it('admin_key works for an admin keypair and is refused (401) for a user keypair', async () => {
    const ok = multipart({ admin_key: admin.api_key });
    assert.equal((await gw.request({ method: 'POST', target: '/session', headers: { 'content-type': ok.contentType }, body: ok.body })).status, 400);
    const bad = multipart({ admin_key: full.api_key });
    const res = await gw.request({ method: 'POST', target: '/session', headers: { 'content-type': bad.contentType }, body: bad.body });
    assertProblem(res, 401, 'auth-failed');
    assert.match(res.json.detail, /Incorrect admin key/);
  });

  it('scope read: GET and inference on an existing session, anything else 403 naming the scope', async () => {
    assert.equal((await gw.signed({ method: 'POST', target: '/session', as: BOB, body: JSON.stringify({ name: 'bobs', image: 'ocr' }) })).status, 201);
    const refused = await gw.request({ method: 'POST', target: '/session', headers: { 'x-api-key': read.api_key, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'nope', image: 'ocr' }) });
    assertProblem(refused, 403, 'generic-forbidden');
    assert.match(refused.json.detail, /scope read/);
    const deleted = await gw.request({ method: 'DELETE', target: '/session/bobs', headers: { 'x-api-key': read.api_key } });
    assertProblem(deleted, 403, 'generic-forbidden');
    const listed = await gw.request({ method: 'GET', target: '/session', headers: { 'x-api-key': read.api_key } });
    assert.equal(listed.status, 200, listed.text);
    assert.deepEqual(listed.json.sessions.map((s: { sessionName: string }) => s.sessionName), ['bobs']);
    const inferred = await gw.request({ method: 'POST', target: '/session/bobs/infer', headers: { 'x-api-key': read.api_key, 'content-type': 'image/png' }, body: png });
    assert.equal(inferred.status, 200, inferred.text);
  });

  it('unknown, malformed, revoked and expired keys get the same 401, charged to the address', async () => {
    const unknown = `kg_${'A'.repeat(32)}`;
    const expired = await addKey(gw.keypairDir, ALICE.accessKey, ['--expires-at', '2020-01-01T00:00:00Z']);
    const revoked = await addKey(gw.keypairDir, ALICE.accessKey);
    secrets.push(expired.api_key, revoked.api_key);
    await until(async () => (await gw.request({ method: 'GET', target: '/auth/test', headers: { 'x-api-key': revoked.api_key } })).status === 200);
    await run(process.execPath, [BIN, 'keypair', 'apikey', 'revoke', ALICE.accessKey, revoked.id, '--dir', gw.keypairDir]);
    await until(async () => (await gw.request({ method: 'GET', target: '/auth/test', headers: { 'x-api-key': revoked.api_key } })).status === 401);
    const details = new Set<string>();
    for (const key of [unknown, 'not-a-key', expired.api_key, revoked.api_key]) {
      const res = await gw.request({ method: 'GET', target: '/auth/test', headers: { 'x-api-key': key } });
      assertProblem(res, 401, 'auth-failed');
      details.add(res.json.detail);
      // The address pays: the anonymous limit, not a keypair's.
      assert.notEqual(res.headers['x-ratelimit-limit'], '37');
      assert.ok(res.headers['x-ratelimit-limit'] !== undefined);
    }
    assert.equal(details.size, 1);
    // Failed attempts log their reason with the key id where known, never the key.
    await until(async () => gw.output.some((l) => l.includes('"reason":"expired API key"') && l.includes(expired.id)));
    assert.ok(gw.output.some((l) => l.includes('"reason":"unknown API key"')));
  });

  it('refuses a key in the query string with 400 and never logs it', async () => {
    const res = await gw.request({ method: 'GET', target: `/auth/test?api_key=${full.api_key}` });
    assertProblem(res, 400, 'invalid-auth-params');
    assert.match(res.json.detail, /query string/);
  });

  it('refuses x-api-key together with a Backend.AI signature (400)', async () => {
    const res = await gw.signed({ method: 'GET', target: '/auth/test', as: ALICE, headers: { 'x-api-key': full.api_key } });
    assertProblem(res, 400, 'invalid-auth-params');
  });

  it('the access log and the metrics carry the scheme and the key id', async () => {
    await gw.request({ method: 'GET', target: '/auth/test', headers: { 'x-api-key': full.api_key } });
    await until(async () => gw.output.some((l) => l.includes('"msg":"request"') && l.includes('"scheme":"apikey"') && l.includes(`"credentialId":"${full.id}"`)));
    const metrics = await gw.request({ method: 'GET', target: '/metrics' });
    assert.match(metrics.text, new RegExp(`kernelgate_credential_requests_total\\{scheme="apikey",credential="${full.id}"\\} \\d+`));
    assert.ok(!metrics.text.includes('kg_'));
  });

  it('HMAC still works beside it', async () => {
    assert.equal((await gw.signed({ method: 'GET', target: '/auth/test', as: ALICE })).status, 200);
  });
});

describe('static API keys off (default [auth] schemes)', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway({ keypairs: [ALICE] });
  });
  after(() => gw.stop());

  it('ignores x-api-key: 401 no credentials, as before', async () => {
    const key = await addKey(gw.keypairDir, ALICE.accessKey);
    await new Promise((r) => setTimeout(r, 200));
    const res = await gw.request({ method: 'GET', target: '/auth/test', headers: { 'x-api-key': key.api_key } });
    assertProblem(res, 401, 'auth-failed');
    assert.equal(res.json.detail, 'No credentials were given.');
    assert.equal((await gw.signed({ method: 'GET', target: '/auth/test', as: ALICE })).status, 200);
  });
});

describe('HMAC off ([auth] schemes = ["apikey"])', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway({ config: '[auth]\nschemes = ["apikey"]\n', keypairs: [ALICE] });
  });
  after(() => gw.stop());

  it('refuses Backend.AI signatures with 401', async () => {
    assertProblem(await gw.signed({ method: 'GET', target: '/auth/test', as: ALICE }), 401, 'auth-failed');
  });
});


describe('API key lookup (unit)', () => {
  /** A minimal context: headers only, no body. */
  function ctxWith(headers: Record<string, string>, querystring = '') {
    const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
    return {
      get: (name: string) => lower[name.toLowerCase()] ?? '',
      querystring,
      req: { headers: lower },
      state: {} as Record<string, unknown>,
    } as never;
  }

  it('looks keys up by SHA-256 only, compares the hash in constant time, and answers every refusal alike', async () => {
    const { apiKeyAuthenticator } = await import('../src/auth/authenticators/apikey.js');
    const key = `kg_${'b'.repeat(32)}`;
    const hash = createHash('sha256').update(key).digest('hex');
    const seen: string[] = [];
    const keypair = { accessKey: ALICE.accessKey, secretKey: ALICE.secretKey, role: 'user', domain: 'default', user: '', isActive: true } as const;
    const entry = { id: 'abc123', sha256: hash, scope: 'full', createdAt: 0 } as const;
    const auth = apiKeyAuthenticator({
      lookup: (h) => {
        seen.push(h);
        // An index that answers for the wrong hash must still be refused by the comparison.
        return h === hash || h.startsWith('0') ? { keypair, key: entry } : undefined;
      },
      bodyLimit: 1024,
      limits: { anonymous: 10, keypair: 100 },
      apiVersion: 'v8.20240915',
      refuseBeforeBody: async () => {},
    });
    const p = await auth.authenticate(ctxWith({ 'x-api-key': key }));
    assert.equal(p.scheme, 'apikey');
    assert.equal(p.credentialId, 'abc123');
    assert.deepEqual(seen, [hash]);
    const details = new Set<string>();
    let wrongIndexed = '';
    for (let i = 0; wrongIndexed === ''; i++) {
      const candidate = `kg_${String(i).padStart(32, 'c')}`;
      if (createHash('sha256').update(candidate).digest('hex').startsWith('0')) wrongIndexed = candidate;
    }
    for (const bad of [`kg_${'c'.repeat(32)}`, wrongIndexed, `${key}x`, 'kg_short']) {
      await assert.rejects(auth.authenticate(ctxWith({ 'x-api-key': bad })), (e: { status: number; message: string }) => {
        assert.equal(e.status, 401);
        details.add(e.message);
        return true;
      });
    }
    assert.equal(details.size, 1);
    // Malformed keys never reach the index; the index never sees a key, only hashes.
    assert.ok(seen.every((h) => /^[0-9a-f]{64}$/.test(h)));
    assert.equal(seen.length, 3);
  });
});

describe('kernelgate proxy --auth apikey: per-visitor identity', () => {
  let gw: TestGateway;
  let proxy: ReturnType<typeof spawn>;
  let port = 0;
  let a: { id: string; api_key: string };
  let b: { id: string; api_key: string };
  before(async () => {
    gw = await startGateway({ keypairs: [ALICE, BOB, LIMITED] });
    a = await addKey(gw.keypairDir, ALICE.accessKey);
    b = await addKey(gw.keypairDir, LIMITED.accessKey);
    proxy = spawn(process.execPath, [BIN, 'proxy', '--auth', 'apikey', '--dir', gw.keypairDir, '--upstream', gw.url, '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
    port = await new Promise<number>((resolvePort, reject) => {
      proxy.once('exit', (code) => reject(new Error(`proxy exited ${code}`)));
      createInterface({ input: proxy.stdout! }).on('line', (line) => {
        if (line.includes('kernelgate proxy listening')) resolvePort(JSON.parse(line).port);
      });
    });
  });
  after(async () => {
    proxy.kill();
    await gw.stop();
  });
  const via = (req: Parameters<typeof rawRequest>[1]) => rawRequest(port, req);

  it('signs with each visitor’s own keypair: own quota, own sessions; B cannot list, use or delete A’s', async () => {
    assertProblem(await via({ method: 'GET', target: '/auth/test' }), 401, 'auth-failed');
    assertProblem(await via({ method: 'GET', target: '/auth/test', headers: { 'x-api-key': `kg_${'Z'.repeat(32)}` } }), 401, 'auth-failed');
    const created = await via({ method: 'POST', target: '/session', headers: { 'x-api-key': a.api_key, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'mine', image: 'ocr' }) });
    assert.equal(created.status, 201, created.text);
    const limitB = await via({ method: 'GET', target: '/auth/test', headers: { 'x-api-key': b.api_key } });
    assert.equal(limitB.status, 200, limitB.text);
    assert.equal(limitB.headers['x-ratelimit-limit'], '37');
    const listedB = await via({ method: 'GET', target: '/session', headers: { 'x-api-key': b.api_key } });
    assert.deepEqual(listedB.json.sessions, []);
    assert.equal((await via({ method: 'GET', target: '/session/mine', headers: { 'x-api-key': b.api_key } })).status, 404);
    assert.equal((await via({ method: 'POST', target: '/session/mine/infer', headers: { 'x-api-key': b.api_key, 'content-type': 'image/png' }, body: await renderText(['x']) })).status, 404);
    assert.equal((await via({ method: 'DELETE', target: '/session/mine', headers: { 'x-api-key': b.api_key } })).status, 404);
    const listedA = await via({ method: 'GET', target: '/session', headers: { 'x-api-key': a.api_key } });
    assert.deepEqual(listedA.json.sessions.map((s: { sessionName: string }) => s.sessionName), ['mine']);
  });
});
