import { createHmac, timingSafeEqual } from 'node:crypto';
import { HEX_LENGTH, type HashAlgorithm } from './algorithms.js';

export function computeSignature(algorithm: HashAlgorithm, signingKey: Buffer, stringToSign: string): string {
  return createHmac(algorithm, signingKey).update(stringToSign, 'utf8').digest('hex');
}

const HEX = /^[0-9a-fA-F]+$/;

/**
 * Constant-time comparison of a client's hex signature with the expected digest.
 * The format is checked first (exact length, hex only) because Buffer.from(hex)
 * silently drops trailing junk; only well-formed input reaches timingSafeEqual.
 */
export function signatureMatches(algorithm: HashAlgorithm, expected: Buffer, providedHex: string): boolean {
  if (providedHex.length !== HEX_LENGTH[algorithm] || !HEX.test(providedHex)) return false;
  const provided = Buffer.from(providedHex, 'hex');
  return provided.length === expected.length && timingSafeEqual(provided, expected);
}

export function expectedSignature(algorithm: HashAlgorithm, signingKey: Buffer, stringToSign: string): Buffer {
  return createHmac(algorithm, signingKey).update(stringToSign, 'utf8').digest();
}
