-- checkout: hand up to `count` of the best open tasks this volunteer has not
-- seen to them, mixing in gold at a rate that falls with their experience.
-- A volunteer holds at most max_leases live leases at once (0: no cap).
-- KEYS: meta, pool, state, leases, seen(volunteer), payload, gold, blocked
-- ARGV: prefix, volunteer, scan_limit, count, max_leases, random numbers (one per count)
-- -> {'missing'} | {'closed'} | {'hidden'} (a draft)
--    | {'full', seconds until their oldest lease expires}
--    | {task_type, task, expires_ms, payload, task, ...}
local SEEN, PAYLOAD, GOLD, BLOCKED = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local vol, scan_limit, count = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local max_leases = tonumber(ARGV[5])
local HELD = held_key(vol)

local meta = redis.call('HMGET', META, 'active', 'lease_seconds', 'task_type',
                        'gold_start', 'gold_floor', 'gold_ramp', 'strategy')
if not meta[1] then return {'missing'} end
strategy = meta[7]  -- saves score() its own read
if meta[1] ~= '1' then
  if meta[1] == 'draft' then return {'hidden'} end
  return {'closed'}
end
-- A blocked volunteer is simply told there is nothing left for them.
if redis.call('SISMEMBER', BLOCKED, vol) == 1 then return {meta[3]} end
local lease_ms = tonumber(meta[2]) * 1000
local now = now_ms()
reap(now, 20)

-- The cap counts the volunteer's leases that have not expired yet.
if max_leases > 0 then
  redis.call('ZREMRANGEBYSCORE', HELD, '-inf', now)
  local live = redis.call('ZCARD', HELD)
  if live >= max_leases then
    local oldest = redis.call('ZRANGE', HELD, 0, 0, 'WITHSCORES')
    return {'full', tostring(math.max(1, math.ceil((tonumber(oldest[2]) - now) / 1000)))}
  end
  count = math.min(count, max_leases - live)
end

-- The first unseen member of a sorted set, looking at most scan_limit deep.
-- The first batch is small (the best task is usually unseen) and each next one
-- is bigger, so a volunteer deep into the pool still costs few calls: one
-- SMISMEMBER a batch, not a SISMEMBER a task (a prolific volunteer under the
-- depth strategy has seen hundreds of the open tasks at the top of the pool).
local function first_unseen(key)
  local offset, batch_size = 0, 4
  while offset < scan_limit do
    local batch = redis.call('ZRANGE', key, offset,
                             math.min(offset + batch_size, scan_limit) - 1)
    if #batch == 0 then return nil end
    local seen = redis.call('SMISMEMBER', SEEN, unpack(batch))
    for i, task in ipairs(batch) do
      if seen[i] == 0 then return task end
    end
    if #batch < batch_size then return nil end
    offset = offset + batch_size
    batch_size = math.min(batch_size * 4, 256)
  end
  return nil
end

local function gold_rate(experience)
  local start, floor, ramp = tonumber(meta[4] or 0), tonumber(meta[5] or 0), tonumber(meta[6] or 1)
  if experience < ramp then return start end
  return math.max(floor, start - (start - floor) * (experience - ramp) / math.max(ramp, 1))
end

-- A live lease is its member of the leases set: no key of its own until it ends.
local function lease(task, is_gold)
  local expires = now + lease_ms
  redis.call('ZADD', LEASES, expires, task .. ':' .. vol)
  redis.call('ZADD', HELD, expires, task)
  redis.call('SADD', SEEN, task)
  if not is_gold then
    local need, done, live, prio = get_state(task)
    put_state(task, need, done, live + 1, prio)
  end
  return expires
end

local out = {meta[3]}
local has_gold = redis.call('EXISTS', GOLD) == 1
-- Experience (tasks handed out so far: the seen set, which a rebuild restores
-- from SQL's handouts of open tasks) only matters for the gold rate.
local experience = has_gold and redis.call('SCARD', SEEN) or 0
for n = 1, count do
  local task, is_gold = nil, false
  if has_gold and tonumber(ARGV[5 + n]) < gold_rate(experience) then
    task = first_unseen(GOLD)
    is_gold = task ~= nil
  end
  task = task or first_unseen(POOL)
  if not task then break end
  local expires = lease(task, is_gold)
  experience = experience + 1
  out[#out + 1] = task
  out[#out + 1] = tostring(expires)
  out[#out + 1] = redis.call('HGET', PAYLOAD, task) or '{}'
end
return out
