-- Shared helpers, prepended to every dispatch script.
-- Per task, the "state" hash holds "need:done:live": counted answers wanted,
-- counted answers stored, live leases. A task is in the pool while
-- done + live < need. Its pool score orders the hand-out (breadth first:
-- fewest answers+leases, then upload order).
local META, POOL, STATE, LEASES = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local PREFIX = ARGV[1]

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function get_state(task)
  local raw = redis.call('HGET', STATE, task)
  if not raw then return nil end
  local need, done, live = string.match(raw, '(%d+):(%d+):(%d+)')
  return tonumber(need), tonumber(done), tonumber(live)
end

local function put_state(task, need, done, live)
  redis.call('HSET', STATE, task, need .. ':' .. done .. ':' .. live)
  local cover = done + live
  if cover < need then
    redis.call('ZADD', POOL, cover * 4294967296 + tonumber(task), task)
  else
    redis.call('ZREM', POOL, task)
  end
end

local function lease_key(task, vol)
  return PREFIX .. 'lease:' .. task .. ':' .. vol
end

-- Return the tasks of leases that expired before `now` (at most `limit`).
local function reap(now, limit)
  local expired = redis.call('ZRANGEBYSCORE', LEASES, '-inf', now, 'LIMIT', 0, limit)
  for _, member in ipairs(expired) do
    local task, vol = string.match(member, '(%d+):(%d+)')
    redis.call('ZREM', LEASES, member)
    local key = lease_key(task, vol)
    if redis.call('GET', key) == 'live' then
      redis.call('SET', key, 'expired', 'KEEPTTL')
      local need, done, live = get_state(task)
      if need then put_state(task, need, done, math.max(live - 1, 0)) end
    end
  end
  return #expired
end
