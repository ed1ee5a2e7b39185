/**
 * Rate-limit stores against a private redis-server (see helpers/redis-server.ts;
 * the shared Redis on 6379 is never touched).
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { ApiError } from '../src/problems/api-error.js';
import {
  FailoverRateLimitStore,
  MemoryRateLimitStore,
  RedisRateLimitStore,
  slidingWindowStep,
  type RateLimitStore,
} from '../src/ratelimit/index.js';
import { startRedisServer, type TestRedisServer } from './helpers/redis-server.js';

let server: TestRedisServer;
let admin: Redis; // inspects keys; not the client under test
const toClose: { close(): Promise<void> }[] = [];
let seq = 0;
const freshKey = (label: string) => `${label}:${process.pid}:${++seq}`;

async function redisStore(extra: { keyPrefix?: string } = {}): Promise<RedisRateLimitStore> {
  const store = new RedisRateLimitStore({ url: server.url, ...extra });
  toClose.push(store);
  await store.ready();
  return store;
}

function captureLogger() {
  const lines: { level: number; msg: string; [k: string]: unknown }[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line));
      cb();
    },
  });
  return { logger: pino({ level: 'debug' }, sink), lines };
}

before(async () => {
  server = await startRedisServer();
  admin = new Redis(server.url, { maxRetriesPerRequest: 1 });
  admin.on('error', () => {});
});

after(async () => {
  for (const c of toClose) await c.close();
  admin.disconnect();
  await server.stop();
});

/** The edge behaviour both stores must share. */
async function checkExactEdge(store: RateLimitStore, key: string, limit: number): Promise<void> {
  for (let i = 1; i <= limit; i++) {
    const d = await store.consume(key, limit, 900);
    assert.equal(d.allowed, true, `request ${i} of ${limit} admitted`);
    assert.equal(d.remaining, limit - i, 'remaining counts down by one');
    assert.equal(d.limit, limit);
    assert.equal(d.windowSeconds, 900);
    assert.equal(d.retryAfterSeconds, 0);
    assert.ok(d.resetMs > 890_000 && d.resetMs <= 900_000, `resetMs ≈ one window for a fresh key, got ${d.resetMs}`);
  }
  for (let i = 0; i < 5; i++) {
    const d = await store.consume(key, limit, 900);
    assert.equal(d.allowed, false, 'request limit+1 refused');
    assert.equal(d.remaining, 0);
    assert.ok(Number.isInteger(d.retryAfterSeconds) && d.retryAfterSeconds >= 1);
    assert.ok(d.resetMs > 0);
  }
}

describe('sliding-window arithmetic (pure)', () => {
  test('a full window frees capacity gradually after roll-over, fully a window after its last request', () => {
    const W = 1000;
    let state;
    for (let i = 0; i < 9; i++) state = slidingWindowStep(state, 0, 10, W).state;
    state = slidingWindowStep(state, 400, 10, W).state;
    const refused = slidingWindowStep(state, 500, 10, W);
    assert.equal(refused.allowed, false);
    // The full window must roll over (500 ms) and then its weight must fall to 9/10 (100 ms).
    assert.equal(refused.retryAfterMs, 600);
    assert.equal(slidingWindowStep(state, 1099, 10, W).allowed, false);
    const ok = slidingWindowStep(state, 1100, 10, W);
    assert.equal(ok.allowed, true);
    assert.equal(ok.remaining, 0);
    // A window after the last request every counted request is a window old: a fresh quota.
    assert.equal(slidingWindowStep(state, 1399, 10, W).remaining, 2); // 10 × 601/1000 of the old window still counts
    assert.equal(slidingWindowStep(state, 1400, 10, W).remaining, 9);
  });

  test('Retry-After is never longer than the window, and a request sent then is admitted (issue 7 item 20)', () => {
    // The case seen: 5 requests in 6 s of a 900 s window gave 894 + 180 = 1074 s.
    const W = 900_000;
    let state;
    for (const at of [0, 1500, 3000, 4500, 6000]) state = slidingWindowStep(state, at, 5, W).state;
    const refused = slidingWindowStep(state, 6000, 5, W);
    assert.equal(refused.allowed, false);
    assert.equal(refused.retryAfterMs, W);
    assert.equal(slidingWindowStep(state, 6000 + W - 1, 5, W).allowed, false);
    assert.equal(slidingWindowStep(state, 6000 + W, 5, W).allowed, true);
    // Any traffic, any limit: the delay is ≤ W, the request at now + delay is admitted, one ms earlier is not.
    let seed = 7;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
    for (let run = 0; run < 2000; run++) {
      const limit = 1 + rand(12);
      const w = 1000 * (1 + rand(5));
      let s;
      let now = rand(3 * w);
      for (let i = 0, n = rand(4 * limit); i < n; i++) {
        now += rand(Math.ceil((2 * w) / limit));
        const out = slidingWindowStep(s, now, limit, w);
        if (out.allowed) s = out.state;
        else {
          assert.ok(out.retryAfterMs >= 1 && out.retryAfterMs <= w, `delay ${out.retryAfterMs} for window ${w}`);
          assert.equal(slidingWindowStep(s, now + out.retryAfterMs, limit, w).allowed, true, `run ${run}: not admitted after the delay`);
          assert.equal(slidingWindowStep(s, now + out.retryAfterMs - 1, limit, w).allowed, false, `run ${run}: the delay is not the smallest`);
        }
      }
    }
  });

  test('limit 0 admits nothing', () => {
    const d = slidingWindowStep(undefined, 0, 0, 1000);
    assert.equal(d.allowed, false);
    assert.ok(d.retryAfterMs > 0);
  });
});

