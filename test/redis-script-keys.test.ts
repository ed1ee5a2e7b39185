/**
 * Redis Cluster runs a script or a multi-key command only when all its keys are in one slot. Every
 * Lua script here touches only the keys it is passed (never a key built inside the script), one key
 * or keys sharing a hash tag; the stores issue no other multi-key command (MGET, MULTI across keys,
 * SCAN/KEYS, which a Cluster client cannot run as on one node). Adding one makes this test fail.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import fc from 'fast-check';
import { COMMANDS } from '../src/redis/commands.js';
import { sessionKeys } from '../src/sessions/redis-store.js';

/** Commands a script may call: each takes exactly one key, as its first argument. */
const ONE_KEY_COMMANDS = new Set([
  'GET', 'SET', 'DEL', 'PEXPIRE', 'HGET', 'HMGET', 'HSET', 'HDEL',
  'ZADD', 'ZREM', 'ZSCORE', 'ZCARD', 'ZRANGEBYSCORE', 'ZREMRANGEBYSCORE',
]);
/** Commands that take no key at all. */
const KEYLESS_COMMANDS = new Set(['TIME']);

/** The part of a key Redis Cluster hashes (its "hash tag" rule, CLUSTER KEYSLOT). */
function hashedPart(key: string): string {
  const open = key.indexOf('{');
  if (open < 0) return key;
  const close = key.indexOf('}', open + 1);
  if (close < 0 || close === open + 1) return key;
  return key.slice(open + 1, close);
}

describe('Lua scripts and Redis Cluster slots', () => {
  it('every script touches only its KEYS, with one-key commands', () => {
    assert.ok(Object.keys(COMMANDS).length >= 8);
    for (const [name, { numberOfKeys, lua }] of Object.entries(COMMANDS)) {
      assert.ok(numberOfKeys >= 1 && numberOfKeys <= 3, `${name}: ${numberOfKeys} keys`);
      // Local names bound to a key: `local key = KEYS[1]`.
      const aliases = new Map<string, number>();
      for (const m of lua.matchAll(/local\s+([A-Za-z_]\w*)\s*=\s*KEYS\[(\d+)\]/g)) aliases.set(m[1]!, Number(m[2]));
      for (const m of lua.matchAll(/KEYS\[(\d+)\]/g)) {
        assert.ok(Number(m[1]) >= 1 && Number(m[1]) <= numberOfKeys, `${name} reads KEYS[${m[1]}] but is given ${numberOfKeys}`);
      }
      // No key computed from another (KEYS[1] .. ':x'), no dynamic command names.
      assert.doesNotMatch(lua, /KEYS\[\d+\]\s*\.\.|\.\.\s*KEYS\[\d+\]/, `${name} builds a key`);
      assert.doesNotMatch(lua, /redis\.p?call\(\s*[^'"\s]/, `${name} calls a command whose name is not a literal`);
      const calls = [...lua.matchAll(/redis\.p?call\(\s*'([A-Z]+)'\s*(?:,\s*([^,)]+))?/g)];
      assert.ok(calls.length > 0, name);
      for (const [, command, firstArg] of calls) {
        if (KEYLESS_COMMANDS.has(command!)) continue;
        assert.ok(ONE_KEY_COMMANDS.has(command!), `${name} calls ${command}, not known to take exactly one key`);
        const arg = firstArg!.trim();
        const index = /^KEYS\[(\d+)\]$/.exec(arg)?.[1] ?? aliases.get(arg);
        assert.ok(index !== undefined, `${name}: ${command} on "${arg}", which is not one of KEYS`);
      }
      // Scripts that take several keys are the session scripts, keyed by sessionKeys (next test).
      if (numberOfKeys > 1) assert.match(name, /^kgSession/);
    }
  });

  it("a session's three keys share one slot for any prefix and owner", () => {
    fc.assert(
      fc.property(
        fc.string({ maxLength: 40 }).filter((p) => !/[{}]/.test(p)),
        fc.oneof(fc.string({ minLength: 1, maxLength: 80 }), fc.stringMatching(/^[{}%]{1,6}[a-z]{0,3}$/)),
        fc.string({ minLength: 1, maxLength: 80 }),
        (prefix, owner, other) => {
          const [index, records, order] = sessionKeys(prefix, owner);
          assert.equal(new Set([index, records, order]).size, 3);
          assert.equal(hashedPart(index), hashedPart(records), JSON.stringify({ prefix, owner }));
          assert.equal(hashedPart(index), hashedPart(order), JSON.stringify({ prefix, owner }));
          // One-to-one: two owners never share keys.
          if (other !== owner) assert.notEqual(sessionKeys(prefix, other)[0], index);
        },
      ),
      { numRuns: 2000 },
    );
    // The tag is the owner (so owners spread over the slots), and access keys are stored as before.
    assert.deepEqual(sessionKeys('kg:sess:', 'AKIAONE'), ['kg:sess:{AKIAONE}:idx', 'kg:sess:{AKIAONE}:rec', 'kg:sess:{AKIAONE}:ord']);
    assert.equal(hashedPart(sessionKeys('kg:sess:', '}x')[0]), '%7Dx');
  });

  it('the Redis-backed stores issue only one-key commands besides the scripts', () => {
    const src = resolve(import.meta.dirname, '../src');
    const allowed = new Set(['ping', 'zrangebyscore', 'zmscore', 'hmget', 'quit', 'disconnect', 'on', 'off', 'once', ...Object.keys(COMMANDS)]);
    const files = readdirSync(src, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
    let seen = 0;
    for (const file of files) {
      const text = readFileSync(join(src, file), 'utf8');
      if (!/RedisBacked|RedisClient/.test(text) || file.startsWith('redis/')) continue;
      for (const m of text.matchAll(/this\.client\.([A-Za-z]+)\(/g)) {
        seen++;
        assert.ok(allowed.has(m[1]!), `${file} calls client.${m[1]}(): check it is one-key (Cluster) and add it here`);
      }
    }
    assert.ok(seen >= 10, `${seen} Redis calls found`);
  });
});
