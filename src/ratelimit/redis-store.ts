/**
 * Rate-limit counters in Redis, shared by every gateway replica.
 *
 * One Lua script does read-check-write atomically, so two replicas can never
 * both spend the last request. The clock is Redis's own (TIME), so replicas
 * with skewed clocks still agree on window boundaries. Each key is one short
 * string "start:current:previous" with a TTL of two windows, after which it
 * would read as fresh anyway, so idle keys vanish on their own.
 */
import type { Redis } from 'ioredis';
import { clientFrom, describeRedisError, waitForReady, type FailFastRedisOptions } from './redis-client.js';
import type { RateLimitDecision, RateLimitHealth, RateLimitStore } from './types.js';
import { checkConsumeArgs, retryAfterSeconds } from './validate.js';

// Mirrors slidingWindowStep() in sliding-window.ts; see there for the maths.
// Returns {allowed 0/1, remaining, resetMs, retryAfterMs}. ARGV[3] = "1" only peeks: nothing is written.
export const CONSUME_LUA = `
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local w = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

-- start:current:previous:last (last = when the last admitted request came; older keys lack it)
local s, c, p, l = now, 0, 0, nil
local v = redis.call('GET', key)
if v then
  local a, b, d, f = string.match(v, '^(%d+):(%d+):(%d+):?(%d*)$')
  if a then
    s = tonumber(a); c = tonumber(b); p = tonumber(d)
    if f ~= '' then l = tonumber(f) end
  end
end

local e = now - s
if e < 0 then e = 0 end
if e >= 2 * w or (l and now - l >= w) then
  s = now; c = 0; p = 0; e = 0; l = nil
elseif e >= w then
  s = s + w; p = c; c = 0; e = e - w
end

local budget = limit * w - p * (w - e)
if limit > 0 and (c + 1) * w <= budget then
  c = c + 1
  l = now
  if ARGV[3] ~= '1' then
    local ttl = s + 2 * w - now
    if ttl > w then ttl = w end
    redis.call('SET', key, string.format('%d:%d:%d:%d', s, c, p, l), 'PX', ttl)
  end
  return {1, math.floor(budget / w) - c, s + w - now, 0}
end

local retry
if limit <= 0 then
  retry = w
elseif c < limit and p > 0 then
  retry = w - e - math.floor((limit - c - 1) * w / p)
else
  retry = w - e + w - math.floor((limit - 1) * w / c)
end
if l and l + w - now < retry then retry = l + w - now end
if retry > w then retry = w end
if retry < 1 then retry = 1 end
return {0, 0, retry, retry}
`;

const COMMAND = 'kgRateLimitConsume';

export interface RedisRateLimitStoreOptions extends FailFastRedisOptions {
  /** Connection URL; may carry a password, which is never logged or reported. */
  url?: string;
  /**
   * An existing client to use instead of `url` (e.g. one shared with other
   * stores). It is not closed by close(), and its fail-fast settings are the
   * caller's business (see createFailFastRedis).
   */
  client?: Redis;
  /** Prepended to every key (default "kg:rl:"), so several gateways can share a Redis. */
  keyPrefix?: string;
}

type ConsumeScript = (key: string, limit: number, windowMs: number, peekOnly?: '1') => Promise<unknown>;

export class RedisRateLimitStore implements RateLimitStore {
  readonly kind = 'redis' as const;
  readonly keyPrefix: string;
  private readonly client: Redis;
  private readonly ownsClient: boolean;
  private readonly script: ConsumeScript;
  private lastError: string | undefined;

  constructor(opts: RedisRateLimitStoreOptions) {
    ({ client: this.client, ownsClient: this.ownsClient } = clientFrom(opts, 'RedisRateLimitStore'));
    this.keyPrefix = opts.keyPrefix ?? 'kg:rl:';
    // defineCommand sends EVALSHA and falls back to EVAL on NOSCRIPT (e.g. after a Redis restart).
    this.client.defineCommand(COMMAND, { numberOfKeys: 1, lua: CONSUME_LUA });
    const fn = (this.client as unknown as Record<string, ConsumeScript>)[COMMAND];
    if (typeof fn !== 'function') throw new Error('ioredis did not register the rate-limit script');
    this.script = fn.bind(this.client);
  }

  /** Waits until connected. Commands issued before that fail at once (no offline queue). */
  ready(timeoutMs = 5000): Promise<void> {
    return waitForReady(this.client, timeoutMs);
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
        ? await this.script(this.redisKey(key), limit, windowSeconds * 1000, '1')
        : await this.script(this.redisKey(key), limit, windowSeconds * 1000);
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

  async close(): Promise<void> {
    if (!this.ownsClient) return;
    try {
      await this.client.quit();
    } catch {
      this.client.disconnect(); // quit fails when not connected; just drop the socket
    }
  }
}
