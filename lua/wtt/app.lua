--- Builds one generation of the application from its route and plugin files.
--
-- Called with the files of a snapshot (see core/wtt_gen.c): each file is
-- compiled from the snapshot's text, never re-read from disk. Any failure
-- comes back as { file, line, message } and the caller keeps the previous
-- generation.
--
-- Route and plugin chunks are compiled with the JIT off (recursively), so
-- the server's watchdog can interrupt a runaway route: LuaJIT only runs
-- hooks in interpreted code. The library in lua/ keeps the JIT.

local router_new = require("wtt.router").new
local plugins = require "wtt.plugins"

local type = type
local ipairs = ipairs
local tostring = tostring
local setfenv = setfenv
local loadstring = loadstring
local str_match = string.match

local _M = {}

local JIT_OFF = os.getenv("WTT_ROUTE_JIT") ~= "on"


-- Splits "routes/x.lua:12: message" into its parts.
local function failure(default_file, msg)
    msg = tostring(msg)
    local first = str_match(msg, "^[^\n]*")
    local file, line, text = str_match(first, "^(.-):(%d+): (.*)$")
    if file then
        return { file = file, line = tonumber(line), message = text,
                 traceback = msg }
    end
    return { file = default_file, line = 0, message = first, traceback = msg }
end
_M.failure = failure


local function compile(f)
    local chunk, err = loadstring(f.source, "@" .. f.path)
    if not chunk then
        return nil, failure(f.path, err)
    end
    -- Each file gets its own globals, so a stray global in one route file
    -- neither leaks into nor breaks another.
    setfenv(chunk, setmetatable({}, { __index = _G }))
    if JIT_OFF then
        jit.off(chunk, true)
    end
    return chunk
end


local function run(chunk, path)
    local ok, ret = xpcall(chunk, debug.traceback)
    if not ok then
        return nil, failure(path, ret)
    end
    return ret
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
    local route = {
        handler = handler,
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


local function load_routes(router, files)
    for _, f in ipairs(files) do
        if f.kind == "route" then
            local chunk, err = compile(f)
            if not chunk then
                return nil, err
            end
            local list
            list, err = run(chunk, f.path)
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


-- plugins/<name>/a/b.lua -> "plugins.<name>.a.b"; "init" names the folder.
local function module_name(path)
    local mod = path:gsub("%.lua$", ""):gsub("/", ".")
    return (mod:gsub("%.init$", ""))
end


local function load_plugins(files)
    local names, seen = {}, {}
    for _, f in ipairs(files) do
        if f.kind == "plugin" then
            local chunk, err = compile(f)
            if not chunk then
                return nil, err
            end
            local path = f.path
            package.preload[module_name(path)] = function(...)
                local ret, rerr = run(chunk, path)
                if rerr then
                    error(rerr, 0)
                end
                return ret
            end
            local name = str_match(path, "^plugins/([^/]+)/handler%.lua$")
            if name and not seen[name] then
                seen[name] = true
                names[#names + 1] = name
            end
        end
    end
    for _, name in ipairs(names) do
        local base = "plugins." .. name
        local ok, handler = pcall(require, base .. ".handler")
        if not ok then
            return nil, type(handler) == "table" and handler
                        or failure(base, handler)
        end
        local schema
        if package.preload[base .. ".schema"] then
            ok, schema = pcall(require, base .. ".schema")
            if not ok then
                return nil, type(schema) == "table" and schema
                            or failure(base, schema)
            end
        end
        local rok, rerr = plugins.register(name, handler, schema)
        if not rok then
            return nil, { file = "plugins/" .. name .. "/handler.lua",
                          line = 0, message = rerr }
        end
    end
    return true
end


--- Builds the app from the snapshot `files` ({path, kind, source, sha256}).
-- @param builtin list of route specs always present (admin routes)
-- @return app { router, files } | nil, { file, line, message }
function _M.build(files, builtin)
    local router = router_new()
    for i, spec in ipairs(builtin or {}) do
        local ok, err = add_route(router, spec, "lua/wtt/admin.lua", i)
        if not ok then
            return nil, { file = "lua/wtt/admin.lua", line = 0,
                          message = err }
        end
    end
    -- Plugins first: routes may require them while loading.
    local ok, err = load_plugins(files)
    if not ok then
        return nil, err
    end
    ok, err = load_routes(router, files)
    if not ok then
        return nil, err
    end
    return { router = router, files = files }
end


return _M
