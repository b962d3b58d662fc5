-- setmeta: a project's meta written, field by field. With ARGV[1] = '1' only
-- into a meta that exists: the meta's presence says the project's state in
-- Redis is complete (rebuild writes it last), so a publish after Redis lost
-- the project (wiped, failed over) leaves it absent, and the next hot-path
-- call rebuilds from SQL instead of finding a meta over an empty pool. Not
-- prefixed with common.lua: it needs none of its keys.
-- KEYS: meta; ARGV: '1' or '0', then field, value, field, value ...
-- -> 1 if written, 0 if not
if ARGV[1] == '1' and redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
return 1
