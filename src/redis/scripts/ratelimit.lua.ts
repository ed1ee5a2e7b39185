/** The rate-limit store's Lua (src/ratelimit/redis-store.ts); registered in ../commands.ts. */

// Mirrors slidingWindowStep() in src/ratelimit/sliding-window.ts; see there for the maths.
// Returns {allowed 0/1, remaining, resetMs, retryAfterMs}. ARGV[3] = "1" only peeks: nothing is written.
export const CONSUME_LUA = `
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local w = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

-- start:current:previous:last (last = when the last admitted request came; older keys lack it)
local s, c, p, l = now, 0, 0, nil
local v = redis.call('GET', key)
if v then
  local a, b, d, f = string.match(v, '^(%d+):(%d+):(%d+):?(%d*)$')
  if a then
    s = tonumber(a); c = tonumber(b); p = tonumber(d)
    if f ~= '' then l = tonumber(f) end
  end
end

local e = now - s
if e < 0 then e = 0 end
if e >= 2 * w or (l and now - l >= w) then
  s = now; c = 0; p = 0; e = 0; l = nil
elseif e >= w then
  s = s + w; p = c; c = 0; e = e - w
end

local budget = limit * w - p * (w - e)
if limit > 0 and (c + 1) * w <= budget then
  c = c + 1
  l = now
  if ARGV[3] ~= '1' then
    local ttl = s + 2 * w - now
    if ttl > w then ttl = w end
    redis.call('SET', key, string.format('%d:%d:%d:%d', s, c, p, l), 'PX', ttl)
  end
  return {1, math.floor(budget / w) - c, s + w - now, 0}
end

local retry
if limit <= 0 then
  retry = w
elseif c < limit and p > 0 then
  retry = w - e - math.floor((limit - c - 1) * w / p)
else
  retry = w - e + w - math.floor((limit - 1) * w / c)
end
if l and l + w - now < retry then retry = l + w - now end
if retry > w then retry = w end
if retry < 1 then retry = 1 end
return {0, 0, retry, retry}
`;
