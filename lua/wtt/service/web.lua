--- Helpers the service routes share (routes/transcribe.lua, worker.lua,
-- metrics.lua): dependency access that answers 503, storage that is out of
-- space answering 507, the worker token check, multipart parts, and JSON
-- error bodies with extra fields.

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


-- What a file system or PostgreSQL says when it is out of space (ENOSPC,
-- EDQUOT; PostgreSQL quotes the same strerror text in "could not extend
-- file ..." and "could not write ...").
local FULL_TEXTS = { "no space left on device", "disk quota exceeded" }


--- True when `err` (an error message or a SQLSTATE) says the storage is
-- full: a retry can succeed once space returns, unlike a 500.
function _M.storage_full(err, sqlstate)
    if sqlstate == "53100" then          -- disk_full
        return true
    end
    if type(err) ~= "string" then
        return false
    end
    if err:find("(53100)", 1, true) then  -- the pg media store's errors
        return true
    end
    err = err:lower()          -- wtt's own strerror is lower case
    for _, text in ipairs(FULL_TEXTS) do
        if err:find(text, 1, true) then
            return true
        end
    end
    return false
end


--- Aborts with 507 Insufficient Storage: `what` could not be written for
-- lack of space (docs/reliability.md H10). Nothing of the request stays
-- behind, so the client may retry the same request later.
function _M.insufficient(what, err)
    http.abort(507, "insufficient_storage", what .. " is out of space: "
               .. tostring(err), { ["Retry-After"] = _M.RETRY_AFTER })
end


-- A dependency from wtt.service.conn (`dep | nil, err`), or a 503 naming
-- `what`.
local function or_503(what, dep, err)
    if not dep then
        _M.unavailable(what, err)
    end
    return dep
end


--- PostgreSQL, or a 503.
function _M.db()
    return or_503("database", conn.pg())
end


--- Runs a query; a failure is a 503 (outage), 507 (the database is out
-- of disk) or 500 (anything else).
function _M.check(res, err, sqlstate)
    if res == nil then
        if _M.storage_full(err, sqlstate) then
            _M.insufficient("database", err)
        end
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
    return or_503("queue", conn.queue())
end


--- Aborts with 401 unless the request carries the worker token. Worker
-- routes give it as their `auth` option, so it runs before any body is
-- read (lua/wtt/server.lua).
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


--- The one uploaded file of multipart field `field`, or nil; aborts with
-- 400 when the field has more than one part.
function _M.one_file(req, field)
    local found
    for _, f in ipairs(req.files) do
        if f.field == field then
            if found then
                http.abort(400, "bad_request",
                           "more than one '" .. field .. "' part")
            end
            found = f
        end
    end
    return found
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
