--- The dispatcher each serving thread runs (called from
-- core/bind/http_server/wtt_http_server.c).
--
-- `new(files, generation)` builds the app of one generation and returns the
-- dispatch function. For every request C calls
--   dispatch(ctx, method, path, id, has_body, content_type)
-- which answers either
--   status, body, headers, default_content_type        (respond now), or
--   0, continuation, mode, max_body, max_file          (read the body first)
-- and C calls `continuation()` for the same four response values once the
-- body is in. C calls the dispatcher with the headers only, so what it
-- answers at once costs no body read: a route's `auth` runs here, before
-- any body is read or parsed. Handler errors never escape: `http.abort`
-- errors become their status, anything else a logged 500.

local app_build = require("wtt.app").build
local plugins = require "wtt.plugins"
local http = require "wtt.http"
local request_new = require("wtt.request").new
local log = require "wtt.log"
local json = require "wtt.json"
local httpd = require "wtt.core.http_server"
local on_error = require("wtt.chunk").on_error
local set_route = httpd.set_route

local type = type
local pairs = pairs
local ipairs = ipairs
local xpcall = xpcall
local getmetatable = getmetatable
local error_body = http.error_body
local json_encode = json.encode
local str_find = string.find
local str_lower = string.lower
local str_sub = string.sub
local str_gsub = string.gsub
local str_format = string.format
local concat = table.concat
local sort = table.sort

local _M = {}

local JSON = "application/json"
local TEXT = "text/plain; charset=utf-8"

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


-- Percent-encodes what a URL must not carry raw (`keep`: also allowed).
local function escape(s, keep)
    return (str_gsub(s, "[^%w%-%._~" .. keep .. "]", function(c)
        return str_format("%%%02X", c:byte())
    end))
end


-- The request's query string, rebuilt from its decoded values (keys
-- sorted; a bare `?flag` stays bare).
local function query_string(ctx)
    local q = httpd.query(ctx) or {}
    local keys = {}
    for k in pairs(q) do
        keys[#keys + 1] = k
    end
    if #keys == 0 then
        return ""
    end
    sort(keys)
    local out = {}
    for _, k in ipairs(keys) do
        local v = q[k]
        local list = type(v) == "table" and v or { v }
        for _, item in ipairs(list) do
            out[#out + 1] = item == true and escape(k, "")
                            or escape(k, "") .. "=" .. escape(item, "")
        end
    end
    return "?" .. concat(out, "&")
end


-- A path without its final slash, where the slashed path is a route:
-- answered 308 (method and body kept) to the slashed path, query included.
-- The original system's clients call /transcribe/status/{id} and
-- /transcribe/midi/{id} so.
local function slash_redirect(router, ctx, method, path, id)
    if str_sub(path, -1) == "/" then
        return nil
    end
    local route, _, allow = router:match(method, path .. "/")
    if not route and not allow then
        return nil
    end
    local location = escape(path, "/!$&'()*+,;=:@") .. "/" .. query_string(ctx)
    return 308, error_body("moved", "this resource is at " .. path .. "/", id),
           { Location = location }, JSON
end


-- The router of the generation this Lua state serves (a state serves one
-- generation), so a route can tell what the server offers: the page's
-- configuration says whether the SSE route is there (routes/web.lua).
local active_router


--- True when `method path` reaches a route of this state's generation.
function _M.has_route(method, path)
    return active_router ~= nil and active_router:match(method, path) ~= nil
end


--- Builds generation `files` and returns its dispatch function.
-- @return dispatch | nil, { file, line, message }
function _M.new(files, generation)
    local app, err = app_build(files, require("wtt.admin").routes)
    if not app then
        return nil, err
    end
    -- This Lua state serves this generation only: its policy is the set
    -- the build validated (wtt.policy reads it).
    plugins.activate(app.plugins)
    local router = app.router
    active_router = router
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
            local status, body, headers, ctype =
                slash_redirect(router, ctx, method, path, id)
            if status then
                return status, body, headers, ctype
            end
            return error_response(404, "not_found", "no route for " .. path,
                                  id)
        end
        -- The pattern, not the path: the request metrics' route label
        -- must stay bounded (docs/metrics.md).
        set_route(ctx, route.path)
        local req = request_new(ctx, method, path, id, params)
        if route.auth then
            -- Before the body: C has read only the headers so far.
            local ok, err = xpcall(route.auth, on_error, req)
            if not ok then
                return failed(err, req)
            end
        end
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
