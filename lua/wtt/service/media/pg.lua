--- The media store in PostgreSQL large objects (WTT_MEDIA_STORE=pg): every
-- web replica on the same database sees every file, so a worker may
-- download from, and post results to, any replica (docs/operations.md,
-- "The shared media store").
--
-- Table media_objects (migration 004) maps a name to its large object.
-- Writes create the object, write it in chunks (lo_put) and insert the row
-- in one transaction: a name is visible only once its bytes are complete,
-- and a failed or refused write leaves no object behind (large objects are
-- transactional). A second write of a name that exists (a retried worker
-- posting the same bytes under their content name) changes nothing. A
-- removal deletes the row and unlinks the object in one transaction.
--
-- C code that needs a path (the posteriorgram loader) and large downloads
-- read through a local cache: a directory of complete copies keyed by name,
-- written atomically and bounded to `cache_bytes` (what this serving
-- thread used least recently goes first). Names are never reused, so a copy never goes
-- stale; a removed name's copy is deleted with it here, and ages out of
-- other replicas' caches. The tab cache (rendered tablature, derived and
-- cheap to redo) lives in the same bounded directory, per replica.

local http = require "wtt.http"
local pg = require "wtt.pg"
local sys = require "wtt.sys"
local cache = require "wtt.service.media.cache"

local io_open = io.open
local select = select
local unpack = unpack
local os_remove = os.remove
local os_rename = os.rename
local str_sub = string.sub

local _M = {}
local mt = { __index = _M }

_M.kind = "pg"

--- Bytes per lo_put / lo_get round trip: large enough to keep the round
-- trips few, small enough that no statement holds a whole recording.
_M.CHUNK = 1048576

