-- One person's 👍/👎 on one answer: a changed vote replaces the old one and moves its counter.
-- KEYS[1] the day's feedback hash (see bot.feedback)
-- ARGV[1] the vote's field 'v:<channel>:<answer ts>:<user>'
-- ARGV[2] the vote: 'up' or 'down'
-- ARGV[3] the counters' prefix 'n:<channel>:<deployment>:'
-- ARGV[4] retention seconds
-- Returns 0: the same vote again (nothing changed), 1: a new vote, 2: a changed vote.
local old = redis.call('hget', KEYS[1], ARGV[1])
if old == ARGV[2] then return 0 end
if old then redis.call('hincrby', KEYS[1], ARGV[3] .. old, -1) end
redis.call('hset', KEYS[1], ARGV[1], ARGV[2])
redis.call('hincrby', KEYS[1], ARGV[3] .. ARGV[2], 1)
redis.call('expire', KEYS[1], ARGV[4])
if old then return 2 end
return 1
