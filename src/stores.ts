import type { Logger } from 'pino';
import type { Config } from './config/config.js';
import { MemoryIdempotencyStore, RedisIdempotencyStore, type IdempotencyStore } from './idempotency/index.js';
import { createRateLimitStore as buildRateLimitStore, type RateLimitStore } from './ratelimit/index.js';
import { MemorySessionStore } from './sessions/memory-store.js';
import { RedisSessionStore } from './sessions/redis-store.js';
import type { SessionStore } from './sessions/types.js';

export interface Stores {
  rateLimits: RateLimitStore;
  idempotency: IdempotencyStore;
  sessions: SessionStore;
}

/**
 * Rate limits, idempotency records and sessions live in one place: this
 * process's memory (the embedded default) or one Redis shared by every replica.
 */
export async function createStores(config: Config, log: Logger): Promise<Stores> {
  const rl = config.ratelimit;
  const idleMs = config.sessions.idle_timeout_seconds * 1000;
  const rateLimits = buildRateLimitStore(
    { store: rl.store, redisUrl: rl.redis_url, onRedisFailure: rl.on_redis_failure, commandTimeoutMs: rl.redis_timeout_ms },
    log,
  );
  if (rl.store === 'memory') {
    return { rateLimits, idempotency: new MemoryIdempotencyStore(), sessions: new MemorySessionStore() };
  }
  const idempotency = new RedisIdempotencyStore({ url: rl.redis_url, commandTimeoutMs: 1000 });
  const sessions = new RedisSessionStore({ url: rl.redis_url, idleMs });
  // Give Redis a moment to connect so the first requests are not refused; start anyway if it is down.
  const ready = (rateLimits as { ready?: (ms: number) => Promise<unknown> }).ready;
  await Promise.allSettled([ready?.call(rateLimits, 2000), idempotency.ready(2000), sessions.ready(2000)]);
  return { rateLimits, idempotency, sessions };
}
