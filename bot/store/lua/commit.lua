-- Write a turn's messages and release the thread's lock, atomically: add (or replace) each
-- message by id, keep the newest max_messages, refresh the TTL, compare-and-delete the lock.
-- For a Slack turn, first check that it still owns its claims (a replica that paused past its
-- lease may have been taken over: then nothing is written), and end it: claims 'done:<token>'
-- (so a re-run of this same commit knows it ran), the journal entry gone. Message ids sort chronologically as text (Slack ts: 10 digits '.' 6
-- digits), so the order set holds them at score 0 and reads them in lexical order.
-- What happened in Slack while the turn ran wins over the turn's copies ('gone', see
-- record.lua): a message deleted meanwhile is not written (nor its answer, id .. '~a'), an
-- edited one is written as edited, and after a "forget" ('*': its time, as a Slack ts) nothing
-- from before it is written.
-- KEYS[1] messages (hash id -> JSON)  KEYS[2] message order (zset)  KEYS[3] lock
-- KEYS[4] gone (hash)  KEYS[5] the turn (hash) and KEYS[6..] its claims, when ARGV[4] > 0
-- ARGV[1] lock token  ARGV[2] max_messages  ARGV[3] ttl_seconds  ARGV[4] claim count
-- ARGV[5] claim token  ARGV[6] done_ttl_seconds  ARGV[7..] id, JSON, id, JSON, ...
-- Returns 1, or 0 when the turn no longer owns its claims (then only the lock is released).
local claims = tonumber(ARGV[4])
if claims > 0 then
  local holder = redis.call('get', KEYS[6])
  if holder ~= ARGV[5] then
    if redis.call('get', KEYS[3]) == ARGV[1] then redis.call('del', KEYS[3]) end
    -- 'done:<this token>': this very commit ran already (a retry after a lost reply).
    return holder == 'done:' .. ARGV[5] and 1 or 0
  end
  for i = 6, 5 + claims do redis.call('set', KEYS[i], 'done:' .. ARGV[5], 'EX', ARGV[6]) end
  redis.call('del', KEYS[5])
end
if #ARGV > 6 then
  local forgot = tonumber(redis.call('hget', KEYS[4], '*') or '')
  for i = 7, #ARGV, 2 do
    local id, json = ARGV[i], ARGV[i + 1]
    local base = string.match(id, '^(.-)~a$') or id
    local mark = redis.call('hget', KEYS[4], base)
    local at = tonumber(base)
    if mark ~= '' and not (forgot and at and at <= forgot) then
      if mark and base == id then json = mark end
      redis.call('hset', KEYS[1], id, json)
      redis.call('zadd', KEYS[2], 0, id)
    end
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
