/**
 * README claims about the order of checks and about configuration keys that change what a client
 * or an operator sees: verification order, auth.problem_base_uri, log.access, md5 never accepted,
 * and X-Forwarded-For's nearest untrusted hop behind a chain of trusted proxies.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfigFile } from '../src/config/config.js';
import { signRequest } from '../src/signing/sign-request.js';
import { ALICE, startGateway, type TestGateway } from './helpers/gateway.js';
import { assertProblem } from './helpers/problems.js';

describe('README "Verification order"', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway({ keypairs: [ALICE] });
  });
  after(() => gw?.stop());

  const sign = (extra: Partial<Parameters<typeof signRequest>[0]> = {}) =>
    signRequest({ method: 'GET', target: '/auth/test', host: `127.0.0.1:${gw.port}`, accessKey: ALICE.accessKey, secretKey: ALICE.secretKey, ...extra }).headers;

  it('routing, then the version, then a missing Authorization, then the Authorization format, then the date, then the credential', async () => {
    // Routing beats everything: an unknown route with a bad version and no credentials is a 404.
    assertProblem(await gw.request({ method: 'GET', target: '/nowhere', headers: { 'X-BackendAI-Version': 'v9.20990101' } }), 404, 'url-not-found');
    assertProblem(await gw.request({ method: 'PUT', target: '/auth/test', headers: { 'X-BackendAI-Version': 'v9.20990101' } }), 405, 'method-not-allowed');
    // An unsupported version is a 400 even without an Authorization; a supported one without it is a 401.
    assertProblem(await gw.request({ method: 'GET', target: '/auth/test', headers: { 'X-BackendAI-Version': 'v9.20990101' } }), 400, 'generic-bad-request');
    assertProblem(await gw.request({ method: 'GET', target: '/auth/test', headers: { 'X-BackendAI-Version': sign()['X-BackendAI-Version']! } }), 401, 'auth-failed');
    assertProblem(await gw.request({ method: 'GET', target: '/auth/test' }), 401, 'auth-failed');
    // With an Authorization, an unsupported version comes before its format...
    const badVersion = { ...sign({ apiVersion: 'v9.20990101' }) };
    assertProblem(await gw.request({ method: 'GET', target: '/auth/test', headers: { ...badVersion, Authorization: 'Bearer nonsense' } }), 400, 'generic-bad-request');
    assertProblem(await gw.request({ method: 'GET', target: '/auth/test', headers: badVersion }), 400, 'generic-bad-request');
    // ...the format before the date...
    const badFormat = await gw.request({ method: 'GET', target: '/auth/test', headers: { ...sign(), Date: 'not a date', Authorization: 'Bearer nonsense' } });
    assertProblem(badFormat, 400, 'invalid-auth-params');
    assert.doesNotMatch(badFormat.json.detail, /date/i, `the Authorization format is judged first: ${badFormat.json.detail}`);
    const badDate = await gw.request({ method: 'GET', target: '/auth/test', headers: { ...sign(), Date: 'not a date' } });
    assertProblem(badDate, 400, 'invalid-auth-params');
    assert.match(badDate.json.detail, /date/i);
    // ...the date before the credential: an unknown key with a skewed date is a 400, not a 401.
    const unknown = signRequest({ method: 'GET', target: '/auth/test', host: `127.0.0.1:${gw.port}`, accessKey: 'AKIAKGATENOSUCHKEY11', secretKey: 'x'.repeat(40), date: new Date(Date.now() - 3_600_000).toUTCString() }).headers;
    const skewed = await gw.request({ method: 'GET', target: '/auth/test', headers: unknown });
    assertProblem(skewed, 400, 'invalid-auth-params');
    assert.match(skewed.json.detail, /time/i);
  });
});

describe('README "Configuration": auth.problem_base_uri and log.access', () => {
  let custom: TestGateway;
  let silent: TestGateway;
  before(async () => {
    [custom, silent] = await Promise.all([
      startGateway({ keypairs: [ALICE], config: '[log]\nlevel = "info"\n[auth]\nproblem_base_uri = "https://errors.example.com/p/"\n' }),
      startGateway({ keypairs: [ALICE], config: '[log]\nlevel = "info"\naccess = false\n' }),
    ]);
  });
  after(() => Promise.all([custom?.stop(), silent?.stop()]));

  it('problem types start with problem_base_uri', async () => {
    const res = await custom.request({ method: 'GET', target: '/nowhere' });
    assert.equal(res.status, 404);
    assert.equal(res.json.type, 'https://errors.example.com/p/url-not-found');
    assert.equal((await custom.request({ method: 'GET', target: '/auth/test' })).json.type, 'https://errors.example.com/p/auth-failed');
  });

  it('log.access = true writes one line per request with requester, route template, status and time; false writes none', async () => {
    for (const gw of [custom, silent]) {
      assert.equal((await gw.signed({ method: 'GET', target: '/session/some-name', as: ALICE })).status, 404);
      assert.equal((await gw.request({ method: 'GET', target: '/' })).status, 200);
    }
    let line: Record<string, unknown> | undefined;
    for (let i = 0; i < 100 && !line; i++) {
      line = custom.output.flatMap((raw) => {
        try {
          return [JSON.parse(raw) as Record<string, unknown>];
        } catch {
          return [];
        }
      }).find((l) => l.msg === 'request' && l.route === '/session/:name');
      if (!line) await sleep(20);
    }
    assert.ok(line, `no access line:\n${custom.output.slice(-5).join('\n')}`);
    assert.equal(line.accessKey, ALICE.accessKey);
    assert.equal(line.status, 404);
    assert.equal(line.level, 30, 'at info');
    assert.equal(typeof line.ms, 'number');
    assert.equal(typeof line.reqId, 'string');
    await sleep(300); // the access log is written asynchronously: give a wrong line time to show up
    assert.ok(!silent.output.some((l) => l.includes('"msg":"request"')), `access lines with log.access = false:\n${silent.output.join('\n')}`);
    assert.ok(silent.output.some((l) => l.includes('kernelgate listening')), 'the gateway still logs at info');
  });
});

describe('README "Configuration": md5 is never accepted', () => {
  it('auth.algorithms with md5 stops the start with a message naming the key', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kg-readme-md5-'));
    try {
      const file = join(dir, 'c.toml');
      writeFileSync(file, '[auth]\nalgorithms = ["sha256", "md5"]\n');
      assert.throws(() => loadConfigFile(file), /auth\.algorithms/);
      writeFileSync(file, '[auth]\nalgorithms = ["sha1", "sha256"]\n');
      assert.deepEqual(loadConfigFile(file).auth.algorithms, ['sha1', 'sha256'], 'sha1 may be added');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('README "Who pays": behind trusted proxies the address is the nearest untrusted hop of X-Forwarded-For', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway({ keypairs: [ALICE], config: '[server]\ntrusted_proxies = ["127.0.0.1", "10.0.0.0/8"]\n[ratelimit]\nanonymous_limit = 3\n' });
  });
  after(() => gw?.stop());

  const remaining = async (xff: string) => Number((await gw.request({ method: 'GET', target: '/', headers: { 'X-Forwarded-For': xff } })).headers['x-ratelimit-remaining']);

  it('trusted hops are skipped; a spoofed leftmost entry changes nothing', async () => {
    // The client 198.51.100.20 reached us through 10.1.1.1 (trusted): its bucket, whatever it put on the left.
    assert.equal(await remaining('198.51.100.20, 10.1.1.1'), 2);
    assert.equal(await remaining('203.0.113.99, 198.51.100.20, 10.1.1.1'), 1, 'a forged leftmost address does not give a fresh bucket');
    assert.equal(await remaining('1.2.3.4, 198.51.100.20, 10.2.2.2, 10.3.3.3'), 0);
    // Another client behind the same proxy is another bucket.
    assert.equal(await remaining('198.51.100.21, 10.1.1.1'), 2);
  });
});
