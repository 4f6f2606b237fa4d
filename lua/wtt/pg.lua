--- wtt.pg: PostgreSQL for routes and tools (docs/pg.md).
--
--     local pg = require "wtt.pg"
--     local db = assert(pg.connect(os.getenv("DATABASE_URL"),
--                                  { statement_timeout_ms = 5000 }))
--     local rows, n = db:read("SELECT id, status FROM audio_midi "
--                             .. "WHERE id = $1", id)
--     local count, err, sqlstate = db:exec(
--         "UPDATE audio_midi SET status = $1 WHERE id = $2", "failed", id)
--     local ok, err = db:tx(function(tx)
--         tx:exec("INSERT INTO ...", ...)
--         return tx:query("SELECT ...")
--     end)
--
-- Values only ever travel as parameters ($1..$n); nothing here puts a value
-- into SQL text. Runtime failures return `nil, err, sqlstate`; misuse (a
-- nil parameter, a table that is not pg.bytea, a nested transaction)
-- raises.
--
-- Reconnecting: a connection the server dropped is reset by the next call.
-- A statement that was not sent yet runs on the new session; a statement
-- that was in flight when the connection died is retried once only when it
-- came through `read` (the caller's promise that it is idempotent), never
-- inside a transaction. query/exec return the error instead: the statement
-- may or may not have run.

local core = require "wtt.core.pg"
local json = require "wtt.json"

local type = type
local error = error
local pairs = pairs
local pcall = pcall
local tostring = tostring
local select = select
local setmetatable = setmetatable
local getmetatable = getmetatable
local unpack = unpack
local str_format = string.format

local _M = {}

--- The SQL NULL, as a parameter and in results (equal to cjson.null).
_M.null = core.null

--- Marks a string as binary: sent as a bytea parameter, NUL bytes and all.
_M.bytea = core.bytea

--- Lowercase hex SHA-256 of a string.
_M.sha256hex = core.sha256hex

local CONNECT_OPTS = {
    connect_timeout = "number",
    statement_timeout_ms = "number",
    application_name = "string",
    reconnect = "boolean",
}

local null = core.null
local BYTEA_MT = getmetatable(core.bytea(""))

local db = {}
local db_mt = { __index = db }
local tx_methods = {}
local tx_mt = { __index = tx_methods }


--- Encodes a Lua value as JSON text for a json/jsonb parameter.
-- @param value table, string, number, boolean or pg.null
-- @return string
function _M.json(value)
    return json.encode(value)
end


--- Opens a connection.
-- @param url postgresql:// URL or "key=value" conninfo
-- @param opts { connect_timeout = s (10), statement_timeout_ms = ms,
--   application_name = "wtt", reconnect = true }
-- @return db | nil, err, sqlstate
function _M.connect(url, opts)
    if type(url) ~= "string" then
        error("bad argument #1 to 'connect' (database url expected)", 2)
    end
    local copts
    if opts ~= nil then
        if type(opts) ~= "table" then
            error("bad argument #2 to 'connect' (table expected)", 2)
        end
        copts = {}
        for k, v in pairs(opts) do
            local want = CONNECT_OPTS[k]
            if not want then
                error(str_format("bad argument #2 to 'connect' "
                                 .. "(unknown option '%s')", tostring(k)), 2)
            end
            if type(v) ~= want then
                error(str_format("bad argument #2 to 'connect' "
                                 .. "('%s' must be a %s)", k, want), 2)
            end
            if k ~= "reconnect" then
                copts[k] = v
            end
        end
    end
    local conn, err, state = core.connect(url, copts)
    if not conn then
        return nil, err, state
    end
    return setmetatable({
        conn = conn,
        reconnect = not (opts and opts.reconnect == false),
        reconnects = 0,
        _tx = nil,         -- the running transaction's state, if any
        closed = false,
    }, db_mt)
end


-- Records the first failure inside a transaction, and passes it on.
local function fail(self, err, state)
    local t = self._tx
    if t and not t.err then
        t.err, t.state = err, state
    end
    return nil, err, state
end


-- Makes sure the connection can take a statement that has not been sent
-- yet: resets a connection that is known lost or that the server closed
-- while it sat idle. Inside a transaction a lost connection is an error.
local function ready(self)
    local conn = self.conn
    if conn:check() then
        return true
    end
    if self._tx then
        return nil, "query failed: connection lost inside a transaction",
               "08006"
    end
    if not self.reconnect then
        return nil, "query failed: connection lost", "08006"
    end
    local ok, err, state = conn:reset()
    if not ok then
        return nil, "query failed: cannot reconnect: "
                    .. err:gsub("^reset failed: ", ""), state
    end
    self.reconnects = self.reconnects + 1
    return true
end


-- Whether a statement may be sent now: the handle is open and its
-- connection ready. A connection that cannot be made ready fails the
-- statement (fail: inside a transaction, the transaction too).
-- @return true | nil, err, sqlstate
local function can_send(self)
    if self.closed then
        return nil, "closed"
    end
    local ok, err, state = ready(self)
    if not ok then
        return fail(self, err, state)
    end
    return true
end


-- Raises on a value that is not a parameter. Levels count on the public
-- methods calling execute/run_script without a tail call (a tail call would
-- drop their frame and blame the wrong line).
local function check_params(fname, params, n)
    for i = 1, n do
        local v = params[i]
        local t = type(v)
        if t ~= "string" and t ~= "number" and t ~= "boolean"
           and v ~= null
           and not (t == "table" and getmetatable(v) == BYTEA_MT)
        then
            local why = v == nil and "nil; use pg.null for NULL"
                        or t == "table" and "a table; encode JSON with "
                                            .. "pg.json, binary with pg.bytea"
                        or t
            error(str_format("bad argument #%d to '%s' (parameter $%d is %s)",
                             i + 1, fname, i, why), 4)
        end
    end
end


-- Runs one statement. `idempotent`: retried once after a reconnect when
-- the connection died under it (outside transactions only).
local function execute(self, idempotent, fname, sql, ...)
    if type(sql) ~= "string" then
        error(str_format("bad argument #1 to '%s' (sql string expected)",
                         fname), 3)
    end
    local n = select("#", ...)
    local params = { ... }
    check_params(fname, params, n)
    local ok, err, state = can_send(self)
    if not ok then
        return nil, err, state
    end
    local conn = self.conn
    local rows, count, st = conn:query(sql, params, n)
    if rows then
        return rows, count
    end
    if idempotent and not self._tx and self.reconnect
       and conn:status() == "lost"
    then
        if conn:reset() then
            self.reconnects = self.reconnects + 1
            rows, count, st = conn:query(sql, params, n)
            if rows then
                return rows, count
            end
        end
    end
    return fail(self, count, st)
end


--- Runs a statement.
-- @param sql one statement with $1..$n placeholders
-- @param ... the parameters: strings, numbers, booleans, pg.null,
--   pg.bytea(s)
-- @return rows (array of tables keyed by column name), count
--   | nil, err, sqlstate
function db.query(self, sql, ...)
    local rows, count, state = execute(self, false, "query", sql, ...)
    return rows, count, state
end


--- Like query, for statements that may safely run twice (SELECTs, upserts
-- to the same value): after a lost connection it is retried once on a new
-- session.
-- @return rows, count | nil, err, sqlstate
function db.read(self, sql, ...)
    local rows, count, state = execute(self, true, "read", sql, ...)
    return rows, count, state
end


--- Runs a command and returns only the affected row count.
-- @return count | nil, err, sqlstate
function db.exec(self, sql, ...)
    local rows, count, state = execute(self, false, "exec", sql, ...)
    if not rows then
        return nil, count, state
    end
    return count
end


local function run_script(self, sql)
    if type(sql) ~= "string" then
        error("bad argument #1 to 'script' (sql string expected)", 3)
    end
    local ok, err, state = can_send(self)
    if not ok then
        return nil, err, state
    end
    local rows, count, st = self.conn:script(sql)
    if not rows then
        return fail(self, count, st)
    end
    return rows, count
end


--- Runs trusted SQL text holding several statements, without parameters
-- (migrations). Never put values into the text: use query.
-- @return rows, count of the last statement | nil, err, sqlstate
function db.script(self, sql)
    local rows, count, state = run_script(self, sql)
    return rows, count, state
end


-- Ends a transaction with ROLLBACK; a lost connection has already ended it.
local function rollback(self)
    if self.conn:status() == "ok" then
        self.conn:query("ROLLBACK")
    end
end


local function pack(...)
    return { n = select("#", ...), ... }
end


--- Runs fn(tx) inside BEGIN ... COMMIT on this connection.
--
-- A failed statement inside (or a lost connection) rolls back and returns
-- its `nil, err, sqlstate`, whatever fn returned. A Lua error in fn rolls
-- back and returns `nil, err` with the error value as raised. On success
-- returns fn's return values, or true when it returned none. A failed
-- COMMIT returns its error. Never retried.
-- @param fn function(tx): tx has query, read, exec and script
function db.tx(self, fn)
    if type(fn) ~= "function" then
        error("bad argument #1 to 'tx' (function expected)", 2)
    end
    if self._tx then
        error("nested transactions are not allowed", 2)
    end
    if self.closed then
        return nil, "closed"
    end
    -- BEGIN changes nothing by itself: safe to retry after a reconnect.
    local ok, err, state = execute(self, true, "tx", "BEGIN")
    if not ok then
        return nil, err, state
    end

    local t = { db = self }
    self._tx = t
    local res = pack(pcall(fn, setmetatable(t, tx_mt)))

    if not res[1] then
        rollback(self)
        self._tx = nil
        t.done = true
        return nil, res[2]
    end
    if not t.err and self.conn:tx_status() == "inerror" then
        t.err, t.state = "query failed: transaction aborted", "25P02"
    end
    if t.err then
        rollback(self)
        self._tx = nil
        t.done = true
        return nil, t.err, t.state
    end
    ok, err, state = execute(self, false, "tx", "COMMIT")
    self._tx = nil
    t.done = true
    if not ok then
        return nil, err, state
    end
    if res.n == 1 then
        return true
    end
    return unpack(res, 2, res.n)
end


--- Closes the connection; later calls return nil, "closed". Safe twice.
function db.close(self)
    self.closed = true
    self.conn:close()
    return true
end


--- "ok", "lost" (the next call reconnects) or "closed".
function db.status(self)
    return self.conn:status()
end


--- The server process id of the current session (changes on reconnect).
function db.backend_pid(self)
    return self.conn:backend_pid()
end


-- Transaction handles: the same calls, bound to the running transaction.

local function tx_db(t, name)
    if t.done then
        error("'" .. name .. "' on a transaction that is over", 3)
    end
    return t.db
end


function tx_methods.query(t, sql, ...)
    local rows, count, state = execute(tx_db(t, "query"), false, "query",
                                       sql, ...)
    return rows, count, state
end


function tx_methods.read(t, sql, ...)
    local rows, count, state = execute(tx_db(t, "read"), true, "read",
                                       sql, ...)
    return rows, count, state
end


function tx_methods.exec(t, sql, ...)
    local rows, count, state = execute(tx_db(t, "exec"), false, "exec",
                                       sql, ...)
    if not rows then
        return nil, count, state
    end
    return count
end


function tx_methods.script(t, sql)
    local rows, count, state = run_script(tx_db(t, "script"), sql)
    return rows, count, state
end


function tx_methods.tx()
    error("nested transactions are not allowed", 2)
end


return _M
