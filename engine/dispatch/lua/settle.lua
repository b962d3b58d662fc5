-- settle: after a result was computed, either retire the task (leave the pool
-- for good) or ask for more answers by raising its need. A live merge only
-- raises it (two merges of one task may settle out of order); a re-merge,
-- which merged every counted answer again, sets it (exact = 1), lower too.
-- KEYS: meta, pool, state, leases, payload
-- ARGV: prefix, task, new_need (0 = retire), exact (1 = set the need as given)
-- -> 0 the task has no state (retired, never loaded), 1 settled, 2 settled and
--    already holding its need: answers were counted against a higher need, so
--    no submit will start its merge, and the caller merges it
local task, new_need, exact = ARGV[2], tonumber(ARGV[3]), ARGV[4] == '1'
local need, done, live, prio = get_state(task)
if not need then return 0 end
if new_need == 0 then
  redis.call('HDEL', STATE, task)
  redis.call('ZREM', POOL, task)
  redis.call('HDEL', KEYS[5], task)
  return 1
end
local set_to = exact and new_need or math.max(need, new_need)
put_state(task, set_to, done, live, prio)
if done >= set_to then return 2 end
return 1
