--- The dispatcher each serving thread runs (called from core/wtt_http.c).
--
-- `new(files, generation)` builds the app of one generation and returns the
-- dispatch function. For every request C calls
--   dispatch(ctx, method, path, id, has_body, content_type)
-- which answers either
--   status, body, headers, default_content_type        (respond now), or
--   0, continuation, mode, max_body, max_file          (read the body first)
-- and C calls `continuation()` for the same four response values once the
-- body is in. Handler errors never escape: `http.abort` errors become their
-- status, anything else a logged 500.

local app_build = require("wtt.app").build
local http = require "wtt.http"
local request_new = require("wtt.request").new
local log = require "wtt.log"
local json = require "wtt.json"
local httpd = require "wtt.core.http_server"

local type = type
local xpcall = xpcall
local getmetatable = getmetatable
local traceback = debug.traceback
local error_body = http.error_body
local json_encode = json.encode
local str_find = string.find
local str_lower = string.lower

local _M = {}

local JSON = "application/json"
local TEXT = "text/plain; charset=utf-8"

-- Errors from http.abort (tables) keep their shape; others get a traceback.
local function on_error(err)
    if type(err) == "table" then
        return err
    end
    return traceback(tostring(err), 2)
end


local function error_response(status, code, detail, id, headers)
    return status, error_body(code, detail, id), headers, JSON
end


local function failed(err, req)
    if http.is_abort(err) then
        if err.status >= 500 then
            log.error("http.abort", { status = err.status,
                                      error = err.error, detail = err.detail })
        end
        return error_response(err.status, err.error or "error",
                              err.detail or "", req.id, err.headers)
    end
    log.error("http.route_error", { path = req.path, error = err })
    return error_response(500, "internal", "internal server error", req.id)
end


local function run(route, req)
    local ok, status, body, headers = xpcall(route.handler, on_error, req)
    if not ok then
        return failed(status, req)
    end
    if type(status) ~= "number" then
        log.error("http.route_error", { path = req.path,
                  error = "handler returned no status" })
        return error_response(500, "internal", "internal server error",
                              req.id)
    end
    local tb = type(body)
    if tb == "table" and not body.kind then
        local eok, encoded = pcall(json_encode, body)
        if not eok then
            log.error("http.route_error", { path = req.path,
                      error = "cannot encode body: " .. tostring(encoded) })
            return error_response(500, "internal", "internal server error",
                                  req.id)
        end
        return status, encoded, headers, JSON
    end
    return status, body, headers, TEXT
end


local function body_mode(route, content_type)
    local mode = route.body
    if mode == "auto" then
        local ct = content_type and str_lower(content_type) or ""
        if str_find(ct, "multipart/form-data", 1, true)
            or str_find(ct, "application/x-www-form-urlencoded", 1, true) then
            return "form"
        end
        return "raw"
    end
    return mode
end


--- Builds generation `files` and returns its dispatch function.
-- @return dispatch | nil, { file, line, message }
function _M.new(files, generation)
    local app, err = app_build(files, require("wtt.admin").routes)
    if not app then
        return nil, err
    end
    local router = app.router
    local limits = httpd.limits()

    return function(ctx, method, path, id, has_body, content_type)
        local route, params, allow = router:match(method, path)
        if not route then
            if allow then
                if method == "OPTIONS" then
                    return 204, nil, { Allow = allow }, nil
                end
                return error_response(405, "method_not_allowed",
                                      method .. " is not allowed here", id,
                                      { Allow = allow })
            end
            return error_response(404, "not_found", "no route for " .. path,
                                  id)
        end
        local req = request_new(ctx, method, path, id, params)
        if has_body and route.body then
            local mode = body_mode(route, content_type)
            local max = route.max_body
                        or (mode == "form" and limits.max_upload
                            or limits.max_body)
            return 0, function() return run(route, req) end, mode, max,
                   route.max_file or limits.max_file
        end
        return run(route, req)
    end
end


return _M
