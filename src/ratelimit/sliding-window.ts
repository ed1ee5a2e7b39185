/**
 * Sliding-window counter (the Cloudflare approximation), one window per key.
 *
 * State is three integers — window start, count in the current window, count in
 * the previous one — so memory is O(1) per key. The previous window's count is
 * weighted by how much of it still overlaps the sliding window:
 *
 *     estimate = previous × (W − elapsed) / W + current
 *
 * A request is admitted when estimate + 1 ≤ limit. The comparison is done in
 * integer "count × ms" units (multiply through by W) so it is exact: a fresh key
 * gets exactly `limit` requests and `remaining` drops by exactly one per admitted
 * request. Refused requests change nothing.
 *
 * One more number, the time of the last admitted request, makes the estimate
 * exact where it is known to be wrong: once that request is a full window old,
 * every counted request is, and the key starts afresh. Without it a burst that
 * fills a window within its first W / limit ms would be refused for longer than
 * the window (the estimate spreads the burst evenly over it: 5 requests in 6 s
 * of a 900 s window waited 894 + 180 = 1074 s), while a true sliding log frees a
 * slot at most W after any refusal. So Retry-After never exceeds the window, and
 * a request sent when it says is admitted.
 *
 * Windows are anchored at the key's first request rather than at wall-clock
 * multiples of W, so a fresh key's reset is a full window (the documented
 * `X-RateLimit-Reset: 897065` shape), and keys do not all roll over at once.
 *
 * The same arithmetic runs as a Lua script in redis-store.ts; keep them in step.
 */

export interface WindowState {
  /** Start of the current window, ms since the epoch. */
  start: number;
  current: number;
  previous: number;
  /** When the last admitted request came, ms since the epoch (absent on a fresh key). */
  last?: number;
}

export interface WindowOutcome {
  allowed: boolean;
  remaining: number;
  resetMs: number;
  /** 0 when allowed. */
  retryAfterMs: number;
  /** State to keep after this call (unchanged contents when refused). */
  state: WindowState;
  /** When the state becomes equivalent to "no state" and may be dropped, ms since the epoch. */
  expiresAt: number;
}

/** Rolls the state forward to the window containing `now`. */
export function roll(state: WindowState | undefined, now: number, windowMs: number): WindowState {
  if (!state) return { start: now, current: 0, previous: 0 };
  // A clock that stepped backwards is treated as "still at the window start"
  // rather than producing negative elapsed time and over-weighting `previous`.
  const elapsed = Math.max(0, now - state.start);
  // Every counted request is at least a window old: nothing of them is left.
  if (elapsed >= 2 * windowMs || (state.last !== undefined && now - state.last >= windowMs)) return { start: now, current: 0, previous: 0 };
  if (elapsed >= windowMs) return { start: state.start + windowMs, current: 0, previous: state.current, last: state.last };
  return { ...state };
}

export function slidingWindowStep(
  stored: WindowState | undefined,
  now: number,
  limit: number,
  windowMs: number,
): WindowOutcome {
  const s = roll(stored, now, windowMs);
  const elapsed = Math.max(0, now - s.start);
  // Capacity left in count×ms units after the previous window's weighted share.
  const budget = limit * windowMs - s.previous * (windowMs - elapsed);

  if (limit > 0 && (s.current + 1) * windowMs <= budget) {
    s.current += 1;
    s.last = now;
    return {
      allowed: true,
      remaining: Math.floor(budget / windowMs) - s.current,
      resetMs: s.start + windowMs - now,
      retryAfterMs: 0,
      state: s,
      expiresAt: expiry(s, windowMs),
    };
  }

  const retryAfterMs = retryDelay(s, now, elapsed, limit, windowMs);
  return { allowed: false, remaining: 0, resetMs: retryAfterMs, retryAfterMs, state: s, expiresAt: expiry(s, windowMs) };
}

/** When a state becomes "no state": two windows after its start, or a window after its last request. */
function expiry(s: WindowState, windowMs: number): number {
  return s.last === undefined ? s.start + 2 * windowMs : Math.min(s.start + 2 * windowMs, s.last + windowMs);
}

/** Smallest whole number of ms after which one more request would be admitted; never more than the window. */
function retryDelay(s: WindowState, now: number, elapsed: number, limit: number, windowMs: number): number {
  if (limit <= 0) return windowMs; // nothing is ever admitted; answer with something finite
  let delay: number;
  if (s.current < limit && s.previous > 0) {
    // Still inside this window: wait for previous × (W − elapsed − t) ≤ (limit − current − 1) × W.
    delay = windowMs - elapsed - Math.floor(((limit - s.current - 1) * windowMs) / s.previous);
  } else {
    // This window is full: wait for the roll-over, then for the (new) previous
    // weight to fall far enough: current × (W − e') ≤ (limit − 1) × W.
    const intoNext = windowMs - Math.floor(((limit - 1) * windowMs) / s.current);
    delay = windowMs - elapsed + intoNext;
  }
  // Or for the last admitted request to be a window old (see roll()), whichever comes first.
  if (s.last !== undefined) delay = Math.min(delay, s.last + windowMs - now);
  return Math.max(1, Math.min(delay, windowMs));
}
