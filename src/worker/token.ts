/** The worker's bearer token: its format and the constant-time check. A leaf module (the CLI checks the format before loading ONNX Runtime). */
import { createHash, timingSafeEqual } from 'node:crypto';

/** Bearer tokens: printable ASCII without spaces, 16 to 512 characters. */
export const TOKEN_FORMAT = /^[\x21-\x7e]{16,512}$/;

/**
 * Checks `Authorization: Bearer <token>` against the configured token: a strict format check, then the
 * SHA-256 of both compared in constant time (equal lengths, so timingSafeEqual applies and the length of
 * the real token does not leak).
 */
export function bearerMatches(header: string | undefined, token: string): boolean {
  if (header === undefined) return false;
  const m = /^Bearer ([\x21-\x7e]{1,512})$/.exec(header);
  if (!m) return false;
  const a = createHash('sha256').update(m[1]!).digest();
  const b = createHash('sha256').update(token).digest();
  return timingSafeEqual(a, b);
}

