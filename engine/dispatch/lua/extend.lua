-- extend: the volunteer is still working; push a live lease's expiry forward
-- by the project's lease length from now, at most max_extends times per lease.
-- KEYS: meta, pool, state, leases
-- ARGV: prefix, task, volunteer, max_extends
-- -> the new expiry in ms, 0 when the lease is not live any more, -1 when it
--    was extended max_extends times already
local task, vol, max_extends = ARGV[2], ARGV[3], tonumber(ARGV[4])
local member = task .. ':' .. vol
local expires = tonumber(redis.call('ZSCORE', LEASES, member))
local now = now_ms()
if not expires or expires <= now then return 0 end  -- ended, or expired but not yet reaped
if tonumber(redis.call('HGET', EXTENDS, member) or 0) >= max_extends then return -1 end
redis.call('HINCRBY', EXTENDS, member, 1)
local new_expiry = now + tonumber(redis.call('HGET', META, 'lease_seconds')) * 1000
redis.call('ZADD', LEASES, new_expiry, member)
redis.call('ZADD', held_key(vol), 'XX', new_expiry, task)
return new_expiry
