/**
 * Issue 7 item 11 over HTTP: behind a trusted proxy, the X-Forwarded-For walk
 * stops at the first untrusted or unparseable hop (a client cannot pick its own
 * address by sending one more hop), and X-Forwarded-Host is the rightmost value.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { signRequest } from '../src/signing/sign-request.js';
import { ALICE, startGateway, type TestGateway } from './helpers/gateway.js';

describe('trusted proxies over HTTP', () => {
  let gw: TestGateway;
  const LIMIT = 3;
  before(async () => {
    // The test client connects from 127.0.0.1, which plays the trusted proxy.
    gw = await startGateway({ config: `[server]\ntrusted_proxies = ["127.0.0.0/8"]\n[ratelimit]\nanonymous_limit = ${LIMIT}\n` });
  });
  after(() => gw.stop());

  let spoof = 0;
  /** Each request claims a new address in the part of X-Forwarded-For the client wrote. */
  const fresh = () => `203.0.113.${++spoof}`;

  for (const [label, hop] of [
    ['address:port', (i: number) => `198.51.100.7:${40000 + i}`],
    ['[v6]:port', (i: number) => `[2001:db8:7::1]:${40000 + i}`],
    ['unknown', () => 'unknown'],
  ] as const) {
    it(`an unparseable hop (${label}) is the client: spoofed hops left of it change nothing`, async () => {
      const statuses: number[] = [];
      for (let i = 0; i < LIMIT + 2; i++) {
        const res = await gw.request({ method: 'GET', target: '/', headers: { 'X-Forwarded-For': `${fresh()}, ${hop(i)}` } });
        statuses.push(res.status);
      }
      // One bucket for all of them, whatever the client wrote (and whatever source port): the limit bites.
      assert.deepEqual(statuses, [...Array(LIMIT).fill(200), 429, 429]);
      // A different real client behind the same proxy is not affected.
      assert.equal((await gw.request({ method: 'GET', target: '/', headers: { 'X-Forwarded-For': `${fresh()}, 198.51.100.99` } })).status, 200);
    });
  }

  it('X-Forwarded-Host: the rightmost value (added by the trusted proxy) is the signed host', async () => {
    const signedFor = (host: string) => signRequest({ method: 'GET', target: '/auth/test', host, accessKey: ALICE.accessKey, secretKey: ALICE.secretKey }).headers;
    const xfh = 'client-chosen.example, public.example.com';
    const good = await gw.request({ method: 'GET', target: '/auth/test', headers: { ...signedFor('public.example.com'), 'X-Forwarded-Host': xfh, 'X-Forwarded-For': '198.51.100.20' } });
    assert.equal(good.status, 200, good.text);
    const leftmost = await gw.request({ method: 'GET', target: '/auth/test', headers: { ...signedFor('client-chosen.example'), 'X-Forwarded-Host': xfh, 'X-Forwarded-For': '198.51.100.21' } });
    assert.equal(leftmost.status, 401, leftmost.text);
  });
});
