-- Shared helpers, prepended to every dispatch script.
-- A live lease is a member "task:volunteer" of the leases sorted set, scored
-- by its expiry; once it ends (answered, surplus, gold, skipped) a key
-- remembers how, for retried submits.
-- Fair hand-out: each volunteer's live leases are also members "task" of their
-- own sorted set "held:VOLUNTEER", scored by the same expiry, so that checkout
-- counts them (and finds the oldest) in O(log n) without scanning the leases
-- set, and an expired lease stops counting the moment it expires, reaped or
-- not. The "extends" hash counts the extends of each live lease.
-- Per task, the "state" hash holds "need:done:live:priority": counted answers
-- wanted, counted answers stored, live leases, the charity's priority. A task
-- is in the pool while done + live < need; its pool score orders the hand-out
-- by the project's strategy. Gold tasks sit in their own sorted set instead.
local META, POOL, STATE, LEASES = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local PREFIX = ARGV[1]
local TASK_SPAN = 4294967296  -- 2^32: task ids below this keep scores exact
local PRIORITY_OFFSET = 1000  -- priorities run from -999 to 999

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function get_state(task)
  local raw = redis.call('HGET', STATE, task)
  if not raw then return nil end
  local need, done, live, prio = string.match(raw, '(%d+):(%d+):(%d+):(-?%d+)')
  return tonumber(need), tonumber(done), tonumber(live), tonumber(prio)
end

-- Knuth's multiplicative hash, (id * 2654435761) mod 2^32, computed in 16-bit
-- halves so that Lua's doubles stay exact: a fixed shuffle of the task ids.
local function shuffled(id)
  local hi, lo = math.floor(id / 65536), id % 65536
  local cross = (hi * 31153 + lo * 40503) % 65536
  return (lo * 31153 + cross * 65536) % TASK_SPAN
end

local strategy = nil
-- Lower scores go first: priority, then the strategy's order, then upload order.
local function score(task, cover, prio)
  strategy = strategy or redis.call('HGET', META, 'strategy') or 'breadth'
  local id = tonumber(task)
  local band = (PRIORITY_OFFSET - prio) * 256
  if strategy == 'fifo' then
    return band * TASK_SPAN + id
  elseif strategy == 'depth' then
    return (band + 255 - math.min(cover, 255)) * TASK_SPAN + id
  elseif strategy == 'random' then
    return band * TASK_SPAN + shuffled(id)
  end
  return (band + math.min(cover, 255)) * TASK_SPAN + id  -- breadth
end

local function put_state(task, need, done, live, prio)
  redis.call('HSET', STATE, task, need .. ':' .. done .. ':' .. live .. ':' .. prio)
  local cover = done + live
  if cover < need then
    redis.call('ZADD', POOL, score(task, cover, prio), task)
  else
    redis.call('ZREM', POOL, task)
  end
end

local function lease_key(task, vol)
  return PREFIX .. 'lease:' .. task .. ':' .. vol
end

-- Keys under the project's prefix (same cluster slot), named here because
-- reap meets other volunteers' leases.
local EXTENDS = PREFIX .. 'extends'
local function held_key(vol)
  return PREFIX .. 'held:' .. vol
end

-- A live lease ended (answered, skipped, expired): it stops counting toward
-- the volunteer's cap and its extends are forgotten.
local function forget_lease(task, vol)
  redis.call('ZREM', held_key(vol), task)
  redis.call('HDEL', EXTENDS, task .. ':' .. vol)
end

-- Close leases that expired before `now` (at most `limit`); their tasks go back.
local function reap(now, limit)
  local expired = redis.call('ZRANGEBYSCORE', LEASES, '-inf', now, 'LIMIT', 0, limit)
  for _, member in ipairs(expired) do
    redis.call('ZREM', LEASES, member)
    local task, vol = string.match(member, '(%d+):(%d+)')
    forget_lease(task, vol)
    local need, done, live, prio = get_state(task)
    if need then put_state(task, need, done, math.max(live - 1, 0), prio) end
  end
  return #expired
end
