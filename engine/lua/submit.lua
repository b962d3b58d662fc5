-- submit: close a lease exactly once and count the answer if the task needs it.
-- Called after the answer row is committed in SQL.
-- KEYS: meta, pool, state, leases, seen(volunteer)
-- ARGV: prefix, task, volunteer, grace_ms
-- -> {'missing'} | {outcome, done, need}; outcome is 'counted', 'repeat'
--    (this lease was already submitted) or 'surplus' (not needed any more).
local SEEN = KEYS[5]
local task, vol, grace_ms = ARGV[2], ARGV[3], tonumber(ARGV[4])

if redis.call('EXISTS', META) == 0 then return {'missing'} end
local key = lease_key(task, vol)
local lease = redis.call('GET', key)
if lease == 'done' or lease == 'surplus' then
  local need, done = get_state(task)
  return {lease == 'done' and 'repeat' or 'surplus', done or 0, need or 0}
end
redis.call('SADD', SEEN, task)
local need, done, live = get_state(task)
if lease == 'live' then
  redis.call('ZREM', LEASES, task .. ':' .. vol)
  if need then live = math.max(live - 1, 0) end
end
if not need or done >= need then
  -- retired, or filled while this lease had expired: kept in SQL, not counted
  if need then put_state(task, need, done, live) end
  redis.call('SET', key, 'surplus', 'PX', grace_ms)
  return {'surplus', done or 0, need or 0}
end
put_state(task, need, done + 1, live)
redis.call('SET', key, 'done', 'PX', grace_ms)
return {'counted', done + 1, need}
