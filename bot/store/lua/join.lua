-- Admit a reply inside a thread, while Slack's request is still being acked: take its place in
-- the thread's queue (so a message written earlier keeps its place even if its turn starts
-- later) and its dedup claims, and journal the turn (see claim.lua); a follow-up without mention
-- only in a thread the bot is in (stored messages, the engaged mark, or a turn of the bot's
-- running or queued there: a follow-up to a first answer still being written waits for it),
-- else nothing at all is done.
-- KEYS[1] waiters (zset)  KEYS[2] heartbeats (zset)  KEYS[3] message order  KEYS[4] engaged
-- KEYS[5] the thread's lock  KEYS[6] the turn (hash)  KEYS[7..] its claims (message claim first)
-- ARGV[1] member  ARGV[2] score (position)  ARGV[3] now_ms  ARGV[4] stale_ms
-- ARGV[5] require_history ('1': only in a thread the bot is in)  ARGV[6] token  ARGV[7] lease_ms
-- ARGV[8] the message (JSON)  ARGV[9] turn_ttl_seconds
-- Returns {queued, claim...}: queued 0 = not a thread the bot is in (and nothing else is in the
-- reply), 1 = already queued, 2 = queued by this call; then one 1/0 per claim taken.
if ARGV[5] == '1' and redis.call('exists', KEYS[3], KEYS[4], KEYS[5], KEYS[1]) == 0 then
  return {0}
end
local added = redis.call('zadd', KEYS[1], 'NX', ARGV[2], ARGV[1])
redis.call('zadd', KEYS[2], ARGV[3], ARGV[1])
redis.call('pexpire', KEYS[1], tonumber(ARGV[4]) * 2)
redis.call('pexpire', KEYS[2], tonumber(ARGV[4]) * 2)
local out, all = {added == 1 and 2 or 1}, true
for i = 7, #KEYS do
  local ok = redis.call('set', KEYS[i], ARGV[6], 'NX', 'PX', ARGV[7])
    or redis.call('get', KEYS[i]) == ARGV[6]  -- an earlier run of this call (see claim.lua)
  out[i - 5] = ok and 1 or 0
  all = all and ok
end
if all then
  redis.call('hset', KEYS[6], 'msg', ARGV[8], 'owner', ARGV[6])
  redis.call('expire', KEYS[6], ARGV[9])
end
return out
