/** Argument checks shared by every store, so a bad config fails loudly instead of admitting everything. */
export function checkConsumeArgs(key: string, limit: number, windowSeconds: number): void {
  if (typeof key !== 'string' || key.length === 0) throw new TypeError('rate-limit key must be a non-empty string');
  if (!Number.isSafeInteger(limit) || limit < 0) throw new RangeError(`rate limit must be an integer ≥ 0, got ${limit}`);
  if (!Number.isSafeInteger(windowSeconds) || windowSeconds <= 0) {
    throw new RangeError(`rate-limit window must be a whole number of seconds > 0, got ${windowSeconds}`);
  }
  // The window arithmetic works in count × ms; Lua numbers are doubles, exact only up to 2^53.
  if ((limit + 1) * windowSeconds * 1000 > Number.MAX_SAFE_INTEGER) {
    throw new RangeError('rate limit × window too large to count exactly');
  }
}

/** Whole seconds for Retry-After: never 0 for a refusal, or clients would retry in a busy loop. */
export const retryAfterSeconds = (retryAfterMs: number): number => Math.max(1, Math.ceil(retryAfterMs / 1000));
