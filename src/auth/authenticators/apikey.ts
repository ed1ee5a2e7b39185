import { createHash, timingSafeEqual } from 'node:crypto';
import busboy from 'busboy';
import { ApiError } from '../../problems/api-error.js';
import type { GatewayContext } from '../../http/context.js';
import { canonicalContentType } from '../../signing/canonical.js';
import { requestHasBody } from '../../http/raw-body.js';
import { readSignedBody } from '../../http/read-body.js';
import { multipartBoundary, multipartParts, isFilePart } from '../../http/multipart.js';
import { feedBody, memoryBody, type RequestBody } from '../../http/request-body.js';
import { isUsable, type ApiKeyEntry, type Keypair } from '../../keypairs/keypair.js';
import { keypairPayer, type PayerLimits } from '../../ratelimit/payer.js';
import type { Authenticator } from '../authenticate.js';
import type { KeypairPrincipal } from '../principal.js';
import type { Verified } from '../verify.js';

/** `kg_` + 32 base62 characters (190 random bits). */
export const API_KEY_FORMAT = /^kg_[A-Za-z0-9]{32}$/;
export const API_KEY_MESSAGE = 'Incorrect api key: unknown, revoked or expired.';
export const ADMIN_KEY_MESSAGE = 'Incorrect admin key: unknown, revoked or expired, or not an admin keypair.';

export interface ApiKeyDeps {
  lookup(sha256Hex: string): { keypair: Keypair; key: ApiKeyEntry } | undefined;
  bodyLimit: number;
  limits: PayerLimits;
  /** The API version recorded for API-key requests (they carry no version header). */
  apiVersion: string;
  /** Refuses (429) a body from an address already over its limit; spends nothing. */
  refuseBeforeBody(ctx: GatewayContext, claimed: Keypair | undefined): Promise<void>;
}

const FORM_TYPES = new Set(['application/x-www-form-urlencoded', 'multipart/form-data']);

/** Whether the request carries API-key credentials or might carry them in a form body (no Authorization header). */
export function carriesApiKey(ctx: GatewayContext): boolean {
  if (ctx.get('x-api-key') !== '') return true;
  if (ctx.get('authorization') !== '') return false;
  if (keyInQuery(ctx)) return true;
  return requestHasBody(ctx.req) && FORM_TYPES.has(canonicalContentType(ctx.get('content-type')));
}

function keyInQuery(ctx: GatewayContext): boolean {
  const q = ctx.querystring;
  return /(?:^|&)(?:api_key|admin_key|x-api-key)=/i.test(q);
}

function failure(status: 400 | 401, detail: string, reason: string, keyId?: string): ApiError {
  return new ApiError(status, status === 400 ? 'invalid-auth-params' : 'auth-failed', detail, {
    log: { msg: 'authentication failed', scheme: 'apikey', reason, ...(keyId === undefined ? {} : { keyId }) },
  });
}

/**
 * Static API keys (`x-api-key`, or DeepStack's `api_key` / `admin_key` form fields). The key is hashed
 * and looked up by hash in the keypair store's index (no disk); the stored hash is compared again in
 * constant time. Unknown, revoked (removed) and expired keys get one answer; the log says which.
 */
export function apiKeyAuthenticator(deps: ApiKeyDeps): Authenticator {
  const principals = new WeakMap<ApiKeyEntry, KeypairPrincipal>();
  const principalOf = (keypair: Keypair, key: ApiKeyEntry): KeypairPrincipal => {
    let p = principals.get(key);
    if (p === undefined || p.keypair !== keypair) {
      p = { keypair, scheme: 'apikey', credentialId: key.id, payer: keypairPayer(keypair, deps.limits), scope: key.scope };
      principals.set(key, p);
    }
    return p;
  };

  const check = (presented: string, admin: boolean) => checkApiKey(presented, admin, deps.lookup, Date.now());

  return {
    scheme: 'apikey',
    claims: carriesApiKey,
    async authenticate(ctx) {
      if (keyInQuery(ctx)) {
        throw failure(400, 'API keys are not accepted in the query string (it ends up in logs and browser history); send the x-api-key header or an api_key form field.', 'API key in the query string');
      }
      const header = ctx.get('x-api-key');
      let found: { keypair: Keypair; key: ApiKeyEntry };
      if (header !== '') {
        // The header alone names the keypair: check it before reading a body, whose cost the keypair then bears.
        found = check(header, false);
        if (requestHasBody(ctx.req)) await deps.refuseBeforeBody(ctx, found.keypair);
        await readSignedBody(ctx, deps.bodyLimit, ['sha256']);
      } else {
        if (!requestHasBody(ctx.req)) throw new ApiError(401, 'auth-failed', 'No credentials were given.');
        await deps.refuseBeforeBody(ctx, undefined);
        const body = await readSignedBody(ctx, deps.bodyLimit, ['sha256']);
        const fields = await formKeys(body, ctx.get('content-type'));
        if (fields.api_key !== undefined && fields.admin_key !== undefined) {
          throw failure(400, 'Send either api_key or admin_key, not both.', 'both api_key and admin_key');
        }
        const presented = fields.admin_key ?? fields.api_key;
        if (presented === undefined || presented === '') throw new ApiError(401, 'auth-failed', 'No credentials were given.');
        found = check(presented, fields.admin_key !== undefined);
      }
      const verified: Verified = {
        keypair: found.keypair,
        auth: { scheme: 'BackendAI', signMethod: 'apikey', algorithm: 'sha256', accessKey: found.keypair.accessKey, signature: '' } as Verified['auth'],
        apiVersion: deps.apiVersion,
        // The key authorizes the whole request: its body is the client's own, as a signed one is.
        bodySigned: true,
      };
      ctx.state.auth = verified;
      return principalOf(found.keypair, found.key);
    },
  };
}

