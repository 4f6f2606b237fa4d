-- Liveness and readiness.
--
-- /livez answers as long as the process can run Lua. /readyz runs every
-- readiness check and answers 503 when one fails or the server is draining;
-- `?verbose` lists each check. /healthz is an alias of /livez for older
-- probes. The service's dependencies are checked when configured:
-- PostgreSQL (`SELECT 1`) when DATABASE_URL is set, Redis (`PING`) when
-- REDIS_URL is set.

local httpd = require "wtt.core.http_server"
local conn = require "wtt.service.conn"
local redis = require "wtt.redis"
local config = require "wtt.service.config"

local CHECKS = {
    { name = "routes", check = function()
        local gen = httpd.generation()
        if gen > 0 then
            return true, "generation " .. gen
        end
        return false, "no routes loaded"
    end },
    { name = "accepting", check = function()
        -- From SIGTERM on: a load balancer stops sending new requests
        -- while this process still serves them (docs/operations.md).
        if httpd.stats().draining then
            return false, "draining: shutting down"
        end
        return true
    end },
}

if config.get().database_url then
    CHECKS[#CHECKS + 1] = { name = "database", check = function()
        local db, err = conn.pg()
        if not db then
            return false, err
        end
        local rows, qerr = db:read("SELECT 1 AS ok")
        if not rows then
            return false, qerr
        end
        return true
    end }
end

if config.get().redis_configured then
    CHECKS[#CHECKS + 1] = { name = "redis", check = function()
        local r, err = conn.redis()
        if not r then
            return false, err
        end
        local pong, perr = r:call("PING")
        if pong ~= "PONG" then
            -- name a URL/server mismatch (TLS on a plain port, an
            -- untrusted certificate) rather than only the socket error
            return false, (redis.explain(perr or tostring(pong),
                config.get().redis_url:find("^rediss://") ~= nil))
        end
        return true
    end }
end


local function livez()
    return 200, { status = "ok" }
end


local function readyz(req)
    local results, ready = {}, true
    for _, c in ipairs(CHECKS) do
        local ok, ret, detail = pcall(c.check)
        local passed = ok and ret == true
        ready = ready and passed
        results[#results + 1] = {
            name = c.name,
            ok = passed,
            detail = ok and detail or tostring(ret),
        }
    end
    local body = { status = ready and "ok" or "unavailable" }
    if req.query.verbose then
        body.checks = results
    end
    return ready and 200 or 503, body
end


return {
    { "GET", "/livez", livez },
    { "GET", "/healthz", livez },
    { "GET", "/readyz", readyz },
}
