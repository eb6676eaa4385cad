-- Compare-and-delete: only the holder's token may release a lock.
-- KEYS[1] lock   ARGV[1] token
-- Returns 1 when the lock was ours and is gone, else 0.
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
