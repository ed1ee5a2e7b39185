import { ApiError } from '../problems/api-error.js';
import { bodyHash, emptyBodyHash, type HashAlgorithm } from '../signing/algorithms.js';
import { parseAuthorization, type AuthorizationParams } from '../signing/authorization.js';
import { stringToSign, trimHeaderValue } from '../signing/canonical.js';
import type { SigningDate, SigningDateCache } from '../signing/dates.js';
import { expectedSignature, signatureMatches } from '../signing/signature.js';
import type { SigningKeyCache } from '../signing/signing-key.js';
import type { RequestBody } from '../http/request-body.js';
import { ACCESS_KEY_FORMAT, isUsable, type Keypair } from '../keypairs/keypair.js';

/** What the verifier needs of a request; built by the middleware, or by tests directly. */
export interface RequestToVerify {
  method: string;
  /** Path and query exactly as received. */
  target: string;
  /** Header lookup by lower-case name. */
  header(name: string): string | undefined;
  /** Host as the client addressed it (X-Forwarded-Host only from trusted proxies). */
  host: string;
  /** The bytes, or a body read elsewhere (a spooled upload) that knows its size and digests. */
  body: Buffer | RequestBody;
}

export interface VerifyPolicy {
  algorithms: ReadonlySet<HashAlgorithm>;
  skewMs: number;
  bodyHashMode: 'strict' | 'backendai';
  apiVersions: ReadonlySet<string>;
}

export interface VerifyContext {
  lookup(accessKey: string): Keypair | undefined;
  keys: SigningKeyCache;
  dates: SigningDateCache;
  now: number;
}

export interface Verified {
  keypair: Keypair;
  auth: AuthorizationParams;
  apiVersion: string;
  /**
   * Whether the signature covers the body: false when only the empty-body hash
   * of `body_hash = "backendai"` matched a non-empty body. Nothing read from an
   * unsigned body may widen authority (owner_access_key comes from the query).
   */
  bodySigned: boolean;
}

/**
 * The same secret stands in for unknown, inactive and expired keys, so that
 * every refused credential costs the same cached-key lookup and one HMAC as
 * a real one and timing tells nothing about which keys exist.
 */
const DECOY_ID = '\u0000decoy';
const DECOY_SECRET = 'kernelgate-decoy-secret-never-matches-anything';

/** The one message every refused credential gets: which keys exist is nobody's business. */
export const AUTH_FAILED_MESSAGE = 'Access key not found, inactive, expired, or signature mismatch.';

/**
 * Why a request failed authentication, for the operator's log (at info, with
 * the access key and scheme where the header names them). Never the secret, the
 * signature or the raw header; the client sees only the problem's detail.
 */
export interface AuthFailureLog {
  reason: string;
  scheme?: string;
  accessKey?: string;
}

function failure(status: 400 | 401, detail: string, why: AuthFailureLog): ApiError {
  const slug = status === 400 ? 'invalid-auth-params' : 'auth-failed';
  return new ApiError(status, slug, detail, { log: { msg: 'authentication failed', ...why } });
}

/** The scheme word and access key of a header that did not parse, when they look like ones (never the signature). */
function namedIn(header: string): Pick<AuthFailureLog, 'scheme' | 'accessKey'> {
  const space = header.indexOf(' ');
  const word = space === -1 ? header : header.slice(0, space);
  const scheme = word.length > 0 && word.length <= 20 && /^[A-Za-z][A-Za-z0-9_-]*$/.test(word) ? word : undefined;
  // `credential=<key>:<signature>`: only what precedes a colon, only in the access-key format.
  const at = header.indexOf('credential=');
  let accessKey: string | undefined;
  if (at !== -1) {
    const rest = header.slice(at + 'credential='.length, at + 'credential='.length + 200);
    const colon = rest.indexOf(':');
    const candidate = colon === -1 ? '' : trimHeaderValue(rest.slice(0, colon));
    if (!candidate.includes(',') && ACCESS_KEY_FORMAT.test(candidate)) accessKey = candidate;
  }
  return { ...(scheme === undefined ? {} : { scheme }), ...(accessKey === undefined ? {} : { accessKey }) };
}

/** The API version header, Backend.AI's name first, then the legacy Sorna name. */
export function apiVersionOf(req: Pick<RequestToVerify, 'header'>): string | undefined {
  const raw = req.header('x-backendai-version') ?? req.header('x-sorna-version');
  return raw === undefined ? undefined : trimHeaderValue(raw);
}

/** Checks the version header alone; routing has run, the signature has not. */
export function checkApiVersion(req: Pick<RequestToVerify, 'header'>, policy: VerifyPolicy): string | undefined {
  const version = apiVersionOf(req);
  if (version !== undefined && !policy.apiVersions.has(version)) {
    throw new ApiError(400, 'generic-bad-request', 'Unsupported API version.');
  }
  return version;
}

/** What the headers alone establish: format, sign method, version and date are acceptable. */
export interface CheckedHeaders {
  apiVersion: string;
  auth: AuthorizationParams;
  date: SigningDate;
  dateValue: string;
}

/**
 * The checks that need no body and no secret (run before the body is read, so that a malformed or
 * stale request costs no body read). Throws 400/401 ApiErrors as verifyRequest does.
 */
