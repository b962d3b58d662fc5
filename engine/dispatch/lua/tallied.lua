-- tallied: a submit (submit.lua or submit_checkout.lua, prepended as the local
-- function `call`) and the answer's count in its volunteer's rate-limit windows
-- (tally.lua, prepended as `tally`), in one round trip. Only a fresh submit
-- is counted (its reply has the volunteer's answer count, a fourth value): not
-- one without state (the caller rebuilds it and calls again), nor a repeat of
-- a submit that went through (a retry, or redis-py running the script again
-- after a lost reply), nor an answer to a skipped lease (the caller counts its
-- refusal).
-- KEYS: the call's keys, then the windows' counters
-- ARGV: the call's arguments, then each window's length (ms), then how many
--       windows there are
-- -> {call's reply, tally's reply} for a fresh submit, else {call's reply}
local windows = tonumber(ARGV[#ARGV])
local call_keys, call_args, window_keys, window_args = {}, {}, {}, {}
for i = 1, #KEYS do
  local into = i <= #KEYS - windows and call_keys or window_keys
  into[#into + 1] = KEYS[i]
end
for i = 1, #ARGV - 1 do
  local into = i <= #ARGV - 1 - windows and call_args or window_args
  into[#into + 1] = ARGV[i]
end
local reply = call(call_keys, call_args)
local submitted = type(reply[1]) == 'table' and reply[1] or reply  -- submit_checkout's
if #submitted < 4 then return {reply} end
return {reply, tally(window_keys, window_args)}
