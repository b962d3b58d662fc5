-- mark: a rebuild's stored answers and hand-outs, thousands per call (one
-- command each cost the rebuild most of its time in the client).
-- Not prefixed with common.lua: it needs none of its keys.
-- KEYS: meta (only to name the project's slot; not touched)
-- ARGV: prefix, grace_ms, then (task, volunteer, mark) triples; mark is 'done'
--       or 'surplus' for a stored answer (its lease ended so, and a submit
--       retried after the rebuild is recognised), 'skipped' for a hand-out
--       given back unanswered (an answer sent with it is refused), '-' for
--       another hand-out.
-- Each pair marks the task seen by the volunteer: never handed to them again.
local prefix, grace = ARGV[1], ARGV[2]
for i = 3, #ARGV, 3 do
  local task, vol, mark = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  redis.call('SADD', prefix .. 'seen:' .. vol, task)
  if mark ~= '-' then
    redis.call('SET', prefix .. 'lease:' .. task .. ':' .. vol, mark, 'PX', grace)
  end
end
return (#ARGV - 2) / 3
