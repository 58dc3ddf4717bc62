-- wrk script: web-form POSTs, each from a distinct phone number (so neither the quota nor the
-- repeat detection turns them away) with distinct content. Numbers are random per run, so a
-- second round does not repeat the first round's submitters.
--
-- The numbers are scattered: a hotline's callers arrive in no order, so every index keyed by
-- caller takes its inserts at random places (one page each), and a benchmark whose callers
-- count up only ever appends to it. PHONES=sequential numbers them in order, as this script
-- did before 2026-12-06, to compare with the figures of that time.
local sequential = os.getenv("PHONES") == "sequential"
local counter = 0
local thread_id = 0

function setup(thread)
  thread:set("tid", thread_id)
  thread_id = thread_id + 1
end

function init(args)
  math.randomseed(os.time() * 100 + (tid or 0))
  base = math.random(0, 89999) * 10000
end

function request()
  counter = counter + 1
  local n = base + counter
  local digits = n % 1000000000
  if not sequential then
    -- n * 73939133 mod 10^9, a bijection (the multiplier is odd and not a multiple of 5),
    -- computed in two parts so that no product passes 2^53 (LuaJIT's numbers are doubles).
    digits = ((n * 7393 % 1000000000) * 10000 + n * 9133) % 1000000000
  end
  local body = string.format(
    '{"content":"第%d号反映：小区门口路灯损坏，夜间出行不便，请尽快维修","phone":"13%d%09d","category":"complaint"}',
    n, (tid or 0) % 10, digits)
  return wrk.format("POST", "/v1/web/submissions", {["Content-Type"] = "application/json"}, body)
end
