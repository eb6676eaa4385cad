-- End a turn that saved nothing (an error, the quota, followups off): if this turn still owns
-- its claims, keep them as 'done:<token>' past Slack's retries and drop the turn from the journal.
-- KEYS[1] the turn (hash)   KEYS[2..] its claims (message claim first)
-- ARGV[1] token  ARGV[2] done_ttl_seconds
-- Returns 1 when settled (now, or by an earlier run of this call), 0 when the turn was not (or
-- no longer) this one's.
local holder = redis.call('get', KEYS[2])
if holder ~= ARGV[1] then return holder == 'done:' .. ARGV[1] and 1 or 0 end
for i = 2, #KEYS do redis.call('set', KEYS[i], 'done:' .. ARGV[1], 'EX', ARGV[2]) end
redis.call('del', KEYS[1])
return 1
