-- A turn's five usage counters and the day's expiry, in one command (fields: see bot.usage),
-- counted once: a pipeline that redis-py sends again after a lost reply finds the turn's mark.
-- KEYS[1] the day's usage hash  KEYS[2] the turn's mark (same slot: tagged with KEYS[1])
-- ARGV[1] channel  ARGV[2] user  ARGV[3] prompt  ARGV[4] completion  ARGV[5] total
-- ARGV[6] retention seconds  ARGV[7] the mark's seconds
-- Returns 1, or 0 when the turn was counted already.
if not redis.call('set', KEYS[2], '1', 'NX', 'EX', ARGV[7]) then
  return 0
end
local ch = 'ch:' .. ARGV[1] .. ':'
redis.call('hincrby', KEYS[1], ch .. 'p', ARGV[3])
redis.call('hincrby', KEYS[1], ch .. 'c', ARGV[4])
redis.call('hincrby', KEYS[1], ch .. 't', ARGV[5])
redis.call('hincrby', KEYS[1], 'u:' .. ARGV[2] .. ':t', ARGV[5])
redis.call('hincrby', KEYS[1], 'cu:' .. ARGV[1] .. ':' .. ARGV[2] .. ':t', ARGV[5])
redis.call('expire', KEYS[1], ARGV[6])
return 1
