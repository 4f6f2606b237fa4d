-- Liveness and readiness.
--
-- /livez answers as long as the process can run Lua. /readyz runs every
-- readiness check (the dependencies later issues add register in CHECKS)
-- and answers 503 when one fails or the server is draining; `?verbose`
-- lists each check. /healthz is an alias of /livez for older probes.

local httpd = require "wtt.httpd"

local CHECKS = {
    { name = "routes", check = function()
        local gen = httpd.generation()
        if gen > 0 then
            return true, "generation " .. gen
        end
        return false, "no routes loaded"
    end },
    { name = "accepting", check = function()
        if httpd.stats().stopping then
            return false, "shutting down"
        end
        return true
    end },
}


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
