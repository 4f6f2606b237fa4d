--- Builds one generation of the application from its route and plugin files.
--
-- Called with the files of a snapshot (see core/base/wtt_reload.c): each
-- file is compiled from the snapshot's text, never re-read from disk
-- (lua/wtt/chunk.lua). The plugins load first, through the one loader
-- (lua/wtt/plugins.lua), which validates them completely; then the routes,
-- which may require plugin modules. Any failure comes back as
-- { file, line, message } and the caller keeps the previous generation.

local router_new = require("wtt.router").new
local plugins = require "wtt.plugins"
local chunk = require "wtt.chunk"

local type = type
local ipairs = ipairs

local _M = {}

_M.failure = chunk.failure


-- Paths whose routes must check who is asking before any body is read
-- (a route option `auth`, run by lua/wtt/server.lua ahead of the body):
-- a client without the token is refused whatever it sends, and the server
-- never spends a body read or a multipart parse on it.
local AUTH_REQUIRED = { "/_admin/", "/media/", "/transcribe/_result/" }
_M.AUTH_REQUIRED = AUTH_REQUIRED


local function needs_auth(rpath)
    for _, prefix in ipairs(AUTH_REQUIRED) do
        if rpath:sub(1, #prefix) == prefix then
            return prefix
        end
    end
    return nil
end


local function add_route(router, spec, path, index)
    local where = path .. ": route " .. index
    if type(spec) ~= "table" then
        return nil, where .. " must be a table"
    end
    local methods = spec.method or spec[1]
    local rpath = spec.path or spec[2]
    local handler = spec.handler or spec[3]
    local opts = spec[4] or spec
    if type(methods) == "string" then
        methods = { methods }
    end
    if type(methods) ~= "table" or #methods == 0 then
        return nil, where .. ": method must be a string or a list"
    end
    if type(rpath) ~= "string" or rpath:sub(1, 1) ~= "/" then
        return nil, where .. ": path must be a string starting with /"
    end
    if type(handler) ~= "function" then
        return nil, where .. ": handler must be a function"
    end
    local body = opts.body
    if body ~= nil and body ~= false and body ~= "raw" and body ~= "form"
        and body ~= "auto" then
        return nil, where .. ": body must be \"raw\", \"form\", \"auto\" or false"
    end
    if opts.auth ~= nil and type(opts.auth) ~= "function" then
        return nil, where .. ": auth must be a function"
    end
    local prefix = needs_auth(rpath)
    if prefix and not opts.auth then
        return nil, where .. ": routes under " .. prefix .. " need an auth "
                    .. "option (checked before the body is read)"
    end
    local route = {
        handler = handler,
        auth = opts.auth,
        file = path,
        path = rpath,
        body = body == nil and "auto" or body,
        max_body = opts.max_body,
        max_file = opts.max_file,
    }
    for _, m in ipairs(methods) do
        local ok, err = router:add(m, rpath, route)
        if not ok then
            return nil, path .. ": " .. err
        end
    end
    return true
end


-- Loads the route files; they see the plugin set's `require`, so a route
-- may require a plugin module of its own generation.
local function load_routes(router, files, set)
    local globals = { require = set.require }
    for _, f in ipairs(files) do
        if f.kind == "route" then
            local fn, err = chunk.compile(f, globals)
            if not fn then
                return nil, err
            end
            local list
            list, err = chunk.run(fn, f.path)
            if err then
                return nil, err
            end
            if type(list) ~= "table" then
                return nil, { file = f.path, line = 0,
                              message = "a route file must return a list of routes" }
            end
            for i, spec in ipairs(list) do
                local ok, aerr = add_route(router, spec, f.path, i)
                if not ok then
                    return nil, { file = f.path, line = 0, message = aerr }
                end
            end
        end
    end
    return true
end


--- Builds the app from the snapshot `files` ({path, kind, source, sha256}).
-- @param builtin list of route specs always present (admin routes)
-- @param opts { env = function(var) for plugin configuration (tests) }
-- @return app { router, files, plugins = the validated plugin set }
--   | nil, { file, line, message }
function _M.build(files, builtin, opts)
    local router = router_new()
    for i, spec in ipairs(builtin or {}) do
        local ok, err = add_route(router, spec, "lua/wtt/admin.lua", i)
        if not ok then
            return nil, { file = "lua/wtt/admin.lua", line = 0,
                          message = err }
        end
    end
    -- Plugins first, validated completely: a generation whose plugins
    -- fail is never swapped in, and routes may require them while loading.
    local set, err = plugins.load(files, { source = "serve",
                                           env = opts and opts.env })
    if not set then
        return nil, err
    end
    local ok
    ok, err = load_routes(router, files, set)
    if not ok then
        return nil, err
    end
    return { router = router, files = files, plugins = set }
end


return _M
