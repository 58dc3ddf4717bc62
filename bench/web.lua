-- wrk script: web-form POSTs, each from a distinct phone number (so neither the quota nor the
-- repeat detection turns them away) with distinct content.
local counter = 0
local thread_id = 0
local threads = {}

function setup(thread)
  thread:set("tid", thread_id)
  thread_id = thread_id + 1
end

function request()
  counter = counter + 1
  local n = (tid or 0) * 10000000 + counter
  local body = string.format(
    '{"content":"第%d号反映：小区门口路灯损坏，夜间出行不便，请尽快维修","phone":"139%08d","category":"complaint"}',
    n, n % 100000000)
  return wrk.format("POST", "/v1/web/submissions", {["Content-Type"] = "application/json"}, body)
end
