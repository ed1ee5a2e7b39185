import { unavailable } from '../problems/api-error.js';
import { CircuitBreaker } from '../redis/breaker.js';
import { RedisBacked, describeRedisError, type RedisStoreOptions } from '../redis/client.js';
import type { CreateOutcome, SessionKey, SessionPage, SessionRecord, SessionStore } from './types.js';

// Key layout and scripts (kgSession*): src/redis/scripts/sessions.lua.ts.

/** `keyPrefix` defaults to "kg:sess:"; `commandTimeoutMs` to 1000. */
export interface RedisSessionStoreOptions extends RedisStoreOptions {
  /** Idle timeout, also the owner hash's TTL. */
  idleMs: number;
}

/**
 * [index, records] of an owner. The `{owner}` hash tag puts both in one Redis Cluster slot, which
 * the two-key scripts need. "%" and "}" in an owner are percent-encoded (one-to-one, and access
 * keys have neither), so the tag is never cut short or empty: an empty tag ("{}") would make Redis
 * hash the whole key and split the pair. The prefix has no braces (checked by the store).
 */
export function sessionKeys(keyPrefix: string, owner: string): [string, string, string] {
  const tag = owner.replace(/[%}]/g, (c) => (c === '%' ? '%25' : '%7D'));
  const base = `${keyPrefix}{${tag}}`;
  return [`${base}:idx`, `${base}:rec`, `${base}:ord`];
}

/** Sessions shared by every replica through Redis. Redis trouble is a 503, never a wrong answer. */
export class RedisSessionStore extends RedisBacked implements SessionStore {
  readonly kind = 'redis' as const;
  private readonly breaker = new CircuitBreaker();
  private readonly idleMs: number;

  constructor(opts: RedisSessionStoreOptions) {
    super(opts, 'RedisSessionStore', 'kg:sess:', 1000);
    if (/[{}]/.test(this.keyPrefix)) throw new TypeError('RedisSessionStore: keyPrefix must not contain "{" or "}" (the owner is the hash tag)');
    this.idleMs = opts.idleMs;
  }

  /** [index, records, order] of an owner. */
  private keys(owner: string): [string, string, string] {
    return sessionKeys(this.keyPrefix, owner);
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
      const [state, value, score] = await this.client.kgSessionCreate(
        ...this.keys(record.owner),
        record.sessionName,
        JSON.stringify(record),
        maxSessions,
        now - idleMs,
        idleMs,
        record.lastUsedAt,
        record.createdAt,
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
      const [score, raw] = await this.client.kgSessionGet(index, records, name);
      if (score === undefined || raw === undefined) return undefined;
      const rec = { ...(JSON.parse(raw) as SessionRecord), lastUsedAt: Number(score) };
      return rec.lastUsedAt > Date.now() - idleMs ? rec : undefined;
    });
  }

  list(owner: string, idleMs: number): Promise<SessionRecord[]> {
    return this.guard(async () => {
      const [index, records] = this.keys(owner);
      const cutoff = Date.now() - idleMs;
      const live = await this.client.zrangebyscore(index, `(${cutoff}`, '+inf', 'WITHSCORES');
      if (live.length === 0) return [];
      const names: string[] = [];
      for (let i = 0; i < live.length; i += 2) names.push(live[i]!);
      const raws = await this.client.hmget(records, ...names);
      const out: SessionRecord[] = [];
      raws.forEach((raw, i) => {
        if (raw !== null) out.push({ ...(JSON.parse(raw) as SessionRecord), lastUsedAt: Number(live[2 * i + 1]) });
      });
      return out.sort((a, b) => a.createdAt - b.createdAt);
    });
  }

  page(owner: string, idleMs: number, after: SessionKey | undefined, limit: number): Promise<SessionPage> {
    return this.guard(async () => {
      const [index, records, order] = this.keys(owner);
      const cutoff = Date.now() - idleMs;
      const found: SessionRecord[] = [];
      let from = after;
      // Reads candidates in (created, name) order, then drops the idle and the gone, until limit + 1 are found.
      for (;;) {
        const want = limit + 1 - found.length;
        const candidates = await this.orderedAfter(order, from, want);
        if (candidates.length === 0) break;
        const names = candidates.map((c) => c.name);
        // Plain reads (each with its deadline through a failover); a session gone or re-created in between is
        // skipped below by its missing record or its createdAt.
        const [scores, raws] = await Promise.all([this.client.zmscore(index, ...names), this.client.hmget(records, ...names)]);
        candidates.forEach((c, i) => {
          const score = scores[i];
          const raw = raws[i];
          if (score == null || raw == null || Number(score) <= cutoff) return;
          const rec = { ...(JSON.parse(raw) as SessionRecord), lastUsedAt: Number(score) };
          // A name deleted and created again between the two reads is the new session: its own key decides.
          if (rec.createdAt === c.createdAt) found.push(rec);
        });
        from = candidates[candidates.length - 1];
        if (found.length > limit || candidates.length < want) break;
      }
      return { sessions: found.slice(0, limit), more: found.length > limit };
    });
  }

  /**
   * Up to `count` members of the order set strictly after `from`: those of the same createdAt with a
   * greater name (Redis orders equal scores by member bytes), then those created later. One MULTI,
   * so the two ranges are one snapshot.
   */
  private async orderedAfter(order: string, from: SessionKey | undefined, count: number): Promise<SessionKey[]> {
    const pairs = (flat: string[]) => {
      const out: SessionKey[] = [];
      for (let i = 0; i < flat.length; i += 2) out.push({ name: flat[i]!, createdAt: Number(flat[i + 1]) });
      return out;
    };
    if (from === undefined) return pairs(await this.client.zrangebyscore(order, '-inf', '+inf', 'WITHSCORES', 'LIMIT', 0, count));
    // Two plain reads, not MULTI: each keeps its own deadline through a Cluster failover (src/redis/client.ts).
    // A session created between them has a later createdAt, so it lands in the second read or a later page.
    const [tied, after] = await Promise.all([
      this.client.zrangebyscore(order, from.createdAt, from.createdAt, 'WITHSCORES'),
      this.client.zrangebyscore(order, `(${from.createdAt}`, '+inf', 'WITHSCORES', 'LIMIT', 0, count),
    ]);
    const ties = pairs(tied).filter((c) => c.name > from.name);
    return [...ties, ...pairs(after)].slice(0, count);
  }

  touch(owner: string, name: string, now: number): Promise<void> {
    return this.guard(async () => {
      await this.client.kgSessionTouch(...this.keys(owner), name, now, this.idleMs);
    });
  }

  delete(owner: string, name: string): Promise<boolean> {
    return this.guard(async () => (await this.client.kgSessionDelete(...this.keys(owner), name)) === 1);
  }

  async health() {
    try {
      await this.client.ping();
      return { status: 'ok' as const, store: 'redis' };
    } catch (error) {
      return { status: 'degraded' as const, store: 'redis', reason: `sessions unavailable: ${describeRedisError(error)}` };
    }
  }
}
