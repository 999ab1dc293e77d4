-- wrk script for the tollgate load benchmark.
--
-- Sends `Authorization: Bearer <token>` with either one fixed token
-- (BENCH_TOKEN) or a pool of tokens read from BENCH_POOL, one per line.
-- With a pool, thread t of n takes lines t, t+n, t+2n, ... so no token is
-- sent twice by one wrk run unless a thread runs out of its slice; each
-- such wrap-around is counted and reported, and the driver flags the row.
--
-- Every response whose status is not BENCH_EXPECT is counted, so a proxy
-- that refuses (or lets through) everything cannot look fast. done()
-- prints one BENCH_RESULT line of JSON that the driver parses.

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local function load_pool(path, nthreads)
  local pool = {}
  local line_no = 0
  for line in io.lines(path) do
    if line_no % nthreads == tid and #line > 0 then
      pool[#pool + 1] = line
    end
    line_no = line_no + 1
  end
  return pool
end

function init(args)
  expect = tonumber(os.getenv("BENCH_EXPECT") or "200")
  bad = 0
  wraps = 0
  index = 0
  local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
  local pool_path = os.getenv("BENCH_POOL")
  local token = os.getenv("BENCH_TOKEN")
  if pool_path and #pool_path > 0 then
    local tokens = load_pool(pool_path, nthreads)
    requests = {}
    for i, t in ipairs(tokens) do
      requests[i] = wrk.format("GET", "/", { ["Authorization"] = "Bearer " .. t })
    end
  elseif token and #token > 0 then
    fixed = wrk.format("GET", "/", { ["Authorization"] = "Bearer " .. token })
  else
    fixed = wrk.format("GET", "/")
  end
end

function request()
  if fixed then
    return fixed
  end
  index = index + 1
  if index > #requests then
    index = 1
    wraps = wraps + 1
  end
  return requests[index]
end

function response(status, headers, body)
  if status ~= expect then
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local total_bad, total_wraps = 0, 0
  for _, thread in ipairs(threads) do
    total_bad = total_bad + (thread:get("bad") or 0)
    total_wraps = total_wraps + (thread:get("wraps") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, '
      .. '"bad_status": %d, "pool_wraps": %d, "socket_errors": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    total_bad, total_wraps, e.connect + e.read + e.write + e.timeout))
end
