-- remeta: a project's meta written again only while its version is still the
-- one the caller read (engine.projects.refresh_versions): a publish that came
-- in between wins, and a meta a reset dropped stays dropped (a rebuild writes
-- it). Not prefixed with common.lua: it needs none of its keys.
-- KEYS: meta; ARGV: the version read, then field, value pairs
-- -> 1 if written, 0 if not
if redis.call('HGET', KEYS[1], 'version') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
return 1
