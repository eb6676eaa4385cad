-- Keep a thread's stored messages current from Slack's message events, without its lock:
-- 'add' a message posted in a thread the bot is in (one with stored messages, or a turn of the
-- bot's running or queued there: nothing otherwise), 'edit' (replace) a stored message, 'delete'
-- one. In a thread the bot is in, an edit or a deletion is also noted in the thread's 'gone'
-- hash for an hour, so that a turn under way, which holds its own copy of the message, commits
-- the edit or nothing.
-- KEYS[1] messages (hash id -> JSON)  KEYS[2] message order (zset)  KEYS[3] the thread's lock
-- KEYS[4] its waiters (zset)  KEYS[5] gone (hash id -> '' deleted | JSON edited)
-- ARGV[1] mode ('add'|'edit'|'delete')  ARGV[2] id  ARGV[3] JSON (add, edit)
-- ARGV[4] max_messages  ARGV[5] ttl_seconds  ARGV[6] gone_ttl_seconds
-- Returns 1 when a stored message changed (or was added), else 0.
local mode, id = ARGV[1], ARGV[2]
local known = redis.call('exists', KEYS[2], KEYS[3], KEYS[4]) > 0
if known and (mode == 'delete' or mode == 'edit') then
  redis.call('hset', KEYS[5], id, mode == 'delete' and '' or ARGV[3])
  redis.call('expire', KEYS[5], ARGV[6])
end
if mode == 'delete' then
  redis.call('zrem', KEYS[2], id)
  return redis.call('hdel', KEYS[1], id)
end
if mode == 'edit' then
  if redis.call('hexists', KEYS[1], id) == 0 then return 0 end
  redis.call('hset', KEYS[1], id, ARGV[3])
  return 1
end
if not known then return 0 end
if redis.call('hget', KEYS[5], id) == '' then return 0 end
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
