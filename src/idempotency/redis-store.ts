/**
 * Idempotency records in Redis, shared by every replica so a retry that lands
 * on another replica is still answered from the first run.
 *
 * One hash per (scope, token), key = prefix + sha256 of both (client tokens are
 * never stored raw): st = "p" (in progress) | "d" (done), fp = fingerprint,
 * resp = the response as JSON. Each operation is one Lua script, so the claim
 * in begin() is atomic across replicas. The in-progress claim carries the short
 * lease TTL; completing re-sets the TTL to the full retention.
 *
 * Redis errors propagate to the caller (there is no sensible local fallback
 * for a cross-replica guarantee); the gateway should answer 503.
 */
import { RedisBacked, type RedisStoreOptions } from '../redis/client.js';
import {
  DEFAULT_LEASE_SECONDS,
  DEFAULT_MAX_BODY_BYTES,
  boundResponse,
  checkClaim,
  checkIds,
  checkTtl,
  idempotencyId,
} from './shared.js';
import type { Begin, IdempotencyLimits, IdempotencyStore, StoredResponse } from './types.js';

// The scripts (kgIdem*) are in src/redis/scripts/idempotency.lua.ts.

/** `keyPrefix` defaults to "kg:idem:". */
export interface RedisIdempotencyStoreOptions extends IdempotencyLimits, RedisStoreOptions {}

export class RedisIdempotencyStore extends RedisBacked implements IdempotencyStore {
  private readonly leaseSeconds: number;
  private readonly maxBodyBytes: number;

  constructor(opts: RedisIdempotencyStoreOptions) {
    super(opts, 'RedisIdempotencyStore', 'kg:idem:');
    this.leaseSeconds = opts.leaseSeconds ?? DEFAULT_LEASE_SECONDS;
    this.maxBodyBytes = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    checkTtl('leaseSeconds', this.leaseSeconds);
  }

  /** The Redis key for (scope, token); exposed for tests and operators. */
  redisKey(scope: string, token: string): string {
    return this.keyPrefix + idempotencyId(scope, token);
  }

  async begin(scope: string, token: string, fingerprint: string, ttlSeconds: number): Promise<Begin> {
    checkClaim(scope, token, fingerprint, ttlSeconds);
    const leaseMs = Math.ceil(Math.min(this.leaseSeconds, ttlSeconds) * 1000);
    const reply = await this.client.kgIdemBegin(this.redisKey(scope, token), fingerprint, leaseMs);
    if (!Array.isArray(reply)) throw new Error('unexpected reply from the idempotency script');
    const state = String(reply[0]);
    switch (state) {
      case 'started':
      case 'in-progress':
      case 'mismatch':
        return { state };
      case 'replay':
        return { state, response: parseResponse(reply[1]) };
      default:
        throw new Error('unexpected reply from the idempotency script');
    }
  }

  async complete(
    scope: string,
    token: string,
    fingerprint: string,
    response: StoredResponse,
    ttlSeconds: number,
  ): Promise<void> {
    checkClaim(scope, token, fingerprint, ttlSeconds);
    const kept = boundResponse(response, this.maxBodyBytes);
    await this.client.kgIdemComplete(this.redisKey(scope, token), fingerprint, JSON.stringify(kept), Math.ceil(ttlSeconds * 1000));
  }

  async abort(scope: string, token: string): Promise<void> {
    checkIds(scope, token);
    await this.client.kgIdemAbort(this.redisKey(scope, token));
  }
}

function parseResponse(raw: unknown): StoredResponse {
  const parsed: unknown = JSON.parse(String(raw));
  if (
    typeof parsed !== 'object' || parsed === null ||
    typeof (parsed as StoredResponse).status !== 'number' ||
    typeof (parsed as StoredResponse).body !== 'string' ||
    typeof (parsed as StoredResponse).headers !== 'object'
  ) {
    throw new Error('corrupt idempotency record');
  }
  return parsed as StoredResponse;
}
