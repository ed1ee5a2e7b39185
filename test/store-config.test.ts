/**
 * The [store] section decides where rate limits, sessions and idempotency records live; the old
 * `[ratelimit] store` / `redis_url` keys still choose it when [store] does not.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { configFromObject, defaultConfig } from '../src/config/config.js';
import { createRedis } from '../src/redis/client.js';
import { ALICE, startGateway, type TestGateway } from './helpers/gateway.js';
import { startRedisServer, type TestRedisServer } from './helpers/redis-server.js';

describe('[store] config', () => {
  it('defaults to memory, single-node Redis at 127.0.0.1:6379', () => {
    assert.deepEqual(defaultConfig().store, {
      kind: 'memory',
      redis_url: 'redis://127.0.0.1:6379',
      redis_mode: 'single',
      redis_nodes: [],
      redis_sentinel_name: 'mymaster',
    });
  });

  it('the old [ratelimit] store / redis_url keys fill [store] when it does not set them', () => {
    const c = configFromObject({ ratelimit: { store: 'redis', redis_url: 'redis://old:1' } });
    assert.equal(c.store.kind, 'redis');
    assert.equal(c.store.redis_url, 'redis://old:1');
    // Both given and different: which one was meant is anyone's guess, so the start stops and names both.
    assert.throws(
      () => configFromObject({ ratelimit: { store: 'redis', redis_url: 'redis://old:1' }, store: { kind: 'memory', redis_url: 'redis://new:2' } }),
      /ratelimit\.store.*store\.kind/,
    );
    const same = configFromObject({ ratelimit: { store: 'redis' }, store: { kind: 'redis' } });
    assert.equal(same.store.kind, 'redis');
  });

  it('refuses unknown modes and keys', () => {
    assert.throws(() => configFromObject({ store: { redis_mode: 'ring' } }), /store\.redis_mode/);
    assert.throws(() => configFromObject({ store: { bogus: 1 } }), /store\.bogus/);
  });

  it('createRedis: sentinel and cluster are not supported yet, and say so', () => {
    for (const mode of ['sentinel', 'cluster'] as const) {
      assert.throws(
        () => createRedis({ ...defaultConfig().store, kind: 'redis', redis_mode: mode }),
        new RegExp(`redis_mode "${mode}" is not supported yet`),
      );
    }
  });
});

describe('[store] kind = "redis": every store is on Redis', () => {
  let redis: TestRedisServer;
  let gw: TestGateway;
  let inspect: Redis;
  before(async () => {
    redis = await startRedisServer();
    gw = await startGateway({ keypairs: [ALICE], config: `[store]\nkind = "redis"\nredis_url = "${redis.url}"\n` });
    inspect = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  });
  after(async () => {
    inspect?.disconnect();
    await gw?.stop();
    await redis?.stop();
  });

  it('rate limits, sessions and idempotency records land in the configured Redis', async () => {
    const health = await gw.request({ method: 'GET', target: '/health' });
    assert.equal(health.json?.ratelimit?.store, 'redis', health.text);
    assert.equal(health.json?.ratelimit?.status, 'ok', health.text);
    const created = await gw.signed({
      method: 'POST', target: '/session', as: ALICE,
      body: JSON.stringify({ name: 'on-redis', image: 'ocr' }), headers: { 'Idempotency-Key': 'store-config-1' },
    });
    assert.equal(created.status, 201, created.text);
    assert.ok((await inspect.keys('kg:rl:*')).length >= 1, 'a rate-limit counter in Redis');
    assert.notEqual(await inspect.zscore(`kg:sess:{${ALICE.accessKey}}:idx`, 'on-redis'), null, 'the session in Redis');
    assert.ok((await inspect.keys('kg:idem:*')).length >= 1, 'the idempotency record in Redis');
  });
});
