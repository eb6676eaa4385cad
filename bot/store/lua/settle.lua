-- End a turn that saved nothing (an error, the quota, followups off): if this turn still owns
-- its claims, keep them as 'done' past Slack's retries and drop the turn from the journal.
-- KEYS[1] the turn (hash)   KEYS[2..] its claims (message claim first)
-- ARGV[1] token  ARGV[2] done_ttl_seconds
-- Returns 1 when settled, 0 when the turn was not (or no longer) this one's.
if redis.call('get', KEYS[2]) ~= ARGV[1] then return 0 end
for i = 2, #KEYS do redis.call('set', KEYS[i], 'done', 'EX', ARGV[2]) end
redis.call('del', KEYS[1])
return 1
