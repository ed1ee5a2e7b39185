/**
 * Rate limiting: the store interface, its memory and Redis implementations,
 * the Redis→memory failover wrapper, and a factory for the configured store.
 */
import type { RedisClient } from '../redis/client.js';
import type { Logger } from 'pino';
import { FailoverRateLimitStore } from './failover-store.js';
import { MemoryRateLimitStore } from './memory-store.js';
import { RedisRateLimitStore } from './redis-store.js';
import type { RateLimitStore, RedisFailurePolicy } from './types.js';

export type { RateLimitDecision, RateLimitHealth, RateLimitStore, RedisFailurePolicy } from './types.js';
export { MemoryRateLimitStore, type MemoryRateLimitStoreOptions } from './memory-store.js';
export { RedisRateLimitStore, CONSUME_LUA, type RedisRateLimitStoreOptions } from './redis-store.js';
export {
  FailoverRateLimitStore,
  type FailoverRateLimitStoreOptions,
  type ProbeableRateLimitStore,
} from './failover-store.js';
export { slidingWindowStep, type WindowState, type WindowOutcome } from './sliding-window.js';

/** Where the counters live: config.toml's [store] kind, plus [ratelimit] on_redis_failure. */
export interface RateLimitStoreConfig {
  kind: 'memory' | 'redis';
  /** For kind "redis": a fail-fast client (see src/redis/client.ts); the store closes it. */
  redis?: RedisClient;
  /** [ratelimit] on_redis_failure; default "memory". */
  onRedisFailure?: RedisFailurePolicy;
  /** Cap on in-memory keys (memory store and fallback); default 100,000. No config key. */
  maxKeys?: number;
}

/**
 * Builds the store for a config: memory as is, Redis always behind the failover
 * wrapper (a bare Redis store would turn every Redis blip into a 500).
 * Does not wait for the connection; until it is up the wrapper answers from
 * its fallback (or 503s in "deny" mode) and switches to Redis within a probe interval.
 */
export function createRateLimitStore(config: RateLimitStoreConfig, logger: Logger): RateLimitStore {
  if (config.kind === 'memory') return new MemoryRateLimitStore({ maxKeys: config.maxKeys });
  if (!config.redis) throw new TypeError('a Redis rate-limit store needs a client');
  return new FailoverRateLimitStore({
    primary: new RedisRateLimitStore({ client: config.redis, ownsClient: true }),
    fallback: new MemoryRateLimitStore({ maxKeys: config.maxKeys }),
    onRedisFailure: config.onRedisFailure,
    logger,
  });
}
