-- wrk script for the tollgate load benchmark.
--
-- Sends `Authorization: Bearer <token>` with either one fixed token
-- (BENCH_TOKEN) or a pool of tokens read from BENCH_POOL, one per line.
-- With a pool, thread t of n takes lines t, t+n, t+2n, ... so no token is
-- sent twice by one wrk run unless a thread runs out of its slice; each
-- such wrap-around is counted and reported, and the driver flags the row
-- unless it cycles the pool on purpose (the cache-size scenario).
--
-- With BENCH_ONCE=1 a thread sends its slice once and then stops: the
-- driver fills tollgate's cache this way. wrk itself still waits for its
-- whole duration, so the driver stops it with SIGINT once tollgate's
-- metrics show every token verified. A thread asked for a request after
-- its last token repeats that token while its stop takes effect.
--
-- Loading a large pool takes seconds, and wrk starts each thread as soon as
-- its own init is done: thread 0 would run alone, outside the measured
-- time, while thread 1 loads. With BENCH_READY set, the last thread to load
-- creates that file, and each thread's first request waits for it (at most
-- 60 s), so no thread sends before all are loaded. wrk's own check of the
-- script calls thread 0's request() once from its main thread, before it
-- loads thread 1: that call is answered without waiting and without using
-- up a token.
--
-- Every response whose status is not BENCH_EXPECT is counted, so a proxy
-- that refuses (or lets through) everything cannot look fast. done()
-- prints one BENCH_RESULT line of JSON that the driver parses.

local ffi = require("ffi")
ffi.cdef("int poll(void *fds, unsigned long nfds, int timeout);")

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

-- Waits until the last thread has loaded its pool; bounded, so a missing
-- file costs at most 60 s instead of hanging the run.
local function wait_for_all_threads()
  local path = os.getenv("BENCH_READY")
  if not path or #path == 0 then
    return
  end
  for _ = 1, 1200 do
    local file = io.open(path, "r")
    if file then
      file:close()
      return
    end
    ffi.C.poll(nil, 0, 50)
  end
end

local function announce_loaded(nthreads)
  local path = os.getenv("BENCH_READY")
  if path and #path > 0 and tid == nthreads - 1 then
    local file = assert(io.open(path, "w"))
    file:close()
  end
end

function init(args)
  expect = tonumber(os.getenv("BENCH_EXPECT") or "200")
  bad = 0
  wraps = 0
  index = 0
  once = os.getenv("BENCH_ONCE") == "1"
  local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
  local pool_path = os.getenv("BENCH_POOL")
  local token = os.getenv("BENCH_TOKEN")
  if pool_path and #pool_path > 0 then
    local tokens = load_pool(pool_path, nthreads)
    requests = {}
    for i, t in ipairs(tokens) do
      requests[i] = wrk.format("GET", "/", { ["Authorization"] = "Bearer " .. t })
    end
    waiting = true
    checking = tid == 0
    announce_loaded(nthreads)
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
  if checking then
    checking = false
    return requests[1]
  end
  if waiting then
    wait_for_all_threads()
    waiting = false
  end
  index = index + 1
  if index > #requests and once then
    wrk.thread:stop()
    return requests[#requests]
  elseif index > #requests then
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
