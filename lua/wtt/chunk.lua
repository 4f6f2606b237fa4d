--- Compiling the route and plugin files of a generation from their text.
--
-- A file is compiled from the text it was read with (a reload snapshot,
-- or the bytes the plugin loader read), never re-read from disk. Each file
-- gets its own globals, so a stray global in one file neither leaks into
-- nor breaks another. Failures come back as { file, line, message }, the
-- shape core/base/wtt_reload.c records and prints as "file:line: message".
--
-- Chunks are compiled with the JIT off (recursively), so the server's
-- watchdog can interrupt a runaway route: LuaJIT only runs hooks in
-- interpreted code (docs/http.md). The library in lua/ keeps the JIT.

local type = type
local tostring = tostring
local tonumber = tonumber
local xpcall = xpcall
local setfenv = setfenv
local loadstring = loadstring
local setmetatable = setmetatable
local traceback = debug.traceback
local str_match = string.match

local _M = {}

local JIT_OFF = os.getenv("WTT_ROUTE_JIT") ~= "on"


--- Splits "routes/x.lua:12: message" into { file, line, message }.
-- @param default_file the file to name when `msg` names none
function _M.failure(default_file, msg)
    if type(msg) == "table" and msg.message then
        return msg
    end
    msg = tostring(msg)
    local first = str_match(msg, "^[^\n]*")
    local file, line, text = str_match(first, "^(.-):(%d+): (.*)$")
    if file then
        return { file = file, line = tonumber(line), message = text,
                 traceback = msg }
    end
    return { file = default_file, line = 0, message = first, traceback = msg }
end


--- The first line of `source` that contains `needle` (plain text), or 0:
-- where a validation error points when Lua gives no line of its own.
function _M.line_of(source, needle)
    if type(source) ~= "string" or type(needle) ~= "string" then
        return 0
    end
    local n = 1
    for line in (source .. "\n"):gmatch("([^\n]*)\n") do
        if line:find(needle, 1, true) then
            return n
        end
        n = n + 1
    end
    return 0
end


--- Compiles file `f` ({ path, source }).
-- @param globals optional table of names the file sees besides _G's
--   (the plugin loader gives each file its set's `require`)
-- @return function | nil, failure
function _M.compile(f, globals)
    local chunk, err = loadstring(f.source, "@" .. f.path)
    if not chunk then
        return nil, _M.failure(f.path, err)
    end
    local env = {}
    for k, v in pairs(globals or {}) do
        env[k] = v
    end
    setfenv(chunk, setmetatable(env, { __index = _G }))
    if JIT_OFF then
        jit.off(chunk, true)
    end
    return chunk
end


--- The message handler for xpcall around a file's code (its main chunk,
-- and the server's route handlers): an error table (http.abort's) keeps
-- its shape, anything else becomes its text with a traceback.
function _M.on_error(err)
    if type(err) == "table" then
        return err
    end
    return traceback(tostring(err), 2)
end
local on_error = _M.on_error


--- Runs a compiled chunk.
-- @return its first value | nil, failure
function _M.run(chunk, path, ...)
    local ok, ret = xpcall(chunk, on_error, ...)
    if not ok then
        return nil, _M.failure(path, ret)
    end
    return ret
end


return _M
