-- remeta: a project's version replaced, only while it is still the one the
-- caller read (engine.projects.refresh_versions); nothing else in the meta is
-- touched, so a publish that came in between (a pause, an edit) stands, and a
-- meta a reset dropped stays dropped (a rebuild writes it). Not prefixed with
-- common.lua: it needs none of its keys.
-- KEYS: meta; ARGV: the version read, the version to write
-- -> 1 if written, 0 if not
if redis.call('HGET', KEYS[1], 'version') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'version', ARGV[2])
return 1
