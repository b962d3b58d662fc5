-- settle: after a result was computed, either retire the task (leave the pool
-- for good) or ask for more answers by raising its need. A live merge only
-- raises it (two merges of one task may settle out of order); a re-merge,
-- which merged every counted answer again, sets it (exact = 1), lower too.
-- KEYS: meta, pool, state, leases, payload
-- ARGV: prefix, task, new_need (0 = retire), exact (1 = set the need as given)
local task, new_need, exact = ARGV[2], tonumber(ARGV[3]), ARGV[4] == '1'
local need, done, live, prio = get_state(task)
if not need then return 0 end
if new_need == 0 then
  redis.call('HDEL', STATE, task)
  redis.call('ZREM', POOL, task)
  redis.call('HDEL', KEYS[5], task)
  return 1
end
put_state(task, exact and new_need or math.max(need, new_need), done, live, prio)
return 1
