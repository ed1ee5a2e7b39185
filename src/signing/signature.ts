import { createHmac, timingSafeEqual } from 'node:crypto';
import { HEX_LENGTH, type HashAlgorithm } from './algorithms.js';

export function computeSignature(algorithm: HashAlgorithm, signingKey: Buffer, stringToSign: string): string {
  return createHmac(algorithm, signingKey).update(stringToSign, 'utf8').digest('hex');
}

/** Lower-case only: one encoding per signature, as Backend.AI and SigV4 compare it. */
const HEX = /^[0-9a-f]+$/;

/**
 * Constant-time comparison of a client's hex signature with the expected digest.
 * The format is checked first (exact length, lower-case hex only) because
 * Buffer.from(hex) silently drops trailing junk and would read "AB" as "ab";
 * only well-formed input reaches timingSafeEqual. Upper-case hex is a mismatch.
 */
export function signatureMatches(algorithm: HashAlgorithm, expected: Buffer, providedHex: string): boolean {
  if (providedHex.length !== HEX_LENGTH[algorithm] || !HEX.test(providedHex)) return false;
  const provided = Buffer.from(providedHex, 'hex');
  return provided.length === expected.length && timingSafeEqual(provided, expected);
}

export function expectedSignature(algorithm: HashAlgorithm, signingKey: Buffer, stringToSign: string): Buffer {
  return createHmac(algorithm, signingKey).update(stringToSign, 'utf8').digest();
}
