-- GCRA for one client, atomically (the same algorithm as RateLimiter's
-- in-process table, in microseconds of Redis' own clock so every node
-- agrees on "now").
-- KEYS[1]: the client's key. ARGV[1]: interval (µs one request costs).
-- ARGV[2]: burst. Returns {allowed (0/1), remaining, reset_us, retry_us}.
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tolerance = interval * burst
local tat = tonumber(redis.call('GET', KEYS[1])) or now
local start = math.max(tat, now)
local new_tat = start + interval
if new_tat - now <= tolerance then
  -- The key lives exactly as long as the allowance is not full again.
  local ttl_ms = math.ceil((new_tat - now) / 1000)
  redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', ttl_ms)
  return {1, math.floor((tolerance - (new_tat - now)) / interval), new_tat - now, 0}
end
return {0, 0, start - now, new_tat - tolerance - now}
