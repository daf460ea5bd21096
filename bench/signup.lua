-- wrk script for `python -m bench signup`: POSTs {"email": ...} to the URL wrk is given.
--
-- Every request carries an address of its own (thread number and a counter per thread,
-- after a prefix passed as `wrk ... -- PREFIX`), so each sign-up is new and owes a
-- confirmation email. Counts the answers by status and prints, last, one line:
-- "bench-result {json}" with the totals and latency percentiles in microseconds.

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

local threads = {}

function setup(thread)
   table.insert(threads, thread)
   thread:set("thread_number", #threads)
end

function init(args)
   prefix = args[1] or "load"
   sent = 0
   statuses = {}
end

function request()
   sent = sent + 1
   local email = string.format("%s-%d-%d@example.org", prefix, thread_number, sent)
   return wrk.format(nil, nil, nil, string.format('{"email": "%s"}', email))
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
