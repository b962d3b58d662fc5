-- recount: a volunteer's answers in the project stopped counting (a block, a
-- quarantine) or count again (unblock, clear). Each task's count of counted
-- answers moves by its delta, and the pool follows, so the project is not
-- rebuilt for it: a rebuild holds every volunteer's calls while it reads SQL.
-- Deltas commute with the submits that run between them, as a count read
-- from SQL would not (an answer counted in Redis may not be committed yet).
-- KEYS: meta, pool, state, leases
-- ARGV: prefix, then (task, delta) pairs
-- -> how many tasks had state (retired and gold tasks have none: passed over);
--    -1 when the project has no state (the rebuild that makes it reads SQL)
if redis.call('EXISTS', META) == 0 then return -1 end
local changed = 0
for i = 2, #ARGV, 2 do
  local task, delta = ARGV[i], tonumber(ARGV[i + 1])
  local need, done, live, prio = get_state(task)
  if need then
    put_state(task, need, math.max(done + delta, 0), live, prio)
    changed = changed + 1
  end
end
return changed
