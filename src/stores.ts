import type { Logger } from 'pino';
import type { Config } from './config/config.js';
import { MemoryIdempotencyStore, RedisIdempotencyStore, type IdempotencyStore } from './idempotency/index.js';
import { createRateLimitStore, type RateLimitStore } from './ratelimit/index.js';
import { createRedis } from './redis/client.js';
import { MemorySessionStore } from './sessions/memory-store.js';
import { RedisSessionStore } from './sessions/redis-store.js';
import type { SessionStore } from './sessions/types.js';

export interface Stores {
  rateLimits: RateLimitStore;
  idempotency: IdempotencyStore;
  sessions: SessionStore;
}

/**
 * Rate limits, idempotency records and sessions live where [store] says: this
 * process's memory (the embedded default) or one Redis shared by every replica.
 * Each store gets a client of its own, because their command deadlines differ:
 * a rate-limit check must not hold a request ([ratelimit] redis_timeout_ms),
 * while sessions and idempotency answer 503 rather than guess and can wait 1 s.
 */
export async function createStores(config: Config, log: Logger): Promise<Stores> {
  const { store } = config;
  const rateLimits = createRateLimitStore(
    {
      kind: store.kind,
      redis: store.kind === 'redis' ? createRedis(store, { commandTimeoutMs: config.ratelimit.redis_timeout_ms }) : undefined,
      onRedisFailure: config.ratelimit.on_redis_failure,
    },
    log,
  );
  if (store.kind === 'memory') {
    return { rateLimits, idempotency: new MemoryIdempotencyStore(), sessions: new MemorySessionStore() };
  }
  const idempotency = new RedisIdempotencyStore({ client: createRedis(store, { commandTimeoutMs: 1000 }), ownsClient: true });
  const sessions = new RedisSessionStore({
    client: createRedis(store, { commandTimeoutMs: 1000 }),
    ownsClient: true,
    idleMs: config.sessions.idle_timeout_seconds * 1000,
  });
  // Give Redis a moment to connect so the first requests are not refused; start anyway if it is down.
  const ready = (rateLimits as { ready?: (ms: number) => Promise<unknown> }).ready;
  await Promise.allSettled([ready?.call(rateLimits, 2000), idempotency.ready(2000), sessions.ready(2000)]);
  return { rateLimits, idempotency, sessions };
}
