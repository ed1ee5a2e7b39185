/**
 * Issue 7 item 16: a failed authentication logs why, with the access key and
 * the scheme, at info; never the secret or the signature. The client still
 * gets one message for every refused credential.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { signRequest } from '../src/signing/sign-request.js';
import { ALICE, startGateway, type TestGateway, type TestKeypair } from './helpers/gateway.js';
import { assertProblem } from './helpers/problems.js';

const INACTIVE: TestKeypair = { accessKey: 'AKIAKGATEINACTIVE007', secretKey: 'inactiveSecretKey00000000000000000000I7', isActive: false };
const EXPIRED: TestKeypair = { accessKey: 'AKIAKGATEEXPIRED0008', secretKey: 'expiredSecretKey000000000000000000000E8', expiresAt: Date.UTC(2020, 0, 1) };
const UNKNOWN: TestKeypair = { accessKey: 'AKIAKGATEUNKNOWN0009', secretKey: 'unknownSecretKey000000000000000000000U9' };
const ONE_MESSAGE = 'Access key not found, inactive, expired, or signature mismatch.';

interface LogLine {
  msg: string;
  level: number;
  reason?: string;
  accessKey?: string;
  scheme?: string;
  reqId?: string;
}

describe('failed authentication is logged with its reason', () => {
  let gw: TestGateway;
  const signatures: string[] = [];
  before(async () => {
    gw = await startGateway({ config: '[log]\nlevel = "info"\n', keypairs: [ALICE, INACTIVE, EXPIRED] });
  });
  after(() => gw.stop());

  const host = () => `127.0.0.1:${gw.port}`;
  function sign(as: TestKeypair, extra: Partial<Parameters<typeof signRequest>[0]> = {}) {
    const s = signRequest({ method: 'GET', target: '/auth/test', host: host(), accessKey: as.accessKey, secretKey: as.secretKey, ...extra });
    signatures.push(s.signature, s.signature.toUpperCase());
    return s;
  }

  /** The "authentication failed" lines logged for one request id (waits for the line to be flushed). */
  async function failureLines(instance: string): Promise<LogLine[]> {
    const reqId = instance.replace('urn:kernelgate:request:', '');
    for (let i = 0; i < 100; i++) {
      const lines = gw.output
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as LogLine)
        .filter((l) => l.msg === 'authentication failed' && l.reqId === reqId);
      if (lines.length > 0) return lines;
      await new Promise((r) => setTimeout(r, 20));
    }
    return [];
  }

  async function expectLogged(headers: Record<string, string>, status: number, reason: RegExp, accessKey: string | undefined, scheme = 'BackendAI') {
    const res = await gw.request({ method: 'GET', target: '/auth/test', headers });
    assertProblem(res, status, status === 401 ? 'auth-failed' : 'invalid-auth-params');
    if (status === 401) assert.equal(res.json.detail, ONE_MESSAGE);
    const lines = await failureLines(res.json.instance);
    assert.equal(lines.length, 1, `one log line for ${reason}`);
    const [line] = lines;
    assert.equal(line.level, 30, 'logged at info');
    assert.match(line.reason ?? '', reason);
    assert.equal(line.accessKey, accessKey);
    assert.equal(line.scheme, scheme);
  }

  it('unknown, inactive and expired keys and a bad signature: one message for the client, the reason in the log', async () => {
    await expectLogged(sign(UNKNOWN).headers, 401, /^unknown access key$/, UNKNOWN.accessKey);
    await expectLogged(sign(INACTIVE).headers, 401, /^inactive access key$/, INACTIVE.accessKey);
    await expectLogged(sign(EXPIRED).headers, 401, /^expired access key$/, EXPIRED.accessKey);
    const wrongSecret = sign({ ...ALICE, secretKey: 'notAliceSecret000000000000000000000000' });
    await expectLogged(wrongSecret.headers, 401, /^signature mismatch$/, ALICE.accessKey);
    const good = sign(ALICE);
    const upper = { ...good.headers, Authorization: good.headers.Authorization.replace(good.signature, good.signature.toUpperCase()) };
    await expectLogged(upper, 401, /^signature mismatch \(upper-case hex/, ALICE.accessKey);
    const sorna = sign(UNKNOWN, { scheme: 'Sorna', apiVersion: 'v4.20181215' });
    await expectLogged(sorna.headers, 401, /^unknown access key$/, UNKNOWN.accessKey, 'Sorna');
  });

  it('skew, unparseable dates, malformed headers and sign methods are logged with the key they name', async () => {
    const old = sign(ALICE, { date: new Date(Date.now() - 3600_000).toISOString() });
    await expectLogged(old.headers, 400, /^clock skew -3600 s \(allowed ±900 s\)$/, ALICE.accessKey);
    const good = sign(ALICE);
    await expectLogged({ ...good.headers, Date: 'yesterday' }, 400, /^unparseable date$/, ALICE.accessKey);
    const noDate: Record<string, string> = { ...good.headers };
    delete noDate.Date;
    await expectLogged(noDate, 400, /^missing date$/, ALICE.accessKey);
    const short = good.headers.Authorization.slice(0, -1);
    await expectLogged({ ...good.headers, Authorization: short }, 400, /^malformed Authorization header: Signature must be 64 hex digits/, ALICE.accessKey);
    const md5 = `BackendAI signMethod=HMAC-MD5, credential=${ALICE.accessKey}:${good.signature}`;
    await expectLogged({ ...good.headers, Authorization: md5 }, 400, /^malformed Authorization header: Unsupported signMethod$/, ALICE.accessKey);
    const sha1 = sign(ALICE, { algorithm: 'sha1' });
    await expectLogged(sha1.headers, 400, /^sign method sha1 not allowed$/, ALICE.accessKey);
    // A credential without a colon names no access key: nothing of it is logged (it may be a signature).
    const noColon = `BackendAI signMethod=HMAC-SHA256, credential=${good.signature}`;
    await expectLogged({ ...good.headers, Authorization: noColon }, 400, /^malformed Authorization header: Malformed credential$/, undefined);
    await expectLogged({ ...good.headers, Authorization: `Bearer ${good.signature}` }, 400, /^malformed Authorization header: Unsupported authorization type$/, undefined, 'Bearer');
  });

  it('never logs a secret or a signature, anywhere in the log', async () => {
    // Let the asynchronous access log flush.
    await new Promise((r) => setTimeout(r, 300));
    const log = gw.output.join('\n');
    assert.ok(log.includes('authentication failed'));
    for (const k of [ALICE, INACTIVE, EXPIRED, UNKNOWN]) assert.ok(!log.includes(k.secretKey), `secret of ${k.accessKey} logged`);
    assert.ok(signatures.length > 10);
    for (const s of signatures) assert.ok(!log.includes(s), `signature ${s} logged`);
    assert.ok(!log.includes('notAliceSecret'));
  });
});
