/**
 * Rate-limit counters in Redis, shared by every gateway replica.
 *
 * One Lua script does read-check-write atomically, so two replicas can never
 * both spend the last request. The clock is Redis's own (TIME), so replicas
 * with skewed clocks still agree on window boundaries. Each key is one short
 * string "start:current:previous" with a TTL of two windows, after which it
 * would read as fresh anyway, so idle keys vanish on their own. The script is
 * src/redis/scripts/ratelimit.lua.ts (kept beside the other Lua so src/redis/
 * imports nothing from the stores that use it).
 */
import { RedisBacked, describeRedisError, type RedisStoreOptions } from '../redis/client.js';
import type { RateLimitDecision, RateLimitHealth, RateLimitStore } from './types.js';
import { checkConsumeArgs, retryAfterSeconds } from './validate.js';

export { CONSUME_LUA } from '../redis/scripts/ratelimit.lua.js';

/** `keyPrefix` defaults to "kg:rl:"; `commandTimeoutMs` to 50. */
export type RedisRateLimitStoreOptions = RedisStoreOptions;

export class RedisRateLimitStore extends RedisBacked implements RateLimitStore {
  readonly kind = 'redis' as const;
  private lastError: string | undefined;

  constructor(opts: RedisRateLimitStoreOptions) {
    super(opts, 'RedisRateLimitStore', 'kg:rl:');
  }

  /** One round trip; used by the failover wrapper to tell when Redis is back. */
  async ping(): Promise<void> {
    await this.client.ping();
  }

  /** The Redis key that holds `key`'s counter. */
  redisKey(key: string): string {
    return this.keyPrefix + key;
  }

  consume(key: string, limit: number, windowSeconds: number): Promise<RateLimitDecision> {
    return this.call(key, limit, windowSeconds, false);
  }

  peek(key: string, limit: number, windowSeconds: number): Promise<RateLimitDecision> {
    return this.call(key, limit, windowSeconds, true);
  }

  private async call(key: string, limit: number, windowSeconds: number, peekOnly: boolean): Promise<RateLimitDecision> {
    checkConsumeArgs(key, limit, windowSeconds);
    let reply: unknown;
    try {
      reply = peekOnly
        ? await this.client.kgRateLimitConsume(this.redisKey(key), limit, windowSeconds * 1000, '1')
        : await this.client.kgRateLimitConsume(this.redisKey(key), limit, windowSeconds * 1000);
    } catch (err) {
      this.lastError = describeRedisError(err);
      throw err;
    }
    this.lastError = undefined;
    if (!Array.isArray(reply) || reply.length !== 4) throw new Error('unexpected reply from the rate-limit script');
    const [allowed, remaining, resetMs, retryAfterMs] = reply.map(Number) as [number, number, number, number];
    return {
      allowed: allowed === 1,
      limit,
      remaining,
      resetMs,
      windowSeconds,
      retryAfterSeconds: allowed === 1 ? 0 : retryAfterSeconds(retryAfterMs),
    };
  }

  health(): RateLimitHealth {
    if (this.client.status !== 'ready') {
      return { status: 'degraded', store: 'redis', reason: `redis connection ${this.client.status}` };
    }
    if (this.lastError) return { status: 'degraded', store: 'redis', reason: this.lastError };
    return { status: 'ok', store: 'redis' };
  }
}
