-- `wtt spec [busted args]`: busted inside the embedded runtime, so specs
-- use the real C modules exactly as routes do (Kong's bin/busted, under
-- resty, does the same). Busted reads the global `arg`.
--
-- A module of this repository that fails to load is a failed run, never a
-- suite that quietly turns pending or skips itself: every `wtt` or `spec.`
-- module that is not found, or whose chunk raises while loading, is
-- recorded, also when a spec caught the error with pcall, and the run
-- exits non-zero naming it once busted is done. (An uncaught one is already
-- a busted error.) The loaders only take notes: errors and tracebacks reach
-- the caller unchanged. Optional tools a spec probes for (python3-mido, ...)
-- are not modules and may still make a test pending.

local failed = {}            -- names in order; name -> why
local loading = {}           -- name -> true while its chunk runs

local function ours(name)
    return type(name) == "string"
        and (name == "wtt" or name:find("^wtt%.") ~= nil
             or name:find("^spec%.") ~= nil)
end

local function record(name, why)
    if not failed[name] then
        failed[#failed + 1] = name
        failed[name] = why
    end
end

local loaders = package.loaders
for i = 1, #loaders do
    local find = loaders[i]
    loaders[i] = function(name)
        local chunk, extra = find(name)
        if type(chunk) ~= "function" or not ours(name) then
            return chunk, extra
        end
        -- A chunk that raises never clears its mark.
        return function(...)
            loading[name] = true
            local mod = chunk(...)
            loading[name] = nil
            return mod
        end, extra
    end
end
-- Last: every loader before it came back empty.
loaders[#loaders + 1] = function(name)
    if ours(name) then
        record(name, "not found")
    end
end

-- The `wtt serve` processes specs start inherit this: no drain period
-- after SIGTERM (docs/operations.md), which would add seconds to every
-- stop; the specs of the drain set their own.
if os.getenv("WTT_DRAIN_S") == nil then
    require("wtt.sys").setenv("WTT_DRAIN_S", "0")
end

require "busted.runner" ({ standalone = false })

-- Busted returns here only when nothing failed or errored.
for name in pairs(loading) do
    record(name, "raised while loading")
end
if #failed > 0 then
    io.stdout:flush()
    io.stderr:write("wtt spec: modules that failed to load during the run "
                    .. "(a pcall or a pending hid it):\n")
    for _, name in ipairs(failed) do
        io.stderr:write("  ", name, ": ", failed[name], "\n")
    end
    error()                  -- a failing exit, nothing more to print
end
