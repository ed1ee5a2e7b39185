import { ApiError, authFailed, invalidAuth } from '../problems/api-error.js';
import { bodyHash, emptyBodyHash, type HashAlgorithm } from '../signing/algorithms.js';
import { parseAuthorization, type AuthorizationParams } from '../signing/authorization.js';
import { stringToSign, trimHeaderValue } from '../signing/canonical.js';
import type { SigningDate, SigningDateCache } from '../signing/dates.js';
import { expectedSignature, signatureMatches } from '../signing/signature.js';
import type { SigningKeyCache } from '../signing/signing-key.js';
import { isUsable, type Keypair } from '../keypairs/keypair.js';

/** What the verifier needs of a request; built by the middleware, or by tests directly. */
export interface RequestToVerify {
  method: string;
  /** Path and query exactly as received. */
  target: string;
  /** Header lookup by lower-case name. */
  header(name: string): string | undefined;
  /** Host as the client addressed it (X-Forwarded-Host only from trusted proxies). */
  host: string;
  body: Buffer;
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
}

/**
 * The same secret stands in for unknown, inactive and expired keys, so that
 * every refused credential costs the same cached-key lookup and one HMAC as
 * a real one and timing tells nothing about which keys exist.
 */
const DECOY_ID = '\u0000decoy';
const DECOY_SECRET = 'kernelgate-decoy-secret-never-matches-anything';

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
  const apiVersion = checkApiVersion(req, policy);
  const header = req.header('authorization');
  if (header === undefined || header === '') throw authFailed('No credentials were given.');
  const parsed = parseAuthorization(trimHeaderValue(header));
  if (!parsed.ok) throw invalidAuth(parsed.reason);
  const auth = parsed.value;
  if (!policy.algorithms.has(auth.algorithm)) throw invalidAuth('Unsupported signMethod');
  if (apiVersion === undefined || apiVersion === '') throw invalidAuth('Missing X-BackendAI-Version header');

  const rawDate = req.header('date') ?? req.header('x-backendai-date') ?? req.header('x-sorna-date');
  if (rawDate === undefined) throw invalidAuth('Missing Date or X-BackendAI-Date header');
  const dateValue = trimHeaderValue(rawDate);
  const date = ctx.dates.parse(dateValue);
  if (date === undefined) throw invalidAuth('Unparseable date');
  if (!(Math.abs(ctx.now - date.epochMs) < policy.skewMs)) {
    throw invalidAuth('Date is too far from the server time');
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
  const hashes = [bodyHash(auth.algorithm, req.body)];
  if (policy.bodyHashMode === 'backendai' && req.body.length > 0) hashes.push(emptyBodyHash(auth.algorithm));
  const labels: Array<'x-backendai-version' | 'x-sorna-version'> = ['x-backendai-version'];
  if (req.header('x-backendai-version') === undefined) labels.push('x-sorna-version');
  // aiohttp (Backend.AI's server) reports a missing Content-Type as application/octet-stream.
  const types = contentType === undefined ? [undefined, 'application/octet-stream'] : [contentType];
  let matches = false;
  search: for (const hash of hashes) {
    for (const versionLabel of labels) {
      for (const type of types) {
        const expected = expectedSignature(
          auth.algorithm,
          key,
          stringToSign({ method: req.method, target: req.target, date: dateValue, host, contentType: type, apiVersion, bodyHash: hash, versionLabel }),
        );
        if (signatureMatches(auth.algorithm, expected, auth.signature)) {
          matches = true;
          break search;
        }
      }
    }
  }
  if (!usable || !matches) {
    // One message for all three: which keys exist is nobody's business.
    throw authFailed('Access key not found, inactive, expired, or signature mismatch.');
  }
  return { keypair: found, auth, apiVersion };
}