describe('MemoryRateLimitStore', () => {
  test('exactly N admitted, remaining counts down, N+1 refused', async () => {
    await checkExactEdge(new MemoryRateLimitStore(), 'k', 7);
  });

  test('refused requests do not consume; the window rolls over', async () => {
    let now = 1_000_000;
    const store = new MemoryRateLimitStore({ now: () => now });
    for (let i = 0; i < 3; i++) assert.equal((await store.consume('k', 3, 2)).allowed, true);
    let refused;
    for (let i = 0; i < 50; i++) refused = await store.consume('k', 3, 2);
    assert.equal(refused!.allowed, false);
    // Refusals spent nothing: the retry time is what three admitted requests alone imply.
    now += refused!.resetMs;
    assert.equal((await store.consume('k', 3, 2)).allowed, true);
    now += 4000; // two windows idle: a fresh start
    const d = await store.consume('k', 3, 2);
    assert.equal(d.remaining, 2);
  });

  test('concurrent callers in one process are counted exactly', async () => {
    const store = new MemoryRateLimitStore();
    const results = await Promise.all(Array.from({ length: 500 }, () => store.consume('hot', 123, 60)));
    assert.equal(results.filter((r) => r.allowed).length, 123);
  });

  test('bounded: least recently used keys are evicted past maxKeys', async () => {
    const store = new MemoryRateLimitStore({ maxKeys: 3 });
    await store.consume('a', 5, 60);
    await store.consume('b', 5, 60);
    await store.consume('c', 5, 60);
    await store.consume('a', 5, 60); // a is now the most recent
    await store.consume('d', 5, 60); // evicts b
    assert.equal(store.size, 3);
    assert.equal((await store.consume('a', 5, 60)).remaining, 2, 'a kept its count');
    assert.equal((await store.consume('b', 5, 60)).remaining, 4, 'b was forgotten');
  });

  test('expired keys are swept without a timer', async () => {
    let now = 0;
    const store = new MemoryRateLimitStore({ now: () => now });
    await store.consume('idle1', 5, 1);
    await store.consume('idle2', 5, 1);
    now = 10_000;
    await store.consume('busy', 5, 1);
    assert.equal(store.size, 1);
  });
});

