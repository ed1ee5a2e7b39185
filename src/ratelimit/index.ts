/**
 * Rate limiting: the store interface, its memory and Redis implementations,
 * the Redis→memory failover wrapper, and a factory for the [ratelimit] config.
 */
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
export { createFailFastRedis, waitForReady, describeRedisError, type FailFastRedisOptions } from './redis-client.js';
export { slidingWindowStep, type WindowState, type WindowOutcome } from './sliding-window.js';

/** The store-related keys of config.toml's [ratelimit] table, already parsed. */
export interface RateLimitStoreConfig {
  store: 'memory' | 'redis';
  /** Used when store = "redis" (config key redis_url). */
  redisUrl?: string;
  /** config key on_redis_failure; default "memory". */
  onRedisFailure?: RedisFailurePolicy;
  /** config key redis_key_prefix; default "kg:rl:". */
  keyPrefix?: string;
  /** config key redis_command_timeout_ms; default 50. */
  commandTimeoutMs?: number;
  /** Cap on in-memory keys (memory store and fallback); default 100,000. */
  maxKeys?: number;
}

/**
 * Builds the store for a config: memory as is, Redis always behind the failover
 * wrapper (a bare Redis store would turn every Redis blip into a 500).
 * Does not wait for the connection; until it is up the wrapper answers from
 * its fallback (or 503s in "deny" mode) and switches to Redis within a probe interval.
 */
export function createRateLimitStore(config: RateLimitStoreConfig, logger: Logger): RateLimitStore {
  if (config.store === 'memory') return new MemoryRateLimitStore({ maxKeys: config.maxKeys });
  return new FailoverRateLimitStore({
    primary: new RedisRateLimitStore({
      url: config.redisUrl ?? 'redis://127.0.0.1:6379',
      keyPrefix: config.keyPrefix,
      commandTimeoutMs: config.commandTimeoutMs,
    }),
    fallback: new MemoryRateLimitStore({ maxKeys: config.maxKeys }),
    onRedisFailure: config.onRedisFailure,
    logger,
  });
}
