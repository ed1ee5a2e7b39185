import { createHash } from 'node:crypto';

/** Hash algorithms a signMethod may name. md5 is never one of them. */
export type HashAlgorithm = 'sha1' | 'sha256' | 'sha384' | 'sha512';

export const ALL_ALGORITHMS: readonly HashAlgorithm[] = ['sha1', 'sha256', 'sha384', 'sha512'];

/** Hex length of each digest: a signature must be exactly this long. */
export const HEX_LENGTH: Readonly<Record<HashAlgorithm, number>> = {
  sha1: 40,
  sha256: 64,
  sha384: 96,
  sha512: 128,
};

const BY_SIGN_METHOD: Readonly<Record<string, HashAlgorithm>> = {
  'HMAC-SHA1': 'sha1',
  'HMAC-SHA256': 'sha256',
  'HMAC-SHA384': 'sha384',
  'HMAC-SHA512': 'sha512',
};

/** `HMAC-SHA256` -> `sha256`; undefined for anything else (md5 included). */
export function algorithmOfSignMethod(signMethod: string): HashAlgorithm | undefined {
  // ASCII-only upper-casing: Unicode would turn `ſ` (U+017F) into `S`.
  const key = signMethod.replace(/[a-z]/g, (c) => c.toUpperCase());
  return Object.hasOwn(BY_SIGN_METHOD, key) ? BY_SIGN_METHOD[key] : undefined;
}

export function signMethodOf(algorithm: HashAlgorithm): string {
  return `HMAC-${algorithm.toUpperCase()}`;
}

const EMPTY_HASH: Readonly<Record<HashAlgorithm, string>> = {
  sha1: createHash('sha1').digest('hex'),
  sha256: createHash('sha256').digest('hex'),
  sha384: createHash('sha384').digest('hex'),
  sha512: createHash('sha512').digest('hex'),
};

/** Hex digest of the body bytes (the seventh line of the string to sign). */
export function bodyHash(algorithm: HashAlgorithm, body: Uint8Array | string | undefined): string {
  if (body === undefined || body.length === 0) return EMPTY_HASH[algorithm];
  return createHash(algorithm).update(body).digest('hex');
}

export function emptyBodyHash(algorithm: HashAlgorithm): string {
  return EMPTY_HASH[algorithm];
}
