--- Built-in admin routes: reload, rollback, the reload record.
--
-- They sit outside routes/ so that a broken route file can never take away
-- the means to fix it. Every one needs WTT_ADMIN_TOKEN, sent as
-- `Authorization: Bearer <token>` and compared in constant time.

local http = require "wtt.http"
local httpd = require "wtt.core.http_server"
local log = require "wtt.log"

local _M = {}

local ERR_NO_TOKEN = "admin routes are disabled: WTT_ADMIN_TOKEN is not set"
local ERR_AUTH = "missing or wrong admin token"


--- Aborts with 403/401 unless the request carries the admin token.
function _M.authorize(req)
    local token = os.getenv("WTT_ADMIN_TOKEN")
    if not token or token == "" then
        http.abort(403, "forbidden", ERR_NO_TOKEN)
    end
    local given = req:header("Authorization") or ""
    given = given:match("^[Bb]earer%s+(.+)$") or ""
    if not httpd.ct_equal(given, token) then
        log.warn("admin.denied", { path = req.path })
        http.abort(401, "unauthorized", ERR_AUTH,
                   { ["WWW-Authenticate"] = "Bearer" })
    end
end


local authorize = _M.authorize


local function reload(req)
    authorize(req)
    local id, err = httpd.reload("admin")
    if not id then
        return 422, { error = "reload_failed", detail = err,
                      record = httpd.record(), request_id = req.id }
    end
    return 200, { generation = id, record = httpd.record() }
end


local function record(req)
    authorize(req)
    return 200, httpd.record()
end


local function rollback(req)
    authorize(req)
    local id, err = httpd.rollback()
    if not id then
        http.abort(409, "conflict", err)
    end
    return 200, { generation = id, record = httpd.record() }
end


local function version(req)
    authorize(req)
    local rec = httpd.record()
    local active = rec.active or {}
    return 200, {
        version = require("wtt.runtime").version,
        generation = active.id,
        loaded_at = active.loaded_at,
        sha256 = active.sha256,
        files = active.files,
    }
end


-- `auth`: the token is checked before any body is read (lua/wtt/server.lua).
_M.routes = {
    { "POST", "/_admin/reload", reload, { body = "raw", auth = authorize } },
    { "GET", "/_admin/reload", record, { auth = authorize } },
    { "POST", "/_admin/rollback", rollback, { body = "raw", auth = authorize } },
    { "GET", "/_admin/version", version, { auth = authorize } },
}


return _M
