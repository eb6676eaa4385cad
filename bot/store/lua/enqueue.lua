-- Join a thread's queue early (while Slack's request is still being acked), so a message written
-- earlier keeps its place even if its turn starts later.
-- KEYS[1] waiters (zset)   KEYS[2] heartbeats (zset)   KEYS[3] message order   KEYS[4] engaged
-- ARGV[1] member  ARGV[2] score (position)  ARGV[3] now_ms  ARGV[4] stale_ms
-- ARGV[5] require_history: '1' = only in a thread the bot is in (messages or engaged mark)
-- Returns 0: not a thread the bot is in (nothing done), 1: already queued, 2: queued by this call.
if ARGV[5] == '1' and redis.call('exists', KEYS[3], KEYS[4]) == 0 then return 0 end
local added = redis.call('zadd', KEYS[1], 'NX', ARGV[2], ARGV[1])
redis.call('zadd', KEYS[2], ARGV[3], ARGV[1])
redis.call('pexpire', KEYS[1], tonumber(ARGV[4]) * 2)
redis.call('pexpire', KEYS[2], tonumber(ARGV[4]) * 2)
if added == 1 then return 2 end
return 1
