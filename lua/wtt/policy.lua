--- The queue's current policy, from the plugins `retry`, `timeout`,
-- `priority` and `deadletter` (docs/plugins.md).
--
--     local policy = require "wtt.policy"
--     local p = policy.current()
--     p.max_attempts(payload), p.backoff_ms(attempts, rand),
--     p.retryable(err, flag), p.timeout_ms(payload), p.lane(payload),
--     p.fair_share(payload) (optional), p.dead_ttl_s(), p.final_ttl_s(),
--     p.versions, p.source
--
-- Inside `wtt serve` a generation's plugins are those of `wtt.plugins`
-- (swapped with the generation). Elsewhere (worker, subscriber, CLI) this
-- module loads `plugins/` itself through wtt.app's loader, into a private
-- registry, and reloads when a file's content changes (checked at most
-- every `check_interval` seconds) or on `policy.reload()`. A plugin set
-- that fails to load or validate leaves the previous one in force;
-- `policy.last_error()` tells why.
--
-- Each plugin's configuration is its schema's defaults, overridden by the
-- environment: WTT_<PLUGIN>_<FIELD> (upper case), e.g. WTT_RETRY_MAX_ATTEMPTS.

local sys = require "wtt.sys"
local runtime = require "wtt.runtime"
local sha1hex = require("wtt.core.redis").sha1hex

local type = type
local pairs = pairs
local ipairs = ipairs
local pcall = pcall
local tostring = tostring
local tonumber = tonumber
local concat = table.concat
local floor = math.floor

local _M = {}

-- The slots the queue uses: plugin name -> functions it must provide.
local SLOTS = {
    retry = { "max_attempts", "backoff_ms", "retryable" },
    timeout = { "timeout_ms" },
    priority = { "lane" },
    deadletter = { "dead_ttl_s", "final_ttl_s" },
}
_M.SLOTS = SLOTS

-- Slot functions a plugin may leave out (the policy then has none).
local OPTIONAL = {
    priority = { "fair_share" },
}
_M.OPTIONAL = OPTIONAL

-- Used for a slot whose plugin is absent: the same defaults as the
-- shipped plugins' schemas.
local BUILTIN = {
    retry = {
        conf = { max_attempts = 3, backoff_base_ms = 2000,
                 backoff_max_ms = 300000, never_retry = {} },
        handler = {
            VERSION = "builtin",
            max_attempts = function(conf) return conf.max_attempts end,
            backoff_ms = function(conf, attempts, rand)
                local d = conf.backoff_base_ms * 2 ^ ((attempts or 1) - 1)
                if d > conf.backoff_max_ms then
                    d = conf.backoff_max_ms
                end
                return floor(d / 2 + (rand or 0.5) * d / 2)
            end,
            retryable = function(conf, err, flag) return flag ~= false end,
        },
    },
    timeout = {
        conf = {},
        handler = { VERSION = "builtin",
                    timeout_ms = function() return 600000 end },
    },
    priority = {
        conf = {},
        handler = { VERSION = "builtin",
                    lane = function() return "default" end },
    },
    deadletter = {
        conf = {},
        handler = { VERSION = "builtin",
                    dead_ttl_s = function() return 86400 end,
                    final_ttl_s = function() return 604800 end },
    },
}

local state = {
    dir = nil,             -- plugins dir (default runtime.plugins_dir)
    check_interval = 1,    -- seconds between file checks
    checked_at = nil,
    signature = nil,       -- of the files the current policy came from
    current = nil,         -- policy built from the files
    serve_handlers = nil,  -- handlers the serve policy was built from
    serve_policy = nil,
    last_error = nil,
}


-- ---------------------------------------------------------------------------
-- Configuration
-- ---------------------------------------------------------------------------

