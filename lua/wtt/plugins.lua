--- The one plugin loader. Serve's generations (lua/wtt/app.lua) and the
-- processes without generations (worker, subscriber, `wtt queue`, through
-- lua/wtt/policy.lua) load plugins/ with `load`, so a plugin set is valid
-- everywhere or nowhere (docs/plugins.md).
--
-- A plugin is a folder `plugins/<name>/` with `handler.lua` (a table with
-- VERSION "x.y.z" and the plugin's functions), optionally `schema.lua`
-- (declarative config fields with defaults) and other Lua files, which its
-- own files and the routes require as `plugins.<name>.<file>`. Modules live
-- in the set, not in package.loaded, so a load that fails leaves nothing
-- behind and two sets never share a module.
--
-- `load` checks everything a plugin can get wrong before it returns a set:
-- VERSION, the schema, every configuration value (schema defaults, then
-- the WTT_<PLUGIN>_<FIELD> environment) and the queue's slot functions. A
-- slot whose plugin is absent gets the shipped plugin of that name (the
-- plugins/ installed beside lua/): the shipped schemas are the only place
-- the defaults are written.
--
--     local set, failure = plugins.load(files, { source = "files" })
--     set.policy.max_attempts(payload)        -- conf bound
--     set:get("retry")                        -- the handler table

local chunk = require "wtt.chunk"
local sys = require "wtt.sys"
local runtime = require "wtt.runtime"
local sha1hex = require("wtt.core.redis").sha1hex

local type = type
local pairs = pairs
local ipairs = ipairs
local pcall = pcall
local error = error
local require = require
local tostring = tostring
local tonumber = tonumber
local concat = table.concat
local sort = table.sort
local str_match = string.match

local _M = {}

-- The slots: plugin name -> functions it must provide (the queue's
-- policies, and the tab fingering's weights and limits).
local SLOTS = {
    retry = { "max_attempts", "backoff_ms", "retryable" },
    timeout = { "timeout_ms" },
    priority = { "lane" },
    deadletter = { "dead_ttl_s", "final_ttl_s" },
    tab = { "fingering_weights", "fingering_limits" },
}
_M.SLOTS = SLOTS

-- Slot functions a plugin may leave out (the policy then has none).
local OPTIONAL = {
    priority = { "fair_share" },
}
_M.OPTIONAL = OPTIONAL

local SLOT_NAMES = {}
for name in pairs(SLOTS) do
    SLOT_NAMES[#SLOT_NAMES + 1] = name
end
sort(SLOT_NAMES)

local TYPES = { integer = true, number = true, string = true,
                boolean = true, array = true }

local ERR_VERSION = "VERSION must be a string like \"1.2.3\""

-- The set of this Lua state's serve generation (see activate).
local active


-- ---------------------------------------------------------------------------
-- Configuration
-- ---------------------------------------------------------------------------

local function check_value(name, field, v)
    local t = field.type
    local what = name .. "." .. field.name
    if t == "integer" or t == "number" then
        if type(v) ~= "number" or v ~= v then
            return nil, what .. ": number expected"
        end
        if t == "integer" and v % 1 ~= 0 then
            return nil, what .. ": integer expected"
        end
        if (field.min and v < field.min) or (field.max and v > field.max) then
            return nil, what .. ": out of range [" .. tostring(field.min)
                        .. ", " .. tostring(field.max) .. "]"
        end
    elseif t == "string" then
        if type(v) ~= "string" then
            return nil, what .. ": string expected"
        end
    elseif t == "boolean" then
        if type(v) ~= "boolean" then
            return nil, what .. ": boolean expected"
        end
    elseif t == "array" then
        if type(v) ~= "table" then
            return nil, what .. ": array expected"
        end
    end
    return true
end


-- An environment value as `field`'s type (arrays: comma-separated).
local function parse_env(field, s)
    local t = field.type
    if t == "integer" or t == "number" then
        return tonumber(s)
    elseif t == "boolean" then
        if s == "true" or s == "1" then return true end
        if s == "false" or s == "0" then return false end
        return nil
    elseif t == "array" then
        local list = {}
        for item in s:gmatch("[^,]+") do
            list[#list + 1] = item
        end
        return list
    end
    return s
end


--- Builds plugin `name`'s configuration from its schema (defaults, then
-- the WTT_<PLUGIN>_<FIELD> environment) and checks every value.
-- @param env optional function(var) -> string (default sys.getenv)
-- @return conf | nil, err, the field's name (when one is at fault)
function _M.config(name, schema, env)
    env = env or sys.getenv
    local conf = {}
    if schema == nil then
        return conf
    end
    if type(schema) ~= "table" or type(schema.fields) ~= "table" then
        return nil, name .. ": schema must have a fields list"
    end
    for i, field in ipairs(schema.fields) do
        if type(field) ~= "table" or type(field.name) ~= "string" then
            return nil, name .. ": schema field " .. i .. " needs a name"
        end
        if not TYPES[field.type] then
            return nil, name .. "." .. field.name .. ": unknown type '"
                        .. tostring(field.type) .. "'", field.name
        end
        local v = field.default
        local var = "WTT_" .. name:upper() .. "_" .. field.name:upper()
        local s = env(var)
        local from = ""
        if s ~= nil and s ~= "" then
            v = parse_env(field, s)
            if v == nil then
                return nil, var .. ": bad value '" .. s .. "'", field.name
            end
            from = " (from " .. var .. "=" .. s .. ")"
        end
        local ok, err = check_value(name, field, v)
        if not ok then
            return nil, err .. from, field.name
        end
        conf[field.name] = v
    end
    return conf
end


-- ---------------------------------------------------------------------------
-- Files
-- ---------------------------------------------------------------------------

-- Every .lua file under `dir`, as { path = rel .. "/...", full }.
local function scan(dir, rel, out)
    local names = sys.listdir(dir)
    if not names then
        return out
    end
    sort(names)
    for _, n in ipairs(names) do
        if n:sub(1, 1) ~= "." then
            local path = dir .. "/" .. n
            local kind = sys.exists(path)
            if kind == "dir" then
                scan(path, rel .. "/" .. n, out)
            elseif kind == "file" and n:match("%.lua$") then
                out[#out + 1] = { path = rel .. "/" .. n, full = path }
            end
        end
    end
    return out
end


--- Reads the plugin files under `dir` (a plugins/ directory).
-- @param rel the name `dir` has in paths (default "plugins")
-- @return files { {path, kind, source} }, signature (changes with any
--   file's name or text) | nil, nil, err
function _M.read_dir(dir, rel)
    local files, sig = {}, {}
    for _, f in ipairs(scan(dir, rel or "plugins", {})) do
        local src, err = sys.read_file(f.full)
        if not src then
            return nil, nil, err
        end
        files[#files + 1] = { path = f.path, kind = "plugin", source = src }
        sig[#sig + 1] = f.path .. " " .. sha1hex(src)
    end
    return files, concat(sig, "\n")
end


--- Where the shipped plugins are: the plugins/ installed beside lua/.
function _M.shipped_dir()
    return runtime.lua_dir .. "/../plugins"
end


-- plugins/<name>/a/b.lua -> "plugins.<name>.a.b"; "init" names the folder.
local function module_name(path)
    local mod = path:gsub("%.lua$", ""):gsub("/", ".")
    return (mod:gsub("%.init$", ""))
end


--- "file:line: message" of a failure, as the reload record prints it.
function _M.describe(f)
    if type(f) ~= "table" then
        return tostring(f)
    end
    if f.file and f.file ~= "" then
        return f.file .. ":" .. tostring(f.line or 0) .. ": "
               .. tostring(f.message)
    end
    return tostring(f.message)
end


-- ---------------------------------------------------------------------------
-- Loading
-- ---------------------------------------------------------------------------

local set_mt = { __index = {} }

--- The handler table of plugin `name` in this set, or nil.
function set_mt.__index.get(self, name)
    local e = self.by_name[name]
    return e and e.handler
end


local function bind(f, conf)
    return function(...)
        return f(conf, ...)
    end
end


-- The queue's policy table from a validated set.
local function policy_of(set, source)
    local p = { versions = {}, source = source, shipped = {} }
    for name, fns in pairs(SLOTS) do
        local e = set.by_name[name]
        p.versions[name] = e.version
        p.shipped[name] = e.shipped or nil
        for _, fn in ipairs(fns) do
            p[fn] = bind(e.handler[fn], e.conf)
        end
        for _, fn in ipairs(OPTIONAL[name] or {}) do
            if e.handler[fn] then
                p[fn] = bind(e.handler[fn], e.conf)
            end
        end
    end
    return p
end


local function fail(file, line, message)
    return nil, { file = file, line = line or 0, message = message }
end


-- Checks plugin `name`'s handler, schema, configuration and slots.
-- @return entry | nil, failure
local function check_plugin(name, req, modules, sources, env)
    local base = "plugins." .. name
    local hpath = "plugins/" .. name .. "/handler.lua"
    local spath = "plugins/" .. name .. "/schema.lua"
    if not modules[base .. ".handler"] then
        return fail("plugins/" .. name, 0, "a plugin needs a handler.lua")
    end
    local ok, handler = pcall(req, base .. ".handler")
    if not ok then
        return nil, chunk.failure(hpath, handler)
    end
    local hsrc = sources[hpath]
    if type(handler) ~= "table" then
        return fail(hpath, 0, "handler.lua must return a table")
    end
    if type(handler.VERSION) ~= "string"
        or not handler.VERSION:match("^%d+%.%d+%.%d+$") then
        return fail(hpath, chunk.line_of(hsrc, "VERSION"), ERR_VERSION)
    end
    local schema
    if modules[base .. ".schema"] then
        ok, schema = pcall(req, base .. ".schema")
        if not ok then
            return nil, chunk.failure(spath, schema)
        end
        if type(schema) ~= "table" then
            return fail(spath, 0, "schema.lua must return a table")
        end
    end
    local conf, err, field = _M.config(name, schema, env)
    if not conf then
        return fail(spath, field and chunk.line_of(sources[spath],
                                                   '"' .. field .. '"') or 0,
                    err)
    end
    for _, fn in ipairs(SLOTS[name] or {}) do
        if type(handler[fn]) ~= "function" then
            -- where the slot is set wrong, else where the table begins
            local line = chunk.line_of(hsrc, fn)
            if line == 0 then
                line = chunk.line_of(hsrc, "VERSION")
            end
            return fail(hpath, line, fn
                        .. " must be a function (the queue's " .. name
                        .. " slot)")
        end
    end
    for _, fn in ipairs(OPTIONAL[name] or {}) do
        if handler[fn] ~= nil and type(handler[fn]) ~= "function" then
            return fail(hpath, chunk.line_of(hsrc, fn),
                        fn .. " must be a function")
        end
    end
    return { name = name, version = handler.VERSION, handler = handler,
             schema = schema, conf = conf }
end


--- Loads and validates a plugin set.
-- @param files { {path = "plugins/<name>/<file>.lua", source, kind} }
--   (files whose kind is set and not "plugin" are skipped)
-- @param opts { source = label for the policy ("serve", "files"),
--   env = function(var) (default sys.getenv),
--   shipped = dir of the shipped plugins (default shipped_dir()) }
-- @return set { plugins = list by name of { name, version, handler,
--   schema, conf, shipped }, by_name, policy, require, get(name) }
--   | nil, failure { file, line, message }
function _M.load(files, opts)
    opts = opts or {}
    local env = opts.env or sys.getenv
    local modules, sources, loaded, loading = {}, {}, {}, {}
    local names, seen, shipped = {}, {}, {}

    -- The set's require: plugin modules from the set, the rest as usual.
    local function req(name)
        local m = modules[name]
        if not m then
            return require(name)
        end
        local v = loaded[name]
        if v ~= nil then
            return v
        end
        if loading[name] then
            error("plugin module " .. name .. " requires itself", 2)
        end
        loading[name] = true
        local ret, err = chunk.run(m.fn, m.path)
        loading[name] = nil
        if err then
            error(err, 0)
        end
        if ret == nil then
            ret = true
        end
        loaded[name] = ret
        return ret
    end
    local globals = { require = req }

    local function add(f, from_shipped)
        local fn, err = chunk.compile(f, globals)
        if not fn then
            return nil, err
        end
        modules[module_name(f.path)] = { fn = fn, path = f.path }
        sources[f.path] = f.source
        local name = str_match(f.path, "^plugins/([^/]+)/")
        if name and not seen[name] then
            seen[name] = true
            names[#names + 1] = name
            shipped[name] = from_shipped
        end
        return true
    end

    for _, f in ipairs(files) do
        if f.kind == nil or f.kind == "plugin" then
            local ok, err = add(f)
            if not ok then
                return nil, err
            end
        end
    end
    for _, name in ipairs(SLOT_NAMES) do
        if not seen[name] then
            local dir = opts.shipped or _M.shipped_dir()
            local extra = _M.read_dir(dir .. "/" .. name, "plugins/" .. name)
            if not extra or #extra == 0 then
                return fail("plugins/" .. name .. "/handler.lua", 0,
                            "missing: the queue's " .. name .. " policy "
                            .. "needs it and there is no shipped copy in "
                            .. dir)
            end
            for _, f in ipairs(extra) do
                local ok, err = add(f, true)
                if not ok then
                    return nil, err
                end
            end
        end
    end

    sort(names)
    local set = setmetatable({ plugins = {}, by_name = {}, require = req },
                             set_mt)
    for _, name in ipairs(names) do
        local e, err = check_plugin(name, req, modules, sources, env)
        if not e then
            return nil, err
        end
        e.shipped = shipped[name] or nil
        set.plugins[#set.plugins + 1] = e
        set.by_name[name] = e
    end
    set.policy = policy_of(set, opts.source)
    return set
end


-- ---------------------------------------------------------------------------
-- The serve generation's set
-- ---------------------------------------------------------------------------

--- Makes `set` this Lua state's plugins (lua/wtt/server.lua, once per
-- generation state: each state holds one generation).
function _M.activate(set)
    active = set
end


--- The set activated in this state, or nil (outside `wtt serve`).
function _M.active()
    return active
end


return _M
