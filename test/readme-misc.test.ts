/**
 * README claims outside the big themes: which endpoints are public, the library entry points,
 * 413 from Content-Length before the body is read, route templates in metrics, /health sections,
 * keypair lookups that never touch the disk, config paths relative to the config file, and what
 * the signing proxy passes on.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { connect } from 'node:net';
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfigFile } from '../src/config/config.js';
import { KeypairStore } from '../src/keypairs/keypair-store.js';
import { createSigningProxy } from '../src/proxy/proxy.js';
import { ADMIN, ALICE, BOB, rawRequest, startGateway, writeKeypair, type TestGateway } from './helpers/gateway.js';
import { assertProblem } from './helpers/problems.js';

const require = createRequire(import.meta.url);
const PUBLIC = new Set(['GET /', 'GET /health', 'GET /metrics', 'GET /openapi.json']);

describe('README "Endpoints", "Library", "Metrics", "Health" and body limits on one gateway', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway({ keypairs: [ALICE, BOB, ADMIN], config: '[server]\nbody_limit_bytes = 65536\n' });
  });
  after(() => gw?.stop());

  it('GET /, /health, /metrics, /openapi.json are public; every other route refuses an unsigned request with 401', async () => {
    const doc = (await gw.request({ method: 'GET', target: '/openapi.json' })).json;
    const seen: string[] = [];
    for (const [path, ops] of Object.entries(doc.paths as Record<string, Record<string, unknown>>)) {
      for (const method of Object.keys(ops)) {
        const route = `${method.toUpperCase()} ${path}`;
        seen.push(route);
        const target = path.replace(/\{[^}]+\}|:[A-Za-z_]+/g, 'x');
        const res = await gw.request({ method: method.toUpperCase(), target, headers: { 'Content-Type': 'application/json' }, body: method === 'get' ? undefined : '{}' });
        if (PUBLIC.has(route)) assert.equal(res.status, 200, `${route} is public: ${res.text}`);
        else assertProblem(res, 401, 'auth-failed');
      }
    }
    for (const route of PUBLIC) assert.ok(seen.includes(route), `${route} is in the route table`);
    assert.ok(seen.length > PUBLIC.size + 5, `only ${seen.length} routes`);
  });

  it('/openapi.json documents the schemas that validate requests (POST /session as the example)', async () => {
    const doc = (await gw.request({ method: 'GET', target: '/openapi.json' })).json;
    const schema = doc.paths['/session'].post.requestBody.content['application/json'].schema;
    const { SESSION_NAME } = await import('../src/validation/names.js');
    assert.equal(schema.properties.name.pattern, SESSION_NAME);
    assert.deepEqual([...schema.required].sort(), ['image', 'name']);
    const create = (body: unknown) => gw.signed({ method: 'POST', target: '/session', as: ALICE, body: JSON.stringify(body) });
    // What the document forbids is refused; what it allows passes validation.
    assert.ok(!new RegExp(schema.properties.name.pattern).test('-x'));
    assertProblem(await create({ name: '-x', image: 'ocr' }), 400, 'invalid-api-params');
    assertProblem(await create({ name: 'ok', image: 'i'.repeat(schema.properties.image.maxLength + 1) }), 400, 'invalid-api-params');
    assertProblem(await create({ image: 'ocr' }), 400, 'invalid-api-params');
    assert.equal((await create({ name: 'documented', image: 'ocr' })).status, 201);
    // Signed routes say they are signed; public ones carry an empty security list.
    assert.deepEqual(doc.paths['/health'].get.security, []);
    assert.equal(doc.paths['/session'].post.security, undefined);
  });

  it('the library: KernelgateClient and signRequest from "kernelgate", the signing core from "kernelgate/signing"', async () => {
    const { KernelgateClient, signRequest } = await import('kernelgate');
    const client = new KernelgateClient({ endpoint: gw.url, accessKey: ALICE.accessKey, secretKey: ALICE.secretKey });
    const created = await client.json<{ sessionName: string; created: boolean }>('POST', '/session', { json: { name: 'lib1', image: 'ocr' } });
    assert.equal(created.sessionName, 'lib1');
    assert.equal(created.created, true);
    const echoed = await client.request('GET', '/auth/test', { query: { echo: 'hello world' } });
    assert.equal(echoed.status, 200);
    assert.deepEqual(await echoed.json(), { authorized: 'yes', echo: 'hello world' });
    const { headers } = signRequest({ method: 'GET', target: '/auth/test', host: `127.0.0.1:${gw.port}`, accessKey: ALICE.accessKey, secretKey: ALICE.secretKey });
    assert.equal((await gw.request({ method: 'GET', target: '/auth/test', headers })).status, 200);

    const signing = (await import('kernelgate/signing')) as Record<string, unknown>;
    for (const name of ['stringToSign', 'canonicalContentType', 'trimHeaderValue', 'parseSigningDate', 'deriveSigningKey', 'computeSignature', 'parseAuthorization', 'signRequest']) {
      assert.equal(typeof signing[name], 'function', `kernelgate/signing exports ${name}`);
    }
  });

  it('a body over body_limit_bytes is refused with 413 from Content-Length, before it is sent', async () => {
    const host = `127.0.0.1:${gw.port}`;
    // Signed for the whole 10 MB, so nothing but its size can be wrong with it.
    const { signRequest } = await import('../src/signing/sign-request.js');
    const signed = signRequest({ method: 'POST', target: '/auth/test', host, accessKey: ALICE.accessKey, secretKey: ALICE.secretKey, body: Buffer.alloc(10_000_000, 0x20), contentType: 'application/json' });
    const signedHeaders = Object.entries(signed.headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(gw.port, '127.0.0.1', () =>
        // Headers only: the 10 MB body never comes. An answer proves nothing waited for it.
        socket.write(`POST /auth/test HTTP/1.1\r\nHost: ${host}\r\n${signedHeaders}Content-Length: 10000000\r\n\r\n`),
      );
      let data = '';
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`no answer without the body; got ${JSON.stringify(data)}`));
      }, 5_000);
      socket.on('data', (d) => {
        data += d.toString();
        if (data.includes('\r\n\r\n') && data.includes('}')) {
          clearTimeout(timer);
          socket.destroy();
          resolve(data);
        }
      });
      socket.on('error', reject);
    });
    assert.match(answer, /^HTTP\/1\.1 413/);
    assert.match(answer, /request-too-large/);
  });

  it('/metrics labels requests by route template, so the label set stays small', async () => {
    for (const name of ['alpha', 'beta', 'gamma']) {
      assertProblem(await gw.signed({ method: 'GET', target: `/session/${name}`, as: BOB }), 404, 'session-not-found');
    }
    const text = (await gw.request({ method: 'GET', target: '/metrics' })).text;
    assert.match(text, /kernelgate_http_requests_total\{[^}]*route="\/session\/:name"[^}]*status="404"[^}]*\} [3-9]/);
    assert.match(text, /kernelgate_http_request_duration_seconds_bucket\{[^}]*route="\/session\/:name"/);
    for (const name of ['alpha', 'beta', 'gamma']) assert.ok(!text.includes(`/session/${name}`), `a concrete path became a label: ${name}`);
    // Node's default process metrics are there too.
    assert.match(text, /^process_cpu_user_seconds_total /m);
  });

  it('/health has one section per part: ratelimit, keypairs, sessions, inference (detail for admins)', async () => {
    const pub = await gw.request({ method: 'GET', target: '/health' });
    assert.equal(pub.status, 200);
    for (const part of ['ratelimit', 'keypairs', 'sessions', 'inference']) assert.equal(pub.json[part].status, 'ok', pub.text);
    const health = await gw.signed({ method: 'GET', target: '/health/detail', as: ADMIN });
    assert.equal(health.status, 200, health.text);
    assert.equal(health.json.status, 'ok');
    assert.equal(health.json.ratelimit.status, 'ok');
    assert.equal(health.json.keypairs.loaded, 3);
    assert.equal(health.json.sessions.status, 'ok');
    assert.equal(health.json.inference.status, 'ok');
    assert.ok('ocr' in health.json.inference.models, JSON.stringify(health.json.inference));
  });
});

describe('README "Keypair files": lookups never go to disk; the rescan picks up what watching missed', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'kg-readme-kp-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('a hit and a miss touch no file system function', () => {
    writeKeypair(dir, ALICE);
    const store = new KeypairStore(dir);
    store.rescan(); // what start() does first; no watcher, no timer here
    const fs = require('node:fs') as Record<string, unknown>;
    const names = Object.keys(fs).filter((k) => typeof fs[k] === 'function' && /^(read|stat|lstat|open|access|exists|realpath|opendir|fstat)/.test(k));
    const originals = new Map(names.map((n) => [n, fs[n]]));
    let calls: string[] = [];
    for (const n of names) {
      fs[n] = (...args: unknown[]) => {
        calls.push(n);
        return (originals.get(n) as (...a: unknown[]) => unknown)(...args);
      };
    }
    syncBuiltinESMExports();
    try {
      calls = [];
      assert.equal(store.get(ALICE.accessKey)?.secretKey, ALICE.secretKey);
      assert.equal(store.get('AKIAKGATENOSUCHKEY11'), undefined);
      assert.equal(store.get('../../etc/passwd'), undefined);
      assert.deepEqual(calls, [], 'lookups went to disk');
      store.rescan();
      assert.ok(calls.length > 0, 'the spy does see file system calls (a rescan makes some)');
    } finally {
      for (const [n, f] of originals) fs[n] = f;
      syncBuiltinESMExports();
    }
  });

  it('a rescan adds new files, applies edits and drops deleted ones', () => {
    const store = new KeypairStore(dir);
    store.rescan();
    assert.equal(store.get(BOB.accessKey), undefined);
    const file = writeKeypair(dir, BOB);
    assert.equal(store.get(BOB.accessKey), undefined, 'no watcher: not seen until the rescan');
    store.rescan();
    assert.equal(store.get(BOB.accessKey)?.isActive, true);
    writeKeypair(dir, { ...BOB, isActive: false });
    // The mtime must move for the edit to be noticed; make sure it does on coarse file systems.
    const later = new Date(Date.now() + 5_000);
    require('node:fs').utimesSync(file, later, later);
    store.rescan();
    assert.equal(store.get(BOB.accessKey)?.isActive, false);
    unlinkSync(file);
    store.rescan();
    assert.equal(store.get(BOB.accessKey), undefined);
  });
});

describe('README "Configuration": relative paths resolve against the config file\'s folder', () => {
  it('keypairs.dir and inference.models_dir', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kg-readme-cfg-'));
    try {
      mkdirSync(join(dir, 'etc'));
      const file = join(dir, 'etc', 'gateway.toml');
      writeFileSync(file, '[keypairs]\ndir = "kp"\n[inference]\nmodels_dir = "../models"\n');
      const config = loadConfigFile(file);
      assert.equal(config.keypairs.dir, join(dir, 'etc', 'kp'));
      assert.equal(config.inference.models_dir, join(dir, 'models'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('README "CLI": the signing proxy passes on none of the client\'s own credentials, cookies or other headers', () => {
  let upstream: ReturnType<typeof createServer>;
  let received: IncomingHttpHeaders[] = [];
  let proxy: ReturnType<typeof createSigningProxy>;
  let port: number;
  before(async () => {
    upstream = createServer((req, res) => {
      req.resume();
      res.setHeader('Content-Type', 'application/json');
      // The proxy asks the gateway for its keypair's role before it forwards anything (admins are refused).
      if (req.url?.startsWith('/auth/role')) return void res.end('{"role":"user","domain":"default"}');
      received.push(req.headers);
      res.end('{"ok":true}');
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
    const up = upstream.address() as { port: number };
    proxy = createSigningProxy({ upstream: `http://127.0.0.1:${up.port}`, accessKey: ALICE.accessKey, secretKey: ALICE.secretKey, port: 0, clientLimit: 100, clientWindowSeconds: 60 });
    port = (await proxy.listen()).port;
  });
  after(async () => {
    await proxy?.close();
    // The proxy's fetch keeps its upstream connection alive; close() alone would wait for it forever.
    upstream?.closeAllConnections();
    await new Promise((r) => upstream?.close(r));
  });

  it('forwards a signed request without Authorization, Cookie or custom headers of the client', async () => {
    received = [];
    const res = await rawRequest(port, {
      method: 'POST',
      target: '/auth/test',
      body: '{"echo":"x"}',
      headers: {
        'Content-Type': 'application/json',
        Authorization: 'Bearer client-token-123',
        Cookie: 'session=cookie-value-456',
        'X-Custom-Thing': 'custom-789',
        'X-Forwarded-For': '198.51.100.7',
      },
    });
    assert.equal(res.status, 200, res.text);
    assert.equal(received.length, 1);
    const seen = received[0];
    const flat = JSON.stringify(seen);
    for (const leak of ['client-token-123', 'cookie-value-456', 'custom-789']) assert.ok(!flat.includes(leak), `${leak} reached the gateway: ${flat}`);
    assert.equal(seen.cookie, undefined);
    assert.match(String(seen.authorization), /^BackendAI signMethod=HMAC-SHA256, credential=AKIAKGATEALICE000001:[0-9a-f]{64}$/);
    assert.ok(!flat.includes(ALICE.secretKey));
  });
});

describe('README "Configuration": server.request_timeout_ms bounds the whole request', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway({ keypairs: [ALICE], config: '[server]\nrequest_timeout_ms = 1000\n' });
  });
  after(() => gw?.stop());

  it('a signed request whose body stalls gets a 408 problem document soon after 1 s (not Node\'s 30 s check)', async () => {
    const { signRequest } = await import('../src/signing/sign-request.js');
    const host = `127.0.0.1:${gw.port}`;
    const body = '{"echo":"slow"}';
    const signed = signRequest({ method: 'POST', target: '/auth/test', host, accessKey: ALICE.accessKey, secretKey: ALICE.secretKey, body, contentType: 'application/json' });
    const headers = Object.entries(signed.headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
    const started = Date.now();
    const { answer, ms } = await new Promise<{ answer: string; ms: number }>((resolve, reject) => {
      const socket = connect(gw.port, '127.0.0.1', () => socket.write(`POST /auth/test HTTP/1.1\r\nHost: ${host}\r\n${headers}Content-Length: ${body.length}\r\n\r\n${body.slice(0, 3)}`));
      let data = '';
      let first = 0;
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error('no answer within 10 s'));
      }, 10_000);
      socket.on('data', (d) => {
        first ||= Date.now() - started;
        data += d.toString();
      });
      socket.on('close', () => {
        clearTimeout(timer);
        resolve({ answer: data, ms: first });
      });
      socket.on('error', () => undefined);
    });
    assert.match(answer, /^HTTP\/1\.1 408/, answer);
    assert.match(answer, /application\/problem\+json/);
    assert.ok(ms >= 900, `answered after ${ms} ms, before the limit`);
    assert.ok(ms < 3_000, `answered after ${ms} ms; request_timeout_ms is 1000`);
  });
});
