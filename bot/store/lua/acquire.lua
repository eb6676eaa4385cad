-- Take a thread's lock in fair order and read its latest messages under it, in one call.
-- Waiters queue in a sorted set by position (the Slack message ts), so concurrent messages in a
-- thread are answered in the order they were written. A waiter refreshes its heartbeat on every
-- poll; one that stops (its replica died) is dropped after stale_ms, so it cannot block the
-- queue. The lock itself still expires after lock_ms.
-- KEYS[1] lock   KEYS[2] waiters (zset)   KEYS[3] heartbeats (zset)
-- KEYS[4] message order (zset, lexical)   KEYS[5] messages (hash id -> JSON)
-- ARGV[1] token  ARGV[2] member  ARGV[3] score (position)  ARGV[4] now_ms  ARGV[5] lock_ms
-- ARGV[6] stale_ms  ARGV[7] limit (messages to return, newest last; 0 = none)
-- Returns {1, messages} when the lock was taken, {0} when the caller must poll again.
local function latest()
  local limit = tonumber(ARGV[7])
  if limit <= 0 then return {} end
  local ids = redis.call('zrange', KEYS[4], -limit, -1)
  if #ids == 0 then return {} end
  return redis.call('hmget', KEYS[5], unpack(ids))
end
if redis.call('zcard', KEYS[2]) == 0 and redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[5]) then
  -- nobody queued and the lock was free: the common case
  return {1, latest()}
end
redis.call('zadd', KEYS[2], 'NX', ARGV[3], ARGV[2])
redis.call('zadd', KEYS[3], ARGV[4], ARGV[2])
local stale = redis.call('zrangebyscore', KEYS[3], '-inf', tonumber(ARGV[4]) - tonumber(ARGV[6]))
for _, m in ipairs(stale) do
  redis.call('zrem', KEYS[2], m)
  redis.call('zrem', KEYS[3], m)
end
redis.call('pexpire', KEYS[2], tonumber(ARGV[6]) * 2)
redis.call('pexpire', KEYS[3], tonumber(ARGV[6]) * 2)
if redis.call('zrange', KEYS[2], 0, 0)[1] ~= ARGV[2] then return {0} end
if not redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[5]) then return {0} end
redis.call('zrem', KEYS[2], ARGV[2])
redis.call('zrem', KEYS[3], ARGV[2])
return {1, latest()}
