/** Sessions on a hung Redis: one request waits for the timeout, the next ones fail fast, all 503, then recovery. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ALICE, startGateway, type TestGateway } from './helpers/gateway.js';
import { assertProblem } from './helpers/problems.js';
import { startRedisServer, type TestRedisServer } from './helpers/redis-server.js';

describe('sessions while Redis hangs', () => {
  let redis: TestRedisServer;
  let gw: TestGateway;
  before(async () => {
    redis = await startRedisServer();
    gw = await startGateway({ config: `[ratelimit]\nstore = "redis"\nredis_url = "${redis.url}"\n` });
  });
  after(async () => {
    redis.resume();
    await gw.stop();
    await redis.stop();
  });

  it('fails fast after the first timeout and recovers when Redis answers again', async () => {
    const create = await gw.signed({ method: 'POST', target: '/session', as: ALICE, body: JSON.stringify({ name: 's1', image: 'ocr' }) });
    assert.equal(create.status, 201, create.text);
    redis.pause();
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t = performance.now();
      const res = await gw.signed({ method: 'GET', target: '/session', as: ALICE });
      times.push(performance.now() - t);
      assertProblem(res, 503, 'service-unavailable');
      assert.ok(res.headers['retry-after']);
    }
    assert.ok(times[0] < 2000, `first ${times[0]} ms`);
    assert.ok(times.slice(1).every((ms) => ms < 300), `later requests ${times.map(Math.round).join(', ')} ms`);
    redis.resume();
    const deadline = Date.now() + 5000;
    let status = 0;
    while (Date.now() < deadline && status !== 200) {
      await new Promise((r) => setTimeout(r, 200));
      status = (await gw.signed({ method: 'GET', target: '/session', as: ALICE })).status;
    }
    assert.equal(status, 200);
  });
});
