/**
 * README "Redis outages": against a hung Redis a circuit breaker lets one request per second wait
 * for the 1 s command timeout and fails the others at once, also when they arrive together.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { ALICE, startGateway, type TestGateway } from './helpers/gateway.js';
import { assertProblem } from './helpers/problems.js';
import { startRedisServer, type TestRedisServer } from './helpers/redis-server.js';

describe('README "Redis outages": the session store\'s circuit breaker on a hung Redis', () => {
  let redis: TestRedisServer;
  let gw: TestGateway;
  before(async () => {
    redis = await startRedisServer();
    gw = await startGateway({ keypairs: [ALICE], config: `[ratelimit]\nstore = "redis"\nredis_url = "${redis.url}"\n` });
  });
  after(async () => {
    redis?.resume();
    await gw?.stop();
    await redis?.stop();
  });

  const timedList = async () => {
    const t0 = performance.now();
    const res = await gw.signed({ method: 'GET', target: '/session', as: ALICE, timeoutMs: 10_000 });
    return { res, ms: performance.now() - t0 };
  };

  it('after the first timeout, one request per second waits; the others, concurrent or not, fail at once', async (t) => {
    assert.equal((await timedList()).res.status, 200);
    redis.pause();
    try {
      const first = await timedList();
      assertProblem(first.res, 503, 'service-unavailable');
      assert.ok(first.ms >= 700, `the first request waits for the command timeout (${first.ms.toFixed(0)} ms)`);
      for (const r of await Promise.all(Array.from({ length: 5 }, timedList))) {
        assertProblem(r.res, 503, 'service-unavailable');
        assert.ok(r.ms < 400, `fails at once while the breaker is open (${r.ms.toFixed(0)} ms)`);
      }
      // A second later the breaker lets a request try again: one, even when five arrive together.
      for (let round = 0; round < 2; round++) {
        await sleep(1_200);
        const burst = await Promise.all(Array.from({ length: 5 }, timedList));
        for (const r of burst) assertProblem(r.res, 503, 'service-unavailable');
        const slow = burst.filter((r) => r.ms >= 700).length;
        t.diagnostic(`round ${round + 1}: ${burst.map((r) => r.ms.toFixed(0)).join(', ')} ms`);
        assert.equal(slow, 1, `exactly one request waited on the hung Redis: ${burst.map((r) => r.ms.toFixed(0)).join(', ')} ms`);
      }
    } finally {
      redis.resume();
    }
    const deadline = Date.now() + 5_000;
    let status = 0;
    while (Date.now() < deadline && status !== 200) {
      await sleep(200);
      status = (await timedList()).res.status;
    }
    assert.equal(status, 200, 'recovers once Redis answers');
  });
});
