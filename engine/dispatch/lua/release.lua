-- release: the volunteer skips; the task goes back, not to be offered to them again,
-- and the lease is marked skipped so that an answer sent with it is refused.
-- KEYS: meta, pool, state, leases
-- ARGV: prefix, task, volunteer, grace_ms -> 1 if a live lease was released, else 0
local task, vol, grace_ms = ARGV[2], ARGV[3], tonumber(ARGV[4])
if redis.call('ZREM', LEASES, task .. ':' .. vol) == 0 then
  -- Not live: expired (the task went back already) or ended by an answer. An
  -- expired lease is still marked, since an answer to it would count as late;
  -- an answered one keeps its outcome (NX) for retried submits.
  redis.call('SET', lease_key(task, vol), 'skipped', 'PX', grace_ms, 'NX')
  return 0
end
forget_lease(task, vol)
redis.call('SET', lease_key(task, vol), 'skipped', 'PX', grace_ms)
local need, done, live, prio = get_state(task)
if need then put_state(task, need, done, math.max(live - 1, 0), prio) end
return 1
