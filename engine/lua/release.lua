-- release: the volunteer skips; the task goes back, not to be offered to them again.
-- KEYS: meta, pool, state, leases
-- ARGV: prefix, task, volunteer, grace_ms -> 1 if a live lease was released, else 0
local task, vol, grace_ms = ARGV[2], ARGV[3], tonumber(ARGV[4])
local key = lease_key(task, vol)
if redis.call('GET', key) ~= 'live' then return 0 end
redis.call('ZREM', LEASES, task .. ':' .. vol)
redis.call('SET', key, 'released', 'PX', grace_ms)
local need, done, live, prio = get_state(task)
if need then put_state(task, need, done, math.max(live - 1, 0), prio) end
return 1
