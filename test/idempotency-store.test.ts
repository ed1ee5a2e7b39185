/**
 * Idempotency stores: the same behaviour from memory and from a private
 * redis-server (the shared Redis on 6379 is never touched).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import {
  MemoryIdempotencyStore,
  RedisIdempotencyStore,
  requestFingerprint,
  type IdempotencyStore,
  type StoredResponse,
} from '../src/idempotency/index.js';
import { startRedisServer, type TestRedisServer } from './helpers/redis-server.js';

let server: TestRedisServer;
let admin: Redis;
const toClose: IdempotencyStore[] = [];
let seq = 0;
const freshToken = () => `token-${process.pid}-${++seq}-${Math.random().toString(36).slice(2)}`;

const DAY = 86_400;
const fpA = requestFingerprint('POST', '/session', 'aa'.repeat(32));
const fpB = requestFingerprint('POST', '/session', 'bb'.repeat(32));
const response: StoredResponse = {
  status: 201,
  headers: { 'content-type': 'application/json', 'x-request-id': 'r1' },
  body: Buffer.from('{"sessionId":"s1","created":true}').toString('base64'),
};

before(async () => {
  server = await startRedisServer();
  admin = new Redis(server.url, { maxRetriesPerRequest: 1 });
  admin.on('error', () => {});
});

after(async () => {
  for (const s of toClose) await s.close();
  admin.disconnect();
  await server.stop();
});

async function makeRedis(opts: { leaseSeconds?: number; maxBodyBytes?: number } = {}): Promise<RedisIdempotencyStore> {
  const store = new RedisIdempotencyStore({ url: server.url, ...opts });
  toClose.push(store);
  await store.ready();
  return store;
}

const kinds: [string, (opts?: { leaseSeconds?: number; maxBodyBytes?: number }) => Promise<IdempotencyStore>][] = [
  ['MemoryIdempotencyStore', async (opts) => new MemoryIdempotencyStore(opts)],
  ['RedisIdempotencyStore', makeRedis],
];

for (const [name, make] of kinds) {
  describe(name, () => {
    test('started → in-progress → mismatch → replay after complete', async () => {
      const store = await make();
      const token = freshToken();
      assert.deepEqual(await store.begin('AK1', token, fpA, DAY), { state: 'started' });
      assert.deepEqual(await store.begin('AK1', token, fpA, DAY), { state: 'in-progress' });
      assert.deepEqual(await store.begin('AK1', token, fpB, DAY), { state: 'mismatch' });
      await store.complete('AK1', token, fpA, response, DAY);
      assert.deepEqual(await store.begin('AK1', token, fpA, DAY), { state: 'replay', response });
      assert.deepEqual(await store.begin('AK1', token, fpB, DAY), { state: 'mismatch' });
    });

    test('tokens are scoped per access key', async () => {
      const store = await make();
      const token = freshToken();
      assert.equal((await store.begin('AK1', token, fpA, DAY)).state, 'started');
      assert.equal((await store.begin('AK2', token, fpA, DAY)).state, 'started');
    });

    test('abort frees an in-progress claim but never a finished record', async () => {
      const store = await make();
      const token = freshToken();
      await store.begin('AK1', token, fpA, DAY);
      await store.abort('AK1', token);
      assert.equal((await store.begin('AK1', token, fpA, DAY)).state, 'started');
      await store.complete('AK1', token, fpA, response, DAY);
      await store.abort('AK1', token);
      assert.equal((await store.begin('AK1', token, fpA, DAY)).state, 'replay');
    });

    test('20 concurrent begin() with one token: exactly one started', async () => {
      const store = await make();
      const token = freshToken();
      const results = await Promise.all(Array.from({ length: 20 }, () => store.begin('AK1', token, fpA, DAY)));
      assert.equal(results.filter((r) => r.state === 'started').length, 1);
      assert.equal(results.filter((r) => r.state === 'in-progress').length, 19);
    });

    test('a crashed request frees the token after the lease', async () => {
      const store = await make({ leaseSeconds: 0.3 });
      const token = freshToken();
      assert.equal((await store.begin('AK1', token, fpA, DAY)).state, 'started');
      await sleep(400);
      assert.equal((await store.begin('AK1', token, fpA, DAY)).state, 'started');
    });

    test('complete() after losing the lease to a different request leaves that claim alone', async () => {
      const store = await make({ leaseSeconds: 0.2 });
      const token = freshToken();
      await store.begin('AK1', token, fpA, DAY);
      await sleep(300);
      assert.equal((await store.begin('AK1', token, fpB, DAY)).state, 'started');
      await store.complete('AK1', token, fpA, response, DAY);
      assert.equal((await store.begin('AK1', token, fpB, DAY)).state, 'in-progress');
    });

    test('bodies over maxBodyBytes are kept as an uncacheable marker, never re-run', async () => {
      const store = await make({ maxBodyBytes: 16 });
      const token = freshToken();
      await store.begin('AK1', token, fpA, DAY);
      const big: StoredResponse = { ...response, body: Buffer.alloc(17, 1).toString('base64') };
      await store.complete('AK1', token, fpA, big, DAY);
      const again = await store.begin('AK1', token, fpA, DAY);
      assert.equal(again.state, 'replay');
      assert.ok(again.state === 'replay');
      assert.equal(again.response.uncacheable, true);
      assert.equal(again.response.body, '');
      assert.equal(again.response.status, 201);
    });

    test('a replayed response is a copy the caller may modify', async () => {
      const store = await make();
      const token = freshToken();
      await store.begin('AK1', token, fpA, DAY);
      await store.complete('AK1', token, fpA, response, DAY);
      const first = await store.begin('AK1', token, fpA, DAY);
      assert.ok(first.state === 'replay');
      first.response.headers['x-extra'] = 'mutated';
      const second = await store.begin('AK1', token, fpA, DAY);
      assert.ok(second.state === 'replay');
      assert.equal(second.response.headers['x-extra'], undefined);
    });
  });
}

describe('RedisIdempotencyStore specifics', () => {
  test('TTL: the lease while in progress, the full retention once complete', async () => {
    const store = await makeRedis({ leaseSeconds: 60 });
    const token = freshToken();
    await store.begin('AK1', token, fpA, DAY);
    const key = store.redisKey('AK1', token);
    const lease = await admin.pttl(key);
    assert.ok(lease > 59_000 && lease <= 60_000, `lease PTTL ${lease}`);
    await store.complete('AK1', token, fpA, response, DAY);
    const kept = await admin.pttl(key);
    assert.ok(kept > (DAY - 5) * 1000 && kept <= DAY * 1000, `retention PTTL ${kept}`);
  });

  test('the lease never outlives a shorter ttl', async () => {
    const store = await makeRedis({ leaseSeconds: 60 });
    const token = freshToken();
    await store.begin('AK1', token, fpA, 5);
    const pttl = await admin.pttl(store.redisKey('AK1', token));
    assert.ok(pttl > 0 && pttl <= 5000, `PTTL ${pttl}`);
  });

  test('client tokens never appear raw in Redis keys', async () => {
    const store = await makeRedis();
    const token = `raw-token-${freshToken()}`;
    await store.begin('AKRAW', token, fpA, DAY);
    const keys = await admin.keys('kg:idem:*');
    assert.ok(keys.includes(store.redisKey('AKRAW', token)));
    for (const k of keys) {
      assert.ok(!k.includes(token), 'token hashed');
      assert.ok(!k.includes('AKRAW'), 'scope hashed with it');
    }
  });

  test('two replicas (two clients) race for one token: exactly one started', async () => {
    const a = await makeRedis();
    const b = await makeRedis();
    const token = freshToken();
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).begin('AK1', token, fpA, DAY)),
    );
    assert.equal(results.filter((r) => r.state === 'started').length, 1);
  });
});

describe('MemoryIdempotencyStore bounds', () => {
  test('holds at most maxEntries records', async () => {
    const store = new MemoryIdempotencyStore({ maxEntries: 5 });
    for (let i = 0; i < 20; i++) await store.begin('AK1', `t${i}`, fpA, DAY);
    assert.equal(store.size, 5);
    assert.equal((await store.begin('AK1', 't19', fpA, DAY)).state, 'in-progress', 'newest kept');
  });

  test('expired records are dropped', async () => {
    let now = 0;
    const store = new MemoryIdempotencyStore({ now: () => now });
    await store.begin('AK1', 't', fpA, DAY);
    await store.complete('AK1', 't', fpA, response, 10);
    now = 11_000;
    assert.equal((await store.begin('AK1', 't', fpA, DAY)).state, 'started');
  });
});
