--- Which Redis the whole-service specs run on: one redis-server (the
-- default) or, with WTT_SPEC_REDIS=cluster, a real 3-master, 3-replica
-- Redis Cluster on loopback (spec/support/redis_cluster.lua). The one
-- place that reads the switch; spec/support/faults.lua and
-- spec/support/real_stack.lua start their Redis through `start`, and a
-- case that needs the one server itself (kill it, TLS on it, a gate in
-- front of its port) begins with
--
--     if support.needs_single_redis("it restarts the redis-server") then
--         return
--     end
--
-- (in an `it`, or at the top of a `describe` whose setup needs it), which
-- under the switch marks it pending with that reason. bench/cluster_suite.sh
-- runs spec/09-e2e and spec/10-faults this way.

local rh = require "spec.support.redis"

local _M = {}

_M.VAR = "WTT_SPEC_REDIS"

local mode = os.getenv(_M.VAR) or ""
if mode ~= "" and mode ~= "single" and mode ~= "cluster" then
    error(_M.VAR .. "=" .. mode .. ": expected 'single' or 'cluster'")
end

--- True under WTT_SPEC_REDIS=cluster.
_M.cluster = mode == "cluster"

--- The key prefix of a stack that would otherwise have none: on a cluster
-- every queue key must share one slot, so it carries a hash tag
-- (docs/redis.md "Redis Cluster"); on one server nothing changes.
_M.PREFIX = _M.cluster and "{wtt}:" or ""

-- spec/support/redis.lua options a cluster honours: the rest (tls,
-- password, host, wrap, unixsocket, ...) are about one server, and a spec
-- passing them needs `needs_single_redis`.
local CLUSTER_OPTS = { appendonly = true, appendfsync = true, args = true }
-- redis-server arguments that would make six nodes share one thing.
local SHARED_ARGS = { ["--dir"] = true, ["--port"] = true,
                      ["--cluster-config-file"] = true }


--- Starts the Redis of a whole-service spec: rh.start(ropts) on one
-- server, else a cluster whose every node gets the same persistence and
-- arguments. Both answer url, client(opts) and stop().
function _M.start(ropts)
    ropts = ropts or {}
    if not _M.cluster then
        return rh.start(ropts)
    end
    for k in pairs(ropts) do
        if not CLUSTER_OPTS[k] then
            error("redis option '" .. tostring(k) .. "' is about one "
                  .. "redis-server: guard the spec with needs_single_redis "
                  .. "(" .. _M.VAR .. "=cluster)", 2)
        end
    end
    local args = {}
    if ropts.appendonly then
        args[#args + 1] = "--appendonly"
        args[#args + 1] = "yes"
        args[#args + 1] = "--appendfsync"
        args[#args + 1] = ropts.appendfsync or "everysec"
    end
    for _, a in ipairs(ropts.args or {}) do
        if SHARED_ARGS[a] then
            error("redis-server argument " .. a .. " cannot be given to "
                  .. "six nodes: guard the spec with needs_single_redis ("
                  .. _M.VAR .. "=cluster)", 2)
        end
        args[#args + 1] = a
    end
    return require("spec.support.redis_cluster").start({ args = args })
end


--- Under WTT_SPEC_REDIS=cluster, marks the calling case (or describe)
-- pending, "skipped, because <reason> (WTT_SPEC_REDIS=cluster)", and
-- returns true (inside an `it`, busted's pending ends the case there);
-- returns false on one server. `pending` is the caller's: busted gives it
-- to spec code through the function environment, not through _G.
function _M.needs_single_redis(reason)
    if not _M.cluster then
        return false
    end
    local pending = getfenv(2).pending
    if type(pending) ~= "function" then
        error("needs_single_redis: call it from spec code (no busted "
              .. "pending here)", 2)
    end
    pending("skipped, because " .. reason .. " (" .. _M.VAR .. "=cluster)")
    return true
end


return _M
