-- Keep a live turn's leases: each key (its claims, its thread's lock while held) gets its
-- expiry back, but only while it still holds the token this turn put there.
-- KEYS[1..n] keys   ARGV[1] lease_ms   ARGV[2..n+1] the token expected in each key
-- Returns one 1/0 per key: 1 where the lease was renewed.
local out = {}
for i = 1, #KEYS do
  if redis.call('get', KEYS[i]) == ARGV[i + 1] then
    redis.call('pexpire', KEYS[i], ARGV[1])
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
