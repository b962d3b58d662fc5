-- submit_checkout: an answer's submit and the next checkout in one round trip,
-- for the volunteer page's one-call cycle (an answer that asks for the next
-- task). submit.lua and checkout.lua are prepended here as the local functions
-- submit(KEYS, ARGV) and checkout(KEYS, ARGV) (Dispatcher builds the text),
-- so each runs exactly as on its own; the checkout comes after the submit has
-- closed the answer's lease, so that lease no longer counts against the cap.
-- KEYS: meta, pool, state, leases, seen(volunteer), gold, blocked, muted,
--       answered, payload
-- ARGV: prefix, task, volunteer, grace_ms, scan_limit, count, max_leases,
--       random numbers (one per count)
-- -> {submit's reply} when it was 'missing' or 'skipped' (no checkout: the
--    caller refuses that answer), else {submit's reply, checkout's reply}
local submitted = submit({KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7],
                          KEYS[8], KEYS[9]}, {ARGV[1], ARGV[2], ARGV[3], ARGV[4]})
if submitted[1] == 'missing' or submitted[1] == 'skipped' then return {submitted} end
local wanted = {ARGV[1], ARGV[3]}
for i = 5, #ARGV do wanted[#wanted + 1] = ARGV[i] end
return {submitted, checkout({KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[10],
                             KEYS[6], KEYS[7]}, wanted)}
