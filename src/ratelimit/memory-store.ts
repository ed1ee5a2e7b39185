/**
 * In-process rate-limit counters: the embedded default, and the fallback while
 * Redis is down. Counters are per process, so N replicas on memory stores
 * admit up to N × limit between them.
 */
import { LRUCache } from 'lru-cache';
import { slidingWindowStep, type WindowState } from './sliding-window.js';
import type { RateLimitDecision, RateLimitHealth, RateLimitStore } from './types.js';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { checkConsumeArgs, retryAfterSeconds } from './validate.js';

export interface MemoryRateLimitStoreOptions {
  /**
   * Most keys kept at once (default 100,000, ≈ 100 bytes each). Past it the
   * least-recently-used key is dropped, which forgets its count: under a flood of
   * distinct keys (e.g. spoofed anonymous addresses) we prefer bounded memory to
   * exact counts for the coldest keys.
   */
  maxKeys?: number;
  /** Clock in ms since the epoch; tests inject a fake one. */
  now?: () => number;
}

interface Entry extends WindowState {
  expiresAt: number;
}

/** How many of the oldest entries each call inspects for expiry, so idle keys go away without a timer. */
const SWEEP_PER_CALL = 2;

export class MemoryRateLimitStore implements RateLimitStore {
  readonly kind = 'memory' as const;
  private readonly maxKeys: number;
  private readonly now: () => number;
  /**
   * Least recently charged first: consume() promotes, peek() does not. Evicting
   * the coldest counter resets it, so a flood of distinct keys can make an idle
   * tenant's count restart; refusing new keys when full instead would lock out
   * every newcomer, and expiring by age alone would not bound memory. That is
   * the trade-off the hand-written Map made too; lru-cache keeps it exactly.
   * Expiry stays ours (expiresAt on the injected clock), not lru-cache's TTL.
   */
  private readonly entries: LRUCache<string, Entry>;

  constructor(opts: MemoryRateLimitStoreOptions = {}) {
    this.maxKeys = opts.maxKeys ?? 100_000;
    if (!Number.isSafeInteger(this.maxKeys) || this.maxKeys < 1) throw new RangeError('maxKeys must be an integer ≥ 1');
    this.now = opts.now ?? Date.now;
    this.entries = new LRUCache({ max: this.maxKeys });
  }

  /** Number of keys held (for tests and metrics). */
  get size(): number {
    return this.entries.size;
  }

  // Synchronous from lookup to write-back, so concurrent callers in this process
  // cannot interleave inside a check: the event loop makes it atomic.
  async consume(key: string, limit: number, windowSeconds: number): Promise<RateLimitDecision> {
    checkConsumeArgs(key, limit, windowSeconds);
    // Decide on the next loop turn, as the Redis store does by nature: under load every
    // request read in one poll phase is decided together and the responses leave
    // back to back. Measured on loopback: 9.0k -> 16.9k signed req/s (bench/RESULTS.md).
    await yieldToLoop();
    const now = this.now();
    this.sweep(now);
    const stored = this.entries.get(key);
    const out = slidingWindowStep(stored && stored.expiresAt > now ? stored : undefined, now, limit, windowSeconds * 1000);

    // A refused request for an unknown key leaves nothing behind (no state to keep).
    if (out.allowed || stored) this.entries.set(key, { ...out.state, expiresAt: out.expiresAt });
    return {
      allowed: out.allowed,
      limit,
      remaining: out.remaining,
      resetMs: out.resetMs,
      windowSeconds,
      retryAfterSeconds: out.allowed ? 0 : retryAfterSeconds(out.retryAfterMs),
    };
  }

  async peek(key: string, limit: number, windowSeconds: number): Promise<RateLimitDecision> {
    checkConsumeArgs(key, limit, windowSeconds);
    const now = this.now();
    const stored = this.entries.peek(key);
    const out = slidingWindowStep(stored && stored.expiresAt > now ? stored : undefined, now, limit, windowSeconds * 1000);
    return {
      allowed: out.allowed,
      limit,
      // What a request admitted now would leave, as consume() would report it.
      remaining: out.allowed ? out.remaining : 0,
      resetMs: out.resetMs,
      windowSeconds,
      retryAfterSeconds: out.allowed ? 0 : retryAfterSeconds(out.retryAfterMs),
    };
  }

  health(): RateLimitHealth {
    return { status: 'ok', store: 'memory' };
  }

  async close(): Promise<void> {
    this.entries.clear();
  }

  /** Drops up to SWEEP_PER_CALL expired counters from the cold end. */
  private sweep(now: number): void {
    let expired: string[] | undefined;
    let n = 0;
    for (const key of this.entries.rkeys()) {
      if (n++ >= SWEEP_PER_CALL || this.entries.peek(key)!.expiresAt > now) break;
      (expired ??= []).push(key);
    }
    if (expired) for (const key of expired) this.entries.delete(key);
  }
}
