/**
 * The signed request path on a spawned gateway process: routing, versions,
 * signatures, keypair lifecycle, problem documents and limits.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { signRequest } from '../src/signing/sign-request.js';
import { ALICE, ADMIN, BIN, startGateway, writeKeypair, type Response, type TestGateway } from './helpers/gateway.js';
import { headerOf, VECTORS } from './helpers/vectors.js';
import { assertProblem as assertSharedProblem } from './helpers/problems.js';

const run = promisify(execFile);
const BASE = 'https://api.backend.ai/probs/';

function assertProblem(res: Response, status: number, slug: string): void {
  assertSharedProblem(res, status, slug);
  assert.ok(res.headers['x-ratelimit-limit'], 'errors carry rate-limit headers too');
}

/** Python SDK style: isoformat() with microseconds and +00:00. */
const pythonDate = (at = new Date()) => at.toISOString().replace(/\.(\d{3})Z$/, '.$1000+00:00');

describe('gateway: signed request path', () => {
  let gw: TestGateway;
  before(async () => {
    // debug, not the helper's warn: "never logs secrets" must see the access lines and every other log line.
    gw = await startGateway({ config: '[log]\nlevel = "debug"\n[server]\nbody_limit_bytes = 65536\n' });
  });
  after(() => gw.stop());

  it('GET / is public and names the versions', async () => {
    const res = await gw.request({ method: 'GET', target: '/' });
    assert.equal(res.status, 200);
    assert.equal(res.json.version, 'v8.20240915');
    assert.equal(res.json.gateway, '0.1.0');
  });

  it('answers unknown routes and methods with 404/405 problem documents before auth', async () => {
    assertProblem(await gw.request({ method: 'GET', target: '/no/such/thing' }), 404, 'url-not-found');
    const res = await gw.request({ method: 'DELETE', target: '/auth/test' });
    assertProblem(res, 405, 'method-not-allowed');
    assert.match(String(res.headers.allow), /GET/);
  });

  it('accepts a signed GET and POST /auth/test and echoes', async () => {
    const get = await gw.signed({ method: 'GET', target: '/auth/test?echo=hello%20world', as: ALICE });
    assert.equal(get.status, 200, get.text);
    assert.deepEqual(get.json, { authorized: 'yes', echo: 'hello world' });
    const post = await gw.signed({ method: 'POST', target: '/auth/test', as: ALICE, body: JSON.stringify({ echo: 'json' }) });
    assert.deepEqual(post.json, { authorized: 'yes', echo: 'json' });
    const form = await gw.signed({ method: 'POST', target: '/auth/test', as: ALICE, body: 'echo=form+value', contentType: 'application/x-www-form-urlencoded' });
    assert.deepEqual(form.json, { authorized: 'yes', echo: 'form value' });
    assert.equal(get.headers['x-ratelimit-window'], '900');
  });

  it('GET /auth/role reports role and domain', async () => {
    const res = await gw.signed({ method: 'GET', target: '/auth/role', as: ADMIN });
    assert.equal(res.json.role, 'admin');
    assert.equal(res.json.domain, 'default');
  });

  it('refuses missing, malformed and mismatched credentials with the right types', async () => {
    assertProblem(await gw.request({ method: 'GET', target: '/auth/test' }), 401, 'auth-failed');
    const good = signRequest({ method: 'GET', target: '/auth/test', host: `127.0.0.1:${gw.port}`, accessKey: ALICE.accessKey, secretKey: ALICE.secretKey });
    const sig = good.signature;
    const malformed = [
      'BackendAI',
      'Bearer abc',
      'BackendAI signMethod=HMAC-SHA256',
      `BackendAI credential=${ALICE.accessKey}:${sig}`,
      `BackendAI signMethod=HMAC-MD5, credential=${ALICE.accessKey}:${sig.slice(0, 32)}`,
      `BackendAI signMethod=HMAC-SHA1, credential=${ALICE.accessKey}:${sig.slice(0, 40)}`,
      `BackendAI signMethod=HMAC-SHA256, credential=${ALICE.accessKey}:${sig}00`,
      `BackendAI signMethod=HMAC-SHA256, credential=${ALICE.accessKey}:${sig.slice(0, 63)}g`,
      `BackendAI signMethod=HMAC-SHA256, credential=${ALICE.accessKey}${sig}`,
      `BackendAI signMethod=HMAC-SHA256, credential=${ALICE.accessKey}:${sig}, extra=1`,
      `BackendAI signMethod=HMAC-SHA256, signMethod=HMAC-SHA256, credential=${ALICE.accessKey}:${sig}`,
      `BackendAI signMethod=HMAC-SHA256, credential=AK/../x:${sig}`,
    ];
    for (const authorization of malformed) {
      const res = await gw.request({ method: 'GET', target: '/auth/test', headers: { ...good.headers, Authorization: authorization } });
      assertProblem(res, 400, 'invalid-auth-params');
    }
    const wrongKey = await gw.request({ method: 'GET', target: '/auth/test', headers: { ...good.headers, Authorization: good.headers.Authorization.replace(ALICE.accessKey, 'AKIAUNKNOWN000000000') } });
    assertProblem(wrongKey, 401, 'auth-failed');
    const flipped = good.headers.Authorization.replace(/.$/, (c) => (c === 'a' ? 'b' : 'a'));
    assertProblem(await gw.request({ method: 'GET', target: '/auth/test', headers: { ...good.headers, Authorization: flipped } }), 401, 'auth-failed');
    // Signatures are lower-case hex only (issue 7 item 12): upper case is a mismatch, with the one message.
    assert.match(sig, /[a-f]/);
    const upper = good.headers.Authorization.replace(sig, sig.toUpperCase());
    const upperRes = await gw.request({ method: 'GET', target: '/auth/test', headers: { ...good.headers, Authorization: upper } });
    assertProblem(upperRes, 401, 'auth-failed');
    assert.equal(upperRes.json.detail, 'Access key not found, inactive, expired, or signature mismatch.');
  });

  it('checks versions and dates', async () => {
    const host = `127.0.0.1:${gw.port}`;
    const sign = (extra: Partial<Parameters<typeof signRequest>[0]>) =>
      signRequest({ method: 'GET', target: '/auth/test', host, accessKey: ALICE.accessKey, secretKey: ALICE.secretKey, ...extra }).headers;
    assertProblem(await gw.request({ method: 'GET', target: '/auth/test', headers: sign({ apiVersion: 'v9.20990101' }) }), 400, 'generic-bad-request');
    const noVersion = sign({});
    delete noVersion['X-BackendAI-Version'];
    assertProblem(await gw.request({ method: 'GET', target: '/auth/test', headers: noVersion }), 400, 'invalid-auth-params');
    const noDate = sign({});
    delete noDate.Date;
    assertProblem(await gw.request({ method: 'GET', target: '/auth/test', headers: noDate }), 400, 'invalid-auth-params');
    assertProblem(await gw.request({ method: 'GET', target: '/auth/test', headers: { ...sign({}), Date: 'yesterday' } }), 400, 'invalid-auth-params');
    const old = new Date(Date.now() - 901_000);
    assertProblem(await gw.request({ method: 'GET', target: '/auth/test', headers: sign({ date: pythonDate(old) }) }), 400, 'invalid-auth-params');
    const future = new Date(Date.now() + 901_000);
    assertProblem(await gw.request({ method: 'GET', target: '/auth/test', headers: sign({ date: future.toUTCString() }) }), 400, 'invalid-auth-params');
    const nearly = new Date(Date.now() - 880_000);
    assert.equal((await gw.request({ method: 'GET', target: '/auth/test', headers: sign({ date: nearly.toUTCString() }) })).status, 200);
    // A date in a far offset where the key date differs from the UTC day.
    const tokyo = new Date(Date.now() + 9 * 3600_000).toISOString().replace('Z', '+09:00');
    assert.equal((await gw.request({ method: 'GET', target: '/auth/test', headers: sign({ date: tokyo }) })).status, 200);
    const la = new Date(Date.now() - 8 * 3600_000).toISOString().replace('Z', '-08:00');
    assert.equal((await gw.request({ method: 'GET', target: '/auth/test', headers: sign({ date: la }) })).status, 200);
    // Offsets within ±14:00 only (issue 7 item 12): a wider one would stretch one key date over days.
    const inOffset = (minutes: number, colon = true) => {
      const sign = minutes < 0 ? '-' : '+';
      const a = Math.abs(minutes);
      const zone = `${sign}${String(Math.floor(a / 60)).padStart(2, '0')}${colon ? ':' : ''}${String(a % 60).padStart(2, '0')}`;
      return new Date(Date.now() + minutes * 60_000).toISOString().replace(/\.\d{3}Z$/, zone);
    };
    for (const minutes of [14 * 60, -14 * 60, -12 * 60]) {
      const res = await gw.request({ method: 'GET', target: '/auth/test', headers: sign({ date: inOffset(minutes) }) });
      assert.equal(res.status, 200, `${inOffset(minutes)}: ${res.text}`);
    }
    const rfcWide = (minutes: number) => {
      const d = new Date(Date.now() + minutes * 60_000).toUTCString().replace(' GMT', '');
      const a = Math.abs(minutes);
      return `${d} ${minutes < 0 ? '-' : '+'}${String(Math.floor(a / 60)).padStart(2, '0')}${String(a % 60).padStart(2, '0')}`;
    };
    for (const date of [inOffset(14 * 60 + 1), inOffset(-(14 * 60 + 1)), inOffset(99 * 60 + 59), inOffset(-(99 * 60 + 59), false), inOffset(18 * 60), inOffset(20 * 60, false), rfcWide(15 * 60), rfcWide(-(99 * 60))]) {
      // signRequest refuses such dates, so the header is swapped in: the date check (400) runs before the signature's (401).
      const res = await gw.request({ method: 'GET', target: '/auth/test', headers: { ...sign({}), Date: date } });
      assertProblem(res, 400, 'invalid-auth-params');
      assert.equal(res.json.detail, 'Unparseable date', date);
    }
    assert.equal((await gw.request({ method: 'GET', target: '/auth/test', headers: sign({ date: rfcWide(14 * 60) }) })).status, 200);
    // X-BackendAI-Date when Date is absent; legacy Sorna headers.
    const viaHeader = sign({});
    viaHeader['X-BackendAI-Date'] = viaHeader.Date;
    delete viaHeader.Date;
    assert.equal((await gw.request({ method: 'GET', target: '/auth/test', headers: viaHeader })).status, 200);
    assert.equal((await gw.request({ method: 'GET', target: '/auth/test', headers: sign({ scheme: 'Sorna', apiVersion: 'v4.20181215' }) })).status, 200);
  });

  it('strict mode: a POST passes only when its body hash is the hash of its bytes', async () => {
    const body = JSON.stringify({ echo: 'strict' });
    const ok = await gw.signed({ method: 'POST', target: '/auth/test', as: ALICE, body });
    assert.equal(ok.status, 200);
    const sdk = await gw.signed({ method: 'POST', target: '/auth/test', as: ALICE, body, sign: { bodyHashMode: 'backendai', date: pythonDate() } });
    assertProblem(sdk, 401, 'auth-failed');
  });

  it('refuses oversized bodies with 413 and oversized headers with 431, as problem documents', async () => {
    const big = 'x'.repeat(70_000);
    assertProblem(await gw.signed({ method: 'POST', target: '/auth/test', as: ALICE, body: JSON.stringify({ echo: big }) }), 413, 'request-too-large');
    const res = await gw.request({ method: 'GET', target: '/', headers: { 'X-Junk': 'y'.repeat(20_000) } });
    assert.equal(res.status, 431);
    assert.equal(res.json.type, `${BASE}request-header-fields-too-large`);
  });

  it('answers a malformed HTTP request with a 400 problem document', async () => {
    const text = await new Promise<string>((resolve, reject) => {
      const socket = connect(gw.port, '127.0.0.1', () => socket.write('GET /\u0001 HTTP/1.1\r\nHost: x\r\n\r\n'));
      let data = '';
      socket.on('data', (d) => (data += d.toString()));
      socket.on('end', () => resolve(data));
      socket.on('error', reject);
    });
    assert.match(text, /^HTTP\/1.1 400/);
    assert.match(text, /generic-bad-request/);
  });

  it('refuses invalid JSON bodies and invalid parameters with 400', async () => {
    assertProblem(await gw.signed({ method: 'POST', target: '/auth/test', as: ALICE, body: '{"echo":' }), 400, 'invalid-api-params');
    assertProblem(await gw.signed({ method: 'POST', target: '/auth/test', as: ALICE, body: JSON.stringify({ echo: 42 }) }), 400, 'invalid-api-params');
    assertProblem(await gw.signed({ method: 'GET', target: '/auth/test?echo=a&echo=b', as: ALICE }), 400, 'invalid-api-params');
  });

  it('never lets X-Forwarded-Host change the signed host from an untrusted peer', async () => {
    const signed = signRequest({ method: 'GET', target: '/auth/test', host: 'public.example.com', accessKey: ALICE.accessKey, secretKey: ALICE.secretKey });
    const res = await gw.request({ method: 'GET', target: '/auth/test', headers: { ...signed.headers, 'X-Forwarded-Host': 'public.example.com' } });
    assertProblem(res, 401, 'auth-failed');
  });

  it('picks up keypair changes without a restart: create, revoke, expire, deactivate', async () => {
    const created = await run(process.execPath, [BIN, 'keypair', 'create', '--dir', gw.keypairDir, '--json', '--user', 'new@example.com']);
    const { access_key, secret_key, file } = JSON.parse(created.stdout);
    assert.match(access_key, /^AKIA[A-Z0-9]{16}$/);
    assert.equal(secret_key.length, 40);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const user = { accessKey: access_key, secretKey: secret_key };
    assert.equal((await gw.signed({ method: 'GET', target: '/auth/test', as: user })).status, 200);
    const listed = await run(process.execPath, [BIN, 'keypair', 'list', '--dir', gw.keypairDir, '--json']);
    assert.ok(!listed.stdout.includes(secret_key), 'list never prints secrets');
    assert.ok(listed.stdout.includes(access_key));
    await run(process.execPath, [BIN, 'keypair', 'revoke', access_key, '--dir', gw.keypairDir]);
    await waitFor(async () => (await gw.signed({ method: 'GET', target: '/auth/test', as: user })).status === 401);
    writeKeypair(gw.keypairDir, { ...user, expiresAt: Date.now() - 1000 });
    await waitFor(async () => (await gw.signed({ method: 'GET', target: '/auth/test', as: user })).status === 401);
    writeKeypair(gw.keypairDir, { ...user, expiresAt: Date.now() + 3600_000 });
    await waitFor(async () => (await gw.signed({ method: 'GET', target: '/auth/test', as: user })).status === 200);
  });

  it('serves /health, /metrics and an OpenAPI document generated from the route table', async () => {
    const health = await gw.request({ method: 'GET', target: '/health' });
    assert.equal(health.status, 200);
    assert.equal(health.json.status, 'ok');
    const metrics = await gw.request({ method: 'GET', target: '/metrics' });
    assert.match(metrics.text, /kernelgate_http_requests_total/);
    const doc = (await gw.request({ method: 'GET', target: '/openapi.json' })).json;
    assert.equal(doc.openapi, '3.1.0');
    assert.ok(doc.paths['/auth/test'].get.parameters.some((p: { name: string }) => p.name === 'echo'));
    assert.deepEqual(doc.paths['/'].get.security, []);
  });

  it('never logs secrets', async () => {
    // An invalid keypair file (name and access_key disagree) is skipped with a warning that never includes its secret.
    const strayFile = join(gw.keypairDir, 'AKIAKGATESTRAY000099.toml');
    const straySecret = 'straySecretKeyThatMustNeverBeLogged0099';
    writeFileSync(strayFile, `access_key = "AKIAKGATEOTHER000099"\nsecret_key = "${straySecret}"\n`);
    await waitFor(async () => gw.output.some((l) => l.includes('AKIAKGATESTRAY000099') && l.includes('invalid keypair')));
    // One more signed request, so its access line is among those checked.
    assert.equal((await gw.signed({ method: 'GET', target: '/auth/test', as: ALICE })).status, 200);
    await waitFor(async () => gw.output.some((l) => l.includes('"msg":"request"') && l.includes(ALICE.accessKey)));
    const all = gw.output.join('\n');
    assert.ok(all.includes('"msg":"request"'), 'access lines were logged (the check below would be empty otherwise)');
    assert.ok(all.includes(`"accessKey":"${ADMIN.accessKey}"`), 'the access lines name the keypairs whose secrets are checked');
    assert.ok(!all.includes(ALICE.secretKey));
    assert.ok(!all.includes(ADMIN.secretKey));
    assert.ok(!all.includes(straySecret), 'the warning about an invalid keypair file includes its secret');
  });
});

