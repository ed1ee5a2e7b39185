/**
 * In-process rate-limit counters: the embedded default, and the fallback while
 * Redis is down. Counters are per process, so N replicas on memory stores
 * admit up to N × limit between them.
 */
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
  // A Map iterates in insertion order; re-inserting on every touch makes that LRU order.
  private readonly entries = new Map<string, Entry>();

  constructor(opts: MemoryRateLimitStoreOptions = {}) {
    this.maxKeys = opts.maxKeys ?? 100_000;
    if (!Number.isSafeInteger(this.maxKeys) || this.maxKeys < 1) throw new RangeError('maxKeys must be an integer ≥ 1');
    this.now = opts.now ?? Date.now;
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

    this.entries.delete(key);
    if (out.allowed || stored) {
      this.entries.set(key, { ...out.state, expiresAt: out.expiresAt });
      if (this.entries.size > this.maxKeys) this.evictOldest();
    }
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
    const stored = this.entries.get(key);
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

  private sweep(now: number): void {
    let n = 0;
    for (const [key, entry] of this.entries) {
      if (n++ >= SWEEP_PER_CALL || entry.expiresAt > now) break;
      this.entries.delete(key);
    }
  }

  private evictOldest(): void {
    const oldest = this.entries.keys().next();
    if (!oldest.done) this.entries.delete(oldest.value);
  }
}