describe('RedisRateLimitStore', () => {
  test('exactly N admitted, remaining counts down, N+1 refused', async () => {
    await checkExactEdge(await redisStore(), freshKey('edge'), 10);
  });

  test('refused requests do not consume (stored count stays at the limit)', async () => {
    const store = await redisStore();
    const key = freshKey('noconsume');
    for (let i = 0; i < 4; i++) await store.consume(key, 4, 60);
    for (let i = 0; i < 20; i++) assert.equal((await store.consume(key, 4, 60)).allowed, false);
    const raw = await admin.get(store.redisKey(key));
    assert.match(raw ?? '', /^\d+:4:0:\d+$/); // start:current:previous:last
  });

  test('window roll-over with a 1 s window', async () => {
    const store = await redisStore();
    const key = freshKey('roll');
    for (let i = 0; i < 3; i++) assert.equal((await store.consume(key, 3, 1)).allowed, true);
    const refused = await store.consume(key, 3, 1);
    assert.equal(refused.allowed, false);
    assert.ok(refused.retryAfterSeconds >= 1 && refused.retryAfterSeconds <= 2);
    assert.ok(refused.resetMs > 0 && refused.resetMs <= 2000, `resetMs ${refused.resetMs}`);
    await sleep(refused.resetMs + 20);
    assert.equal((await store.consume(key, 3, 1)).allowed, true, 'capacity freed when resetMs said');
    await sleep(2100);
    assert.equal((await store.consume(key, 3, 1)).remaining, 2, 'full capacity after two idle windows');
  });

  test('Retry-After after a burst is never longer than the window (issue 7 item 20), memory and redis alike', async () => {
    for (const store of [new MemoryRateLimitStore(), await redisStore()]) {
      const key = freshKey('burst');
      for (let i = 0; i < 5; i++) assert.equal((await store.consume(key, 5, 900)).allowed, true);
      const refused = await store.consume(key, 5, 900);
      assert.equal(refused.allowed, false);
      assert.ok(refused.retryAfterSeconds <= 900 && refused.retryAfterSeconds >= 899, `${store.kind}: Retry-After ${refused.retryAfterSeconds} s`);
      assert.ok(refused.resetMs <= 900_000, `${store.kind}: reset ${refused.resetMs} ms`);
    }
  });

  test('keys carry a TTL, use the prefix, and vanish when idle', async () => {
    const store = await redisStore({ keyPrefix: 'test:rl:' });
    const key = freshKey('ttl');
    await store.consume(key, 5, 1);
    assert.equal(store.redisKey(key), `test:rl:${key}`);
    const pttl = await admin.pttl(`test:rl:${key}`);
    assert.ok(pttl > 0 && pttl <= 2000, `PTTL ${pttl}`);
    const long = freshKey('ttl900');
    await store.consume(long, 5, 900);
    const pttl900 = await admin.pttl(store.redisKey(long));
    // A window after the last request nothing counted is left: the key lives one window.
    assert.ok(pttl900 > 890_000 && pttl900 <= 900_000, `PTTL ${pttl900}`);
    await sleep(2200);
    assert.equal(await admin.exists(`test:rl:${key}`), 0);
  });

  test('two clients (two replicas) admit exactly N between them under concurrent load', async () => {
    const a = await redisStore();
    const b = await redisStore();
    const key = freshKey('shared');
    const limit = 250;
    const calls = Array.from({ length: 800 }, (_, i) => (i % 2 ? a : b).consume(key, limit, 60));
    const results = await Promise.all(calls);
    assert.equal(results.filter((r) => r.allowed).length, limit);
    const remainings = results.filter((r) => r.allowed).map((r) => r.remaining).sort((x, y) => x - y);
    assert.deepEqual(remainings, Array.from({ length: limit }, (_, i) => i), 'each remaining value handed out once');
  });

  test('agrees with the TypeScript arithmetic on a fresh key', async () => {
    const store = await redisStore();
    const key = freshKey('agree');
    let state;
    for (let i = 0; i < 12; i++) {
      const fromRedis = await store.consume(key, 10, 900);
      const local = slidingWindowStep(state, 0, 10, 900_000);
      state = local.state;
      assert.equal(fromRedis.allowed, local.allowed);
      assert.equal(fromRedis.remaining, local.remaining);
    }
  });
});

