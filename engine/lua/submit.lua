-- submit: close a lease exactly once and count the answer if the task needs it.
-- Called after the answer row is committed in SQL.
-- KEYS: meta, pool, state, leases, seen(volunteer), gold, blocked
-- ARGV: prefix, task, volunteer, grace_ms
-- -> {'missing'} | {outcome, done, need}; outcome is 'counted', 'repeat' (this
--    lease was already submitted), 'surplus' (not needed any more, or the
--    volunteer is blocked) or 'gold'.
local SEEN, GOLD, BLOCKED = KEYS[5], KEYS[6], KEYS[7]
local task, vol, grace_ms = ARGV[2], ARGV[3], tonumber(ARGV[4])

if redis.call('EXISTS', META) == 0 then return {'missing'} end
local key = lease_key(task, vol)
local lease = redis.call('GET', key)
local need, done, live, prio = get_state(task)
if lease == 'done' or lease == 'surplus' or lease == 'gold' then
  return {lease == 'done' and 'repeat' or lease, done or 0, need or 0}
end
redis.call('SADD', SEEN, task)
if lease == 'live' then
  redis.call('ZREM', LEASES, task .. ':' .. vol)
  if need then live = math.max(live - 1, 0) end
end
if redis.call('ZSCORE', GOLD, task) then
  redis.call('SET', key, 'gold', 'PX', grace_ms)
  return {'gold', 0, 0}
end
if not need or done >= need or redis.call('SISMEMBER', BLOCKED, vol) == 1 then
  -- retired, or filled while this lease had expired: kept in SQL, not counted
  if need then put_state(task, need, done, live, prio) end
  redis.call('SET', key, 'surplus', 'PX', grace_ms)
  return {'surplus', done or 0, need or 0}
end
put_state(task, need, done + 1, live, prio)
redis.call('SET', key, 'done', 'PX', grace_ms)
return {'counted', done + 1, need}
