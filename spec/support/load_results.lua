--- The load client's output files (spec/support/load_client.lua), one per
-- thread, added up: the rolling-restart spec and the soak read them so.
--
--     local counts, failures, tasks = load_results.collect(outs)

local json = require "wtt.json"
local sys = require "wtt.sys"

local _M = {}

--- counts (per "kind status", summed), failures (a missing file is one),
-- tasks (every thread's, in thread order).
function _M.collect(outs)
    local counts, failures, tasks = {}, {}, {}
    for _, path in ipairs(outs) do
        local text = sys.read_file(path)
        if not text then
            failures[#failures + 1] = "no output from a load thread: " .. path
        else
            local doc = json.decode(text)
            for k, n in pairs(doc.counts) do
                counts[k] = (counts[k] or 0) + n
            end
            for _, f in ipairs(doc.failures) do
                failures[#failures + 1] = f
            end
            for _, t in ipairs(doc.tasks) do
                tasks[#tasks + 1] = t
            end
        end
    end
    return counts, failures, tasks
end

return _M
