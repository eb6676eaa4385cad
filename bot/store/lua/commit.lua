-- Write a turn's messages and release the thread's lock, atomically: add (or replace) each
-- message by id, keep the newest max_messages, refresh the TTL, compare-and-delete the lock.
-- For a Slack turn, first check that it still owns its claims (a replica that paused past its
-- lease may have been taken over: then nothing is written), and end it: claims 'done', the
-- journal entry gone. Message ids sort chronologically as text (Slack ts: 10 digits '.' 6
-- digits), so the order set holds them at score 0 and reads them in lexical order.
-- KEYS[1] messages (hash id -> JSON)  KEYS[2] message order (zset)  KEYS[3] lock
-- KEYS[4] the turn (hash) and KEYS[5..] its claims, when ARGV[4] (claim count) > 0
-- ARGV[1] lock token  ARGV[2] max_messages  ARGV[3] ttl_seconds  ARGV[4] claim count
-- ARGV[5] claim token  ARGV[6] done_ttl_seconds  ARGV[7..] id, JSON, id, JSON, ...
-- Returns 1, or 0 when the turn no longer owns its claims (then only the lock is released).
local claims = tonumber(ARGV[4])
if claims > 0 then
  if redis.call('get', KEYS[5]) ~= ARGV[5] then
    if redis.call('get', KEYS[3]) == ARGV[1] then redis.call('del', KEYS[3]) end
    return 0
  end
  for i = 5, 4 + claims do redis.call('set', KEYS[i], 'done', 'EX', ARGV[6]) end
  redis.call('del', KEYS[4])
end
if #ARGV > 6 then
  for i = 7, #ARGV, 2 do
    redis.call('hset', KEYS[1], ARGV[i], ARGV[i + 1])
    redis.call('zadd', KEYS[2], 0, ARGV[i])
  end
  local over = redis.call('zcard', KEYS[2]) - tonumber(ARGV[2])
  if over > 0 then
    local old = redis.call('zrange', KEYS[2], 0, over - 1)
    redis.call('hdel', KEYS[1], unpack(old))
    redis.call('zremrangebyrank', KEYS[2], 0, over - 1)
  end
  redis.call('expire', KEYS[1], ARGV[3])
  redis.call('expire', KEYS[2], ARGV[3])
end
if redis.call('get', KEYS[3]) == ARGV[1] then redis.call('del', KEYS[3]) end
return 1
