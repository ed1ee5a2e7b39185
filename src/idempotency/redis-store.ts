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
import type { Redis } from 'ioredis';
import { clientFrom, waitForReady, type FailFastRedisOptions } from '../ratelimit/redis-client.js';
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

// KEYS[1]; ARGV: fingerprint, leaseMs. Returns {state} or {'replay', respJson}.
const BEGIN_LUA = `
local cur = redis.call('HMGET', KEYS[1], 'st', 'fp')
if not cur[1] then
  redis.call('HSET', KEYS[1], 'st', 'p', 'fp', ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {'started'}
end
if cur[2] ~= ARGV[1] then return {'mismatch'} end
if cur[1] == 'p' then return {'in-progress'} end
return {'replay', redis.call('HGET', KEYS[1], 'resp')}
`;

// KEYS[1]; ARGV: fingerprint, respJson, ttlMs. A claim by a different request
// (after our lease expired) is left alone.
const COMPLETE_LUA = `
local fp = redis.call('HGET', KEYS[1], 'fp')
if fp and fp ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'st', 'd', 'fp', ARGV[1], 'resp', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`;

// KEYS[1]. Only an in-progress claim is removed; a finished record stays replayable.
const ABORT_LUA = `
if redis.call('HGET', KEYS[1], 'st') == 'p' then return redis.call('DEL', KEYS[1]) end
return 0
`;

type Script = (key: string, ...args: (string | number)[]) => Promise<unknown>;

export interface RedisIdempotencyStoreOptions extends IdempotencyLimits, FailFastRedisOptions {
  url?: string;
  /** An existing client to use instead of `url`; not closed by close(). */
  client?: Redis;
  /** Default "kg:idem:". */
  keyPrefix?: string;
}

export class RedisIdempotencyStore implements IdempotencyStore {
  readonly keyPrefix: string;
  private readonly client: Redis;
  private readonly ownsClient: boolean;
  private readonly leaseSeconds: number;
  private readonly maxBodyBytes: number;
  private readonly beginScript: Script;
  private readonly completeScript: Script;
  private readonly abortScript: Script;

  constructor(opts: RedisIdempotencyStoreOptions) {
    ({ client: this.client, ownsClient: this.ownsClient } = clientFrom(opts, 'RedisIdempotencyStore'));
    this.keyPrefix = opts.keyPrefix ?? 'kg:idem:';
    this.leaseSeconds = opts.leaseSeconds ?? DEFAULT_LEASE_SECONDS;
    this.maxBodyBytes = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    checkTtl('leaseSeconds', this.leaseSeconds);
    this.beginScript = this.define('kgIdemBegin', BEGIN_LUA);
    this.completeScript = this.define('kgIdemComplete', COMPLETE_LUA);
    this.abortScript = this.define('kgIdemAbort', ABORT_LUA);
  }

  ready(timeoutMs = 5000): Promise<void> {
    return waitForReady(this.client, timeoutMs);
  }

  /** The Redis key for (scope, token); exposed for tests and operators. */
  redisKey(scope: string, token: string): string {
    return this.keyPrefix + idempotencyId(scope, token);
  }

  async begin(scope: string, token: string, fingerprint: string, ttlSeconds: number): Promise<Begin> {
    checkClaim(scope, token, fingerprint, ttlSeconds);
    const leaseMs = Math.ceil(Math.min(this.leaseSeconds, ttlSeconds) * 1000);
    const reply = await this.beginScript(this.redisKey(scope, token), fingerprint, leaseMs);
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
    await this.completeScript(this.redisKey(scope, token), fingerprint, JSON.stringify(kept), Math.ceil(ttlSeconds * 1000));
  }

  async abort(scope: string, token: string): Promise<void> {
    checkIds(scope, token);
    await this.abortScript(this.redisKey(scope, token));
  }

  async close(): Promise<void> {
    if (!this.ownsClient) return;
    try {
      await this.client.quit();
    } catch {
      this.client.disconnect();
    }
  }

  private define(name: string, lua: string): Script {
    this.client.defineCommand(name, { numberOfKeys: 1, lua });
    const fn = (this.client as unknown as Record<string, Script>)[name];
    if (typeof fn !== 'function') throw new Error(`ioredis did not register ${name}`);
    return fn.bind(this.client);
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
