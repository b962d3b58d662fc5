-- tally: count one request in rate-limit windows, after the fact (the answer
-- limits of web.rate_limits, counted by the answer's own submit: no call of
-- their own). Fixed windows, each started by its first hit and ended by
-- Redis's expiry, as the limiter's own checks keep them.
-- KEYS: each window's counter; ARGV: each window's length (ms)
-- -> {used_1, ttl_ms_1, used_2, ttl_ms_2, ...}, `used` after this hit
local reply = {}
for i, key in ipairs(KEYS) do
  local used = redis.call('INCR', key)
  local ttl = redis.call('PTTL', key)
  if ttl < 0 then
    ttl = tonumber(ARGV[i])
    redis.call('PEXPIRE', key, ttl)
  end
  reply[#reply + 1] = used
  reply[#reply + 1] = ttl
end
return reply
