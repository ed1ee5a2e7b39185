/** The server-side signing proxy in front of a spawned gateway. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import fc from 'fast-check';
import { checkTarget, createSigningProxy, stripOwnerFromBody, stripOwnerFromQuery, type ProxyOptions } from '../src/proxy/proxy.js';
import { ADMIN, ALICE, BIN, BOB, ROOT, rawRequest, startGateway, writeKeypair, type TestGateway, type TestKeypair } from './helpers/gateway.js';
import { assertProblem } from './helpers/problems.js';
import { freePort } from './helpers/redis-server.js';

const run = promisify(execFile);

describe('signing proxy', () => {
  let gw: TestGateway;
  let proxy: ReturnType<typeof createSigningProxy>;
  let port: number;
  before(async () => {
    gw = await startGateway();
    proxy = createSigningProxy({ upstream: gw.url, accessKey: ALICE.accessKey, secretKey: ALICE.secretKey, port: 0, clientLimit: 12, clientWindowSeconds: 60 });
    port = (await proxy.listen()).port;
  });
  after(async () => {
    await proxy.close();
    await gw.stop();
  });

  it('signs unsigned requests with its server-side keypair', async () => {
    const res = await rawRequest(port, { method: 'GET', target: '/auth/test?echo=via%20proxy' });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json, { authorized: 'yes', echo: 'via proxy' });
    assert.equal(res.headers['x-ratelimit-limit'], '10000', 'the gateway charged the keypair');
    const post = await rawRequest(port, { method: 'POST', target: '/auth/test', headers: { 'Content-Type': 'application/json' }, body: '{"echo":"body"}' });
    assert.equal(post.json.echo, 'body');
  });

  it('ignores credentials a browser sends and never reveals the secret', async () => {
    const res = await rawRequest(port, { method: 'GET', target: '/auth/test', headers: { Authorization: 'BackendAI signMethod=HMAC-SHA256, credential=AKIAXXXXXXXXXXXXXXXX:00' } });
    assert.equal(res.status, 200);
    assert.ok(!res.text.includes(ALICE.secretKey));
    assert.ok(!JSON.stringify(res.headers).includes(ALICE.secretKey));
  });

  it('forwards only allowed paths', async () => {
    for (const target of ['/health', '/', '/auth/role', '/session/../auth/role']) {
      const res = await rawRequest(port, { method: 'GET', target });
      assert.equal(res.status, 403, target);
      assert.equal(res.json.type, 'https://api.backend.ai/probs/generic-forbidden');
    }
  });

  it('passes the gateway errors through as problem documents', async () => {
    const res = await rawRequest(port, { method: 'GET', target: '/session/nope' });
    assert.equal(res.status, 404);
    assert.equal(res.json.type, 'https://api.backend.ai/probs/session-not-found');
  });

  it('limits each client address, so one visitor cannot spend the shared keypair for all', async () => {
    let last;
    for (let i = 0; i < 12 && (last = await rawRequest(port, { method: 'GET', target: '/auth/test' })).status !== 429; i++);
    assert.equal(last!.status, 429);
    assert.equal(last!.json.type, 'https://api.backend.ai/probs/rate-limit-exceeded');
    assert.ok(Number(last!.headers['retry-after']) >= 1);
  });
});

describe('signing proxy hardening', () => {
  let gw: TestGateway;
  const proxies: Array<ReturnType<typeof createSigningProxy>> = [];
  const start = async (opts: Partial<ProxyOptions> & { as?: TestKeypair } = {}) => {
    const { as = ALICE, ...rest } = opts;
    const p = createSigningProxy({ upstream: gw.url, accessKey: as.accessKey, secretKey: as.secretKey, port: 0, ...rest });
    const port = (await p.listen()).port;
    proxies.push(p);
    return port;
  };
  before(async () => {
    gw = await startGateway();
  });
  after(async () => {
    for (const p of proxies) await p.close();
    await gw.stop();
  });

  it('refuses admin and superadmin keypairs unless allowAdmin', async () => {
    await assert.rejects(start({ as: ADMIN }), /refuses to sign with an admin keypair .*--allow-admin/);
    await assert.rejects(start({ as: ROOT }), /refuses to sign with a superadmin keypair/);
    const port = await start({ as: ADMIN, allowAdmin: true });
    const res = await rawRequest(port, { method: 'GET', target: '/auth/test' });
    assert.equal(res.status, 200);
  });

  it('refuses an admin keypair in the CLI, from a file or from the environment', async () => {
    const file = writeKeypair(gw.dir, ADMIN);
    const fromFile = await run(process.execPath, [BIN, 'proxy', '-k', file, '--upstream', gw.url, '--port', '0']).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => e,
    );
    assert.equal(fromFile.code, 1);
    assert.match(fromFile.stderr, /refusing to sign with the admin keypair .*--allow-admin/);
    const fromEnv = await run(process.execPath, [BIN, 'proxy', '--upstream', gw.url, '--port', '0'], {
      env: { ...process.env, KERNELGATE_ACCESS_KEY: ROOT.accessKey, KERNELGATE_SECRET_KEY: ROOT.secretKey },
    }).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => e,
    );
    assert.equal(fromEnv.code, 1);
    assert.match(fromEnv.stderr, /superadmin keypair .*--allow-admin/);
  });

  it('asks the gateway at the first request when it was down at start, and then refuses an admin keypair', async () => {
    const port = await freePort();
    const early = createSigningProxy({ upstream: `http://127.0.0.1:${port}`, accessKey: ADMIN.accessKey, secretKey: ADMIN.secretKey, port: 0 });
    proxies.push(early);
    const proxyPort = (await early.listen()).port;
    assertProblem(await rawRequest(proxyPort, { method: 'GET', target: '/auth/test' }), 503, 'service-unavailable');
    // The gateway comes up on that port with the admin keypair.
    const config = join(gw.dir, 'late.toml');
    writeFileSync(config, `[log]\nlevel = "warn"\n[keypairs]\ndir = ${JSON.stringify(gw.keypairDir)}\n`);
    const late = spawn(process.execPath, [BIN, 'serve', '--config', config, '--port', String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolveUp, reject) => {
        late.once('exit', (code) => reject(new Error(`gateway exited ${code}`)));
        createInterface({ input: late.stdout! }).on('line', (line) => line.includes('kernelgate listening') && resolveUp());
      });
      const refused = await rawRequest(proxyPort, { method: 'GET', target: '/session' });
      assertProblem(refused, 503, 'service-unavailable');
      assert.match(refused.json.detail, /not configured/);
      assert.ok(!refused.text.includes(ADMIN.accessKey));
    } finally {
      late.removeAllListeners('exit');
      const exited = new Promise((r) => late.once('exit', r));
      late.kill('SIGTERM');
      await exited;
    }
  });

  it('leaves /models out of the default allow-list', async () => {
    const port = await start({ as: ADMIN, allowAdmin: true });
    for (const [method, target] of [['GET', '/models'], ['GET', '/models/backup'], ['DELETE', '/models/ocr'], ['POST', '/models/restore']]) {
      const res = await rawRequest(port, { method, target });
      assertProblem(res, 403, 'generic-forbidden');
    }
  });

  it('strips owner_access_key from the query string and JSON and form bodies unless allowOwner', async () => {
    const port = await start({ as: ADMIN, allowAdmin: true });
    const made = await rawRequest(port, {
      method: 'POST',
      target: `/session?owner%5Faccess%5Fkey=${BOB.accessKey}`,
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'via-proxy', image: 'ocr', owner_access_key: BOB.accessKey }),
    });
    assert.equal(made.status, 201, made.text);
    assert.equal(made.json.owner_access_key, ADMIN.accessKey, 'the session belongs to the proxy keypair, not to BOB');
    for (const target of [`/session?owner_access_key=${BOB.accessKey}`, `/session?x=1&owner_access_key=${BOB.accessKey}&y=2`, `/session?owner_access_key+=${BOB.accessKey}`]) {
      const listed = await rawRequest(port, { method: 'GET', target });
      assert.equal(listed.status, 200, `${target}: ${listed.text}`);
      assert.deepEqual(listed.json.sessions.map((s: { sessionName: string }) => s.sessionName), ['via-proxy'], target);
    }
    const form = await rawRequest(port, {
      method: 'POST',
      target: '/session',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: `name=via-form&image=ocr&owner_access_key=${BOB.accessKey}`,
    });
    assert.equal(form.status, 201, form.text);
    assert.equal(form.json.owner_access_key, ADMIN.accessKey, form.text);
    assert.equal(form.json.sessionName, 'via-form');
    const bobs = await gw.signed({ method: 'GET', target: '/session', as: BOB });
    assert.deepEqual(bobs.json.sessions, []);
    // Told otherwise, it passes it on (and the gateway decides).
    const open = await start({ as: ADMIN, allowAdmin: true, allowOwner: true });
    const forBob = await rawRequest(open, { method: 'GET', target: `/session?owner_access_key=${BOB.accessKey}` });
    assert.equal(forBob.status, 200);
    assert.deepEqual(forBob.json.sessions, []);
    const userProxy = await start({ allowOwner: true });
    assertProblem(await rawRequest(userProxy, { method: 'GET', target: `/session?owner_access_key=${BOB.accessKey}` }), 403);
  });

  it('checks the decoded path that is forwarded: no encoded dot segments or slashes', async () => {
    const port = await start();
    const targets = [
      '/session/%2e%2e/metrics',
      '/session/%2E%2E/health',
      '/session/.%2e/metrics',
      '/session/%2e%2e%2fmetrics',
      '/session/..%2Fmetrics',
      '/session%2f..%2fmetrics',
      '/session/..',
      '/session/./../metrics',
      '/session/%5c..%5cmetrics',
      '/session\\..\\metrics',
      '/auth/test/%2e%2e/%2e%2e/metrics',
      '//127.0.0.1/session',
      '/session//../metrics',
      '*',
    ];
    for (const target of targets) {
      const res = await rawRequest(port, { method: 'GET', target });
      assert.ok(res.status === 403 || res.status === 400, `${target}: ${res.status} ${res.text.slice(0, 80)}`);
      assert.ok(!res.text.includes('kernelgate_'), `${target} reached /metrics`);
    }
    assertProblem(await rawRequest(port, { method: 'GET', target: '/session/%E0%A4%A' }), 400);
    // Plain encoded characters in a segment are fine and reach the gateway as sent.
    const odd = await rawRequest(port, { method: 'GET', target: '/session/no%20such' });
    assertProblem(odd, 404, 'session-not-found');
  });

  it('counts IPv6 visitors per /64 and believes X-Forwarded-For only from its trusted proxies', async () => {
    const port = await start({ clientLimit: 2, clientWindowSeconds: 60, trustedProxies: ['127.0.0.1'] });
    const from = (address: string) => rawRequest(port, { method: 'GET', target: '/auth/test', headers: { 'X-Forwarded-For': address } });
    assert.equal((await from('2001:db8:1:2::1')).status, 200);
    assert.equal((await from('2001:db8:1:2:ffff:ffff:ffff:fffe')).status, 200);
    assertProblem(await from('2001:db8:1:2::abcd'), 429, 'rate-limit-exceeded'); // same /64
    assert.equal((await from('2001:db8:1:3::1')).status, 200); // the next /64
    assert.equal((await from('192.0.2.7')).status, 200);
    // Without a trusted-proxy list, X-Forwarded-For is the client's say-so and is ignored.
    const plain = await start({ clientLimit: 2, clientWindowSeconds: 60 });
    const spoof = (address: string) => rawRequest(plain, { method: 'GET', target: '/auth/test', headers: { 'X-Forwarded-For': address } });
    assert.equal((await spoof('192.0.2.1')).status, 200);
    assert.equal((await spoof('192.0.2.2')).status, 200);
    assertProblem(await spoof('192.0.2.3'), 429);
  });

  it('answers TRACE with 405 and a body on GET or HEAD with 400, not 503', async () => {
    const port = await start();
    const trace = await rawRequest(port, { method: 'TRACE', target: '/auth/test' });
    assertProblem(trace, 405, 'method-not-allowed');
    assert.match(String(trace.headers.allow), /GET/);
    assertProblem(await rawRequest(port, { method: 'GET', target: '/auth/test', headers: { 'Content-Type': 'application/json' }, body: '{"echo":"x"}' }), 400, 'generic-bad-request');
    const head = await rawRequest(port, { method: 'HEAD', target: '/auth/test', body: 'x' });
    assert.equal(head.status, 400);
    assert.equal((await rawRequest(port, { method: 'GET', target: '/auth/test' })).status, 200, 'the proxy still serves');
  });

  it('passes back only known response headers, Set-Cookie unmerged, hop-by-hop and Connection-named ones dropped', async () => {
    // The gateway sends none of these; a small upstream that does stands in for a misbehaving one.
    const upstream = createServer((req, res) => {
      if (req.url === '/auth/role') return res.end(JSON.stringify({ role: 'user' }));
      res.setHeader('Content-Type', 'application/json');
      res.setHeader('Set-Cookie', ['a=1; Path=/', 'b=2; Expires=Wed, 21 Oct 2037 07:28:00 GMT']);
      res.setHeader('Connection', 'keep-alive, x-ratelimit-window');
      res.setHeader('Keep-Alive', 'timeout=5');
      res.setHeader('X-RateLimit-Limit', '7');
      res.setHeader('X-RateLimit-Window', '60');
      res.setHeader('RateLimit-Policy', '"keypair";q=7;w=60');
      res.setHeader('ETag', '"abc"');
      res.setHeader('Server', 'internal/1.2.3');
      res.setHeader('X-Powered-By', 'secret-stack');
      res.setHeader('X-Upstream-Debug', '/srv/kernelgate');
      res.setHeader('Proxy-Authenticate', 'Basic');
      res.setHeader('Trailer', 'x-foo');
      res.setHeader('Upgrade', 'h2c');
      res.end('{"ok":true}');
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
    try {
      const p = createSigningProxy({ upstream: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`, accessKey: ALICE.accessKey, secretKey: ALICE.secretKey, port: 0 });
      proxies.push(p);
      const port = (await p.listen()).port;
      const res = await rawRequest(port, { method: 'GET', target: '/session' });
      assert.equal(res.status, 200);
      assert.deepEqual(res.headers['set-cookie'], ['a=1; Path=/', 'b=2; Expires=Wed, 21 Oct 2037 07:28:00 GMT']);
      assert.equal(res.headers['x-ratelimit-limit'], '7');
      assert.equal(res.headers['ratelimit-policy'], '"keypair";q=7;w=60');
      assert.equal(res.headers.etag, '"abc"');
      assert.equal(res.headers['content-type'], 'application/json');
      assert.equal(res.headers['content-length'], String('{"ok":true}'.length));
      for (const name of ['x-ratelimit-window', 'keep-alive', 'server', 'x-powered-by', 'x-upstream-debug', 'proxy-authenticate', 'trailer', 'upgrade']) {
        assert.equal(res.headers[name], undefined, name);
      }
      assert.deepEqual(res.json, { ok: true });
    } finally {
      await new Promise((r) => upstream.close(r));
    }
  });

  it('passes the gateway rate-limit headers and problem documents', async () => {
    const port = await start();
    const res = await rawRequest(port, { method: 'GET', target: '/auth/test' });
    assert.equal(res.status, 200);
    for (const name of ['x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset', 'ratelimit', 'ratelimit-policy', 'content-type']) assert.ok(res.headers[name], name);
  });
});

describe('proxy target check (property)', () => {
  const allow = ['/session', '/auth/test'];
  const piece = fc.constantFrom('/', '.', '..', '%2e', '%2E', '%2f', '%2F', '%5c', '\\', 'session', 'auth', 'test', 'metrics', 'a', '%', '%zz', '%20', '?', '#', ';', '%00', '//');

  it('forwards only what new URL() leaves unchanged, under an allowed prefix, without dot segments', () => {
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 12 }), (parts) => {
        const target = `/${parts.join('')}`;
        let checked: ReturnType<typeof checkTarget>;
        try {
          checked = checkTarget(target, allow);
        } catch {
          return; // refused: fine
        }
        const url = new URL(checked.path, 'http://127.0.0.1:1');
        assert.equal(url.pathname, checked.path, `URL normalised ${target}`);
        assert.ok(allow.some((p) => checked.decodedPath === p || checked.decodedPath.startsWith(`${p}/`)), target);
        assert.ok(!checked.decodedPath.split('/').some((s) => s === '.' || s === '..'), target);
      }),
      { numRuns: 3000 },
    );
  });

  it('is linear on long adversarial targets', () => {
    for (const target of ['/session/' + '%2e'.repeat(200_000), '/session/' + 'a/'.repeat(200_000), '/session?' + 'owner_access_key=x&'.repeat(100_000), '/' + '%'.repeat(300_000)]) {
      const start = performance.now();
      try {
        const { query } = checkTarget(target, allow);
        stripOwnerFromQuery(query);
      } catch {
        /* refused */
      }
      assert.ok(performance.now() - start < 1000, `${target.slice(0, 20)}… took ${performance.now() - start} ms`);
    }
    const start = performance.now();
    stripOwnerFromBody(Buffer.from(JSON.stringify({ owner_access_key: 'x', pad: ' '.repeat(5_000_000) })), 'application/json');
    assert.ok(performance.now() - start < 1000);
  });
});
