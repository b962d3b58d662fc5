-- checkout: hand up to `count` of the best open tasks this volunteer has not
-- seen to them, mixing in gold at a rate that falls with their experience.
-- KEYS: meta, pool, state, leases, seen(volunteer), payload, gold, experience, blocked
-- ARGV: prefix, volunteer, scan_limit, grace_ms, count, random numbers (one per count)
-- -> {'missing'} | {'closed'} | {task_type, task, expires_ms, payload, task, ...}
local SEEN, PAYLOAD, GOLD, EXPERIENCE, BLOCKED = KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local vol, scan_limit, grace_ms = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local count = tonumber(ARGV[5])

local meta = redis.call('HMGET', META, 'active', 'lease_seconds', 'task_type',
                        'gold_start', 'gold_floor', 'gold_ramp', 'strategy')
if not meta[1] then return {'missing'} end
strategy = meta[7]  -- saves score() its own read
if meta[1] ~= '1' then return {'closed'} end
-- A blocked volunteer is simply told there is nothing left for them.
if redis.call('SISMEMBER', BLOCKED, vol) == 1 then return {meta[3]} end
local lease_ms = tonumber(meta[2]) * 1000
local now = now_ms()
reap(now, 20)

-- The first unseen member of a sorted set, looking at most scan_limit deep.
local function first_unseen(key)
  local offset, batch_size = 0, 32
  while offset < scan_limit do
    local batch = redis.call('ZRANGE', key, offset, offset + batch_size - 1)
    if #batch == 0 then return nil end
    for _, task in ipairs(batch) do
      if redis.call('SISMEMBER', SEEN, task) == 0 then return task end
    end
    offset = offset + batch_size
  end
  return nil
end

local function gold_rate(experience)
  local start, floor, ramp = tonumber(meta[4] or 0), tonumber(meta[5] or 0), tonumber(meta[6] or 1)
  if experience < ramp then return start end
  return math.max(floor, start - (start - floor) * (experience - ramp) / math.max(ramp, 1))
end

local function lease(task, is_gold)
  local expires = now + lease_ms
  redis.call('SET', lease_key(task, vol), 'live', 'PX', lease_ms + grace_ms)
  redis.call('ZADD', LEASES, expires, task .. ':' .. vol)
  redis.call('SADD', SEEN, task)
  if not is_gold then
    local need, done, live, prio = get_state(task)
    put_state(task, need, done, live + 1, prio)
  end
  return expires
end

local out = {meta[3]}
local experience = tonumber(redis.call('HGET', EXPERIENCE, vol) or '0')
local has_gold = redis.call('EXISTS', GOLD) == 1
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
  table.insert(out, task)
  table.insert(out, tostring(expires))
  table.insert(out, redis.call('HGET', PAYLOAD, task) or '{}')
end
if #out > 1 then redis.call('HSET', EXPERIENCE, vol, experience) end
return out