describe('FailoverRateLimitStore', () => {
  async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
    const t0 = performance.now();
    const value = await fn();
    return [value, performance.now() - t0];
  }

  test('Redis stops → memory answers fast, degraded, logged once; Redis back → ok, logged once', async () => {
    const { logger, lines } = captureLogger();
    const primary = await redisStore();
    const store = new FailoverRateLimitStore({ primary, logger, probeIntervalMs: 200 });
    toClose.push(store);
    const key = freshKey('failover');
    assert.deepEqual(store.health(), { status: 'ok', store: 'redis' });
    assert.equal((await store.consume(key, 1000, 60)).remaining, 999);
    assert.equal(await admin.exists(primary.redisKey(key)), 1, 'served by Redis');

    await server.stop();
    for (let i = 0; i < 30; i++) {
      const [d, ms] = await timed(() => store.consume(key, 1000, 60));
      assert.equal(d.allowed, true);
      assert.ok(ms < 100, `call ${i} took ${ms.toFixed(1)} ms`);
    }
    const h = store.health();
    assert.equal(h.status, 'degraded');
    assert.equal(h.store, 'memory (redis fallback)');
    assert.ok(h.reason && h.reason.length > 0, 'degraded health gives a reason');
    assert.doesNotMatch(JSON.stringify(h), /redis:\/\//, 'no URL in health');
    assert.equal(lines.filter((l) => l.level === 40).length, 1, 'the switch is logged once');

    await server.restart();
    admin.disconnect();
    admin = new Redis(server.url, { maxRetriesPerRequest: 1 });
    admin.on('error', () => {});
    const deadline = Date.now() + 5000;
    while (store.health().status !== 'ok' && Date.now() < deadline) await sleep(50);
    assert.deepEqual(store.health(), { status: 'ok', store: 'redis' });
    // The restarted server starts empty and lost the script cache: EVALSHA falls back to EVAL.
    assert.equal((await store.consume(key, 1000, 60)).remaining, 999, 'counting in the (empty) Redis again');
    assert.equal(await admin.exists(primary.redisKey(key)), 1);
    assert.equal(lines.filter((l) => l.level === 30 && /answers again/.test(l.msg)).length, 1, 'recovery logged once');
    assert.doesNotMatch(lines.map((l) => JSON.stringify(l)).join('\n'), /redis:\/\//, 'no URL in logs');
  });

  test('a hung Redis (SIGSTOP) times out within the command timeout and falls back', async () => {
    const { logger } = captureLogger();
    const primary = await redisStore();
    const store = new FailoverRateLimitStore({ primary, logger, probeIntervalMs: 200 });
    toClose.push(store);
    const key = freshKey('hung');
    await store.consume(key, 10, 60);
    server.pause();
    try {
      for (let i = 0; i < 5; i++) {
        const [d, ms] = await timed(() => store.consume(key, 10, 60));
        assert.equal(d.allowed, true);
        assert.ok(ms < 100, `call ${i} took ${ms.toFixed(1)} ms`);
      }
      assert.equal(store.health().status, 'degraded');
      assert.match(store.health().reason ?? '', /timed out/i);
    } finally {
      server.resume();
    }
    const deadline = Date.now() + 5000;
    while (store.health().status !== 'ok' && Date.now() < deadline) await sleep(50);
    assert.equal(store.health().status, 'ok');
  });

  test('on_redis_failure = "deny" answers 503 with Retry-After while Redis is down', async () => {
    const { logger } = captureLogger();
    const primary = await redisStore();
    const store = new FailoverRateLimitStore({ primary, logger, onRedisFailure: 'deny', probeIntervalMs: 200 });
    toClose.push(store);
    assert.equal(store.onRedisFailure, 'deny');
    await store.consume(freshKey('deny'), 10, 60);
    await server.stop();
    try {
      const t0 = performance.now();
      await assert.rejects(store.consume(freshKey('deny'), 10, 60), (err: unknown) => {
        assert.ok(err instanceof ApiError);
        assert.equal(err.status, 503);
        assert.equal(err.slug, 'service-unavailable');
        assert.ok(Number(err.headers['Retry-After']) >= 1);
        return true;
      });
      assert.ok(performance.now() - t0 < 100);
      const h = store.health();
      assert.equal(h.status, 'degraded');
      assert.match(h.reason ?? '', /refused/);
    } finally {
      await server.restart();
      admin.disconnect();
      admin = new Redis(server.url, { maxRetriesPerRequest: 1 });
      admin.on('error', () => {});
    }
    const deadline = Date.now() + 5000;
    while (store.health().status !== 'ok' && Date.now() < deadline) await sleep(50);
    assert.equal((await store.consume(freshKey('deny'), 10, 60)).allowed, true);
  });

  test('ready() on an unreachable Redis starts degraded instead of throwing', async () => {
    const { logger, lines } = captureLogger();
    const primary = new RedisRateLimitStore({ url: 'redis://127.0.0.1:1' });
    const store = new FailoverRateLimitStore({ primary, logger });
    toClose.push(store);
    await store.ready(300);
    assert.equal(store.health().status, 'degraded');
    assert.equal((await store.consume('k', 2, 60)).allowed, true);
    assert.equal(lines.length, 1);
  });
});