/**
 * The keypair and entry of a presented key, or the one 401 (the log says why): a strict format check,
 * SHA-256, a lookup by hash in the in-memory index, and a constant-time comparison of the hashes.
 */
export function checkApiKey(
  presented: string,
  admin: boolean,
  lookup: ApiKeyDeps['lookup'],
  now: number,
): { keypair: Keypair; key: ApiKeyEntry } {
  const message = admin ? ADMIN_KEY_MESSAGE : API_KEY_MESSAGE;
  if (!API_KEY_FORMAT.test(presented)) throw failure(401, message, 'malformed API key');
  const digest = createHash('sha256').update(presented).digest();
  const found = lookup(digest.toString('hex'));
  if (found === undefined || !timingSafeEqual(Buffer.from(found.key.sha256, 'hex'), digest)) {
    throw failure(401, message, 'unknown API key');
  }
  if (found.key.expiresAt !== undefined && found.key.expiresAt <= now) throw failure(401, message, 'expired API key', found.key.id);
  if (!isUsable(found.keypair, now)) throw failure(401, message, 'keypair inactive or expired', found.key.id);
  if (admin && found.keypair.role === 'user') throw failure(401, message, 'admin_key of a user keypair', found.key.id);
  return found;
}

/**
 * `api_key` / `admin_key` from a urlencoded or multipart body (other fields and files ignored), as busboy read
 * them: the first 64 fields, each value cut at 1024 bytes, UTF-8, a later field of the same name winning. A body
 * in memory (every DeepStack request: this runs before each one's signature-free authentication) is split by
 * http/multipart.ts; a spooled upload is read back from its file through busboy, its file parts skipped.
 */
export async function formKeys(raw: Buffer | RequestBody, contentType: string): Promise<FormKeys> {
  const type = canonicalContentType(contentType);
  const body = Buffer.isBuffer(raw) ? memoryBody(raw) : raw;
  if (type === 'application/x-www-form-urlencoded') {
    // Never spooled (not an upload type): its bytes are in memory, within the body limit.
    const params = new URLSearchParams((body.bytes ?? Buffer.alloc(0)).toString('utf8'));
    const out: FormKeys = {};
    const api = params.get('api_key');
    const adm = params.get('admin_key');
    if (api !== null) out.api_key = api;
    if (adm !== null) out.admin_key = adm;
    return out;
  }
  if (type !== 'multipart/form-data') return {};
  return body.bytes !== undefined ? memoryFormKeys(body.bytes, contentType) : streamedFormKeys(body, contentType);
}

type FormKeys = { api_key?: string; admin_key?: string };

const KEY_FIELDS = 64;
const KEY_FIELD_BYTES = 1024;
const unparsable = () => new ApiError(400, 'generic-bad-request', 'The multipart body could not be parsed.');
const isKeyField = (name: string): name is keyof FormKeys => name === 'api_key' || name === 'admin_key';

function memoryFormKeys(bytes: Buffer, contentType: string): FormKeys {
  const boundary = multipartBoundary(contentType);
  if (boundary === undefined) throw unparsable();
  const out: FormKeys = {};
  let fields = 0;
  try {
    for (const part of multipartParts(bytes, boundary, Number.MAX_SAFE_INTEGER)) {
      if (isFilePart(part) || ++fields > KEY_FIELDS || !isKeyField(part.name)) continue;
      out[part.name] = part.data.subarray(0, KEY_FIELD_BYTES).toString('utf8');
    }
  } catch {
    throw unparsable();
  }
  return out;
}

function streamedFormKeys(body: RequestBody, contentType: string): Promise<FormKeys> {
  return new Promise((resolve, reject) => {
    let bb: busboy.Busboy;
    try {
      bb = busboy({ headers: { 'content-type': contentType }, limits: { fieldSize: KEY_FIELD_BYTES, fields: KEY_FIELDS } });
    } catch {
      reject(unparsable());
      return;
    }
    const out: FormKeys = {};
    bb.on('field', (name, value) => {
      if (isKeyField(name)) out[name] = value;
    });
    bb.on('file', (_name, stream) => stream.resume());
    bb.on('close', () => resolve(out));
    bb.on('error', () => reject(unparsable()));
    feedBody(body, bb, () => reject(unparsable()));
  });
}
