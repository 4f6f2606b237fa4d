--- Scripts for wtt.redis: script values named by their SHA1, and the
-- client's EVALSHA path (SCRIPT LOAD once per connection, a NOSCRIPT
-- reply loads again and retries once). `wtt.redis.script` and
-- `wtt.redis.is_script` are this module's; `client` holds the methods
-- wtt.redis puts on every client (eval, script and the private loaders).

local core = require "wtt.core.redis"
local internal = require "wtt.redis.internal"

local type = type
local error = error
local tostring = tostring
local setmetatable = setmetatable
local getmetatable = getmetatable
local str_find = string.find
local sha1hex = core.sha1hex
local is_readonly = internal.is_readonly

local _M = {}

--- Client methods; wtt.redis copies them onto its client method table.
local client = {}
_M.client = client

local script_mt = {}
script_mt.__index = script_mt


function script_mt.__tostring(self)
    return "wtt.redis.script " .. self.sha
end


--- A Lua script for Redis, named by the SHA1 of its source.
-- Scripts are plain values: make them once (at module load) and run them on
-- any client with `r:eval(script, keys, args)`.
-- @param source the script text
-- @return script {source, sha}
function _M.script(source)
    if type(source) ~= "string" then
        error("bad argument #1 to 'script' (string expected)", 2)
    end
    return setmetatable({ source = source, sha = sha1hex(source) },
                        script_mt)
end


--- Same as redis.script(source).
function client.script(self, source)
    return _M.script(source)
end


--- True when `v` is a script made by redis.script.
function _M.is_script(v)
    return getmetatable(v) == script_mt
end


-- SCRIPT LOAD on `conn`, unless the script is marked loaded for this
-- connection already; marks it.
function client._load(self, conn, script)
    if self.loaded[script.sha] then
        return true
    end
    local sha, err = conn:call("SCRIPT", "LOAD", script.source)
    if not sha then
        if conn:broken() then
            self:_lost(conn)
        end
        return nil, "script load failed: " .. tostring(err)
    end
    if sha ~= script.sha then
        return nil, "script load failed: server sha " .. tostring(sha)
                    .. " differs from " .. script.sha
    end
    self.loaded[sha] = true
    return true
end


-- Appends {EVALSHA, sha, #keys, keys..., args...} to a new array. The
-- pipeline (lua/wtt/redis/pipeline.lua) queues script runs with it too.
-- Used by the pipeline too (lua/wtt/redis/pipeline.lua).
function _M.evalsha_argv(script, keys, args, level)
    if getmetatable(script) ~= script_mt then
        error("bad argument #1 to 'eval' (script from redis.script "
              .. "expected)", level)
    end
    keys = keys or {}
    args = args or {}
    if type(keys) ~= "table" or type(args) ~= "table" then
        error("bad argument to 'eval' (keys and args must be arrays)",
              level)
    end
    local nk, na = #keys, #args
    local argv = { "EVALSHA", script.sha, nk }
    for i = 1, nk do
        argv[3 + i] = keys[i]
    end
    for i = 1, na do
        argv[3 + nk + i] = args[i]
    end
    return argv
end
local evalsha_argv = _M.evalsha_argv


-- A connection on which `script` is loaded (SCRIPT LOAD the first time).
-- @return conn | nil, err
function client._script_conn(self, script)
    local conn, err = self:_get()
    if not conn then
        return nil, err
    end
    local ok
    ok, err = self:_load(conn, script)
    if not ok then
        return nil, err
    end
    return conn
end


-- eval on a fresh connection after READONLY, without a further retry.
function client._eval_once(self, script, argv)
    local conn, err = self:_script_conn(script)
    if not conn then
        return nil, err
    end
    return self:_callv(conn, argv)
end


--- Runs a script with EVALSHA.
-- The script is loaded (SCRIPT LOAD) the first time this connection runs
-- it; a NOSCRIPT reply (SCRIPT FLUSH, a restarted or failed-over server)
-- loads it again and retries once, transparently. READONLY retries once
-- on a new connection, as call does.
-- @param script from redis.script
-- @param keys array of key names (KEYS)
-- @param args array of strings/numbers (ARGV)
-- @return the script's reply | nil, err (as call)
function client.eval(self, script, keys, args)
    local argv = evalsha_argv(script, keys, args, 3)
    local conn, err = self:_script_conn(script)
    if not conn then
        return nil, err
    end
    local res
    res, err = self:_callv(conn, argv)
    if res == nil and err ~= nil and self.conn == nil
       and is_readonly(err)
    then
        return self:_eval_once(script, argv)
    end
    if res == nil and err ~= nil and not conn:broken()
       and str_find(err, "^NOSCRIPT")
    then
        self.loaded[script.sha] = nil
        local ok
        ok, err = self:_load(conn, script)
        if not ok then
            return nil, err
        end
        res, err = self:_callv(conn, argv)
    end
    return res, err
end


return _M
