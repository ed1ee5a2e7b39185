import { ApiError } from '../problems/api-error.js';
import { ACCESS_KEY_FORMAT, isUsable, type Keypair } from '../keypairs/keypair.js';
import type { GatewayContext } from '../server/context.js';

/**
 * Who a request acts for. `owner_access_key` may name: oneself (anyone); a
 * non-superadmin keypair of one's own domain (admin); anyone (superadmin).
 * Users naming someone else get 403 whether or not that key exists, so the
 * answer tells them nothing about other tenants.
 */
export function resolveOwner(
  requester: Keypair,
  ownerAccessKey: unknown,
  lookup: (accessKey: string) => Keypair | undefined,
  now: number,
): Keypair {
  if (ownerAccessKey === undefined || ownerAccessKey === null || ownerAccessKey === '') return requester;
  if (typeof ownerAccessKey !== 'string' || !ACCESS_KEY_FORMAT.test(ownerAccessKey)) {
    throw new ApiError(400, 'invalid-api-params', 'owner_access_key must be an access key.');
  }
  if (ownerAccessKey === requester.accessKey) return requester;
  if (requester.role === 'user') {
    throw new ApiError(403, 'generic-forbidden', 'Only admins may act on behalf of another keypair.');
  }
  const owner = lookup(ownerAccessKey);
  if (owner === undefined || !isUsable(owner, now)) {
    throw new ApiError(400, 'invalid-api-params', 'Unknown or inactive owner_access_key.');
  }
  if (requester.role === 'admin' && (owner.role === 'superadmin' || owner.domain !== requester.domain)) {
    throw new ApiError(403, 'generic-forbidden', 'Admins may act only for keypairs of their own domain.');
  }
  return owner;
}

/** Resolves the request's owner_access_key, records it for the access log, and returns it. */
export function actingOwner(ctx: GatewayContext, lookup: (accessKey: string) => Keypair | undefined): Keypair {
  const owner = resolveOwner(ctx.state.auth!.keypair, ownerParam(ctx.query, ctx.state.body), lookup, Date.now());
  ctx.state.owner = owner;
  return owner;
}

/** owner_access_key from the query string, or from the JSON body of a POST. */
export function ownerParam(query: Record<string, unknown>, body: Record<string, unknown> | undefined): unknown {
  const q = query.owner_access_key;
  if (Array.isArray(q)) throw new ApiError(400, 'invalid-api-params', 'owner_access_key given more than once.');
  const b = body?.owner_access_key;
  if (q !== undefined && b !== undefined && q !== b) {
    throw new ApiError(400, 'invalid-api-params', 'owner_access_key differs between query and body.');
  }
  return q ?? b;
}
