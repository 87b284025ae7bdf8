-- wrk script for bench/run.py: checks every response's status and body
-- against BENCH_EXPECT (a file), optionally sends BENCH_BODY (a file) as a POST
-- body and `Connection: close` when BENCH_CLOSE=1. Prints the counts in done().
local function slurp(path)
  if not path or path == "" then return nil end
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local expected = slurp(os.getenv("BENCH_EXPECT"))
local body = slurp(os.getenv("BENCH_BODY"))
if body then
  wrk.method = "POST"
  wrk.body = body
  wrk.headers["Content-Type"] = "application/octet-stream"
end
if os.getenv("BENCH_CLOSE") == "1" then
  wrk.headers["Connection"] = "close"
end

checked = 0
bad = 0

-- Without BENCH_EXPECT no response() is defined, so wrk skips the callback
-- and its cost (it still counts non-2xx answers and socket errors).
if expected then
  function response(status, headers, got)
    checked = checked + 1
    if status ~= 200 or got ~= expected then
      bad = bad + 1
    end
  end
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function done(summary, latency, requests)
  local c, b = 0, 0
  for _, t in ipairs(threads) do
    c = c + t:get("checked")
    b = b + t:get("bad")
  end
  io.write(string.format("CHECKED %d BAD %d\n", c, b))
end
