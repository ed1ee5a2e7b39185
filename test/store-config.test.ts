/**
 * The [store] section decides where rate limits, sessions and idempotency records live; the old
 * `[ratelimit] store` / `redis_url` keys still choose it when [store] does not.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { configFromObject, defaultConfig } from '../src/config/config.js';
import { parseRedisCredentials, parseRedisNode, storeTopology } from '../src/redis/topology.js';
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

  it('redis_nodes must be "host:port" seeds, and sentinel / cluster need at least one', () => {
    const redis = (store: Record<string, unknown>) => configFromObject({ store: { kind: 'redis', ...store } });
    assert.deepEqual(redis({ redis_mode: 'cluster', redis_nodes: ['10.0.0.1:7000', 'redis-0.redis:6379', '[::1]:7001'] }).store.redis_nodes, [
      '10.0.0.1:7000', 'redis-0.redis:6379', '[::1]:7001',
    ]);
    for (const bad of ['10.0.0.1', 'host:', ':6379', 'redis://h:1', 'h:1:2', 'h :1', 'h:123456', '']) {
      assert.throws(() => redis({ redis_mode: 'cluster', redis_nodes: [bad] }), /store\.redis_nodes/, bad);
    }
    assert.throws(() => redis({ redis_mode: 'cluster', redis_nodes: ['h:70000'] }), /store\.redis_nodes: port 70000/);
    for (const mode of ['sentinel', 'cluster']) {
      assert.throws(() => redis({ redis_mode: mode }), new RegExp(`store\\.redis_nodes: redis_mode "${mode}" needs at least one seed node`));
    }
    // Unused while the store is memory: not checked.
    assert.equal(configFromObject({ store: { redis_mode: 'cluster' } }).store.redis_mode, 'cluster');
  });

  it('Redis Cluster refuses a database other than 0 in redis_url, without echoing the URL', () => {
    const cluster = (redis_url: string) => configFromObject({ store: { kind: 'redis', redis_mode: 'cluster', redis_nodes: ['h:7000'], redis_url } });
    assert.throws(() => cluster('redis://:s3cret@h:7000/2'), (e: Error) => {
      assert.match(e.message, /store\.redis_url: Redis Cluster has only database 0, but redis_url selects database 2/);
      assert.doesNotMatch(e.message, /s3cret/);
      return true;
    });
    assert.equal(cluster('rediss://user:pw@h:7000/0').store.redis_mode, 'cluster');
    assert.equal(cluster('redis://h:7000').store.redis_mode, 'cluster');
    assert.throws(() => cluster('http://h:7000'), /store\.redis_url must start with redis:\/\/ or rediss:\/\//);
    // Sentinel may select any database.
    assert.equal(
      configFromObject({ store: { kind: 'redis', redis_mode: 'sentinel', redis_nodes: ['h:26379'], redis_url: 'redis://h/3' } }).store.redis_url,
      'redis://h/3',
    );
  });

  it('redis_url gives credentials, database and TLS to every mode', () => {
    assert.deepEqual(parseRedisCredentials('rediss://app:p%40ss@h:6380/4'), { username: 'app', password: 'p@ss', db: 4, tls: true });
    assert.deepEqual(parseRedisCredentials('redis://:pw@h'), { password: 'pw', db: 0, tls: false });
    assert.deepEqual(parseRedisNode('[fd00::1]:7000'), { host: 'fd00::1', port: 7000 });
    assert.deepEqual(
      storeTopology({ ...defaultConfig().store, kind: 'redis', redis_mode: 'sentinel', redis_nodes: ['s1:26379', 's2:26379'], redis_sentinel_name: 'm' }),
      { mode: 'sentinel', name: 'm', nodes: [{ host: 's1', port: 26379 }, { host: 's2', port: 26379 }], credentials: { db: 0, tls: false } },
    );
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
