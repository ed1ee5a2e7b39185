import { createHmac } from 'node:crypto';
import type { HashAlgorithm } from './algorithms.js';

/**
 * HMAC(HMAC(secret, YYYYMMDD), host): the Backend.AI nested signing key.
 * The date is taken in the date's own offset (see dates.ts).
 */
export function deriveSigningKey(
  algorithm: HashAlgorithm,
  secretKey: string,
  keyDate: string,
  host: string,
): Buffer {
  const dateKey = createHmac(algorithm, secretKey).update(keyDate, 'utf8').digest();
  return createHmac(algorithm, dateKey).update(host, 'utf8').digest();
}

interface CachedKey {
  secretKey: string;
  key: Buffer;
}

/**
 * Derived keys change once a day per (access key, host, algorithm), so a cache
 * turns three HMACs per request into one. Entries remember the secret they were
 * derived from: an edited keypair file never verifies with a stale key.
 */
export class SigningKeyCache {
  private readonly entries = new Map<string, CachedKey>();
  constructor(private readonly capacity = 10_000) {}

  get(id: string, algorithm: HashAlgorithm, secretKey: string, keyDate: string, host: string): Buffer {
    const cacheKey = `${id}\u0000${algorithm}\u0000${keyDate}\u0000${host}`;
    const hit = this.entries.get(cacheKey);
    if (hit !== undefined && hit.secretKey === secretKey) return hit.key;
    const key = deriveSigningKey(algorithm, secretKey, keyDate, host);
    if (hit === undefined && this.entries.size >= this.capacity) {
      this.entries.delete(this.entries.keys().next().value as string);
    }
    this.entries.set(cacheKey, { secretKey, key });
    return key;
  }
}
