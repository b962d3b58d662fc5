-- checkout: hand the best open task this volunteer has not seen to them.
-- KEYS: meta, pool, state, leases, seen(volunteer), payload
-- ARGV: prefix, volunteer, scan_limit, grace_ms
-- -> {'missing'} | {'closed'} | {'empty'} | {'ok', task, expires_ms, payload, task_type}
local SEEN, PAYLOAD = KEYS[5], KEYS[6]
local vol, scan_limit, grace_ms = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])

local meta = redis.call('HMGET', META, 'active', 'lease_seconds', 'task_type')
if not meta[1] then return {'missing'} end
if meta[1] ~= '1' then return {'closed'} end
local lease_ms = tonumber(meta[2]) * 1000
local now = now_ms()
reap(now, 20)

local offset, batch_size = 0, 32
while offset < scan_limit do
  local batch = redis.call('ZRANGE', POOL, offset, offset + batch_size - 1)
  if #batch == 0 then break end
  for _, task in ipairs(batch) do
    if redis.call('SISMEMBER', SEEN, task) == 0 then
      local need, done, live = get_state(task)
      local expires = now + lease_ms
      redis.call('SET', lease_key(task, vol), 'live', 'PX', lease_ms + grace_ms)
      redis.call('ZADD', LEASES, expires, task .. ':' .. vol)
      redis.call('SADD', SEEN, task)
      put_state(task, need, done, live + 1)
      return {'ok', task, tostring(expires), redis.call('HGET', PAYLOAD, task) or '{}', meta[3]}
    end
  end
  offset = offset + batch_size
end
return {'empty'}
