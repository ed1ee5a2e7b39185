/**
 * Keeps rate limiting answering while Redis is down.
 *
 * A Redis error or timeout on any call flips the wrapper into "degraded": that
 * call and the following ones are answered by a local memory store at the same
 * limits ("memory", fail-open: each replica then counts alone, so the fleet
 * admits up to replicas × limit) or refused with 503 ("deny", fail-closed).
 * While degraded nothing is sent to Redis on the request path; a background
 * probe PINGs it every `probeIntervalMs` and flips back once it answers. Each
 * switch is logged once, not once per request.
 */
import type { Logger } from 'pino';
import { unavailable } from '../problems/api-error.js';
import { MemoryRateLimitStore } from './memory-store.js';
import { describeRedisError } from '../redis/client.js';
import type { RateLimitDecision, RateLimitHealth, RateLimitStore, RedisFailurePolicy } from './types.js';

/** What the wrapper needs from its primary: a store plus a cheap liveness check. */
export interface ProbeableRateLimitStore extends RateLimitStore {
  ping(): Promise<void>;
  /** Resolves once connected; rejects after timeoutMs. */
  ready?(timeoutMs?: number): Promise<void>;
}

export interface FailoverRateLimitStoreOptions {
  primary: ProbeableRateLimitStore;
  /** Answers while the primary is down in "memory" mode (default: a new MemoryRateLimitStore). */
  fallback?: RateLimitStore;
  logger: Logger;
  /** "memory" (default): fail open to local counters; "deny": fail closed with 503. */
  onRedisFailure?: RedisFailurePolicy;
  /** How often to PING Redis while degraded (default 1000 ms). */
  probeIntervalMs?: number;
}

const TIMEOUTS_BEFORE_FAILOVER = 3;

export class FailoverRateLimitStore implements RateLimitStore {
  readonly kind = 'redis' as const;
  readonly onRedisFailure: RedisFailurePolicy;
  private readonly primary: ProbeableRateLimitStore;
  private readonly fallback: RateLimitStore;
  private readonly logger: Logger;
  private readonly probeIntervalMs: number;
  private degradedReason: string | undefined;
  private probeTimer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Timeouts in a row; a lone slow reply is more often our own event-loop lag than Redis. */
  private consecutiveTimeouts = 0;

  constructor(opts: FailoverRateLimitStoreOptions) {
    this.primary = opts.primary;
    this.fallback = opts.fallback ?? new MemoryRateLimitStore();
    this.logger = opts.logger;
    this.onRedisFailure = opts.onRedisFailure ?? 'memory';
    this.probeIntervalMs = opts.probeIntervalMs ?? 1000;
  }

  /**
   * For start-up: waits up to `timeoutMs` for Redis. If it does not come, the
   * store starts degraded (logged once) instead of throwing, so the gateway
   * still boots and serves from its fallback.
   */
  async ready(timeoutMs = 2000): Promise<void> {
    try {
      await this.primary.ready?.(timeoutMs);
    } catch (err) {
      this.enterDegraded(err);
    }
  }

  /** True while Redis is considered down. */
  get degraded(): boolean {
    return this.degradedReason !== undefined;
  }

  consume(key: string, limit: number, windowSeconds: number): Promise<RateLimitDecision> {
    return this.call('consume', key, limit, windowSeconds);
  }

  peek(key: string, limit: number, windowSeconds: number): Promise<RateLimitDecision> {
    return this.call('peek', key, limit, windowSeconds);
  }

  private async call(op: 'consume' | 'peek', key: string, limit: number, windowSeconds: number): Promise<RateLimitDecision> {
    if (!this.degraded) {
      try {
        const decision = await this.primary[op](key, limit, windowSeconds);
        this.consecutiveTimeouts = 0;
        return decision;
      } catch (err) {
        // Argument errors are the caller's bug, not an outage: do not fail over on them.
        if (err instanceof TypeError || err instanceof RangeError) throw err;
        // This call is answered without Redis either way; the whole replica switches
        // to memory only on a connection error or after several timeouts in a row,
        // so one slow reply does not split the fleet's counting for a probe interval.
        const timedOut = /timed out/i.test((err as Error)?.message ?? '');
        if (!timedOut || ++this.consecutiveTimeouts >= TIMEOUTS_BEFORE_FAILOVER) this.enterDegraded(err);
      }
    }
    if (this.onRedisFailure === 'deny') {
      throw unavailable('The rate-limit store is unavailable.', Math.max(1, Math.ceil(this.probeIntervalMs / 1000)));
    }
    return this.fallback[op](key, limit, windowSeconds);
  }

  health(): RateLimitHealth {
    if (!this.degradedReason) return { status: 'ok', store: 'redis' };
    return this.onRedisFailure === 'deny'
      ? { status: 'degraded', store: 'redis', reason: `redis unavailable (${this.degradedReason}); rate-limited requests are refused` }
      : { status: 'degraded', store: 'memory (redis fallback)', reason: `redis unavailable (${this.degradedReason}); counting per replica in memory` };
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.probeTimer);
    this.probeTimer = undefined;
    await Promise.allSettled([this.primary.close(), this.fallback.close()]);
  }

  private enterDegraded(err: unknown): void {
    if (this.degraded || this.closed) return;
    this.degradedReason = describeRedisError(err);
    this.logger.warn(
      { store: 'redis', onRedisFailure: this.onRedisFailure, reason: this.degradedReason },
      this.onRedisFailure === 'deny'
        ? 'rate-limit store: Redis unavailable, refusing rate-limited requests until it answers'
        : 'rate-limit store: Redis unavailable, falling back to per-replica memory counters',
    );
    this.scheduleProbe();
  }

  private scheduleProbe(): void {
    if (this.closed) return;
    this.probeTimer = setTimeout(() => void this.probe(), this.probeIntervalMs);
    // A probe alone must not keep the process alive after the server has closed.
    this.probeTimer.unref();
  }

  private async probe(): Promise<void> {
    try {
      await this.primary.ping();
    } catch (err) {
      this.degradedReason = describeRedisError(err);
      this.scheduleProbe();
      return;
    }
    if (this.closed) return;
    this.consecutiveTimeouts = 0;
    this.degradedReason = undefined;
    this.probeTimer = undefined;
    this.logger.info({ store: 'redis' }, 'rate-limit store: Redis answers again, counting in Redis');
  }
}
