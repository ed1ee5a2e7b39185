/**
 * Issue 10 item 4: `kernelgate proxy --auth apikey,oidc`: each visitor is identified by its own API key
 * (x-api-key or DeepStack's api_key / admin_key form field) or bearer token (from an OpenID Provider the
 * test controls), and the proxy signs upstream with that visitor's keypair: own quota, own sessions, and
 * no visitor can list, use or delete another's. Form credentials are removed before forwarding.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import busboy from 'busboy';
import fc from 'fast-check';
import { formatKeypair, type Keypair } from '../src/keypairs/keypair.js';
import { createSigningProxy } from '../src/proxy/proxy.js';
import { stripFormCredentials } from '../src/proxy/form-credentials.js';
import { visitorIdentity } from '../src/proxy/visitors.js';
import { BIN, rawRequest, startGateway, type TestGateway, type TestKeypair } from './helpers/gateway.js';
import { accessToken, idToken, makeSigningKey, startJwksProvider, type JwksProvider, type SigningKey } from './helpers/jwks-provider.js';
import { assertProblem } from './helpers/problems.js';
import { renderText } from './helpers/render-text.js';

const CLIENT = 'web-app';
const A: TestKeypair = { accessKey: 'AKIAKGATEVISITORA001', secretKey: 'visitorASecretKey000000000000000000000A1', role: 'user', user: 'a@example.com', rateLimit: 301 };
const B: TestKeypair = { accessKey: 'AKIAKGATEVISITORB002', secretKey: 'visitorBSecretKey000000000000000000000B2', role: 'user', user: 'b@example.com', rateLimit: 302, oidcSubjects: ['visitor-b'] };
const BOSS: TestKeypair = { accessKey: 'AKIAKGATEVISITADM003', secretKey: 'visitorAdminSecretKey00000000000000000C3', role: 'admin', user: 'boss@example.com', oidcSubjects: ['visitor-boss'] };

const BASE62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
function newApiKey(id: string) {
  const key = `kg_${[...randomBytes(32)].map((b) => BASE62[b % 62]).join('')}`;
  return { key, entry: { id, sha256: createHash('sha256').update(key).digest('hex'), scope: 'full' as const, createdAt: Date.now() } };
}
function writeKeypairFile(dir: string, k: TestKeypair, keys: ReturnType<typeof newApiKey>[] = []): void {
  const keypair: Keypair = {
    accessKey: k.accessKey, secretKey: k.secretKey, role: k.role ?? 'user', domain: 'default', user: k.user ?? '',
    rateLimit: k.rateLimit, isActive: true, oidcSubjects: k.oidcSubjects, apiKeys: keys.map((x) => x.entry),
  };
  writeFileSync(join(dir, `${k.accessKey}.toml`), formatKeypair(keypair), { mode: 0o600 });
}

function multipart(parts: Array<{ name: string; value: string | Buffer; filename?: string }>, boundary = 'kgB0undary'): { body: Buffer; contentType: string } {
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const disposition = `form-data; name="${p.name}"${p.filename ? `; filename="${p.filename}"` : ''}`;
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: ${disposition}\r\n${p.filename ? 'Content-Type: image/png\r\n' : ''}\r\n`), Buffer.from(p.value), Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
}

/** Every field and file of a multipart body, as busboy (the gateway's parser) reads it. */
function parseMultipart(body: Buffer, contentType: string): Promise<Array<[string, string]>> {
  return new Promise((resolve, reject) => {
    const out: Array<[string, string]> = [];
    const bb = busboy({ headers: { 'content-type': contentType } });
    bb.on('field', (name, value) => out.push([name, value]));
    bb.on('file', (name, stream) => {
      const bufs: Buffer[] = [];
      stream.on('data', (d: Buffer) => bufs.push(d));
      stream.on('end', () => out.push([name, `file:${Buffer.concat(bufs).toString('hex')}`]));
    });
    bb.on('close', () => resolve(out));
    bb.on('error', reject);
    bb.end(body);
  });
}

