-- wrk script for `python -m bench clicks`: GETs paths read from a file, one a line,
-- in turn, so that the load spreads over many copies' links (`wrk ... -- PATHS_FILE`).
--
-- Sends a browser's User-Agent (wrk sends none, which the rules count as a machine's),
-- counts the answers by status and prints, last, one line: "bench-result {json}" with
-- the totals and latency percentiles in microseconds.

wrk.headers["User-Agent"] =
   "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"

local threads = {}

function setup(thread)
   table.insert(threads, thread)
   thread:set("thread_number", #threads)
end

function init(args)
   paths = {}
   for line in io.lines(args[1]) do
      table.insert(paths, line)
   end
   -- Each thread starts at its own place in the list.
   sent = (thread_number - 1) * 7919
   statuses = {}
end

function request()
   sent = sent + 1
   return wrk.format("GET", paths[(sent % #paths) + 1])
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
   local totals = {}
   for _, thread in ipairs(threads) do
      for status, count in pairs(thread:get("statuses")) do
         totals[status] = (totals[status] or 0) + count
      end
   end
   local by_status = {}
   for status, count in pairs(totals) do
      table.insert(by_status, string.format('"%d": %d', status, count))
   end
   local errors = summary.errors
   io.write(string.format(
      'bench-result {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, '
         .. '"max_us": %d, "socket_errors": %d, "statuses": {%s}}\n',
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
      latency.max, errors.connect + errors.read + errors.write + errors.timeout,
      table.concat(by_status, ", ")
   ))
end
