import type { GatewayContext, Stage } from '../http/context.js';
import type { RouteSpec } from '../http/route.js';
import type { Keypair } from '../keypairs/keypair.js';
import { ApiError } from '../problems/api-error.js';
import { ownerParam, resolveOwner } from './owner.js';

/**
 * Route-declared policy, applied here so that no handler checks roles or owners by hand:
 * `access: 'admin'` needs an admin or superadmin keypair (before the request is validated), and
 * `owner` resolves owner_access_key into ctx.state.owner (after validation, just before the handler).
 * `signed` needs nothing beyond a principal, which authentication already proved.
 */
export function requireRole(route: Pick<RouteSpec, 'access'>): Stage | undefined {
  if (route.access !== 'admin') return undefined;
  return function requireAdmin(ctx: GatewayContext): void {
    if (ctx.state.principal!.keypair!.role === 'user') {
      throw new ApiError(403, 'generic-forbidden', 'This operation needs an admin keypair.');
    }
  };
}

/**
 * owner_access_key, x-selected-customer (its other name) and an owner named by the credentials
 * (x-api-key next to a token) must agree: two different ones are a 400. x-selected-customer is honoured
 * for bearer-token and API-key principals only: an HMAC signature does not cover it (only the headers it
 * lists), and the authenticate stage refuses it next to HMAC when other schemes are enabled.
 */
function credentialOwner(ctx: GatewayContext, named: unknown): unknown {
  const scheme = ctx.state.principal?.scheme;
  const selected = scheme === 'oidc' || scheme === 'apikey' ? ctx.get('x-selected-customer') || undefined : undefined;
  const candidates = [named === '' || named === null ? undefined : named, selected, ctx.state.credentialOwner].filter((v) => v !== undefined);
  if (candidates.some((v) => v !== candidates[0])) {
    throw new ApiError(400, 'invalid-api-params', 'owner_access_key, x-selected-customer and the x-api-key owner name different keypairs.');
  }
  return candidates[0];
}

/** The owner scope stage: whom the request acts for; recorded for the access log and read by handlers. */
export function ownerScope(route: Pick<RouteSpec, 'owner'>, lookup: (accessKey: string) => Keypair | undefined): Stage | undefined {
  if (route.owner === undefined) return undefined;
  const withBody = route.owner === 'query+body';
  return function scopeOwner(ctx: GatewayContext): void {
    const auth = ctx.state.auth!;
    const named = ownerParam(ctx.query, withBody ? ctx.state.body : undefined, auth.bodySigned);
    ctx.state.owner = resolveOwner(auth.keypair, credentialOwner(ctx, named), lookup, Date.now());
  };
}

/** Routes a `read`-scoped credential may use beyond GET: inference on an existing session. */
const READ_SCOPE_WRITES = new Set(['POST /session/:name/infer']);

/**
 * The credential's scope (an API key of scope `read`: GET routes and inference on existing sessions
 * only). None for routes every scope may use.
 */
export function requireScope(route: Pick<RouteSpec, 'method' | 'path' | 'access' | 'readScope'>): Stage | undefined {
  if (route.access !== 'signed' && route.access !== 'admin') return undefined;
  if (route.method === 'GET' || route.readScope === true || READ_SCOPE_WRITES.has(`${route.method} ${route.path}`)) return undefined;
  const what = `${route.method} ${route.path}`;
  return function checkScope(ctx: GatewayContext): void {
    const principal = ctx.state.principal;
    if (principal?.keypair !== undefined && principal.scope === 'read') {
      throw new ApiError(403, 'generic-forbidden', `This API key has scope read: it may use GET routes and inference on existing sessions, not ${what}.`);
    }
  };
}
