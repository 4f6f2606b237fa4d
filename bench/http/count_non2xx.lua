-- wrk script for the reload phase of bench/http.sh: counts every response
-- whose status is not 2xx (wrk's own "Non-2xx or 3xx responses" line only
-- counts status > 399) and prints one machine-readable line from done().
--
-- Each wrk thread runs its own Lua state, so the counter lives per thread
-- and done() (main state) sums them through thread:get().

local threads = {}

function setup(thread)
    table.insert(threads, thread)
end

non2xx = 0

function response(status, headers, body)
    if status < 200 or status > 299 then
        non2xx = non2xx + 1
    end
end

function done(summary, latency, requests)
    local n = 0
    for _, t in ipairs(threads) do
        n = n + (t:get("non2xx") or 0)
    end
    io.write(string.format("BENCH_NON2XX %d\n", n))
end
