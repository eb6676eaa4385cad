-- Take over a journaled turn whose owner stopped renewing its claims (its replica died), at
-- most once: the claims are taken atomically with the read of the turn.
-- KEYS[1] the turn (hash)   KEYS[2..] its claims (message claim first)
-- ARGV[1] the new token  ARGV[2] lease_ms
-- Returns {'gone'} (no such turn), {'done'} (answered meanwhile), {'alive'} (its owner still
-- holds it), or {'taken', message JSON, placeholder ts or false}.
if redis.call('exists', KEYS[1]) == 0 then return {'gone'} end
local holder = redis.call('get', KEYS[2])
if holder and string.sub(holder, 1, 4) == 'done' then
  redis.call('del', KEYS[1])
  return {'done'}
end
if holder then return {'alive'} end
for i = 2, #KEYS do redis.call('set', KEYS[i], ARGV[1], 'PX', ARGV[2]) end
redis.call('hset', KEYS[1], 'owner', ARGV[1])
local turn = redis.call('hmget', KEYS[1], 'msg', 'placeholder')
return {'taken', turn[1], turn[2]}
