--- Helpers the service routes share: dependency access that answers 503,
-- the worker token check, and JSON error bodies with extra fields.

local http = require "wtt.http"
local httpd = require "wtt.core.http_server"
local conn = require "wtt.service.conn"
local config = require "wtt.service.config"

local _M = {}

_M.RETRY_AFTER = "5"

function _M.unavailable(what, err)
    http.abort(503, "unavailable", what .. " unavailable: " .. tostring(err),
               { ["Retry-After"] = _M.RETRY_AFTER })
end


--- PostgreSQL, or a 503.
function _M.db()
    local db, err = conn.pg()
    if not db then
        _M.unavailable("database", err)
    end
    return db
end


--- Runs a query; a failure is a 503 (outage) or 500 (anything else).
function _M.check(res, err, sqlstate)
    if res == nil then
        if sqlstate and (sqlstate:sub(1, 2) == "08" or sqlstate == "57P01"
                         or sqlstate == "57P03" or sqlstate == "57014") then
            _M.unavailable("database", err)
        end
        error("database: " .. tostring(err) .. " (" .. tostring(sqlstate) .. ")")
    end
    return res, err
end


--- The queue, or a 503.
function _M.queue()
    local q, err = conn.queue()
    if not q then
        _M.unavailable("queue", err)
    end
    return q
end


--- Aborts with 401 unless the request carries the worker token.
function _M.require_worker(req)
    local token = config.get().worker_token
    local auth = req:header("Authorization") or ""
    local given = auth:match("^[Bb]earer%s+(%S+)%s*$")
    if not token then
        http.abort(401, "unauthorized", "worker token not configured",
                   { ["WWW-Authenticate"] = "Bearer" })
    end
    if not given or not httpd.ct_equal(given, token) then
        http.abort(401, "unauthorized", "missing or wrong worker token",
                   { ["WWW-Authenticate"] = "Bearer" })
    end
end


--- An error answer with extra fields: status, body.
function _M.error(req, status, code, detail, extra)
    local body = { error = code, detail = detail, request_id = req.id }
    for k, v in pairs(extra or {}) do
        body[k] = v
    end
    return status, body
end

return _M
