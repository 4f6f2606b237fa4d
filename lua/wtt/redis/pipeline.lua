--- Pipelines for wtt.redis: many commands and script runs in one round
-- trip, with scripts loaded first and NOSCRIPT entries re-run once.
-- `client` holds the method wtt.redis puts on every client (pipeline).

local internal = require "wtt.redis.internal"
local scripts = require "wtt.redis.scripts"

local type = type
local error = error
local pairs = pairs
local ipairs = ipairs
local select = select
local setmetatable = setmetatable
local str_find = string.find
local str_format = string.format
local check_command = internal.check_command
local is_readonly = internal.is_readonly
local evalsha_argv = scripts.evalsha_argv

local _M = {}

--- Client methods; wtt.redis copies them onto its client method table.
local client = {}
_M.client = client

local pipe = {}
local pipe_mt = { __index = pipe }

local NO_SCRIPTS = {}

--- Queues a command in the pipeline (same arguments as r:call).
function pipe.call(self, cmd, ...)
    check_command(cmd, 3)
    local n = select("#", ...)
    local argv = { cmd, ... }
    for i = 2, n + 1 do
        local t = type(argv[i])
        if t ~= "string" and t ~= "number" then
            error(str_format("bad argument #%d to 'call' (string or number "
                             .. "expected, got %s)", i, t), 2)
        end
    end
    self.n = self.n + 1
    self.cmds[self.n] = argv
end


--- Queues a script run (same arguments as r:eval). The script is loaded
-- before the pipeline is sent if this connection has not loaded it yet. An
-- entry that still gets NOSCRIPT (SCRIPT FLUSH since the load) is loaded
-- again and re-run once after the rest of the pipeline, and its reply
-- takes that entry's place.
function pipe.eval(self, script, keys, args)
    local argv = evalsha_argv(script, keys, args, 3)
    self.n = self.n + 1
    self.cmds[self.n] = argv
    self.scripts = self.scripts or {}
    self.scripts[script.sha] = script
end


--- Sends many commands in one round trip.
-- @param fn function(p) that queues commands with p:call(...) and
--   p:eval(script, keys, args); it runs before anything is sent
-- @return array of replies, one per command in order: the value,
--   redis.null for a nil reply, {err = msg} for an error reply |
--   nil, err on a transport failure (which commands ran is then unknown)
function client.pipeline(self, fn)
    if type(fn) ~= "function" then
        error("bad argument #1 to 'pipeline' (function expected)", 2)
    end
    local p = setmetatable({ n = 0, cmds = {} }, pipe_mt)
    fn(p)
    if p.n == 0 then
        return {}
    end
    local conn, err = self:_get()
    if not conn then
        return nil, err
    end
    for _, script in pairs(p.scripts or NO_SCRIPTS) do
        local ok
        ok, err = self:_load(conn, script)
        if not ok then
            return nil, err
        end
    end
    local res
    res, err = conn:pipeline(p.cmds)
    if not res then
        if conn:broken() then
            self:_lost(conn)
        end
        return nil, err
    end
    -- NOSCRIPT (a SCRIPT FLUSH since this connection loaded the script):
    -- load again and re-run those entries once, in order.
    local again
    for i = 1, p.n do
        local v = res[i]
        if type(v) == "table" and type(v.err) == "string"
           and is_readonly(v.err) and self.conn == conn
        then
            -- Not retried (the other entries ran); the next command goes
            -- to a new connection.
            self:_lost(conn)
        elseif type(v) == "table" and type(v.err) == "string"
           and str_find(v.err, "^NOSCRIPT")
        then
            again = again or {}
            again[#again + 1] = i
            self.loaded[p.cmds[i][2]] = nil
        end
    end
    if not again or self.conn ~= conn then
        return res
    end
    local cmds = {}
    for j, i in ipairs(again) do
        local ok
        ok, err = self:_load(conn, p.scripts[p.cmds[i][2]])
        if not ok then
            return nil, err
        end
        cmds[j] = p.cmds[i]
    end
    local res2
    res2, err = conn:pipeline(cmds)
    if not res2 then
        if conn:broken() then
            self:_lost(conn)
        end
        return nil, err
    end
    for j, i in ipairs(again) do
        res[i] = res2[j]
    end
    return res
end

return _M
