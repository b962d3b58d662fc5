-- release: the volunteer skips; the task goes back, not to be offered to them again.
-- KEYS: meta, pool, state, leases
-- ARGV: prefix, task, volunteer -> 1 if a live lease was released, else 0
local task = ARGV[2]
if redis.call('ZREM', LEASES, task .. ':' .. ARGV[3]) == 0 then return 0 end
local need, done, live, prio = get_state(task)
if need then put_state(task, need, done, math.max(live - 1, 0), prio) end
return 1
