/**
 * Bodies are read into memory whole, and a signed one before its signature can be checked (it covers the
 * bytes), so a client holding no valid key at all could otherwise open many connections and have each one's
 * body (up to `server.body_limit_bytes`) held at once. The budget bounds the bytes reserved by the bodies of
 * requests in progress: all together at most `total` (`server.body_memory_bytes`), one client address at most
 * a quarter of it (at least one whole body). A request reserves its announced Content-Length (a chunked body:
 * the body limit) when its body is about to be read (after the checks that need only headers, so a request
 * refused on its headers reserves nothing) and gives it back when its response closes; one that does not fit
 * is answered 503 + Retry-After and its connection closed (http/linger.ts), its body never read.
 * Spooled uploads (http/spool.ts) stream to disk and are bounded by upload slots instead.
 */
import { unavailable } from '../problems/api-error.js';
import { AddressQuota } from './address-quota.js';
import type { GatewayContext } from './context.js';
import { announcedLength, requestHasBody } from './raw-body.js';

export class BodyBudget {
  readonly #quota: AddressQuota;
  readonly #bodyLimit: number;

  constructor(opts: { total: number; bodyLimit: number }) {
    this.#bodyLimit = opts.bodyLimit;
    this.#quota = new AddressQuota(opts.total, Math.max(opts.bodyLimit, Math.floor(opts.total / 4)));
  }

  get reserved(): number {
    return this.#quota.held;
  }

  /** Reserves `bytes` for `address`; returns the release (idempotent). Throws the 503 when they do not fit. */
  reserve(address: string, bytes: number): () => void {
    const held = this.#quota.take(address, bytes);
    if (held === 'address') throw unavailable('Too many of your request bodies are being read at once; retry when earlier requests have finished.', 1);
    if (held === 'total') throw unavailable('The gateway is reading too many request bodies at once; retry later.', 1);
    return held;
  }

  /** Reserves the request's body (announced, or the limit) for its client address until its response closes. */
  hold(ctx: GatewayContext): void {
    // Over the body limit is refused by the reader with its own 413; reserve no more than the limit.
    const bytes = Math.min(announcedLength(ctx.req) ?? this.#bodyLimit, this.#bodyLimit);
    const release = this.reserve(ctx.state.client.address, bytes);
    ctx.res.once('close', release);
  }
}

/** Called by the readers of in-memory bodies just before they read one (http/read-body.ts, http/body.ts). */
export function holdBodyMemory(ctx: GatewayContext): void {
  if (ctx.state.bodyBudget !== undefined && requestHasBody(ctx.req)) ctx.state.bodyBudget.hold(ctx);
}
