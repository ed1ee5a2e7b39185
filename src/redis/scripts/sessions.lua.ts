/** The session store's Lua (src/sessions/redis-store.ts); registered in ../commands.ts. */

/**
 * Per owner three keys, all with the idle timeout as TTL so owners that went quiet vanish entirely:
 * - `<prefix>{owner}:idx`, a sorted set: member = session name, score = lastUsedAt (ms). The scripts
 *   read only this small index (quota, idle expiry, existence).
 * - `<prefix>{owner}:rec`, a hash: field = session name, value = the record JSON (config included).
 *   Scripts only HGET/HSET/HDEL it, never decode it, so a session's size costs Redis nothing per call.
 * - `<prefix>{owner}:ord`, a sorted set: member = session name, score = createdAt (ms). Listings page
 *   through it in (created, name) order, which no use changes (GET /session; redis-store.ts page()).
 * The record's stored lastUsedAt is its creation time; the index score is the truth.
 * The `{owner}` hash tag keeps the three keys in one Redis Cluster slot, so each script touches one
 * owner's keys only.
 *
 * Create: drops the owner's idle sessions, then creates one unless the name exists or the quota is
 * reached. KEYS[1] index, KEYS[2] records, KEYS[3] order; ARGV: name, record JSON, max, cutoff ms, idle ms,
 * now ms, created ms.
 */
export const CREATE_LUA = `
local cutoff = tonumber(ARGV[4])
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', cutoff)
for i = 1, #expired do
  redis.call('HDEL', KEYS[2], expired[i])
  redis.call('ZREM', KEYS[3], expired[i])
end
if #expired > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', cutoff) end
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  local raw = redis.call('HGET', KEYS[2], ARGV[1])
  if raw then return {'exists', raw, redis.call('ZSCORE', KEYS[1], ARGV[1])} end
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
end
local live = redis.call('ZCARD', KEYS[1])
if live >= tonumber(ARGV[3]) then return {'quota', tostring(live)} end
redis.call('ZADD', KEYS[1], ARGV[6], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[7], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
redis.call('PEXPIRE', KEYS[3], ARGV[5])
return {'created', ARGV[2]}
`;

/** KEYS[1] index, KEYS[2] records, KEYS[3] order; ARGV: name, now ms, idle ms. Refreshes lastUsedAt if the session is alive. */
export const TOUCH_LUA = `
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score then return 0 end
if tonumber(score) < tonumber(ARGV[2]) then redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1]) end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('PEXPIRE', KEYS[3], ARGV[3])
return 1
`;

/**
 * KEYS[1] index, KEYS[2] records; ARGV: name. Reply: {lastUsedAt, record JSON}, or {} when absent.
 * One script rather than MULTI: a plain command keeps its deadline through a Cluster failover
 * (src/redis/client.ts), and it is one round trip.
 */
export const GET_LUA = `
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score then return {} end
local raw = redis.call('HGET', KEYS[2], ARGV[1])
if not raw then return {} end
return {score, raw}
`;

/** KEYS[1] index, KEYS[2] records, KEYS[3] order; ARGV: name. */
export const DELETE_LUA = `
local n = redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return n
`;
