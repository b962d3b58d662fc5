-- extend: the volunteer is still working; push a live lease's expiry forward
-- by the project's lease length from now.
-- KEYS: meta, pool, state, leases
-- ARGV: prefix, task, volunteer
-- -> the new expiry in ms, or 0 when the lease is not live any more
local member = ARGV[2] .. ':' .. ARGV[3]
local expires = tonumber(redis.call('ZSCORE', LEASES, member))
local now = now_ms()
if not expires or expires <= now then return 0 end  -- ended, or expired but not yet reaped
local new_expiry = now + tonumber(redis.call('HGET', META, 'lease_seconds')) * 1000
redis.call('ZADD', LEASES, new_expiry, member)
return new_expiry
