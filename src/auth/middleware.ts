import type { Next } from 'koa';
import { ApiError } from '../problems/api-error.js';
import type { GatewayContext } from '../server/context.js';
import { readRawBody, requestHasBody } from '../http/raw-body.js';
import { parseBody } from '../http/body-parsers.js';
import { checkHeaders, verifyRequest, type CheckedHeaders, type VerifyContext, type VerifyPolicy } from './verify.js';

export interface AuthDeps {
  policy: VerifyPolicy;
  verifyContext(): VerifyContext;
  bodyLimit: number;
  /** Charges the request to the client address (unsigned or failed requests). */
  chargeAnonymous(ctx: GatewayContext): Promise<void>;
  /** Charges the request to the verified keypair. */
  chargeKeypair(ctx: GatewayContext): Promise<void>;
  /**
   * Before a body is read: throws 429 when the claimed keypair (if it exists and is usable) or the
   * client address is already over its limit. Spends nothing (the keypair is not verified yet).
   */
  refuseBeforeBody?(ctx: GatewayContext, claimedAccessKey: string): Promise<void>;
}

/**
 * Signed routes: check what the headers alone can tell (credentials present and well-formed, date),
 * refuse a body from a client already over its limit, then read the body once (the signature covers
 * its exact bytes), verify, then charge whoever is now known to pay. A request that fails
 * verification is charged to its address, never to the key it names. Whatever is refused before
 * its body is read is answered with `Connection: close` (the gateway's outer middleware), so the
 * unread body is not drained.
 */
export function signedRequest(deps: AuthDeps) {
  return async function verifySigned(ctx: GatewayContext, next: Next): Promise<void> {
    if (ctx.get('authorization') === '') {
      // Cheapest refusal first: nothing to verify, no body worth reading.
      await deps.chargeAnonymous(ctx);
      throw new ApiError(401, 'auth-failed', 'No credentials were given.');
    }
    let checked: CheckedHeaders;
    try {
      checked = checkHeaders({ header: (name) => headerValue(ctx, name) }, deps.policy, deps.verifyContext());
    } catch (error) {
      await deps.chargeAnonymous(ctx);
      throw error;
    }
    // Only a body is worth guarding: a bodiless request costs one HMAC, and the hot GET path stays short.
    // Unknown keys are not refused here: the answer (and its timing) must not tell which keys exist;
    // their failures are charged to the address, which this check then refuses once over its limit.
    if (deps.refuseBeforeBody && requestHasBody(ctx.req)) await deps.refuseBeforeBody(ctx, checked.auth.accessKey);
    try {
      const body = await readRawBody(ctx.req, deps.bodyLimit);
      ctx.state.rawBody = body;
      ctx.state.auth = verifyRequest(
        {
          method: ctx.method,
          target: ctx.originalUrl,
          header: (name) => headerValue(ctx, name),
          host: ctx.state.client.host,
          body,
        },
        deps.policy,
        deps.verifyContext(),
        checked,
      );
    } catch (error) {
      await deps.chargeAnonymous(ctx);
      throw error;
    }
    await deps.chargeKeypair(ctx);
    // A body on GET/HEAD has no meaning: it is never parsed, so nothing in it is honoured.
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') ctx.state.body = parseBody(ctx.state.rawBody, ctx.get('content-type'));
    await next();
  };
}

function headerValue(ctx: GatewayContext, name: string): string | undefined {
  const value = ctx.req.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

/** Public routes: charged to the address; bodies (if any) are still size-limited. */
export function publicRequest(deps: Pick<AuthDeps, 'chargeAnonymous' | 'bodyLimit'>) {
  return async function unsigned(ctx: GatewayContext, next: Next): Promise<void> {
    await deps.chargeAnonymous(ctx);
    ctx.state.rawBody = await readRawBody(ctx.req, deps.bodyLimit);
    await next();
  };
}
