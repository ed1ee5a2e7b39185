/** Pieces both idempotency stores need: key hashing, fingerprints, size limits, argument checks. */
import { createHash } from 'node:crypto';
import type { StoredResponse } from './types.js';

export const DEFAULT_LEASE_SECONDS = 60;
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;
/** Headers larger than this are not worth replaying either (they would not fit a sane proxy). */
const MAX_HEADER_BYTES = 64 * 1024;

/**
 * Storage id of (scope, token). Client tokens are hashed so they never appear
 * raw in Redis keys (visible to anyone with KEYS/MONITOR access) or in memory
 * dumps; the JSON array keeps ("a", "bc") and ("ab", "c") apart.
 */
export function idempotencyId(scope: string, token: string): string {
  return createHash('sha256').update(JSON.stringify([scope, token])).digest('base64url');
}

/**
 * Fingerprint of a request for begin()/complete(): method, request target and a
 * hash of the body. A retry must match all three or it is a 'mismatch'.
 */
export function requestFingerprint(method: string, target: string, bodySha256Hex: string): string {
  return createHash('sha256').update(`${method.toUpperCase()}\n${target}\n${bodySha256Hex}`).digest('hex');
}

/** The response as it will be kept: itself, or an 'uncacheable' stand-in when too large. */
export function boundResponse(response: StoredResponse, maxBodyBytes: number): StoredResponse {
  const bodyBytes = Buffer.byteLength(response.body, 'base64');
  const headerBytes = Buffer.byteLength(JSON.stringify(response.headers));
  if (bodyBytes <= maxBodyBytes && headerBytes <= MAX_HEADER_BYTES) {
    return { status: response.status, headers: { ...response.headers }, body: response.body };
  }
  return {
    status: response.status,
    headers: headerBytes <= MAX_HEADER_BYTES ? { ...response.headers } : {},
    body: '',
    uncacheable: true,
  };
}

export function checkTtl(name: string, seconds: number): void {
  if (!Number.isFinite(seconds) || seconds <= 0) throw new RangeError(`${name} must be > 0 seconds, got ${seconds}`);
}

export function checkIds(scope: string, token: string): void {
  if (typeof scope !== 'string' || typeof token !== 'string' || token.length === 0) {
    throw new TypeError('idempotency scope and token must be strings, token non-empty');
  }
}

export function checkFingerprint(fingerprint: string): void {
  if (typeof fingerprint !== 'string' || fingerprint.length === 0) throw new TypeError('fingerprint must be a non-empty string');
}

/** The arguments of begin() and complete(), checked the same way by every store. */
export function checkClaim(scope: string, token: string, fingerprint: string, ttlSeconds: number): void {
  checkIds(scope, token);
  checkFingerprint(fingerprint);
  checkTtl('ttlSeconds', ttlSeconds);
}