describe('gateway: vectors over HTTP', () => {
  // A skew of 20 years lets the fixed-date vectors through unchanged; everything else is the default.
  const versions = [...new Set(VECTORS.map((v) => (headerOf(v.request.headers, 'x-backendai-version') ?? headerOf(v.request.headers, 'x-sorna-version'))!.trim()))];
  const config = (mode: string) =>
    `[auth]\nskew_seconds = 630720000\nbody_hash = "${mode}"\nalgorithms = ["sha1", "sha256", "sha384", "sha512"]\napi_versions = ${JSON.stringify(versions)}\n`;
  const keypairs = [...new Map(VECTORS.map((v) => [v.access_key, { accessKey: v.access_key, secretKey: v.secret_key }])).values()];
  let strict: TestGateway;
  let compat: TestGateway;
  before(async () => {
    [strict, compat] = await Promise.all([startGateway({ config: config('strict'), keypairs }), startGateway({ config: config('backendai'), keypairs })]);
  });
  after(() => Promise.all([strict.stop(), compat.stop()]));

  const send = (gw: TestGateway, v: (typeof VECTORS)[number], change: { body?: Buffer; host?: string } = {}) =>
    gw.request({
      method: v.request.method,
      target: v.request.target,
      headers: [
        ...v.request.headers.map(([n, val]): [string, string] => (n.toLowerCase() === 'host' && change.host ? [n, change.host] : [n, val])),
        ['Authorization', v.authorization],
      ],
      body: change.body ?? (v.request.body_base64 ? Buffer.from(v.request.body_base64, 'base64') : undefined),
    });

  for (const v of VECTORS.filter((x) => x.request.target.startsWith('/auth/test'))) {
    it(`${v.name}: accepted as sent, refused when changed`, async () => {
      const gw = v.body_hash_mode === 'strict' ? strict : compat;
      const ok = await send(gw, v);
      assert.equal(ok.status, 200, ok.text);
      assert.equal(ok.json.authorized, 'yes');
      assert.equal((await send(gw, v, { host: 'other.example' })).status, 401);
      if (v.body_hash_mode === 'strict') {
        const body = Buffer.from(v.request.body_base64, 'base64');
        const changed = body.length > 0 ? Buffer.concat([body.subarray(0, -1), Buffer.from([body[body.length - 1] ^ 1])]) : Buffer.from('{}');
        assert.equal((await send(strict, v, { body: changed })).status, 401);
      }
    });
  }

  it('the documented example: refused as printed', async () => {
    const printed = VECTORS.find((v) => v.name === 'backendai-docs-example-as-printed')!;
    // GET /v2 is no route of ours; the same credentials on a signed route must still fail.
    const res = await compat.request({
      method: 'GET',
      target: '/auth/test',
      headers: [...printed.request.headers, ['Authorization', printed.authorization]],
    });
    assert.equal(res.status, 401);
  });

  it('a request built as the official Python SDK builds it passes in backendai mode', async () => {
    const body = JSON.stringify({ echo: 'sdk' });
    const host = `127.0.0.1:${compat.port}`;
    const signed = signRequest({
      method: 'POST', target: '/auth/test', host, accessKey: keypairs[0].accessKey, secretKey: keypairs[0].secretKey,
      body, contentType: 'application/json', date: pythonDate(), bodyHashMode: 'backendai', apiVersion: versions.includes('v8.20240915') ? 'v8.20240915' : versions[0],
    });
    assert.ok(signed.stringToSign.endsWith(createHash('sha256').digest('hex')));
    const res = await compat.request({ method: 'POST', target: '/auth/test', headers: signed.headers, body });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.echo, 'sdk');
  });
});

