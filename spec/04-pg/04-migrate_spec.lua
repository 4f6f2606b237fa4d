local pgh = require "spec.support.pg"
local helpers = require "spec.support.server"
local pg = require "wtt.pg"
local sys = require "wtt.sys"
local runtime = require "wtt.runtime"

local MIGRATIONS = runtime.source_dir .. "/lua/migrations"

local MORE = "CREATE TABLE more (i int);"

-- Slow enough that two processes started together overlap.
local SLOW = [[
SELECT pg_sleep(0.5);
CREATE TABLE slow_one (id int);
]]


describe("wtt migrate #pg", function()
    local srv, tmp, ndb, nrun = nil, nil, 0, 0

    setup(function()
        srv = pgh.start()
        tmp = assert(sys.mkdtemp("wtt-migrate-spec-"))
    end)
    teardown(function()
        if srv then srv:stop() end
        if tmp then sys.rmtree(tmp) end
    end)

    -- A fresh database and a private migrations folder holding only the
    -- first migration: the migrator's rules are tested on a known set,
    -- whatever later migrations the project adds.
    local function fresh()
        ndb = ndb + 1
        local url = srv:createdb("m" .. ndb)
        local dir = tmp .. "/migrations" .. ndb
        assert(os.execute("mkdir -p '" .. dir .. "'"))
        assert(sys.write_file(dir .. "/001_audio_midi.sql",
            (assert(sys.read_file(MIGRATIONS .. "/001_audio_midi.sql")))))
        return url, dir
    end

    it("applies every migration the project ships", function()
        local url = srv:createdb("all")
        local pid = assert(sys.spawn({ runtime.exe, "migrate" },
            { env = { DATABASE_URL = url, WTT_MIGRATIONS_DIR = false },
              stdout = tmp .. "/all.out", stderr = tmp .. "/all.out" }))
        local how, code = sys.wait(pid, 60)
        assert.equal("exited", how)
        assert.equal(0, code, sys.read_file(tmp .. "/all.out"))
        local files = 0
        for _, name in ipairs(assert(sys.listdir(MIGRATIONS))) do
            files = files + (name:match("^%d+_.+%.sql$") and 1 or 0)
        end
        local db = assert(pg.connect(url))
        local rows = assert(db:query("SELECT version FROM schema_migrations"))
        db:close()
        assert.equal(files, #rows)
    end)

    -- Starts `wtt migrate args...`; returns a function that waits for it
    -- and returns exit code, stdout, stderr.
    local function start(url, dir, args)
        nrun = nrun + 1
        local out = ("%s/out.%d"):format(tmp, nrun)
        local err = ("%s/err.%d"):format(tmp, nrun)
        local argv = { runtime.exe, "migrate" }
        for _, a in ipairs(args or {}) do
            argv[#argv + 1] = a
        end
        local pid = assert(sys.spawn(argv, {
            env = { DATABASE_URL = url or false, WTT_MIGRATIONS_DIR = dir,
                    WTT_LOG_LEVEL = "warn" },
            stdout = out, stderr = err,
        }))
        return function()
            local how, code = sys.wait(pid, 60)
            if not how then
                sys.kill(pid, "KILL")
                sys.wait(pid, 5)
            end
            assert.equal("exited", how)
            return code, sys.read_file(out) or "", sys.read_file(err) or ""
        end
    end

    local function migrate(url, dir, args)
        return start(url, dir, args)()
    end

    local function versions(url)
        local db = assert(pg.connect(url))
        local rows = assert(db:query("SELECT version, name, checksum "
                                     .. "FROM schema_migrations "
                                     .. "ORDER BY version"))
        db:close()
        return rows
    end

    it("applies the migrations and records them", function()
        local url, dir = fresh()
        local code, out, err = migrate(url, dir)
        assert.equal(0, code, err)
        assert.matches("applied 001_audio_midi.sql", out)
        local sql = assert(sys.read_file(dir .. "/001_audio_midi.sql"))
        assert.same({ { version = 1, name = "audio_midi",
                        checksum = pg.sha256hex(sql) } }, versions(url))
        local db = assert(pg.connect(url))
        local rows = assert(db:query("SELECT applied_at "
                                     .. "FROM schema_migrations"))
        assert.matches("^%d%d%d%d%-.*Z$", rows[1].applied_at)
        db:close()
    end)

    it("is a no-op the second time", function()
        local url, dir = fresh()
        assert.equal(0, (migrate(url, dir)))
        local code, out, err = migrate(url, dir)
        assert.equal(0, code, err)
        assert.matches("up to date", out)
        assert.not_matches("applied 001", out)
        assert.equal(1, #versions(url))
    end)

    it("takes the URL from --database-url and the dir from --dir", function()
        local url, dir = fresh()
        local code, out, err = migrate(nil, "/nonexistent",
                                       { "--database-url", url,
                                         "--dir=" .. dir })
        assert.equal(0, code, err)
        assert.matches("applied 001_audio_midi.sql", out)
    end)

    it("needs a database URL", function()
        local code, _, err = migrate(nil, MIGRATIONS)
        assert.equal(2, code)
        assert.matches("DATABASE_URL is not set", err)
    end)

    it("fails cleanly when the database is unreachable", function()
        local port = assert(sys.free_port())
        local code, _, err = migrate(
            ("postgresql://postgres@127.0.0.1:%d/postgres"):format(port),
            MIGRATIONS)
        assert.equal(1, code)
        assert.matches("connect failed", err)
    end)

    it("--status lists applied and pending migrations", function()
        local url, dir = fresh()
        local code, out = migrate(url, dir, { "--status" })
        assert.equal(0, code)
        assert.matches("pending%s+001_audio_midi.sql", out)
        assert.matches("0 applied, 1 pending", out)
        assert.equal(0, (migrate(url, dir)))
        assert(sys.write_file(dir .. "/002_more.sql", MORE))
        code, out = migrate(url, dir, { "--status" })
        assert.equal(0, code)
        assert.matches("applied%s+001_audio_midi.sql%s+%d%d%d%d%-", out)
        assert.matches("pending%s+002_more.sql", out)
        assert.matches("1 applied, 1 pending", out)
    end)

    it("applies each migration once when two run at the same time", function()
        local url, dir = fresh()
        assert(sys.write_file(dir .. "/002_slow.sql", SLOW))
        local a = start(url, dir)
        local b = start(url, dir)
        local code_a, out_a, err_a = a()
        local code_b, out_b, err_b = b()
        assert.equal(0, code_a, err_a)
        assert.equal(0, code_b, err_b)
        local both = out_a .. out_b
        local _, n1 = both:gsub("applied 001_audio_midi%.sql", "")
        local _, n2 = both:gsub("applied 002_slow%.sql", "")
        assert.equal(1, n1)
        assert.equal(1, n2)
        assert.matches("up to date", both)
        local rows = versions(url)
        assert.equal(2, #rows)
        assert.same({ 1, 2 }, { rows[1].version, rows[2].version })
    end)

    it("refuses when an applied migration was edited", function()
        local url, dir = fresh()
        assert.equal(0, (migrate(url, dir)))
        local file = dir .. "/001_audio_midi.sql"
        assert(sys.write_file(file, assert(sys.read_file(file))
                                    .. "\n-- an innocent comment\n"))
        assert(sys.write_file(dir .. "/002_more.sql", MORE))
        local code, _, err = migrate(url, dir)
        assert.equal(1, code)
        assert.matches("001_audio_midi.sql was edited after it was applied",
                       err, 1, true)
        assert.matches(file, err, 1, true)
        assert.equal(1, #versions(url))          -- 002 was not applied
        code = migrate(url, dir, { "--status" })
        assert.equal(1, code)
    end)

    it("refuses when an applied migration's file is missing", function()
        local url, dir = fresh()
        assert(sys.write_file(dir .. "/002_more.sql", MORE))
        assert.equal(0, (migrate(url, dir)))
        assert(os.remove(dir .. "/002_more.sql"))
        local code, _, err = migrate(url, dir)
        assert.equal(1, code)
        assert.matches("002_more.sql (version 2) was applied but its file is "
                       .. "missing", err, 1, true)
    end)

    it("rolls back a failing migration and names it", function()
        local url, dir = fresh()
        assert(sys.write_file(dir .. "/002_broken.sql",
                              "CREATE TABLE half (i int);\nSELEC oops;\n"))
        local code, out, err = migrate(url, dir)
        assert.equal(1, code)
        assert.matches("applied 001_audio_midi.sql", out)
        assert.matches("002_broken.sql failed: query failed: syntax error",
                       err, 1, true)
        assert.equal(1, #versions(url))
        local db = assert(pg.connect(url))
        local rows = assert(db:query(
            "SELECT to_regclass('half') IS NULL AS gone"))
        assert.is_true(rows[1].gone)
        -- The advisory lock was released: a fixed file applies.
        db:close()
        assert(sys.write_file(dir .. "/002_broken.sql",
                              "CREATE TABLE half (i int);\n"))
        assert.equal(0, (migrate(url, dir)))
        assert.equal(2, #versions(url))
    end)

    it("refuses a .sql file without a version", function()
        local url, dir = fresh()
        assert(sys.write_file(dir .. "/extra.sql", "SELECT 1;"))
        local code, _, err = migrate(url, dir)
        assert.equal(1, code)
        assert.matches("bad migration file name .*extra%.sql", err)
    end)

    describe("the audio_midi table", function()
        local db

        setup(function()
            local url, dir = fresh()
            assert.equal(0, (migrate(url, dir)))
            db = assert(pg.connect(url))
        end)
        teardown(function()
            if db then db:close() end
        end)

        it("fills in defaults", function()
            local rows = assert(db:query(
                "INSERT INTO audio_midi (original_name, audio_path) "
                .. "VALUES ($1, $2) RETURNING *", "song.wav", "a/song.wav"))
            local r = rows[1]
            assert.matches("^%x+%-%x+%-%x+%-%x+%-%x+$", r.id)
            assert.equal("pending", r.status)
            assert.same({}, r.options)
            assert.equal(pg.null, r.midi_path)
            assert.equal(pg.null, r.task_id)
            assert.matches("Z$", r.created_at)
            assert.equal(r.created_at, r.updated_at)
        end)

        it("accepts each status and rejects others", function()
            for _, s in ipairs({ "pending", "processing", "completed",
                                 "failed" })
            do
                assert(db:exec(
                    "INSERT INTO audio_midi (status) VALUES ($1)", s))
            end
            local n, err, state = db:exec(
                "INSERT INTO audio_midi (status) VALUES ($1)", "done")
            assert.is_nil(n)
            assert.matches("audio_midi_status_check", err)
            assert.equal("23514", state)
            n, err, state = db:exec(
                "INSERT INTO audio_midi (status) VALUES ($1)", pg.null)
            assert.is_nil(n)
            assert.equal("23502", state)
        end)

        it("keeps task_id unique", function()
            assert(db:exec(
                "INSERT INTO audio_midi (task_id) VALUES ($1)", "t-1"))
            local n, err, state = db:exec(
                "INSERT INTO audio_midi (task_id) VALUES ($1)", "t-1")
            assert.is_nil(n)
            assert.matches("audio_midi_task_id_key", err)
            assert.equal("23505", state)
        end)

        it("stores options as a JSON object", function()
            local rows = assert(db:query(
                "INSERT INTO audio_midi (options) VALUES ($1) "
                .. "RETURNING options",
                pg.json({ onset_threshold = 0.5, tab = true })))
            assert.same({ onset_threshold = 0.5, tab = true }, rows[1].options)
            local n, _, state = db:exec(
                "INSERT INTO audio_midi (options) VALUES ($1)", "[1, 2]")
            assert.is_nil(n)
            assert.equal("23514", state)
        end)

        it("rejects negative durations and note counts", function()
            local n, _, state = db:exec(
                "INSERT INTO audio_midi (duration_s) VALUES ($1)", -1)
            assert.is_nil(n)
            assert.equal("23514", state)
            n, _, state = db:exec(
                "INSERT INTO audio_midi (note_count) VALUES ($1)", -1)
            assert.is_nil(n)
            assert.equal("23514", state)
        end)

        it("moves updated_at on every update", function()
            local rows = assert(db:query(
                "INSERT INTO audio_midi (created_at, updated_at) VALUES "
                .. "($1, $1) RETURNING id", "2000-01-01T00:00:00Z"))
            local id = rows[1].id
            assert.equal(1, db:exec(
                "UPDATE audio_midi SET status = $1, duration_s = $2, "
                .. "note_count = $3 WHERE id = $4", "completed", 12.5, 440, id))
            rows = assert(db:query(
                "SELECT * FROM audio_midi WHERE id = $1", id))
            assert.equal("2000-01-01T00:00:00Z", rows[1].created_at)
            assert.is_true(rows[1].updated_at > "2001")
            assert.equal(12.5, rows[1].duration_s)
            assert.equal(440, rows[1].note_count)
        end)

        it("has indexes on status and created_at", function()
            local rows = assert(db:query(
                "SELECT indexname FROM pg_indexes WHERE tablename = $1 "
                .. "ORDER BY indexname", "audio_midi"))
            local names = {}
            for _, r in ipairs(rows) do
                names[#names + 1] = r.indexname
            end
            assert.same({ "audio_midi_created_at_idx", "audio_midi_pkey",
                          "audio_midi_status_created_at_idx",
                          "audio_midi_task_id_key" }, names)
        end)
    end)
end)
