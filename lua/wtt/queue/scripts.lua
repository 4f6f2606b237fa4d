--- The queue's Redis scripts (lua/queue/scripts/, one transition each) as
-- wtt.redis script values, read once when wtt.queue is first required.
-- `wtt.queue.scripts` is this module's `scripts`: name (the file name
-- without its key count: "claim", "complete_many"...) -> script.

local redis = require "wtt.redis"
local sys = require "wtt.sys"
local runtime = require "wtt.runtime"

local error = error
local ipairs = ipairs

local _M = {}

local SCRIPT_DIR = runtime.lua_dir .. "/queue/scripts"


-- Reads a script and expands `--- @include "name"` lines with
-- includes/<name>.lua.
local function read_script(name)
    local src = sys.read_file(SCRIPT_DIR .. "/" .. name .. ".lua")
    if not src then
        error("queue script " .. name .. " missing under " .. SCRIPT_DIR)
    end
    return (src:gsub('%-%-%- @include "([%w_]+)"', function(inc)
        local body = sys.read_file(SCRIPT_DIR .. "/includes/" .. inc .. ".lua")
        if not body then
            error("queue script include " .. inc .. " missing")
        end
        return body
    end))
end

local S = {}
for _, name in ipairs({ "enqueue-5", "claim-10", "heartbeat-2",
                        "progress-2", "complete-4", "complete_many-4",
                        "fail-8", "release-6",
                        "reap-8", "requeue-6", "purge-2", "stats-8",
                        "store-1" }) do
    S[name:match("^[%a_]+")] = redis.script(read_script(name))
end
_M.scripts = S

return _M
