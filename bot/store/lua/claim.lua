-- Admit a Slack message that starts a thread, once: take its dedup claims for this turn and,
-- when every claim was free, keep the turn in the journal (so another replica can take it over
-- if this one dies) and take the thread's lock (a new thread has no history to read).
-- A claim holds the turn's token for a short lease that the live turn keeps renewing, so a
-- dead replica's claim lapses within seconds and Slack's retry (or a takeover) is answered.
-- KEYS[1] the turn (hash)  KEYS[2] the thread's lock  KEYS[3..] the claims (message claim first),
-- all in the thread's slot
-- ARGV[1] token  ARGV[2] lease_ms  ARGV[3] the message (JSON)  ARGV[4] turn_ttl_seconds
-- ARGV[5] the lock's token
-- Returns one 1/0 per claim (1 where this call took it), then 1/0: the lock taken.
local taken, all = {}, true
for i = 3, #KEYS do
  -- A claim that already holds this token was taken by an earlier run of this very call (a
  -- retry after a lost reply): still this turn's.
  local ok = redis.call('set', KEYS[i], ARGV[1], 'NX', 'PX', ARGV[2])
    or redis.call('get', KEYS[i]) == ARGV[1]
  taken[i - 2] = ok and 1 or 0
  all = all and ok
end
local locked = 0
if all then
  redis.call('hset', KEYS[1], 'msg', ARGV[3], 'owner', ARGV[1])
  redis.call('expire', KEYS[1], ARGV[4])
  if redis.call('set', KEYS[2], ARGV[5], 'NX', 'PX', ARGV[2])
    or redis.call('get', KEYS[2]) == ARGV[5] then
    locked = 1
  end
end
taken[#taken + 1] = locked
return taken
