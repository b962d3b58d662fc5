-- settle: after a result was computed, either retire the task (leave the pool
-- for good) or ask for more answers by raising its need.
-- KEYS: meta, pool, state, leases, payload
-- ARGV: prefix, task, new_need (0 = retire)
local task, new_need = ARGV[2], tonumber(ARGV[3])
local need, done, live, prio = get_state(task)
if not need then return 0 end
if new_need == 0 then
  redis.call('HDEL', STATE, task)
  redis.call('ZREM', POOL, task)
  redis.call('HDEL', KEYS[5], task)
  return 1
end
put_state(task, math.max(need, new_need), done, live, prio)
return 1
