import { createHmac, timingSafeEqual } from 'node:crypto';
import { ApiError } from '../problems/api-error.js';
import type { GatewayContext } from './context.js';

/**
 * Collections page by a sort key that never changes while an item lives ((created, name) for
 * sessions, (domain, name) for models), never by offset: a cursor names the last item a page
 * showed, and the next page starts strictly after it. An item that exists the whole time a client
 * pages is shown exactly once, whatever is created or deleted meanwhile.
 *
 * A cursor is `base64url(JSON [key...]) "." base64url(tag)`, the tag a truncated HMAC-SHA256 keyed by
 * the requesting keypair's secret over the collection, its scope (owner or domain) and the payload.
 * Clients cannot forge or alter one, nor carry one to another collection, owner or keypair: every
 * such cursor is a 400, as is one that is not of this shape. The key is derived from a secret every
 * replica already shares, so any replica continues another's listing.
 */

export const DEFAULT_PAGE_LIMIT = 100;
export const MAX_PAGE_LIMIT = 1000;
/** Longer cursors are refused before they are decoded: every one this gateway writes is far shorter. */
export const MAX_CURSOR_CHARS = 600;
const TAG_BYTES = 16;
const TAG_CHARS = 22; // base64url of 16 bytes, unpadded
const MAX_KEY_PART_CHARS = 256;
const CURSOR_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/** The query parameters every paged collection takes (merged into the route's query schema). */
export const pageQueryProperties = {
  limit: { type: 'string', pattern: '^[0-9]{1,7}$', description: `Items per page, 1 to ${MAX_PAGE_LIMIT} (default ${DEFAULT_PAGE_LIMIT}).` },
  cursor: { type: 'string', maxLength: MAX_CURSOR_CHARS, description: 'Opaque: copied from the rel="next" link of the previous page.' },
} as const;

/** What a cursor is bound to: tampering with any of these makes it a 400. */
export interface CursorScope {
  /** e.g. "session", "models" */
  collection: string;
  /** The owner (sessions) or domain (models) the listing is of. */
  scope: string;
  /** The requesting keypair's secret: only it can have been handed this cursor. */
  secret: string;
  /** Number of strings in this collection's sort key. */
  arity: number;
  /** The collection's own format checks of a key (e.g. a session name's format). */
  valid?(key: string[]): boolean;
}

export interface PageRequest {
  limit: number;
  /** Sort key of the last item already shown; undefined on the first page. */
  after?: string[];
}

const badCursor = (why: string) => new ApiError(400, 'invalid-api-params', `Invalid query parameter "cursor": ${why}; use the rel="next" link of the previous page as it is.`);

function tagOf(scope: CursorScope, payload: string): Buffer {
  const key = createHmac('sha256', scope.secret).update('kernelgate cursor v1').digest();
  return createHmac('sha256', key).update(`${scope.collection}\n${scope.scope}\n${payload}`).digest().subarray(0, TAG_BYTES);
}

export function encodeCursor(scope: CursorScope, key: readonly string[]): string {
  const payload = Buffer.from(JSON.stringify(key)).toString('base64url');
  return `${payload}.${tagOf(scope, payload).toString('base64url')}`;
}

/** Strict shape, length and tag checks before anything is decoded; throws a 400 ApiError, nothing else. */
export function decodeCursor(scope: CursorScope, cursor: string): string[] {
  if (cursor.length === 0) throw badCursor('empty');
  if (cursor.length > MAX_CURSOR_CHARS) throw badCursor('too long');
  if (!CURSOR_SHAPE.test(cursor)) throw badCursor('not a cursor');
  const dot = cursor.indexOf('.');
  const payload = cursor.slice(0, dot);
  const tag = cursor.slice(dot + 1);
  if (tag.length !== TAG_CHARS) throw badCursor('not a cursor');
  const given = Buffer.from(tag, 'base64url');
  // A tag whose last character carries stray bits decodes to the same bytes: re-encoding must give it back.
  if (given.length !== TAG_BYTES || given.toString('base64url') !== tag) throw badCursor('not a cursor');
  if (!timingSafeEqual(given, tagOf(scope, payload))) throw badCursor('not issued for this listing');
  // Only a payload this gateway wrote gets here; the checks below keep that honest all the same.
  let key: unknown;
  try {
    key = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    throw badCursor('not a cursor');
  }
  if (!Array.isArray(key) || key.length !== scope.arity || !key.every((k) => typeof k === 'string' && k.length <= MAX_KEY_PART_CHARS)) {
    throw badCursor('not a cursor');
  }
  if (scope.valid && !scope.valid(key as string[])) throw badCursor('not a cursor');
  return key as string[];
}

/** `?limit=` and `?cursor=` of a request (already checked against pageQueryProperties by the validate stage). */
export function readPage(ctx: GatewayContext, scope: CursorScope): PageRequest {
  const { limit: rawLimit, cursor } = ctx.query;
  if (Array.isArray(rawLimit) || Array.isArray(cursor)) throw new ApiError(400, 'invalid-api-params', '"limit" and "cursor" may each be given once.');
  let limit = DEFAULT_PAGE_LIMIT;
  if (rawLimit !== undefined) {
    limit = /^[0-9]{1,7}$/.test(rawLimit) ? Number(rawLimit) : NaN;
    if (!(limit >= 1 && limit <= MAX_PAGE_LIMIT)) {
      throw new ApiError(400, 'invalid-api-params', `Invalid query parameter "limit": an integer from 1 to ${MAX_PAGE_LIMIT}.`);
    }
  }
  return { limit, after: cursor === undefined ? undefined : decodeCursor(scope, cursor) };
}

/**
 * Sets `Link: <next>; rel="next"` (RFC 8288) when more remain. The link is a relative-path reference,
 * the collection's last path segment and the query (`<session?limit=100&cursor=...>`), which clients
 * resolve against the URL they requested (RFC 3986 §5.2): it stays right behind proxies that change
 * the host or mount the gateway under a path prefix, neither of which the gateway can know for sure.
 * Every other query parameter (owner_access_key, domain, limit) is kept as sent.
 */
export function linkNext(ctx: GatewayContext, scope: CursorScope, lastKey: readonly string[] | undefined): void {
  if (lastKey === undefined) return;
  const params = new URLSearchParams(ctx.querystring);
  params.delete('cursor');
  params.append('cursor', encodeCursor(scope, lastKey));
  const segment = ctx.path.slice(ctx.path.lastIndexOf('/') + 1);
  ctx.set('Link', `<${segment}?${params.toString().replace(/\+/g, '%20')}>; rel="next"`);
}

/** Compares sort keys part by part, by UTF-16 code units (ASCII names: the same order as Redis's bytes). */
export function compareKeys(a: readonly string[], b: readonly string[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] !== b[i]) return a[i]! < b[i]! ? -1 : 1;
  }
  return a.length - b.length;
}

/** One page of an in-memory collection: items strictly after `after` in key order, and the last key if more remain. */
export function pageOf<T>(items: readonly T[], keyOf: (item: T) => string[], page: PageRequest): { items: T[]; next?: string[] } {
  const sorted = items.map((item) => ({ item, key: keyOf(item) })).sort((x, y) => compareKeys(x.key, y.key));
  const rest = page.after === undefined ? sorted : sorted.filter((x) => compareKeys(x.key, page.after!) > 0);
  const shown = rest.slice(0, page.limit);
  return { items: shown.map((x) => x.item), next: rest.length > page.limit ? shown[shown.length - 1]!.key : undefined };
}