export function checkHeaders(req: Pick<RequestToVerify, 'header'>, policy: VerifyPolicy, ctx: Pick<VerifyContext, 'dates' | 'now'>): CheckedHeaders {
  const header = req.header('authorization');
  let apiVersion: string | undefined;
  try {
    apiVersion = checkApiVersion(req, policy);
  } catch (error) {
    const e = error as ApiError;
    throw new ApiError(e.status, e.slug, e.message, { log: { msg: 'authentication failed', reason: 'unsupported API version', ...namedIn(header ?? '') } });
  }
  if (header === undefined || header === '') throw failure(401, 'No credentials were given.', { reason: 'no credentials' });
  const trimmed = trimHeaderValue(header);
  const parsed = parseAuthorization(trimmed);
  if (!parsed.ok) throw failure(400, parsed.reason, { reason: `malformed Authorization header: ${parsed.reason}`, ...namedIn(trimmed) });
  const auth = parsed.value;
  const who = { scheme: auth.scheme, accessKey: auth.accessKey };
  if (!policy.algorithms.has(auth.algorithm)) throw failure(400, 'Unsupported signMethod', { reason: `sign method ${auth.algorithm} not allowed`, ...who });
  if (apiVersion === undefined || apiVersion === '') throw failure(400, 'Missing X-BackendAI-Version header', { reason: 'missing API version', ...who });

  const rawDate = req.header('date') ?? req.header('x-backendai-date') ?? req.header('x-sorna-date');
  if (rawDate === undefined) throw failure(400, 'Missing Date or X-BackendAI-Date header', { reason: 'missing date', ...who });
  const dateValue = trimHeaderValue(rawDate);
  const date = ctx.dates.parse(dateValue);
  if (date === undefined) throw failure(400, 'Unparseable date', { reason: 'unparseable date', ...who });
  if (!(Math.abs(ctx.now - date.epochMs) < policy.skewMs)) {
    const skew = Math.round((date.epochMs - ctx.now) / 1000);
    throw failure(400, 'Date is too far from the server time', { reason: `clock skew ${skew > 0 ? '+' : ''}${skew} s (allowed ±${policy.skewMs / 1000} s)`, ...who });
  }
  return { apiVersion, auth, date, dateValue };
}

/**
 * Verifies a Backend.AI signed request. Format checks come before any crypto;
 * failures throw ApiError (400 for malformed parameters, 401 for credentials).
 * `checked` is checkHeaders' result when the caller already ran it.
 */
export function verifyRequest(req: RequestToVerify, policy: VerifyPolicy, ctx: VerifyContext, checked?: CheckedHeaders): Verified {
  const { apiVersion, auth, date, dateValue } = checked ?? checkHeaders(req, policy, ctx);
  const who = { scheme: auth.scheme, accessKey: auth.accessKey };

  const host = trimHeaderValue(req.host);
  const found = ctx.lookup(auth.accessKey);
  const usable = found !== undefined && isUsable(found, ctx.now);
  const key = usable
    ? ctx.keys.get(found.accessKey, auth.algorithm, found.secretKey, date.keyDate, host)
    : ctx.keys.get(DECOY_ID, auth.algorithm, DECOY_SECRET, date.keyDate, host);

  // The string DESIGN.md fixes is tried first; the variants below are what real
  // Backend.AI clients sign, tried only when it fails. Every key, known or not,
  // goes through the same sequence, so timing tells nothing about which exist.
  const contentType = req.header('content-type');
  const body = req.body;
  const size = Buffer.isBuffer(body) ? body.length : body.size;
  const hashes = [Buffer.isBuffer(body) ? bodyHash(auth.algorithm, body) : body.digest(auth.algorithm)];
  if (policy.bodyHashMode === 'backendai' && size > 0) hashes.push(emptyBodyHash(auth.algorithm));
  const labels: Array<'x-backendai-version' | 'x-sorna-version'> = ['x-backendai-version'];
  if (req.header('x-backendai-version') === undefined) labels.push('x-sorna-version');
  // aiohttp (Backend.AI's server) reports a missing Content-Type as application/octet-stream.
  const types = contentType === undefined ? [undefined, 'application/octet-stream'] : [contentType];
  let matches = false;
  let bodySigned = true;
  search: for (const [h, hash] of hashes.entries()) {
    for (const versionLabel of labels) {
      for (const type of types) {
        const expected = expectedSignature(
          auth.algorithm,
          key,
          stringToSign({ method: req.method, target: req.target, date: dateValue, host, contentType: type, apiVersion, bodyHash: hash, versionLabel }),
        );
        if (signatureMatches(auth.algorithm, expected, auth.signature)) {
          matches = true;
          bodySigned = h === 0;
          break search;
        }
      }
    }
  }
  if (!usable || !matches) {
    // One message for the client; the operator's log says which.
    const reason = found === undefined ? 'unknown access key' : !found.isActive ? 'inactive access key' : !usable ? 'expired access key'
      : /[A-F]/.test(auth.signature) ? 'signature mismatch (upper-case hex; signatures are lower-case hex)' : 'signature mismatch';
    throw failure(401, AUTH_FAILED_MESSAGE, { reason, ...who });
  }
  return { keypair: found, auth, apiVersion, bodySigned };
}
