import type { Next } from 'koa';
import { ApiError } from '../problems/api-error.js';
import type { GatewayContext } from '../server/context.js';
import { readRawBody } from '../http/raw-body.js';
import { parseBody } from '../http/body-parsers.js';
import { verifyRequest, type VerifyContext, type VerifyPolicy } from './verify.js';

export interface AuthDeps {
  policy: VerifyPolicy;
  verifyContext(): VerifyContext;
  bodyLimit: number;
  /** Charges the request to the client address (unsigned or failed requests). */
  chargeAnonymous(ctx: GatewayContext): Promise<void>;
  /** Charges the request to the verified keypair. */
  chargeKeypair(ctx: GatewayContext): Promise<void>;
}

/**
 * Signed routes: read the body once (the signature covers its exact bytes),
 * verify, then charge whoever is now known to pay. A request that fails
 * verification is charged to its address, never to the key it names.
 */
export function signedRequest(deps: AuthDeps) {
  return async function verifySigned(ctx: GatewayContext, next: Next): Promise<void> {
    if (ctx.get('authorization') === '') {
      // Cheapest refusal first: nothing to verify, no body worth reading.
      await deps.chargeAnonymous(ctx);
      throw new ApiError(401, 'auth-failed', 'No credentials were given.');
    }
    try {
      const body = await readRawBody(ctx.req, deps.bodyLimit);
      ctx.state.rawBody = body;
      const headers = ctx.req.headers;
      ctx.state.auth = verifyRequest(
        {
          method: ctx.method,
          target: ctx.originalUrl,
          header: (name) => {
            const value = headers[name];
            return Array.isArray(value) ? value.join(', ') : value;
          },
          host: ctx.state.client.host,
          body,
        },
        deps.policy,
        deps.verifyContext(),
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

/** Public routes: charged to the address; bodies (if any) are still size-limited. */
export function publicRequest(deps: Pick<AuthDeps, 'chargeAnonymous' | 'bodyLimit'>) {
  return async function unsigned(ctx: GatewayContext, next: Next): Promise<void> {
    await deps.chargeAnonymous(ctx);
    ctx.state.rawBody = await readRawBody(ctx.req, deps.bodyLimit);
    await next();
  };
}
