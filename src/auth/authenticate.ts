import type { GatewayContext, Stage } from '../http/context.js';
import type { PayerLimits } from '../ratelimit/payer.js';
import { anonymousPrincipal, type Principal } from './principal.js';

/**
 * One credential scheme. Adding a scheme (static API keys, OIDC bearer tokens) means adding one
 * of these under authenticators/ and listing it in the gateway.
 */
export interface Authenticator {
  /** Shown as the principal's `scheme`. */
  readonly scheme: string;
  /** Whether the request's credentials are this scheme's (e.g. its Authorization scheme word). */
  claims(ctx: GatewayContext): boolean;
  /** The principal, or a thrown 400/401 (or 413/429 from reading the body) problem. */
  authenticate(ctx: GatewayContext): Promise<Principal>;
}

/**
 * The authenticate stage of signed routes. It never throws: a failure leaves an anonymous principal
 * (the address pays for it) and is thrown by the rate-limit stage once charged, so that charging
 * happens in one place. The first authenticator answers requests no scheme claims (no credentials).
 */
export function authenticate(authenticators: readonly Authenticator[], limits: PayerLimits): Stage {
  if (authenticators.length === 0) throw new Error('authenticate: no authenticator');
  const fallback = authenticators[0]!;
  const pick =
    authenticators.length === 1 ? () => fallback : (ctx: GatewayContext) => authenticators.find((a) => a.claims(ctx)) ?? fallback;
  return async function authenticateStage(ctx: GatewayContext): Promise<void> {
    try {
      ctx.state.principal = await pick(ctx).authenticate(ctx);
    } catch (error) {
      ctx.state.principal = anonymousPrincipal(ctx.state.client.address, limits);
      ctx.state.authFailure = error;
    }
  };
}

/** The authenticate stage of public routes: the client address is the principal, and pays. */
export function anonymous(limits: PayerLimits): Stage {
  return function anonymousStage(ctx: GatewayContext): void {
    ctx.state.principal = anonymousPrincipal(ctx.state.client.address, limits);
  };
}
