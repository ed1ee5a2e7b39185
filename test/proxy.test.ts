/** The server-side signing proxy in front of a spawned gateway. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createSigningProxy } from '../src/proxy/proxy.js';
import { ALICE, rawRequest, startGateway, type TestGateway } from './helpers/gateway.js';

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
