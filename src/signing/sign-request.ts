import { bodyHash, emptyBodyHash, signMethodOf, type HashAlgorithm } from './algorithms.js';
import { formatAuthorization, type AuthScheme } from './authorization.js';
import { stringToSign } from './canonical.js';
import { formatIsoDate, parseSigningDate } from './dates.js';
import { computeSignature } from './signature.js';
import { deriveSigningKey } from './signing-key.js';

export const LATEST_API_VERSION = 'v8.20240915';

export interface SignRequestInput {
  method: string;
  /** Path and query as they will be sent, percent-encoded. */
  target: string;
  /** The host the client addresses (`host[:port]`). */
  host: string;
  accessKey: string;
  secretKey: string;
  body?: Uint8Array | string;
  contentType?: string;
  apiVersion?: string;
  algorithm?: HashAlgorithm;
  /** The raw date value to send; defaults to now in the Python SDK's isoformat(). */
  date?: string;
  /** `backendai` signs the empty-body hash as the official SDKs do; default `strict`. */
  bodyHashMode?: 'strict' | 'backendai';
  /** `Sorna` uses the legacy header names. */
  scheme?: AuthScheme;
}

export interface SignedRequest {
  /** Headers to send, Authorization included. */
  headers: Record<string, string>;
  stringToSign: string;
  signature: string;
}

/** Signs one request: the single implementation used by the SDK, CLI, proxy and tests. */
export function signRequest(input: SignRequestInput): SignedRequest {
  const algorithm = input.algorithm ?? 'sha256';
  const scheme = input.scheme ?? 'BackendAI';
  const date = input.date ?? formatIsoDate();
  const parsed = parseSigningDate(date);
  if (parsed === undefined) throw new TypeError(`not a signing date: ${date}`);
  const apiVersion = input.apiVersion ?? LATEST_API_VERSION;
  const hash =
    input.bodyHashMode === 'backendai' ? emptyBodyHash(algorithm) : bodyHash(algorithm, input.body);
  const canonical = stringToSign({
    method: input.method,
    target: input.target,
    date,
    host: input.host,
    contentType: input.contentType,
    apiVersion,
    bodyHash: hash,
  });
  const key = deriveSigningKey(algorithm, input.secretKey, parsed.keyDate, input.host);
  const signature = computeSignature(algorithm, key, canonical);
  const prefix = scheme === 'Sorna' ? 'X-Sorna' : 'X-BackendAI';
  const headers: Record<string, string> = {
    Date: date,
    [`${prefix}-Version`]: apiVersion,
    Authorization: formatAuthorization(scheme, signMethodOf(algorithm), input.accessKey, signature),
  };
  if (input.contentType !== undefined) headers['Content-Type'] = input.contentType;
  return { headers, stringToSign: canonical, signature };
}
