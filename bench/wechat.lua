-- wrk script: replays pre-built WeChat safe-mode pushes (bench/wechat_gen.py), each once per
-- thread slice, so every push is a new message from a new follower.
local reqs = {}
local thread_id = 0
local threads_total = 2

function setup(thread)
  thread:set("tid", thread_id)
  thread_id = thread_id + 1
end

function init(args)
  local i = 0
  for line in io.lines(os.getenv("WECHAT_REQUESTS")) do
    if i % threads_total == (tid or 0) then
      local path, body = line:match("([^\t]*)\t(.*)")
      reqs[#reqs + 1] = wrk.format("POST", path, {["Content-Type"] = "text/xml"}, body)
    end
    i = i + 1
  end
  idx = 0
end

function request()
  idx = idx + 1
  if idx > #reqs then idx = 1 end
  return reqs[idx]
end
