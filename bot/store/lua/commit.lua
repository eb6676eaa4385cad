-- Write a turn and release the thread's lock, atomically: append, trim, refresh the TTL, then
-- compare-and-delete the lock (one command instead of five).
-- KEYS[1] history (list)   KEYS[2] lock
-- ARGV[1] token  ARGV[2] max_messages  ARGV[3] ttl_seconds  ARGV[4..] messages (JSON)
-- Returns 1.
if #ARGV > 3 then
  redis.call('rpush', KEYS[1], unpack(ARGV, 4))
  redis.call('ltrim', KEYS[1], -tonumber(ARGV[2]), -1)
  redis.call('expire', KEYS[1], ARGV[3])
end
if redis.call('get', KEYS[2]) == ARGV[1] then redis.call('del', KEYS[2]) end
return 1
