-- submit: close a lease exactly once and count the answer if the task needs it.
-- Called after the answer row is committed in SQL.
-- KEYS: meta, pool, state, leases, seen(volunteer), gold, blocked, muted, answered
-- ARGV: prefix, task, volunteer, grace_ms
-- -> {'missing'} | {outcome, done, need, answered}; outcome is 'counted', 'repeat'
--    (this lease was already submitted), 'surplus' (not needed any more, or the
--    volunteer is blocked or quarantined: muted, gold included) or 'gold';
--    'skipped' (the volunteer gave the task back: nothing is counted, and the
--    caller withdraws the answer row it stored);
--    answered counts the volunteer's answers here since the last rebuild (0 on
--    a repeat), so the caller can check them every few answers.
local SEEN, GOLD, BLOCKED, MUTED, ANSWERED = KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local task, vol, grace_ms = ARGV[2], ARGV[3], tonumber(ARGV[4])

if redis.call('EXISTS', META) == 0 then return {'missing'} end
local key = lease_key(task, vol)
-- A live lease (checkout already marked the task seen) ends here; otherwise
-- this is a retry of a submit that already ended it, or a late answer.
local was_live = redis.call('ZREM', LEASES, task .. ':' .. vol) == 1
if was_live then
  forget_lease(task, vol)
else
  local ended = redis.call('GET', key)
  if ended == 'skipped' then return {'skipped', 0, 0} end
  if ended == 'done' or ended == 'surplus' or ended == 'gold' then
    local need, done = get_state(task)
    return {ended == 'done' and 'repeat' or ended, done or 0, need or 0}
  end
  redis.call('SADD', SEEN, task)
end
local answered = redis.call('HINCRBY', ANSWERED, vol, 1)
-- a blocked volunteer is muted too: their lease may have outlived the block (a
-- block ends a quarantine, so they are not in MUTED), gold included
local muted = redis.call('SISMEMBER', MUTED, vol) == 1
  or redis.call('SISMEMBER', BLOCKED, vol) == 1
local need, done, live, prio = get_state(task)
local cover = need and done + live
if was_live and need then live = math.max(live - 1, 0) end
-- Gold tasks have no state entry: only a stateless task can be gold.
if not need and not muted and redis.call('ZSCORE', GOLD, task) then
  redis.call('SET', key, 'gold', 'PX', grace_ms)
  return {'gold', 0, 0, answered}
end
if not need or done >= need or muted then
  -- retired, or filled while this lease had expired: kept in SQL, not counted
  if need then put_state(task, need, done, live, prio) end
  redis.call('SET', key, 'surplus', 'PX', grace_ms)
  return {'surplus', done or 0, need or 0, answered}
end
if done + 1 + live == cover then
  -- a live lease became an answer: the cover, hence the pool entry, is unchanged
  redis.call('HSET', STATE, task, need .. ':' .. (done + 1) .. ':' .. live .. ':' .. prio)
else
  put_state(task, need, done + 1, live, prio)
end
redis.call('SET', key, 'done', 'PX', grace_ms)
return {'counted', done + 1, need, answered}
