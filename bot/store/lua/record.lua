-- Keep a thread's stored messages current from Slack's message events, without its lock:
-- 'add' a message posted in a thread the bot is in (nothing when the bot is not in it),
-- 'edit' (replace) a stored message, 'delete' one.
-- KEYS[1] messages (hash id -> JSON)   KEYS[2] message order (zset)
-- ARGV[1] mode ('add'|'edit'|'delete')  ARGV[2] id  ARGV[3] JSON (add, edit)
-- ARGV[4] max_messages  ARGV[5] ttl_seconds
-- Returns 1 when something changed, else 0.
local mode, id = ARGV[1], ARGV[2]
if mode == 'delete' then
  redis.call('zrem', KEYS[2], id)
  return redis.call('hdel', KEYS[1], id)
end
if mode == 'edit' then
  if redis.call('hexists', KEYS[1], id) == 0 then return 0 end
  redis.call('hset', KEYS[1], id, ARGV[3])
  return 1
end
if redis.call('exists', KEYS[2]) == 0 then return 0 end
redis.call('hset', KEYS[1], id, ARGV[3])
redis.call('zadd', KEYS[2], 0, id)
local over = redis.call('zcard', KEYS[2]) - tonumber(ARGV[4])
if over > 0 then
  local old = redis.call('zrange', KEYS[2], 0, over - 1)
  redis.call('hdel', KEYS[1], unpack(old))
  redis.call('zremrangebyrank', KEYS[2], 0, over - 1)
end
redis.call('expire', KEYS[1], ARGV[5])
redis.call('expire', KEYS[2], ARGV[5])
return 1
