-- recount: a volunteer's answers in the project stopped counting (a block, a
-- quarantine) or count again (unblock, clear). Each task's count of counted
-- answers moves by its delta, and the pool follows, so the project is not
-- rebuilt for it: a rebuild holds every volunteer's calls while it reads SQL.
-- Deltas commute with the submits that run between them, as a count read
-- from SQL would not (an answer counted in Redis may not be committed yet).
-- An answer Redis did not count is not taken off: its submit found it surplus
-- (the block or mute came first; SQL marks it so a moment later), or has not
-- run yet (its lease is live: it will find the volunteer muted). An answer that
-- counts again has its 'surplus' note made 'done', or the next -1 would pass
-- over it.
-- KEYS: meta, pool, state, leases
-- ARGV: prefix, volunteer, then (task, delta) pairs
-- -> how many tasks moved; -1 when the project has no state (the rebuild that
--    makes it reads SQL)
if redis.call('EXISTS', META) == 0 then return -1 end
local vol = ARGV[2]
local moved = 0
for i = 3, #ARGV, 2 do
  local task, delta = ARGV[i], tonumber(ARGV[i + 1])
  local need, done, live, prio = get_state(task)
  local uncounted = delta < 0 and (redis.call('GET', lease_key(task, vol)) == 'surplus'
    or redis.call('ZSCORE', LEASES, task .. ':' .. vol))
  if need and not uncounted then
    put_state(task, need, math.max(done + delta, 0), live, prio)
    moved = moved + 1
    if delta > 0 then  -- Redis counts it now: a 'surplus' mark would hide the next -1
      local key = lease_key(task, vol)
      local ttl = redis.call('PTTL', key)
      if ttl > 0 and redis.call('GET', key) == 'surplus' then
        redis.call('SET', key, 'done', 'PX', ttl)
      end
    end
  end
end
return moved