describe('kernelgate proxy --auth apikey,oidc (spawned gateway and proxy)', () => {
  let gw: TestGateway;
  let provider: JwksProvider;
  let key: SigningKey;
  let proxy: ChildProcess;
  let port = 0;
  const stderr: string[] = [];
  const aKey = newApiKey('visa01');
  let png: Buffer;

  before(async () => {
    provider = await startJwksProvider();
    key = await makeSigningKey('p1');
    provider.keys = [key.publicJwk];
    gw = await startGateway({ keypairs: [A, B, BOSS] });
    writeKeypairFile(gw.keypairDir, A, [aKey]);
    const config = join(gw.dir, 'proxy.toml');
    writeFileSync(config, `[keypairs]\ndir = ${JSON.stringify(gw.keypairDir)}\n[[auth.oidc]]\nissuer = ${JSON.stringify(provider.url)}\nclient_ids = [${JSON.stringify(CLIENT)}]\n`);
    proxy = spawn(process.execPath, [BIN, 'proxy', '--auth', 'apikey,oidc', '--config', config, '--upstream', gw.url, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    proxy.stderr!.on('data', (d: Buffer) => stderr.push(d.toString()));
    port = await new Promise<number>((resolvePort, reject) => {
      proxy.once('exit', (code) => reject(new Error(`proxy exited ${code}: ${stderr.join('')}`)));
      createInterface({ input: proxy.stdout! }).on('line', (line) => {
        if (line.includes('kernelgate proxy listening')) resolvePort(JSON.parse(line).port);
      });
    });
    proxy.removeAllListeners('exit');
    png = await renderText(['Visitor form']);
  });
  after(async () => {
    proxy?.kill();
    await gw?.stop();
    await provider?.close();
    const logged = stderr.join('');
    assert.ok(!logged.includes(aKey.key), 'no API key in the proxy log');
  });

  const via = (req: Parameters<typeof rawRequest>[1]) => rawRequest(port, req);
  const asA = { 'x-api-key': aKey.key };
  const asB = async () => ({ authorization: `Bearer ${await accessToken(key, provider.url, CLIENT, 'visitor-b')}` });
  const json = { 'content-type': 'application/json' };

  it('visitor A (API key) and visitor B (bearer token) each act as their own keypair, with their own quota', async () => {
    const a = await via({ method: 'POST', target: '/session', headers: { ...asA, ...json }, body: JSON.stringify({ name: 'a-sess', image: 'ocr' }) });
    assert.equal(a.status, 201, a.text);
    assert.equal(a.json.owner_access_key, A.accessKey);
    assert.equal(a.headers['x-ratelimit-limit'], '301');
    const b = await via({ method: 'POST', target: '/session', headers: { ...(await asB()), ...json }, body: JSON.stringify({ name: 'b-sess', image: 'ocr' }) });
    assert.equal(b.status, 201, b.text);
    assert.equal(b.json.owner_access_key, B.accessKey);
    assert.equal(b.headers['x-ratelimit-limit'], '302');
    // A bare id token is a bearer token too.
    const id = await via({ method: 'GET', target: '/session', headers: { authorization: await idToken(key, provider.url, CLIENT, 'visitor-b') } });
    assert.deepEqual(id.json.sessions.map((s: { sessionName: string }) => s.sessionName), ['b-sess']);
  });

  it('tenant isolation: neither visitor can list, use or delete the other\'s sessions, owner_access_key included', async () => {
    for (const [own, other, headers] of [['a-sess', 'b-sess', async () => asA], ['b-sess', 'a-sess', asB]] as const) {
      const h = await headers();
      const listed = await via({ method: 'GET', target: '/session', headers: h });
      assert.deepEqual(listed.json.sessions.map((s: { sessionName: string }) => s.sessionName), [own]);
      assertProblem(await via({ method: 'GET', target: `/session/${other}`, headers: h }), 404, 'session-not-found');
      assertProblem(await via({ method: 'POST', target: `/session/${other}/infer`, headers: { ...h, 'content-type': 'image/png' }, body: png }), 404, 'session-not-found');
      assertProblem(await via({ method: 'DELETE', target: `/session/${other}`, headers: h }), 404, 'session-not-found');
      // The proxy strips owner_access_key: naming the other visitor lists one's own.
      const otherKey = own === 'a-sess' ? B.accessKey : A.accessKey;
      const named = await via({ method: 'GET', target: `/session?owner_access_key=${otherKey}`, headers: h });
      assert.deepEqual(named.json.sessions.map((s: { sessionName: string }) => s.sessionName), [own]);
    }
    // Both sessions are still there for their owners.
    assert.equal((await gw.signed({ method: 'GET', target: '/session/a-sess', as: A })).status, 200);
    assert.equal((await gw.signed({ method: 'GET', target: '/session/b-sess', as: B })).status, 200);
  });

  it('reads DeepStack api_key form fields (multipart and urlencoded)', async () => {
    const form = multipart([{ name: 'api_key', value: aKey.key }, { name: 'image', value: png, filename: 'a.png' }]);
    const r = await via({ method: 'POST', target: '/session/a-sess/infer', headers: { 'content-type': form.contentType }, body: form.body });
    assert.equal(r.status, 200, r.text);
    assert.match(r.json.predictions.map((p: { text: string }) => p.text).join(' '), /Visitor/);
    const url = await via({ method: 'POST', target: '/auth/test', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `api_key=${aKey.key}&echo=form` });
    assert.equal(url.status, 200, url.text);
    assert.equal(url.json.echo, 'form');
    assert.equal(url.headers['x-ratelimit-limit'], '301');
  });

  it('refuses missing, wrong and unclaimed credentials (401), an admin\'s token (403), and logs why', async () => {
    assertProblem(await via({ method: 'GET', target: '/session' }), 401, 'auth-failed');
    assertProblem(await via({ method: 'GET', target: '/session', headers: { 'x-api-key': `kg_${'Q'.repeat(32)}` } }), 401, 'auth-failed');
    const forged = await accessToken(await makeSigningKey('p1'), provider.url, CLIENT, 'visitor-b');
    assertProblem(await via({ method: 'GET', target: '/session', headers: { authorization: `Bearer ${forged}` } }), 401, 'auth-failed');
    assertProblem(await via({ method: 'GET', target: '/session', headers: { authorization: `Bearer ${await accessToken(key, provider.url, CLIENT, 'nobody')}` } }), 401, 'auth-failed');
    assertProblem(await via({ method: 'GET', target: '/session', headers: { authorization: `Bearer ${await accessToken(key, provider.url, CLIENT, 'visitor-boss')}` } }), 403, 'generic-forbidden');
    assertProblem(await via({ method: 'GET', target: '/session', headers: { ...asA, ...(await asB()) } }), 400, 'invalid-auth-params');
    const form = multipart([{ name: 'api_key', value: aKey.key }, { name: 'admin_key', value: aKey.key }]);
    assertProblem(await via({ method: 'POST', target: '/auth/test', headers: { 'content-type': form.contentType }, body: form.body }), 400, 'invalid-auth-params');
    await new Promise((r) => setTimeout(r, 100));
    const logged = stderr.join('');
    assert.match(logged, /"msg":"authentication failed"/);
    assert.match(logged, /no keypair claims this subject/);
    assert.ok(!logged.includes(forged), 'no token in the proxy log');
  });
});

describe('the proxy forwards no form credential (capturing upstream)', () => {
  it('removes api_key / admin_key from the body it signs and sends; everything else arrives byte for byte', async () => {
    const seen: Array<{ headers: IncomingMessage['headers']; body: Buffer }> = [];
    const upstream = createServer((req, res) => {
      const bufs: Buffer[] = [];
      req.on('data', (d: Buffer) => bufs.push(d));
      req.on('end', () => {
        seen.push({ headers: req.headers, body: Buffer.concat(bufs) });
        res.setHeader('content-type', 'application/json');
        res.end('{}');
      });
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    const key = newApiKey('capt01');
    const keypair: Keypair = { accessKey: A.accessKey, secretKey: A.secretKey, role: 'user', domain: 'default', user: '', isActive: true, apiKeys: [key.entry] };
    const identify = visitorIdentity({
      schemes: ['apikey'],
      apiKeys: (h) => (h === key.entry.sha256 ? { keypair, key: key.entry } : undefined),
      bySubject: () => undefined,
      issuers: [],
      warn: () => {},
    });
    const proxy = createSigningProxy({ upstream: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`, accessKey: '', secretKey: '', port: 0, identify });
    const { port } = await proxy.listen();
    try {
      const file = randomBytes(300);
      const form = multipart([{ name: 'note', value: 'keep me' }, { name: 'api_key', value: key.key }, { name: 'image', value: file, filename: 'x.png' }]);
      const r = await rawRequest(port, { method: 'POST', target: '/session/s/infer', headers: { 'content-type': form.contentType }, body: form.body });
      assert.equal(r.status, 200, r.text);
      const sent = seen.at(-1)!;
      assert.match(String(sent.headers.authorization), new RegExp(`credential=${A.accessKey}:`), 'signed with the visitor\'s keypair');
      assert.ok(!sent.body.includes(key.key), 'the key is not forwarded');
      assert.deepEqual(await parseMultipart(sent.body, form.contentType), [['note', 'keep me'], ['image', `file:${file.toString('hex')}`]]);
      const urlencoded = await rawRequest(port, { method: 'POST', target: '/auth/test', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `echo=a%20b&api_key=${key.key}` });
      assert.equal(urlencoded.status, 200);
      assert.equal(seen.at(-1)!.body.toString(), 'echo=a+b');
      const header = await rawRequest(port, { method: 'POST', target: '/auth/test', headers: { 'x-api-key': key.key, 'content-type': 'application/x-www-form-urlencoded' }, body: `admin_key=${key.key}&echo=1` });
      assert.equal(header.status, 200);
      assert.equal(seen.at(-1)!.body.toString(), 'echo=1', 'stripped whichever credential identified the visitor');
    } finally {
      await proxy.close();
      await new Promise<void>((r) => upstream.close(() => r()));
    }
  });
});

describe('stripFormCredentials (fast-check)', () => {
  const name = fc.constantFrom('api_key', 'admin_key', 'image', 'note', 'min_confidence', 'api_keyx', 'API_KEY');
  const value = fc.string({ unit: fc.constantFrom('a', 'b', '-', '\r', '\n', '"', ';', '=', '%', '&'), maxLength: 40 });

  it('any multipart body: the result parses to the same parts minus the credentials', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.record({ name, value, file: fc.boolean() }), { maxLength: 8 }), fc.constantFrom('b0', 'kg-bound', '----WebKitFormBoundaryx7'), async (parts, boundary) => {
        const form = multipart(parts.map((p) => ({ name: p.name, value: p.value, filename: p.file ? 'f.png' : undefined })), boundary);
        const before = await parseMultipart(form.body, form.contentType);
        const after = await parseMultipart(stripFormCredentials(form.body, form.contentType), form.contentType);
        assert.deepEqual(after, before.filter(([n]) => n !== 'api_key' && n !== 'admin_key'));
      }),
      { numRuns: 300 },
    );
  });

  it('a quoted boundary and a preamble are handled; bodies that are not forms are untouched; long adversarial input stays linear', () => {
    const quoted = multipart([{ name: 'api_key', value: 'k' }, { name: 'x', value: 'y' }], 'a b');
    const stripped = stripFormCredentials(quoted.body, 'multipart/form-data; boundary="a b"');
    assert.equal(stripped.toString(), '--a b\r\nContent-Disposition: form-data; name="x"\r\n\r\ny\r\n--a b--\r\n');
    const withPreamble = Buffer.concat([Buffer.from('preamble\r\n'), multipart([{ name: 'api_key', value: 'k' }]).body]);
    assert.equal(stripFormCredentials(withPreamble, 'multipart/form-data; boundary=kgB0undary').toString(), 'preamble\r\n--kgB0undary--\r\n');
    const json = Buffer.from('{"api_key":"k"}');
    assert.equal(stripFormCredentials(json, 'application/json'), json);
    const started = Date.now();
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom('-', '\r', '\n', 'b', 'name="api_key"', 'Content-Disposition: form-data; '), maxLength: 20_000 }), (s) => {
        const out = stripFormCredentials(Buffer.from(s), 'multipart/form-data; boundary=b');
        assert.ok(out.length <= Buffer.byteLength(s));
      }),
      { numRuns: 100 },
    );
    assert.ok(Date.now() - started < 10_000);
  });
});
