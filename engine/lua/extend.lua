-- extend: the volunteer is still working; push a live lease's expiry forward
-- by the project's lease length from now.
-- KEYS: meta, pool, state, leases
-- ARGV: prefix, task, volunteer, grace_ms
-- -> the new expiry in ms, or 0 when the lease is not live any more
local task, vol, grace_ms = ARGV[2], ARGV[3], tonumber(ARGV[4])
local key = lease_key(task, vol)
if redis.call('GET', key) ~= 'live' then return 0 end
local member = task .. ':' .. vol
local expires = tonumber(redis.call('ZSCORE', LEASES, member))
local now = now_ms()
if not expires or expires <= now then return 0 end  -- expired, not yet reaped
local new_expiry = now + tonumber(redis.call('HGET', META, 'lease_seconds')) * 1000
redis.call('ZADD', LEASES, new_expiry, member)
redis.call('PEXPIRE', key, new_expiry - now + grace_ms)
return new_expiry