local function check_value(name, field, v)
    local t = field.type
    if t == "integer" or t == "number" then
        if type(v) ~= "number" or v ~= v then
            return nil, name .. "." .. field.name .. ": number expected"
        end
        if t == "integer" and v % 1 ~= 0 then
            return nil, name .. "." .. field.name .. ": integer expected"
        end
        if (field.min and v < field.min) or (field.max and v > field.max) then
            return nil, name .. "." .. field.name .. ": out of range ["
                        .. tostring(field.min) .. ", " .. tostring(field.max)
                        .. "]"
        end
    elseif t == "string" then
        if type(v) ~= "string" then
            return nil, name .. "." .. field.name .. ": string expected"
        end
    elseif t == "boolean" then
        if type(v) ~= "boolean" then
            return nil, name .. "." .. field.name .. ": boolean expected"
        end
    elseif t == "array" then
        if type(v) ~= "table" then
            return nil, name .. "." .. field.name .. ": array expected"
        end
    else
        return nil, name .. "." .. field.name .. ": unknown type '"
                    .. tostring(t) .. "'"
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


--- Builds a plugin's configuration from its schema (defaults, then the
-- WTT_<PLUGIN>_<FIELD> environment) and checks every value.
-- @return conf | nil, err
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
        local v = field.default
        local var = "WTT_" .. name:upper() .. "_" .. field.name:upper()
        local s = env(var)
        if s ~= nil and s ~= "" then
            v = parse_env(field, s)
            if v == nil then
                return nil, var .. ": bad value '" .. s .. "'"
            end
        end
        local ok, err = check_value(name, field, v)
        if not ok then
            return nil, err
        end
        conf[field.name] = v
    end
    return conf
end


-- ---------------------------------------------------------------------------
-- Building a policy
-- ---------------------------------------------------------------------------

-- Builds the policy table from `get(name) -> handler, schema`.
local function build(get, source)
    local p = { versions = {}, source = source }
    for name, fns in pairs(SLOTS) do
        local handler, schema = get(name)
        local conf, err
        if handler == nil then
            handler, conf = BUILTIN[name].handler, BUILTIN[name].conf
        else
            for _, fn in ipairs(fns) do
                if type(handler[fn]) ~= "function" then
                    return nil, "plugins/" .. name .. "/handler.lua: "
                                .. fn .. " must be a function"
                end
            end
            conf, err = _M.config(name, schema)
            if not conf then
                return nil, "plugins/" .. name .. "/schema.lua: " .. err
            end
        end
        p.versions[name] = handler.VERSION
        for _, fn in ipairs(fns) do
            local f = handler[fn]
            p[fn] = function(...)
                return f(conf, ...)
            end
        end
        for _, fn in ipairs(OPTIONAL[name] or {}) do
            local f = handler[fn]
            if f ~= nil and type(f) ~= "function" then
                return nil, "plugins/" .. name .. "/handler.lua: "
                            .. fn .. " must be a function"
            end
            if f then
                p[fn] = function(...)
                    return f(conf, ...)
                end
            end
        end
        p[name .. "_conf"] = conf
    end
    return p
end


-- Lists every .lua file under `dir` as "plugins/<rel>" paths.
local function scan(dir, rel, out)
    local names = sys.listdir(dir)
    if not names then
        return out
    end
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


