--- wtt.migrate: applies lua/migrations/NNN_name.sql to PostgreSQL.
--
-- Every run takes a session advisory lock on LOCK_KEY first, so replicas
-- that start together apply each migration exactly once: the others wait
-- for the lock, then find everything applied. Each migration runs in its
-- own transaction together with the schema_migrations row that records it
-- (version, name, sha256 checksum of the file, applied_at). A run refuses
-- to apply anything when an applied migration's file changed (checksum
-- mismatch) or is gone. See docs/pg.md.

local sys = require "wtt.sys"
local pg = require "wtt.pg"
local runtime = require "wtt.runtime"

local type = type
local pairs = pairs
local ipairs = ipairs
local tostring = tostring
local tonumber = tonumber
local str_format = string.format
local tbl_concat = table.concat
local tbl_sort = table.sort

local _M = {}

--- pg_advisory_lock key: "wtt" and 1 (0x77747401).
_M.LOCK_KEY = 2004120577

local FILE_PATTERN = "^(%d+)_([%w_%-]+)%.sql$"

local CREATE_TABLE = [[
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)]]


--- The migrations directory: WTT_MIGRATIONS_DIR, else lua/migrations.
function _M.default_dir()
    local dir = os.getenv("WTT_MIGRATIONS_DIR")
    if dir and dir ~= "" then
        return dir
    end
    return runtime.lua_dir .. "/migrations"
end


--- Reads the migration files of `dir`, sorted by version.
-- @return { { version, name, file, path, sql, checksum }, ... }
--   | nil, err (missing dir, a .sql file with a bad name, a duplicate
--   version)
function _M.scan(dir)
    local names, err = sys.listdir(dir)
    if not names then
        return nil, "cannot read migrations: " .. err
    end
    local list, seen = {}, {}
    for _, file in ipairs(names) do
        if file:match("%.sql$") then
            local v, name = file:match(FILE_PATTERN)
            if not v then
                return nil, str_format("bad migration file name %s/%s "
                                       .. "(want NNN_name.sql)", dir, file)
            end
            local version = tonumber(v)
            if seen[version] then
                return nil, str_format("migrations %s and %s have the same "
                                       .. "version %d", seen[version], file,
                                       version)
            end
            seen[version] = file
            local path = dir .. "/" .. file
            local sql, rerr = sys.read_file(path)
            if not sql then
                return nil, "cannot read migration: " .. rerr
            end
            list[#list + 1] = {
                version = version, name = name, file = file, path = path,
                sql = sql, checksum = pg.sha256hex(sql),
            }
        end
    end
    tbl_sort(list, function(a, b) return a.version < b.version end)
    return list
end


-- schema_migrations rows by version, or an empty table when the table does
-- not exist yet.
local function applied_rows(db)
    local rows, err, state = db:read(
        "SELECT to_regclass('schema_migrations') IS NOT NULL AS present")
    if not rows then
        return nil, err, state
    end
    local by_version = {}
    if not rows[1].present then
        return by_version
    end
    rows, err, state = db:read("SELECT version, name, checksum, applied_at "
                               .. "FROM schema_migrations ORDER BY version")
    if not rows then
        return nil, err, state
    end
    for _, r in ipairs(rows) do
        by_version[r.version] = r
    end
    return by_version
end


--- Compares the files in `dir` with what the database recorded.
-- @return { files = scan(dir), applied = { [version] = row },
--   pending = { file, ... }, problems = { message, ... } } | nil, err
function _M.inspect(db, dir)
    dir = dir or _M.default_dir()
    local files, err = _M.scan(dir)
    if not files then
        return nil, err
    end
    local applied, aerr = applied_rows(db)
    if not applied then
        return nil, "cannot read schema_migrations: " .. aerr
    end

    local report = { files = files, applied = applied, pending = {},
                     problems = {} }
    local by_version = {}
    for _, m in ipairs(files) do
        by_version[m.version] = m
        local row = applied[m.version]
        if not row then
            report.pending[#report.pending + 1] = m
        elseif row.checksum ~= m.checksum then
            report.problems[#report.problems + 1] = str_format(
                "migration %s was edited after it was applied (checksum "
                .. "%s recorded, %s on disk): restore it and add a new "
                .. "migration instead", m.path, row.checksum, m.checksum)
        end
    end
    local versions = {}
    for v in pairs(applied) do
        versions[#versions + 1] = v
    end
    tbl_sort(versions)
    for _, v in ipairs(versions) do
        if not by_version[v] then
            local row = applied[v]
            report.problems[#report.problems + 1] = str_format(
                "migration %03d_%s.sql (version %d) was applied but its file "
                .. "is missing from %s", v, row.name, v, dir)
        end
    end
    return report
end


-- Applies the pending migrations of `report`, in order, one transaction
-- each. Stops at the first failure.
local function apply_pending(db, report, on_applied)
    local done = {}
    for _, m in ipairs(report.pending) do
        local t0 = sys.now()
        local ok, err = db:tx(function(tx)
            if not tx:script(m.sql) then
                return
            end
            tx:exec("INSERT INTO schema_migrations (version, name, checksum) "
                    .. "VALUES ($1, $2, $3)", m.version, m.name, m.checksum)
        end)
        if not ok then
            return nil, str_format("migration %s failed: %s", m.path,
                                   tostring(err)), done
        end
        done[#done + 1] = m
        if on_applied then
            on_applied(m, sys.now() - t0)
        end
    end
    return done
end


--- Applies every pending migration under the advisory lock.
-- @param db a wtt.pg connection, best opened with reconnect = false (a
--   reconnect would silently drop the lock)
-- @param opts { dir = migrations dir, on_applied = function(m, seconds) }
-- @return list of applied migrations (empty when up to date)
--   | nil, err, applied_so_far
function _M.run(db, opts)
    opts = opts or {}
    local dir = opts.dir or _M.default_dir()
    if type(dir) ~= "string" then
        error("bad option 'dir' (string expected)", 2)
    end
    -- Read the files before locking: a bad directory fails fast.
    local files, ferr = _M.scan(dir)
    if not files then
        return nil, ferr, {}
    end

    local ok, err = db:query("SELECT pg_advisory_lock($1)", _M.LOCK_KEY)
    if not ok then
        return nil, "cannot take the migration lock: " .. err, {}
    end

    local done, partial = nil, {}
    ok, err = db:exec(CREATE_TABLE)
    if not ok then
        err = "cannot create schema_migrations: " .. err
    else
        local report
        report, err = _M.inspect(db, dir)
        if report and #report.problems > 0 then
            report, err = nil, tbl_concat(report.problems, "\n")
        end
        if report then
            done, err, partial = apply_pending(db, report, opts.on_applied)
        end
    end

    -- A lost connection has released the lock already.
    if db:status() == "ok" then
        db:query("SELECT pg_advisory_unlock($1)", _M.LOCK_KEY)
    end
    if not done then
        return nil, err, partial or {}
    end
    return done
end


return _M
