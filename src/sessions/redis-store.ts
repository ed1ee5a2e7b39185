import type { Redis } from 'ioredis';
import { unavailable } from '../problems/api-error.js';
import { CircuitBreaker, createFailFastRedis, describeRedisError, waitForReady } from '../ratelimit/redis-client.js';
import type { CreateOutcome, SessionRecord, SessionStore } from './types.js';

/**
 * Drops an owner's idle sessions, then creates one unless the name exists or the
 * quota is reached. One hash per owner (field = session name, value = JSON),
 * whose TTL is the idle timeout so owners that went quiet vanish entirely.
 * KEYS[1] owner hash; ARGV: name, record JSON, max, cutoff ms, idle ms.
 */
const CREATE_LUA = `
local all = redis.call('HGETALL', KEYS[1])
local cutoff = tonumber(ARGV[4])
local live = 0
for i = 1, #all, 2 do
  local rec = cjson.decode(all[i + 1])
  if tonumber(rec.lastUsedAt) <= cutoff then
    redis.call('HDEL', KEYS[1], all[i])
  elseif all[i] == ARGV[1] then
    return {'exists', all[i + 1]}
  else
    live = live + 1
  end
end
if live >= tonumber(ARGV[3]) then return {'quota', tostring(live)} end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return {'created', ARGV[2]}
`;

/** KEYS[1] owner hash; ARGV: name, now ms, idle ms. Refreshes lastUsedAt if the session is alive. */
const TOUCH_LUA = `
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local rec = cjson.decode(raw)
if tonumber(rec.lastUsedAt) < tonumber(ARGV[2]) then
  rec.lastUsedAt = tonumber(ARGV[2])
  redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(rec))
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`;

type SessionRedis = Redis & {
  kgSessionCreate(key: string, name: string, json: string, max: number, cutoff: number, idleMs: number): Promise<[string, string]>;
  kgSessionTouch(key: string, name: string, now: number, idleMs: number): Promise<number>;
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
    client.defineCommand('kgSessionCreate', { numberOfKeys: 1, lua: CREATE_LUA });
    client.defineCommand('kgSessionTouch', { numberOfKeys: 1, lua: TOUCH_LUA });
    this.redis = client as SessionRedis;
    this.prefix = opts.keyPrefix ?? 'kg:sess:';
  }

  ready(timeoutMs: number): Promise<void> {
    return waitForReady(this.redis, timeoutMs);
  }

  private key(owner: string): string {
    return this.prefix + owner;
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
      const [state, value] = await this.redis.kgSessionCreate(
        this.key(record.owner),
        record.sessionName,
        JSON.stringify(record),
        maxSessions,
        Date.now() - idleMs,
        idleMs,
      );
      if (state === 'quota') return { state, active: Number(value) };
      return { state: state as 'created' | 'exists', session: JSON.parse(value) as SessionRecord };
    });
  }

  get(owner: string, name: string, idleMs: number): Promise<SessionRecord | undefined> {
    return this.guard(async () => {
      const raw = await this.redis.hget(this.key(owner), name);
      if (raw === null) return undefined;
      const rec = JSON.parse(raw) as SessionRecord;
      return rec.lastUsedAt > Date.now() - idleMs ? rec : undefined;
    });
  }

  list(owner: string, idleMs: number): Promise<SessionRecord[]> {
    return this.guard(async () => {
      const all = await this.redis.hvals(this.key(owner));
      const cutoff = Date.now() - idleMs;
      return all
        .map((raw) => JSON.parse(raw) as SessionRecord)
        .filter((s) => s.lastUsedAt > cutoff)
        .sort((a, b) => a.createdAt - b.createdAt);
    });
  }

  touch(owner: string, name: string, now: number): Promise<void> {
    return this.guard(async () => {
      await this.redis.kgSessionTouch(this.key(owner), name, now, this.opts.idleMs);
    });
  }

  delete(owner: string, name: string): Promise<boolean> {
    return this.guard(async () => (await this.redis.hdel(this.key(owner), name)) === 1);
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