--- Answers up to this long are read from PostgreSQL straight into the
-- response (results, a player's seek); longer ones go through the cache
-- and are sent from the file.
_M.DIRECT_MAX = 4 * 1048576

-- Raised inside a write transaction when another writer inserted the name
-- first: the transaction rolls back (our object with it), and the write
-- counts as done, since the name now holds the same bytes.
local ALREADY = setmetatable({}, { __tostring = function()
    return "media object exists"
end })


--- A store on a PostgreSQL connection.
-- @param opts { db = function() -> handle | nil, err (this state's
--   connection), cache_dir = path, cache_bytes = n,
--   valid = function(name) -> bool, random_hex = function(n) -> hex }
function _M.new(opts)
    assert(type(opts.db) == "function", "db function expected")
    assert(type(opts.cache_dir) == "string", "cache dir expected")
    assert(type(opts.valid) == "function", "name check expected")
    assert(type(opts.random_hex) == "function", "random_hex expected")
    return setmetatable({
        db = opts.db, root = opts.cache_dir,
        cache = cache.new(opts.cache_dir, opts.cache_bytes),
        valid = opts.valid, random_hex = opts.random_hex,
    }, mt)
end


local function check_name(self, name)
    assert(self.valid(name), "invalid media name")
end


local function handle(self)
    local db, err = self.db()
    if not db then
        return nil, "media store: " .. tostring(err)
    end
    return db
end


-- A failed statement as an error string.
local function sql_err(what, err, state)
    return "media store: " .. what .. ": " .. tostring(err)
           .. (state and " (" .. state .. ")" or "")
end


local function pack(...)
    return { n = select("#", ...), ... }
end


---------------------------------------------------------------- writes

-- Writes a new object under `name` from `next_chunk()` (a string per
-- call, nil at the end) in one transaction.
-- @return true | nil, err
local function write(self, name, next_chunk)
    local db, err = handle(self)
    if not db then
        return nil, err
    end
    local rows, state
    rows, err, state = db:read("SELECT 1 AS x FROM media_objects "
                               .. "WHERE name = $1", name)
    if not rows then
        return nil, sql_err("lookup", err, state)
    end
    if rows[1] then
        return true
    end
    local ok
    ok, err, state = db:tx(function(tx)
        local r, e, s = tx:query("SELECT lo_create(0) AS oid")
        if not r then
            return nil, e, s
        end
        local oid, size = r[1].oid, 0
        while true do
            local chunk = next_chunk()
            if chunk == nil then
                break
            end
            if #chunk > 0 then
                local n
                n, e, s = tx:exec("SELECT lo_put($1::oid, $2::bigint, $3)",
                                  oid, size, pg.bytea(chunk))
                if not n then
                    return nil, e, s
                end
                size = size + #chunk
            end
        end
        local n
        n, e, s = tx:exec("INSERT INTO media_objects (name, oid, size) "
                          .. "VALUES ($1, $2, $3) "
                          .. "ON CONFLICT (name) DO NOTHING",
                          name, oid, size)
        if not n then
            return nil, e, s
        end
        if n == 0 then
            error(ALREADY)
        end
        return true
    end)
    if ok then
        return true
    end
    if err == ALREADY then
        return true
    end
    if type(err) == "table" then
        -- An abort (the route deadline) caught by the transaction's pcall:
        -- rolled back, and passed on so the route answers as it asks.
        error(err, 0)
    end
    return nil, sql_err("cannot store " .. name, err, state)
end


--- Stores `bytes` under `name`; a name that exists keeps its bytes.
-- @return true | nil, err
function _M.put(self, name, bytes)
    check_name(self, name)
    local off, chunk = 1, _M.CHUNK
    return write(self, name, function()
        if off > #bytes then
            return nil
        end
        local s = str_sub(bytes, off, off + chunk - 1)
        off = off + chunk
        return s
    end)
end


--- Stores the file at `src` under `name`, read and written in chunks
-- (never the whole file in memory). `src` is left in place.
-- @return true | nil, err
function _M.put_file(self, name, src)
    check_name(self, name)
    local f, err = io_open(src, "rb")
    if not f then
        return nil, "cannot read " .. src .. ": " .. tostring(err)
    end
    local rerr
    local ok, werr = write(self, name, function()
        local s, e = f:read(_M.CHUNK)
        if not s and e then
            rerr = e
            error("cannot read " .. src .. ": " .. tostring(e))
        end
        return s
    end)
    f:close()
    if not ok then
        return nil, rerr and ("cannot read " .. src .. ": " .. rerr) or werr
    end
    return true
end


--- Stores an uploaded temp file (a req.files entry) under `name`; the
-- temp file is removed after, stored or not.
-- @return true | nil, err
function _M.keep_upload(self, req, file, name)
    local ok, err = self:put_file(name, file.path)
    os_remove(file.path)
    return ok, err
end


---------------------------------------------------------------- reads

-- The row of `name`: { oid, size } | nil (missing) | nil, err.
local function lookup(self, name)
    check_name(self, name)
    local db, err = handle(self)
    if not db then
        return nil, err
    end
    local rows, state
    rows, err, state = db:read("SELECT oid, size FROM media_objects "
                               .. "WHERE name = $1", name)
    if not rows then
        return nil, sql_err("lookup", err, state)
    end
    return rows[1]
end


--- true | false | nil, err (the database failed).
function _M.exists(self, name)
    local row, err = lookup(self, name)
    if err then
        return nil, err
    end
    return row ~= nil
end


--- The size of `name` in bytes | nil, "not found" | nil, err.
function _M.size(self, name)
    local row, err = lookup(self, name)
    if not row then
        return nil, err or "not found"
    end
    return row.size
end


-- `len` bytes of object `oid` from `off`.
local function lo_range(self, oid, off, len)
    local db, err = handle(self)
    if not db then
        return nil, err
    end
    local rows, state
    rows, err, state = db:read("SELECT lo_get($1::oid, $2::bigint, $3::int) "
                               .. "AS b", oid, off, len)
    if not rows then
        return nil, sql_err("read", err, state)
    end
    return rows[1].b
end


--- `len` bytes of `name` from byte `off` (fewer at the end) | nil, err.
function _M.read_range(self, name, off, len)
    local row, err = lookup(self, name)
    if not row then
        return nil, err or "not found"
    end
    if len <= 0 or off >= row.size then
        return ""
    end
    local parts = {}
    local stop = math.min(off + len, row.size)
    while off < stop do
        local n = math.min(_M.CHUNK, stop - off)
        local s
        s, err = lo_range(self, row.oid, off, n)
        if not s then
            return nil, err
        end
        parts[#parts + 1] = s
        off = off + n
    end
    return table.concat(parts)
end


--- All of `name`'s bytes | nil, err.
function _M.read(self, name)
    local row, err = lookup(self, name)
    if not row then
        return nil, err or "not found"
    end
    return self:read_range(name, 0, row.size)
end


---------------------------------------------------------------- removal

--- Removes `name`: the row and its object in one transaction, and this
-- replica's cached copy. Removing a missing name is not an error.
-- @return true | nil, err
function _M.remove(self, name)
    check_name(self, name)
    os_remove(self.root .. "/" .. name)
    local db, err = handle(self)
    if not db then
        return nil, err
    end
    local ok, state
    ok, err, state = db:tx(function(tx)
        local rows, e, s = tx:query("DELETE FROM media_objects "
                                    .. "WHERE name = $1 RETURNING oid", name)
        if not rows then
            return nil, e, s
        end
        if rows[1] then
            local n
            n, e, s = tx:exec("SELECT lo_unlink($1::oid)", rows[1].oid)
            if not n then
                return nil, e, s
            end
        end
        return true
    end)
    if not ok then
        return nil, sql_err("cannot remove " .. name, err, state)
    end
    return true
end


---------------------------------------------------------------- cache

-- A directory that cannot be made shows as the write's own error next.
local function mkdir_p(dir)
    sys.mkdirs(dir)
    return dir
end


function _M.cache_dir(self)
    return mkdir_p(self.root)
end


--- Keeps the cache within its budget after `keep` was added
-- (lua/wtt/service/media/cache.lua).
function _M.cache_added(self, keep)
    self.cache:added(keep)
end


--- A local file holding `name` (this replica's cached copy, fetched in
-- chunks on a miss), for C code that reads paths and for large answers
-- | nil, "not found" | nil, err.
function _M.local_path(self, name)
    check_name(self, name)
    local path = self.root .. "/" .. name
    if sys.exists(path) == "file" then
        self.cache:touch(name)
        return path
    end
    local row, err = lookup(self, name)
    if not row then
        return nil, err or "not found"
    end
    mkdir_p(self.root)
    local tmp = path .. ".part" .. self.random_hex(8)
    local f
    f, err = io_open(tmp, "wb")
    if not f then
        return nil, "media cache: " .. tostring(err)
    end
    -- pcall: an error raised here (the route deadline's, out of memory)
    -- must not leave the temp file behind; it is raised again after.
    local pok, ok, werr = pcall(function()
        local off = 0
        while off < row.size do
            local n = math.min(_M.CHUNK, row.size - off)
            local s, e = lo_range(self, row.oid, off, n)
            if not s then
                return nil, e
            end
            if #s ~= n then
                return nil, "media store: " .. name .. " is shorter than "
                            .. "its recorded size"
            end
            local wok, we = f:write(s)
            if not wok then
                return nil, we
            end
            off = off + n
        end
        return true
    end)
    local closed, cerr = f:close()
    if not pok then
        os_remove(tmp)
        error(ok, 0)
    end
    err = werr
    if ok and closed then
        ok, err = os_rename(tmp, path)
    else
        ok, err = nil, err or cerr
    end
    if not ok then
        os_remove(tmp)
        return nil, "media cache: " .. tostring(err)
    end
    self:cache_added(name)
    return path
end


--- Calls `fn(path)` with this replica's copy of `name` and returns what it
-- returns. Another serving thread (its own Lua state, its own idea of what
-- is recent) may evict the copy between the fetch and `fn` opening it:
-- when `fn` fails (returns nil or raises) and the copy is gone, it is
-- fetched again and `fn` called once more.
-- @return fn's results | nil, err (no such name, the store failed)
function _M.with_local_path(self, name, fn)
    for attempt = 1, 2 do
        local path, err = self:local_path(name)
        if not path then
            return nil, err
        end
        local res = pack(pcall(fn, path))
        local failed = not res[1] or res[2] == nil
        if not failed or attempt == 2 or sys.exists(path) == "file" then
            if not res[1] then
                error(res[2], 0)
            end
            return unpack(res, 2, res.n)
        end
    end
end


--- Answers a GET for `name`, Range included (http.range_answer: the same
-- statuses, Content-Range and Content-Length as a file): short answers
-- straight from PostgreSQL, long ones from this replica's cached copy.
-- @return status, body, headers | nil when there is no such name
--   | nil, err (the database failed)
function _M.serve(self, req, name, opts)
    local row, err = lookup(self, name)
    if not row then
        return nil, err
    end
    local status, off, len, headers = http.range_answer(req, row.size, opts)
    if status == 416 then
        return 416, "", headers
    end
    if len <= _M.DIRECT_MAX then
        local bytes = ""
        if len > 0 then
            bytes, err = lo_range(self, row.oid, off, len)
            if not bytes then
                return nil, err
            end
        end
        return status, bytes, headers
    end
    opts = opts or {}
    opts.nofollow = true
    local a, b, c = self:with_local_path(name, function(path)
        return http.file(req, path, opts)
    end)
    if not a then
        return nil, b ~= "not found" and b or nil
    end
    return a, b, c
end


return _M
