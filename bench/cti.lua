-- wrk script: generic CTI call.started events, each a new call from a new number (the ringing
-- path: suspension look-up and quota in memory, dedupe record on disk).
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
    '{"event":"call.started","call_id":"bench-%d-%d","from":"13%d%09d","to":"12345"}',
    tid or 0, n, (tid or 0) % 10, n % 1000000000)
  return wrk.format("POST", "/v1/cti/bench", {["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer bench-token"}, body)
end
