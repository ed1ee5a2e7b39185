/**
 * The contract between the rate-limit middleware and whatever keeps the counters.
 * Every store answers the same question ("may this key spend one more request in
 * a window of `windowSeconds` with at most `limit` requests?") with the same
 * numbers, so the middleware can set X-RateLimit-* headers without knowing
 * where the counters live.
 */
export interface RateLimitDecision {
  allowed: boolean;
  limit: number;
  /** Requests this key may still make right now (0 when refused). */
  remaining: number;
  /**
   * Milliseconds until the window frees capacity: when allowed, until the key's
   * current window ends (≈ window for a fresh key, cf. `X-RateLimit-Reset: 897065`);
   * when refused, until the next request would be admitted.
   */
  resetMs: number;
  windowSeconds: number;
  /** Whole seconds ≥ 1 to put in Retry-After when refused; 0 when allowed. */
  retryAfterSeconds: number;
}

export interface RateLimitHealth {
  status: 'ok' | 'degraded';
  /** What is answering now, e.g. "redis", "memory", "memory (redis fallback)". */
  store: string;
  /** Why degraded; never contains URLs or credentials. */
  reason?: string;
}

export interface RateLimitStore {
  /** Spends one request for `key` if the limit allows it. Refused requests spend nothing. */
  consume(key: string, limit: number, windowSeconds: number): Promise<RateLimitDecision>;
  /**
   * Would one more request for `key` be admitted now? Spends nothing: used before a request's body
   * is read, when the payer is only claimed, not yet verified.
   */
  peek(key: string, limit: number, windowSeconds: number): Promise<RateLimitDecision>;
  readonly kind: 'memory' | 'redis';
  health(): RateLimitHealth;
  close(): Promise<void>;
}

/** What to do with requests while Redis is unreachable. */
export type RedisFailurePolicy = 'memory' | 'deny';
