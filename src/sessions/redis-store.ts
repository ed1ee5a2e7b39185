import type { Redis } from 'ioredis';
import { unavailable } from '../problems/api-error.js';
import { CircuitBreaker, createFailFastRedis, describeRedisError, waitForReady } from '../ratelimit/redis-client.js';
import type { CreateOutcome, SessionRecord, SessionStore } from './types.js';

/**
 * Per owner two keys, both with the idle timeout as TTL so owners that went quiet vanish entirely:
 * - `<prefix>{owner}:idx`, a sorted set: member = session name, score = lastUsedAt (ms). The scripts
 *   read only this small index (quota, idle expiry, existence).
 * - `<prefix>{owner}:rec`, a hash: field = session name, value = the record JSON (config included).
 *   Scripts only HGET/HSET/HDEL it, never decode it, so a session's size costs Redis nothing per call.
 * The record's stored lastUsedAt is its creation time; the index score is the truth.
 * The `{owner}` hash tag keeps both keys in one Redis Cluster slot.
 *
 * Create: drops the owner's idle sessions, then creates one unless the name exists or the quota is
 * reached. KEYS[1] index, KEYS[2] records; ARGV: name, record JSON, max, cutoff ms, idle ms, now ms.
 */
const CREATE_LUA = `
local cutoff = tonumber(ARGV[4])
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', cutoff)
for i = 1, #expired do
  redis.call('HDEL', KEYS[2], expired[i])
end
if #expired > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', cutoff) end
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  local raw = redis.call('HGET', KEYS[2], ARGV[1])
  if raw then return {'exists', raw, redis.call('ZSCORE', KEYS[1], ARGV[1])} end
  redis.call('ZREM', KEYS[1], ARGV[1])
end
local live = redis.call('ZCARD', KEYS[1])
if live >= tonumber(ARGV[3]) then return {'quota', tostring(live)} end
redis.call('ZADD', KEYS[1], ARGV[6], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return {'created', ARGV[2]}
`;

/** KEYS[1] index, KEYS[2] records; ARGV: name, now ms, idle ms. Refreshes lastUsedAt if the session is alive. */
const TOUCH_LUA = `
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score then return 0 end
if tonumber(score) < tonumber(ARGV[2]) then redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1]) end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1
`;

/** KEYS[1] index, KEYS[2] records; ARGV: name. */
const DELETE_LUA = `
local n = redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return n
`;

type SessionRedis = Redis & {
  kgSessionCreate(index: string, records: string, name: string, json: string, max: number, cutoff: number, idleMs: number, now: number): Promise<[string, string, string?]>;
  kgSessionTouch(index: string, records: string, name: string, now: number, idleMs: number): Promise<number>;
  kgSessionDelete(index: string, records: string, name: string): Promise<number>;
};

export interface RedisSessionStoreOptions {
  url: string;
  keyPrefix?: string;
  commandTimeoutMs?: number;
  /** Idle timeout, also the owner hash's TTL. */
  idleMs: number;
}

/** Sessions shared by every replica through Redis. Redis trouble is a 503, never a wrong answer. */
export class RedisSessionStore implements SessionStore {
  readonly kind = 'redis' as const;
  private readonly redis: SessionRedis;
  private readonly prefix: string;
  private readonly breaker = new CircuitBreaker();

  constructor(private readonly opts: RedisSessionStoreOptions) {
    const client = createFailFastRedis(opts.url, { commandTimeoutMs: opts.commandTimeoutMs ?? 1000 });
    client.defineCommand('kgSessionCreate', { numberOfKeys: 2, lua: CREATE_LUA });
    client.defineCommand('kgSessionTouch', { numberOfKeys: 2, lua: TOUCH_LUA });
    client.defineCommand('kgSessionDelete', { numberOfKeys: 2, lua: DELETE_LUA });
    this.redis = client as SessionRedis;
    this.prefix = opts.keyPrefix ?? 'kg:sess:';
  }

  ready(timeoutMs: number): Promise<void> {
    return waitForReady(this.redis, timeoutMs);
  }

  /** [index, records] of an owner. */
  private keys(owner: string): [string, string] {
    const base = `${this.prefix}{${owner}}`;
    return [`${base}:idx`, `${base}:rec`];
  }

  private async guard<T>(op: () => Promise<T>): Promise<T> {
    try {
      return await this.breaker.run(op);
    } catch {
      throw unavailable('The session store is unreachable; try again shortly.', 1);
    }
  }

  create(record: SessionRecord, maxSessions: number, idleMs: number): Promise<CreateOutcome> {
    return this.guard(async () => {
      const now = Date.now();
      const [state, value, score] = await this.redis.kgSessionCreate(
        ...this.keys(record.owner),
        record.sessionName,
        JSON.stringify(record),
        maxSessions,
        now - idleMs,
        idleMs,
        record.lastUsedAt,
      );
      if (state === 'quota') return { state, active: Number(value) };
      const session = JSON.parse(value) as SessionRecord;
      if (score !== undefined) session.lastUsedAt = Number(score);
      return { state: state as 'created' | 'exists', session };
    });
  }

  get(owner: string, name: string, idleMs: number): Promise<SessionRecord | undefined> {
    return this.guard(async () => {
      const [index, records] = this.keys(owner);
      const replies = await this.redis.multi().zscore(index, name).hget(records, name).exec();
      const score = replies?.[0]?.[1] as string | null | undefined;
      const raw = replies?.[1]?.[1] as string | null | undefined;
      if (score == null || raw == null) return undefined;
      const rec = { ...(JSON.parse(raw) as SessionRecord), lastUsedAt: Number(score) };
      return rec.lastUsedAt > Date.now() - idleMs ? rec : undefined;
    });
  }

  list(owner: string, idleMs: number): Promise<SessionRecord[]> {
    return this.guard(async () => {
      const [index, records] = this.keys(owner);
      const cutoff = Date.now() - idleMs;
      const live = await this.redis.zrangebyscore(index, `(${cutoff}`, '+inf', 'WITHSCORES');
      if (live.length === 0) return [];
      const names: string[] = [];
      for (let i = 0; i < live.length; i += 2) names.push(live[i]!);
      const raws = await this.redis.hmget(records, ...names);
      const out: SessionRecord[] = [];
      raws.forEach((raw, i) => {
        if (raw !== null) out.push({ ...(JSON.parse(raw) as SessionRecord), lastUsedAt: Number(live[2 * i + 1]) });
      });
      return out.sort((a, b) => a.createdAt - b.createdAt);
    });
  }

  touch(owner: string, name: string, now: number): Promise<void> {
    return this.guard(async () => {
      await this.redis.kgSessionTouch(...this.keys(owner), name, now, this.opts.idleMs);
    });
  }

  delete(owner: string, name: string): Promise<boolean> {
    return this.guard(async () => (await this.redis.kgSessionDelete(...this.keys(owner), name)) === 1);
  }

  async health() {
    try {
      await this.redis.ping();
      return { status: 'ok' as const, store: 'redis' };
    } catch (error) {
      return { status: 'degraded' as const, store: 'redis', reason: `sessions unavailable: ${describeRedisError(error)}` };
    }
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }
}
