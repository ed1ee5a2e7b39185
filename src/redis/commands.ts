/**
 * Every Lua script kernelgate runs, registered one way: ioredis's defineCommand
 * (EVALSHA, falling back to EVAL on NOSCRIPT, e.g. after a Redis restart), typed
 * by augmenting ioredis's RedisCommander so each store calls `client.kgX(...)`
 * with checked arguments and replies, in pipelines and MULTI too.
 */
import type { Result } from 'ioredis';
import type { RedisClient } from './client.js';
import { ABORT_LUA, BEGIN_LUA, COMPLETE_LUA } from './scripts/idempotency.lua.js';
import { CONSUME_LUA } from './scripts/ratelimit.lua.js';
import { CREATE_LUA, DELETE_LUA, GET_LUA, TOUCH_LUA } from './scripts/sessions.lua.js';

declare module 'ioredis' {
  interface RedisCommander<Context> {
    /** Sliding-window charge; `peekOnly` "1" writes nothing. Reply: [allowed 0/1, remaining, resetMs, retryAfterMs]. */
    kgRateLimitConsume(key: string, limit: number, windowMs: number, peekOnly?: '1'): Result<[number, number, number, number], Context>;
    /** Reply: ['started' | 'in-progress' | 'mismatch'] or ['replay', responseJson]. */
    kgIdemBegin(key: string, fingerprint: string, leaseMs: number): Result<[string, string?], Context>;
    /** Reply: 1 stored, 0 left alone (another request holds the key). */
    kgIdemComplete(key: string, fingerprint: string, responseJson: string, ttlMs: number): Result<number, Context>;
    /** Reply: keys deleted (0 unless an in-progress claim was removed). */
    kgIdemAbort(key: string): Result<number, Context>;
    /** Reply: ['created', json] | ['exists', json, lastUsedAt] | ['quota', live]. */
    kgSessionCreate(
      index: string, records: string, order: string, name: string, json: string, max: number, cutoff: number, idleMs: number, now: number, created: number,
    ): Result<[string, string, string?], Context>;
    /** Reply: [lastUsedAt, recordJson], or [] when there is no such session. */
    kgSessionGet(index: string, records: string, name: string): Result<[string, string] | [], Context>;
    /** Reply: 1 if the session is alive (and touched), else 0. */
    kgSessionTouch(index: string, records: string, order: string, name: string, now: number, idleMs: number): Result<number, Context>;
    /** Reply: 1 if the session existed. */
    kgSessionDelete(index: string, records: string, order: string, name: string): Result<number, Context>;
  }
}

/**
 * Name -> script; the names must match the declarations above. Every script touches only the keys
 * it is given, all in one Redis Cluster slot (one key, or keys sharing a hash tag); a test checks it.
 */
export const COMMANDS = {
  kgRateLimitConsume: { numberOfKeys: 1, lua: CONSUME_LUA },
  kgIdemBegin: { numberOfKeys: 1, lua: BEGIN_LUA },
  kgIdemComplete: { numberOfKeys: 1, lua: COMPLETE_LUA },
  kgIdemAbort: { numberOfKeys: 1, lua: ABORT_LUA },
  kgSessionCreate: { numberOfKeys: 3, lua: CREATE_LUA },
  kgSessionGet: { numberOfKeys: 2, lua: GET_LUA },
  kgSessionTouch: { numberOfKeys: 3, lua: TOUCH_LUA },
  kgSessionDelete: { numberOfKeys: 3, lua: DELETE_LUA },
} as const;

const defined = new WeakSet<RedisClient>();

/** Registers every command on `client` (once per client, which several stores may share). */
export function defineCommands(client: RedisClient): void {
  if (defined.has(client)) return;
  for (const [name, definition] of Object.entries(COMMANDS)) client.defineCommand(name, definition);
  defined.add(client);
}
