import type { Next } from 'koa';
import type { Logger } from 'pino';
import { ApiError } from '../problems/api-error.js';
import { renderProblem } from '../problems/middleware.js';
import type { GatewayContext } from '../http/context.js';
import { bodyOf } from '../http/request-body.js';
import { requestFingerprint } from './shared.js';
import { CircuitBreaker } from '../redis/breaker.js';
import type { IdempotencyStore, StoredResponse } from './types.js';

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const TOKEN = /^[\x21-\x7e]{1,255}$/;
/** Response headers worth replaying; rate-limit headers belong to the retry itself. */
const REPLAYED_HEADERS = ['content-type', 'location', 'etag', 'last-modified'];

/**
 * Idempotent retries (`Idempotency-Key`, or Backend.AI's `X-BackendAI-Client-Token`):
 * an unsafe request runs once per (access key, token); a retry with the same
 * request gets the stored answer, a different request with the token 422, a
 * retry while the first still runs 409. Runs after verification, so the scope
 * is a proven access key. 5xx answers are not stored: the client may retry.
 */
export function idempotency(store: IdempotencyStore, ttlSeconds: number, problemBaseUri: string, log?: Logger) {
  const breaker = new CircuitBreaker();
  return async function idempotent(ctx: GatewayContext, next: Next): Promise<void> {
    const token = ctx.get('idempotency-key') || ctx.get('x-backendai-client-token');
    if (!token || !UNSAFE.has(ctx.method)) return next();
    if (!TOKEN.test(token)) throw new ApiError(400, 'invalid-api-params', 'Idempotency-Key must be 1 to 255 visible ASCII characters.');
    const scope = ctx.state.auth!.keypair.accessKey;
    // A spooled upload's sha256 was computed as it streamed to disk; in-memory bodies are hashed here.
    const bodyHash = bodyOf(ctx.state).digest('sha256');
    const fingerprint = requestFingerprint(ctx.method, ctx.originalUrl, bodyHash);
    let begun;
    try {
      begun = await breaker.run(() => store.begin(scope, token, fingerprint, ttlSeconds));
    } catch {
      throw new ApiError(503, 'service-unavailable', 'The idempotency store is unreachable; retry shortly.', { headers: { 'Retry-After': '1' } });
    }
    if (begun.state === 'in-progress') {
      throw new ApiError(409, 'idempotency-conflict', 'A request with this idempotency key is still running; retry later.', { headers: { 'Retry-After': '1' } });
    }
    if (begun.state === 'mismatch') {
      throw new ApiError(422, 'idempotency-mismatch', 'This idempotency key was used for a different request.');
    }
    if (begun.state === 'replay') {
      const r = begun.response;
      ctx.status = r.status;
      for (const [k, v] of Object.entries(r.headers)) ctx.set(k, v);
      ctx.set('Idempotent-Replayed', 'true');
      // A response too large to keep replays its status and headers only; it is never re-run.
      ctx.body = r.uncacheable ? '' : Buffer.from(r.body, 'base64');
      if (r.headers['content-type'] && !r.uncacheable) ctx.type = r.headers['content-type'];
      return;
    }
    try {
      await next();
    } catch (error) {
      renderProblem(ctx, error, problemBaseUri, log);
    }
    if (ctx.status >= 500) {
      await store.abort(scope, token).catch(() => undefined);
      return;
    }
    await store.complete(scope, token, fingerprint, snapshot(ctx), ttlSeconds).catch(() => undefined);
  };
}

function snapshot(ctx: GatewayContext): StoredResponse {
  const headers: Record<string, string> = {};
  for (const name of REPLAYED_HEADERS) {
    const v = ctx.response.get(name);
    if (v) headers[name] = String(v);
  }
  const body = ctx.body;
  const bytes =
    body === undefined || body === null
      ? Buffer.alloc(0)
      : Buffer.isBuffer(body)
        ? body
        : typeof body === 'string'
          ? Buffer.from(body)
          : Buffer.from(JSON.stringify(body));
  return { status: ctx.status, headers, body: bytes.toString('base64') };
}
