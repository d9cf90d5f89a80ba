-- wrk script for bench/gateway_vs_nginx.sh: keep-alive POST /v1/inference.
--
-- Every request is the same small inference call with a paid-tier demo key
-- (the key from config/sluice.yaml). nginx ignores headers and body and
-- answers a constant, so the same script drives both servers.
--
-- response() counts every status other than 200 (see WRK_COUNT below for
-- the lighter alternative); done() prints one
-- machine-readable line that the shell script parses:
--
--   WRKSTAT requests=N duration_us=N rps=X p50_us=N p99_us=N non200=N
--           err_connect=N err_read=N err_write=N err_timeout=N err_status=N
--
-- followed, when there were non-200 answers, by a WRKSTATUS line with the
-- count per status and a sample of the first such body.
--
-- wrk runs init()/request()/response() in one Lua state per thread and
-- done() in the main state, so the per-thread counters are collected through
-- the thread objects kept in setup().

wrk.method = "POST"
wrk.path = "/v1/inference"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-paid-demo-0001"
wrk.body = '{"model":"sluice-sim-small","input":"hello batching world","parameters":{"max_tokens":8}}'

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  non200 = 0
  by_status = {}
  first_body = ""
end

-- WRK_COUNT=native leaves response() undefined: wrk then skips building a
-- Lua table of headers and a body string for every answer (a real cost on
-- the client core) and counts only its own "status > 399" errors, which
-- done() reports as non200.
local count_mode = os.getenv("WRK_COUNT") or "lua"

if count_mode ~= "native" then
  function response(status, headers, body)
    if status ~= 200 then
      non200 = non200 + 1
      local key = tostring(status)
      by_status[key] = (by_status[key] or 0) + 1
      if first_body == "" and body ~= nil then
        first_body = string.sub(body, 1, 200)
      end
    end
  end
end

function done(summary, latency, requests)
  local non200_total = 0
  local statuses = {}
  local sample = ""
  for _, t in ipairs(threads) do
    non200_total = non200_total + (t:get("non200") or 0)
    local bs = t:get("by_status") or {}
    for k, v in pairs(bs) do
      statuses[k] = (statuses[k] or 0) + v
    end
    local b = t:get("first_body") or ""
    if sample == "" then sample = b end
  end
  local secs = summary.duration / 1e6
  local rps = 0
  if secs > 0 then rps = summary.requests / secs end
  local e = summary.errors
  if count_mode == "native" then non200_total = e.status end
  io.write(string.format(
    "WRKSTAT requests=%d duration_us=%d rps=%.1f p50_us=%d p99_us=%d non200=%d " ..
    "err_connect=%d err_read=%d err_write=%d err_timeout=%d err_status=%d\n",
    summary.requests, summary.duration, rps,
    latency:percentile(50), latency:percentile(99), non200_total,
    e.connect, e.read, e.write, e.timeout, e.status))
  if non200_total > 0 then
    local parts = {}
    for k, v in pairs(statuses) do
      table.insert(parts, k .. "=" .. v)
    end
    table.sort(parts)
    if #parts == 0 then parts = { ">399=" .. non200_total } end
    sample = string.gsub(sample, "[\r\n]", " ")
    io.write("WRKSTATUS " .. table.concat(parts, ",") .. " first_body=" .. sample .. "\n")
  end
end
