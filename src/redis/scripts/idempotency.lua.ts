/** The idempotency store's Lua (src/idempotency/redis-store.ts); registered in ../commands.ts. */

// KEYS[1]; ARGV: fingerprint, leaseMs. Returns {state} or {'replay', respJson}.
export const BEGIN_LUA = `
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
export const COMPLETE_LUA = `
local fp = redis.call('HGET', KEYS[1], 'fp')
if fp and fp ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'st', 'd', 'fp', ARGV[1], 'resp', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`;

// KEYS[1]. Only an in-progress claim is removed; a finished record stays replayable.
export const ABORT_LUA = `
if redis.call('HGET', KEYS[1], 'st') == 'p' then return redis.call('DEL', KEYS[1]) end
return 0
`;
