-- wrk script: web-form POSTs, each from a distinct phone number (so neither the quota nor the
-- repeat detection turns them away) with distinct content. Numbers are random per run, so a
-- second round does not repeat the first round's submitters.
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
  local body = string.format(
    '{"content":"第%d号反映：小区门口路灯损坏，夜间出行不便，请尽快维修","phone":"13%d%09d","category":"complaint"}',
    n, (tid or 0) % 10, n % 1000000000)
  return wrk.format("POST", "/v1/web/submissions", {["Content-Type"] = "application/json"}, body)
end
