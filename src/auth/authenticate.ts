import type { GatewayContext, Stage } from '../http/context.js';
import type { PayerLimits } from '../ratelimit/payer.js';
import { ApiError } from '../problems/api-error.js';
import type { Keypair } from '../keypairs/keypair.js';
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
  const pick = authenticators.length === 1 ? () => fallback : (ctx: GatewayContext) => pickAuthenticator(authenticators, ctx);
  return async function authenticateStage(ctx: GatewayContext): Promise<void> {
    try {
      ctx.state.principal = await pick(ctx).authenticate(ctx);
    } catch (error) {
      ctx.state.principal = anonymousPrincipal(ctx.state.client.address, limits);
      ctx.state.authFailure = error;
    }
  };
}

/**
 * Which authenticator answers a request: the one scheme whose credentials it carries; none: the first
 * (it answers "no credentials"). Credentials of two schemes at once are refused with 400 unless they
 * form an allowed combination (DESIGN.md "Other credentials": x-api-key with a bearer token, handled
 * by the OIDC authenticator). Every rule about combinations lives here.
 */
export function pickAuthenticator(authenticators: readonly Authenticator[], ctx: GatewayContext): Authenticator {
  let claiming = authenticators.filter((a) => a.claims(ctx));
  // x-api-key next to a bearer token is one identity (the token acts, the key names the owner): the
  // OIDC authenticator resolves both.
  if (claiming.length === 2 && claiming.some((a) => a.scheme === 'apikey') && claiming.some((a) => a.scheme === 'oidc')) {
    claiming = claiming.filter((a) => a.scheme === 'oidc');
  }
  if (claiming.length > 1) {
    return refusal('The request carries credentials of more than one scheme; send one.', `credentials of several schemes: ${claiming.map((a) => a.scheme).join(', ')}`);
  }
  const chosen = claiming[0] ?? authenticators[0]!;
  // With other schemes enabled, an HMAC request may not carry their credentials too (which would win?).
  if (chosen.scheme === 'backendai' && hasOtherCredentials(ctx)) {
    return refusal('A Backend.AI-signed request may not carry other credentials (x-api-key, x-selected-customer, bearer token).');
  }
  return chosen;
}

/** An authenticator that answers 400: credentials that do not form one request's identity. */
function refusal(detail: string, reason?: string): Authenticator {
  return {
    scheme: 'mixed',
    claims: () => true,
    authenticate: () => {
      throw new ApiError(400, 'invalid-auth-params', detail, reason === undefined ? undefined : { log: { msg: 'authentication failed', reason } });
    },
  };
}

/** The authenticate stage of public routes: the client address is the principal, and pays. */
export function anonymous(limits: PayerLimits): Stage {
  return function anonymousStage(ctx: GatewayContext): void {
    ctx.state.principal = anonymousPrincipal(ctx.state.client.address, limits);
  };
}

/** The API key lookup the combination step needs; the API key store (scheme "apikey") implements it. */
export interface ApiKeyResolver {
  /** The keypair owning a usable key (unknown, revoked and expired keys: undefined). */
  resolve(key: string): { keypair: Keypair; id: string; scope: string } | undefined;
}

function hasOtherCredentials(ctx: GatewayContext): boolean {
  return ctx.get('x-api-key') !== '' || ctx.get('x-selected-customer') !== '';
}

/**
 * The combination step of a bearer-token request (DESIGN "Other credentials"): `x-api-key` next to a
 * token names the API key's keypair as the acting owner (the token's keypair acts, under the owner
 * rules, checked by the owner scope stage: 403 when it may not). Returns the owner's access key, or
 * undefined without an x-api-key. An unknown key is the same 401 as any bad credential.
 */
export function apiKeyOwner(ctx: GatewayContext, resolver: ApiKeyResolver | undefined): string | undefined {
  const key = ctx.get('x-api-key');
  if (key === '') return undefined;
  if (resolver === undefined) {
    throw new ApiError(400, 'invalid-auth-params', 'x-api-key is not accepted by this gateway ("apikey" is not in [auth] schemes).');
  }
  const found = resolver.resolve(key);
  if (found === undefined) throw new ApiError(401, 'auth-failed', 'The API key is not accepted.');
  return found.keypair.accessKey;
}

/** A scheme not listed in `[auth] schemes`: it claims its own credentials only to refuse them (401). */
export function refusedScheme(scheme: string, claims: Authenticator['claims']): Authenticator {
  return {
    scheme,
    claims,
    authenticate: (ctx) => {
      if (claims(ctx)) {
        throw new ApiError(401, 'auth-failed', 'This gateway does not accept this credential scheme.', {
          log: { msg: 'authentication failed', scheme, reason: `scheme ${scheme} not in [auth] schemes` },
        });
      }
      throw new ApiError(401, 'auth-failed', 'No credentials were given.');
    },
  };
}
