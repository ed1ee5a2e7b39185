import { ApiError } from '../problems/api-error.js';
import { ACCESS_KEY_FORMAT, isUsable, type Keypair } from '../keypairs/keypair.js';

/** The one answer an admin gets for every key it may not name (unknown, other domain, superadmin). */
export const ADMIN_OWNER_FORBIDDEN = 'An admin may act only for keypairs of its own domain that are not superadmins.';

/**
 * Who a request acts for. `owner_access_key` may name: oneself (anyone); a
 * non-superadmin keypair of one's own domain (admin); anyone (superadmin).
 * Users naming someone else get 403 whether or not that key exists, and admins
 * get the same 403 for unknown keys, other domains' keys and superadmins, so
 * the answer tells nobody which keys exist outside what it may act for.
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
  if (requester.role === 'admin' && (owner === undefined || owner.role === 'superadmin' || owner.domain !== requester.domain)) {
    throw new ApiError(403, 'generic-forbidden', ADMIN_OWNER_FORBIDDEN);
  }
  if (owner === undefined || !isUsable(owner, now)) {
    // A superadmin may know every key; an admin gets here only for its own domain's.
    throw new ApiError(400, 'invalid-api-params', 'Unknown or inactive owner_access_key.');
  }
  return owner;
}

/**
 * owner_access_key from the query string, or from the JSON body of a POST when
 * the signature covers that body. With `body_hash = "backendai"` a request
 * verified through the empty-body hash has an unsigned body that anyone who
 * captured the request could replace: naming an owner there is a 400 (the
 * query string is signed; put it there).
 */
export function ownerParam(query: Record<string, unknown>, body: Record<string, unknown> | undefined, bodySigned = true): unknown {
  const q = query.owner_access_key;
  if (Array.isArray(q)) throw new ApiError(400, 'invalid-api-params', 'owner_access_key given more than once.');
  const b = body?.owner_access_key;
  if (!bodySigned && b !== undefined) {
    throw new ApiError(
      400,
      'invalid-api-params',
      'owner_access_key in a body the signature does not cover (empty-body hash) is not honoured; send it in the signed query string.',
    );
  }
  if (q !== undefined && b !== undefined && q !== b) {
    throw new ApiError(400, 'invalid-api-params', 'owner_access_key differs between query and body.');
  }
  return q ?? b;
}
