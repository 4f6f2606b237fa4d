--- The request object a route handler receives.
--
-- Cheap fields are set up front (method, path, params, id); the rest are
-- read from the server on first use and cached: headers, query, client,
-- body, files, form. Accessors only work while the request is being handled
-- (the C side refuses a stale request).

local httpd = require "wtt.core.http_server"
local http = require "wtt.http"

local rawset = rawset
local lower = string.lower
local setmetatable = setmetatable

local _M = {}

local methods = {}
local lazy = {}

-- Header tables answer any capitalisation: h["Content-Type"] works.
local headers_mt = {
    __index = function(t, k)
        if type(k) == "string" then
            return rawget(t, lower(k))
        end
    end,
}


function lazy.headers(self)
    return setmetatable(httpd.headers(self._ctx) or {}, headers_mt)
end


function lazy.query(self)
    return httpd.query(self._ctx) or {}
end


function lazy.client(self)
    return httpd.client(self._ctx)
end


function lazy.body(self)
    return httpd.body(self._ctx) or ""
end


function lazy.files(self)
    return httpd.files(self._ctx) or {}
end


function lazy.form(self)
    return httpd.form(self._ctx) or {}
end


local mt = {
    __index = function(self, k)
        local m = methods[k]
        if m then
            return m
        end
        local f = lazy[k]
        if f then
            local v = f(self)
            rawset(self, k, v)
            return v
        end
    end,
}


--- One header's value (case-insensitive), or nil.
function methods.header(self, name)
    return httpd.header(self._ctx, name)
end


--- The body decoded as JSON; aborts with 400 when it is not JSON.
function methods.json(self)
    return http.decode_json(self.body)
end


--- Takes ownership of an uploaded temp file by moving it to `dest`.
-- @return true | nil, err
function methods.keep(self, file, dest)
    local ok, err = httpd.keep(self._ctx, file.path)
    if not ok then
        return nil, err
    end
    local moved, merr = os.rename(file.path, dest)
    if not moved then
        return nil, "keep failed: " .. tostring(merr)
    end
    file.path = dest
    return true
end


local EMPTY = setmetatable({}, { __newindex = function()
    error("params are read-only", 2)
end })


--- Makes the request object for the C request handle `ctx`.
function _M.new(ctx, method, path, id, params)
    return setmetatable({
        _ctx = ctx, method = method, path = path, id = id,
        params = params or EMPTY,
    }, mt)
end


return _M
