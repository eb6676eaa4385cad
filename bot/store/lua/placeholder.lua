-- Keep the ts of a turn's placeholder (or of its streamed answer's message) with the journaled
-- turn, for a takeover; nothing when the turn has ended meanwhile (its hash is gone, and an
-- HSET would bring it back as a key with no expiry).
-- KEYS[1] the turn (hash)   ARGV[1] the message's ts
-- Returns 1 when kept, 0 when the turn had ended.
if redis.call('exists', KEYS[1]) == 0 then return 0 end
redis.call('hset', KEYS[1], 'placeholder', ARGV[1])
return 1
