/**
 * README "Redis outages" and "Health" for sessions and idempotency records on a Redis that is
 * gone (not hung): they answer 503 (no second copy), rate limits fall back to memory, and
 * /health stays 200, degraded, naming the parts that are down.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { ALICE, startGateway, type TestGateway } from './helpers/gateway.js';
import { assertProblem } from './helpers/problems.js';
import { startRedisServer, type TestRedisServer } from './helpers/redis-server.js';

describe('README "Redis outages": sessions and idempotency records while Redis is down', () => {
  let redis: TestRedisServer;
  let gw: TestGateway;
  before(async () => {
    redis = await startRedisServer();
    gw = await startGateway({ keypairs: [ALICE], config: `[ratelimit]\nstore = "redis"\nredis_url = "${redis.url}"\n` });
  });
  after(async () => {
    await gw?.stop();
    await redis?.stop();
  });

  it('503 for sessions and keyed requests, 200 for the rest, /health 200 "degraded"; all back once Redis is', async () => {
    assert.equal((await gw.signed({ method: 'POST', target: '/session', as: ALICE, body: JSON.stringify({ name: 'kept', image: 'ocr' }) })).status, 201);
    await redis.stop();

    const deadline = Date.now() + 5_000;
    let health = await gw.request({ method: 'GET', target: '/health' });
    while (Date.now() < deadline && !(health.json?.ratelimit?.status === 'degraded' && health.json?.sessions?.status === 'degraded')) {
      await sleep(100);
      health = await gw.request({ method: 'GET', target: '/health' });
    }
    assert.equal(health.status, 200, `/health never turns 503: ${health.text}`);
    assert.equal(health.json.status, 'degraded');
    assert.equal(health.json.sessions.status, 'degraded', health.text);
    assert.equal(health.json.ratelimit.status, 'degraded', health.text);
    assert.doesNotMatch(health.text, /redis:\/\//, 'no URL in the report');

    // Sessions have no fallback: a 503 with Retry-After, never an empty list or a 500.
    for (const res of [
      await gw.signed({ method: 'GET', target: '/session', as: ALICE }),
      await gw.signed({ method: 'GET', target: '/session/kept', as: ALICE }),
      await gw.signed({ method: 'POST', target: '/session', as: ALICE, body: JSON.stringify({ name: 'new', image: 'ocr' }) }),
    ]) {
      assertProblem(res, 503, 'service-unavailable');
      assert.match(String(res.headers['retry-after']), /^\d+$/);
    }
    // Nor do idempotency records: a keyed request is refused rather than run without its record.
    const keyed = await gw.signed({ method: 'POST', target: '/auth/test', as: ALICE, body: '{"echo":"k"}', headers: { 'Idempotency-Key': 'outage-1' } });
    assertProblem(keyed, 503, 'service-unavailable');
    // Rate limits fall back to memory: everything else is served.
    const plain = await gw.signed({ method: 'POST', target: '/auth/test', as: ALICE, body: '{"echo":"p"}' });
    assert.equal(plain.status, 200, plain.text);

    await redis.restart();
    const back = Date.now() + 10_000;
    let list = await gw.signed({ method: 'GET', target: '/session', as: ALICE });
    while (Date.now() < back && list.status !== 200) {
      await sleep(200);
      list = await gw.signed({ method: 'GET', target: '/session', as: ALICE });
    }
    assert.equal(list.status, 200, list.text);
    // The restarted server is empty: sessions live in Redis only, as README says.
    assert.deepEqual(list.json.sessions, []);
    const keyedAgain = await gw.signed({ method: 'POST', target: '/auth/test', as: ALICE, body: '{"echo":"k"}', headers: { 'Idempotency-Key': 'outage-1' } });
    assert.equal(keyedAgain.status, 200, keyedAgain.text);
  });
});

describe('README "Redis outages": while Redis is down a fleet of N replicas admits up to N × limit', () => {
  const LIMITED = { accessKey: 'AKIAKGATEFLEET000012', secretKey: 'fleetSecretKey000000000000000000000F12', rateLimit: 3 };
  let redis: TestRedisServer;
  const replicas: TestGateway[] = [];
  before(async () => {
    redis = await startRedisServer();
    const config = `[ratelimit]\nstore = "redis"\nredis_url = "${redis.url}"\nredis_timeout_ms = 1000\n`;
    replicas.push(await startGateway({ keypairs: [LIMITED], config }));
    replicas.push(await startGateway({ keypairs: [], keypairDir: replicas[0].keypairDir, config }));
  });
  after(async () => {
    await Promise.all(replicas.map((g) => g.stop()));
    await redis?.stop();
  });

  it('each replica falls back to its own counter at the same limit: 2 replicas × 3', async () => {
    await redis.stop();
    for (const gw of replicas) {
      const deadline = Date.now() + 5_000;
      while (Date.now() < deadline && (await gw.request({ method: 'GET', target: '/health' })).json?.ratelimit?.status !== 'degraded') await sleep(100);
    }
    const statuses: number[][] = [];
    for (const gw of replicas) {
      const mine: number[] = [];
      for (let i = 0; i < 5; i++) mine.push((await gw.signed({ method: 'GET', target: '/auth/test', as: LIMITED })).status);
      statuses.push(mine);
    }
    assert.deepEqual(statuses, [[200, 200, 200, 429, 429], [200, 200, 200, 429, 429]], 'the same limit on each replica, counted apart');
  });
});