describe('gateway: trusted proxies', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway({ config: '[server]\ntrusted_proxies = ["127.0.0.0/8"]\n' });
  });
  after(() => gw.stop());

  it('believes X-Forwarded-Host from a trusted peer', async () => {
    const signed = signRequest({ method: 'GET', target: '/auth/test', host: 'public.example.com', accessKey: ALICE.accessKey, secretKey: ALICE.secretKey });
    const res = await gw.request({ method: 'GET', target: '/auth/test', headers: { ...signed.headers, 'X-Forwarded-Host': 'public.example.com', 'X-Forwarded-For': '203.0.113.9' } });
    assert.equal(res.status, 200, res.text);
  });
});

describe('config validation', () => {
  it('the shipped config.toml lists exactly the embedded defaults', async () => {
    const { defaultConfig, loadConfigFile } = await import('../src/config/config.js');
    const shipped = loadConfigFile(join(import.meta.dirname, '..', 'config.toml'));
    const defaults = defaultConfig();
    defaults.keypairs.dir = shipped.keypairs.dir;
    defaults.inference.models_dir = shipped.inference.models_dir;
    assert.deepEqual(shipped, defaults);
  });

  it('stops with a message naming an unknown key or a wrong type', async () => {
    const { mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'kg-config-'));
    const cases: Array<[string, RegExp]> = [
      ['[server]\nprot = 1\n', /unknown key "server\.prot"/],
      ['[server]\nport = "eighty"\n', /server\.port" must be integer/],
      ['[auth]\nbody_hash = "loose"\n', /auth\.body_hash" must be one of/],
      ['[nonsense]\n', /unknown key "nonsense"/],
      ['[server\n', /not valid TOML/],
    ];
    for (const [text, message] of cases) {
      const file = join(dir, 'bad.toml');
      writeFileSync(file, text);
      const result = await run(process.execPath, [BIN, 'serve', '--config', file]).then(
        () => ({ code: 0, stderr: '' }),
        (e: { code: number; stderr: string }) => e,
      );
      assert.notEqual(result.code, 0);
      assert.match(result.stderr, message);
    }
  });
});

async function waitFor(check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail('condition not reached in time');
}