local function read_files(dir)
    local files, sig = {}, {}
    for _, f in ipairs(scan(dir, "plugins", {})) do
        local src, err = sys.read_file(f.full)
        if not src then
            return nil, nil, err
        end
        files[#files + 1] = { path = f.path, kind = "plugin", source = src }
        sig[#sig + 1] = f.path .. " " .. sha1hex(src)
    end
    return files, concat(sig, "\n")
end


-- Loads plugin files through a fresh copy of wtt.app and wtt.plugins, so
-- that this process's own wtt.plugins (a serve generation's) is untouched
-- and every load starts from an empty registry.
local function load_files(files)
    local loaded = package.loaded
    local saved_app, saved_reg = loaded["wtt.app"], loaded["wtt.plugins"]
    local saved_mods = {}
    for k, v in pairs(loaded) do
        if type(k) == "string" and k:match("^plugins%.") then
            saved_mods[k] = v
            loaded[k] = nil
        end
    end
    loaded["wtt.app"], loaded["wtt.plugins"] = nil, nil
    local ok, app = pcall(require, "wtt.app")
    local reg = loaded["wtt.plugins"]
    local built, err
    if ok then
        built, err = app.build(files)
    else
        err = { message = tostring(app) }
    end
    -- Restore: the private registry stays reachable only through `reg`.
    for k in pairs(loaded) do
        if type(k) == "string" and k:match("^plugins%.") then
            loaded[k] = nil
        end
    end
    for k, v in pairs(saved_mods) do
        loaded[k] = v
    end
    loaded["wtt.app"], loaded["wtt.plugins"] = saved_app, saved_reg
    if not built then
        if type(err) == "table" then
            err = (err.file and (err.file .. ": ") or "")
                  .. tostring(err.message)
        end
        return nil, tostring(err)
    end
    return reg
end


local function from_files(dir)
    local files, sig, err = read_files(dir)
    if not files then
        return nil, nil, "could not read plugins: " .. tostring(err)
    end
    if sig == state.signature and state.current then
        return state.current, sig, nil, true
    end
    if sig == state.bad_signature then
        return nil, sig, state.last_error, true
    end
    local reg
    reg, err = load_files(files)
    if not reg then
        return nil, sig, err
    end
    local p
    p, err = build(function(name)
        local entry
        for _, e in ipairs(reg.list()) do
            if e.name == name then
                entry = e
            end
        end
        if entry then
            return entry.handler, entry.schema
        end
    end, "files")
    if not p then
        return nil, sig, err
    end
    return p, sig
end


-- ---------------------------------------------------------------------------
-- Public API
-- ---------------------------------------------------------------------------

--- Sets where plugins are read from and how often files are checked.
-- @param opts { dir = path, check_interval = seconds }
function _M.configure(opts)
    if opts.dir ~= nil then
        state.dir = opts.dir
        state.signature, state.current, state.checked_at = nil, nil, nil
        state.bad_signature, state.last_error = nil, nil
    end
    if opts.check_interval ~= nil then
        state.check_interval = opts.check_interval
    end
end


--- Reloads the plugins from their files now.
-- @return true | nil, err (the previous policy stays in force)
function _M.reload()
    local p, sig, err, unchanged = from_files(state.dir
                                              or runtime.plugins_dir)
    state.checked_at = sys.now()
    if not p then
        if not unchanged then
            -- Logged once per broken text; the same text is not reloaded.
            state.last_error, state.bad_signature = err, sig
            io.stderr:write("wtt.policy: plugins not reloaded: ",
                            tostring(err), "\n")
        end
        return nil, err
    end
    if unchanged then
        return true
    end
    state.current, state.signature, state.last_error = p, sig, nil
    state.bad_signature = nil
    return true
end


--- The policy in force.
-- @return policy table (see the module comment)
function _M.current()
    -- Inside a serve generation: its plugins.
    local reg = package.loaded["wtt.plugins"]
    if reg and #reg.list() > 0 then
        local first = reg.list()[1].handler
        if state.serve_handlers ~= first or not state.serve_policy then
            local p, err = build(function(name)
                local h = reg.get(name)
                for _, e in ipairs(reg.list()) do
                    if e.name == name then
                        return h, e.schema
                    end
                end
            end, "serve")
            if p then
                state.serve_policy, state.serve_handlers = p, first
            else
                state.last_error = err
            end
        end
        if state.serve_policy then
            return state.serve_policy
        end
    end
    local t = sys.now()
    if not state.checked_at or t - state.checked_at >= state.check_interval then
        _M.reload()
    end
    if not state.current then
        state.current = build(function() return nil end, "builtin")
    end
    return state.current
end


--- The error of the last failed reload, or nil.
function _M.last_error()
    return state.last_error
end


return _M
