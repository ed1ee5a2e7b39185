import { createHmac } from 'node:crypto';
import { LRUCache } from 'lru-cache';
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
 *
 * lru-cache rather than a Map with FIFO eviction. Hits (nearly every signed request) cost about the
 * same: bench/caches.ts, three runs on a loaded 2-core machine, 0.58-1.11 µs with the Map against
 * 0.64-1.19 µs (7-12 % more, under 0.1 µs of a ~10 µs verifyRequest). Misses, which a client can
 * force (the Host is part of the cache key, and unknown keys share one decoy id), cost 41-48 µs with
 * the Map, whose evictions walk the holes earlier deletions left, against 23-28 µs. The whole
 * verifyRequest (bench/micro.ts, alternating runs): 16.5-17.4 µs with lru-cache, 21.6-22.6 µs before.
 */
export class SigningKeyCache {
  private readonly entries: LRUCache<string, CachedKey>;
  constructor(capacity = 10_000) {
    this.entries = new LRUCache({ max: capacity });
  }

  get(id: string, algorithm: HashAlgorithm, secretKey: string, keyDate: string, host: string): Buffer {
    const cacheKey = `${id}\u0000${algorithm}\u0000${keyDate}\u0000${host}`;
    const hit = this.entries.get(cacheKey);
    if (hit !== undefined && hit.secretKey === secretKey) return hit.key;
    const key = deriveSigningKey(algorithm, secretKey, keyDate, host);
    this.entries.set(cacheKey, { secretKey, key });
    return key;
  }
}
