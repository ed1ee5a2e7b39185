import type { Context } from 'koa';
import { ApiError } from '../problems/api-error.js';
import type { Payer } from './payer.js';
import type { RateLimitDecision, RateLimitStore } from './types.js';

export type { Payer } from './payer.js';

/** X-RateLimit-* (Backend.AI's, Reset in milliseconds) plus the IETF RateLimit fields. */
export function rateLimitHeaders(d: RateLimitDecision, policy: string): Record<string, string> {
  const resetSeconds = Math.ceil(d.resetMs / 1000);
  const headers: Record<string, string> = {
    'X-RateLimit-Limit': String(d.limit),
    'X-RateLimit-Remaining': String(d.remaining),
    'X-RateLimit-Reset': String(Math.max(0, Math.round(d.resetMs))),
    'X-RateLimit-Window': String(d.windowSeconds),
    'RateLimit-Policy': `"${policy}";q=${d.limit};w=${d.windowSeconds}`,
    RateLimit: `"${policy}";r=${d.remaining};t=${resetSeconds}`,
  };
  if (!d.allowed) headers['Retry-After'] = String(Math.max(1, d.retryAfterSeconds));
  return headers;
}

/**
 * Spends one request for the payer, sets the headers (they stay on error
 * responses too) and throws 429 when refused. Charging twice is a no-op, so a
 * request that fails after it was charged is not charged again.
 */
export async function charge(ctx: Context, store: RateLimitStore, payer: Payer, windowSeconds: number): Promise<void> {
  if (ctx.state.rateLimited) return;
  ctx.state.rateLimited = true;
  const decision = await store.consume(payer.key, payer.limit, windowSeconds);
  ctx.set(rateLimitHeaders(decision, payer.policy));
  if (!decision.allowed) {
    throw new ApiError(429, 'rate-limit-exceeded', `Rate limit exceeded: ${payer.limit} requests per ${windowSeconds} seconds.`, {
      headers: { 'Retry-After': String(Math.max(1, decision.retryAfterSeconds)) },
    });
  }
}

/**
 * Refuses (429, with that payer's headers) when any of the payers is already over its limit; spends
 * nothing. For checks before a request's body is read, when who pays is only claimed. A refused
 * request has had its answer from the limiter: charging it afterwards is a no-op.
 */
export async function refuseIfOver(ctx: Context, store: RateLimitStore, payers: Payer[], windowSeconds: number): Promise<void> {
  const decisions = await Promise.all(payers.map((p) => store.peek(p.key, p.limit, windowSeconds)));
  const refused = decisions.findIndex((d) => !d.allowed);
  if (refused === -1) return;
  const payer = payers[refused]!;
  const decision = decisions[refused]!;
  ctx.state.rateLimited = true;
  ctx.set(rateLimitHeaders(decision, payer.policy));
  throw new ApiError(429, 'rate-limit-exceeded', `Rate limit exceeded: ${payer.limit} requests per ${windowSeconds} seconds.`, {
    headers: { 'Retry-After': String(Math.max(1, decision.retryAfterSeconds)) },
  });
}
