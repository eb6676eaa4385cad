-- Admit a Slack message, once: take its dedup claims for this turn and, when every claim was
-- free, keep the turn in the journal (so another replica can take it over if this one dies).
-- A claim holds the turn's token for a short lease that the live turn keeps renewing, so a
-- dead replica's claim lapses within seconds and Slack's retry (or a takeover) is answered.
-- KEYS[1] the turn (hash)   KEYS[2..] its claims (message claim first), all in the thread's slot
-- ARGV[1] token  ARGV[2] lease_ms  ARGV[3] the message (JSON)  ARGV[4] turn_ttl_seconds
-- Returns one 1/0 per claim: 1 where this call took it.
local taken, all = {}, true
for i = 2, #KEYS do
  local ok = redis.call('set', KEYS[i], ARGV[1], 'NX', 'PX', ARGV[2])
  taken[i - 1] = ok and 1 or 0
  all = all and ok
end
if all then
  redis.call('hset', KEYS[1], 'msg', ARGV[3], 'owner', ARGV[1])
  redis.call('expire', KEYS[1], ARGV[4])
end
return taken
