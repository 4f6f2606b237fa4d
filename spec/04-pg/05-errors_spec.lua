local pgh = require "spec.support.pg"
local pg = require "wtt.pg"
local core = require "wtt.core.pg"
local sys = require "wtt.sys"


describe("wtt.pg: errors and misuse #pg", function()
    local srv, db

    setup(function()
        srv = pgh.start()
        db = assert(pg.connect(srv.url, { application_name = "errors-spec" }))
        assert(db:exec("CREATE TABLE u (id int PRIMARY KEY)"))
        assert(db:exec("INSERT INTO u VALUES (1)"))
    end)
    teardown(function()
        if db then db:close() end
        if srv then srv:stop() end
    end)

    describe("SQL errors return nil, err, sqlstate", function()
        local cases = {
            { "unique violation", "INSERT INTO u VALUES (1)", "23505",
              "duplicate key value violates unique constraint \"u_pkey\"" },
            { "syntax error", "SELEC 1", "42601",
              "syntax error at or near \"SELEC\"" },
            { "undefined table", "SELECT * FROM nope", "42P01",
              "relation \"nope\" does not exist" },
            { "bad input", "SELECT 'abc'::int", "22P02",
              "invalid input syntax for type integer: \"abc\"" },
            { "division by zero", "SELECT 1 / 0", "22012",
              "division by zero" },
        }
        for _, c in ipairs(cases) do
            it(c[1], function()
                local rows, err, state = db:query(c[2])
                assert.is_nil(rows)
                assert.equal("query failed: " .. c[4], err)
                assert.equal(c[3], state)
            end)
        end

        it("exec and read report the same way", function()
            local n, err, state = db:exec("INSERT INTO u VALUES ($1)", 1)
            assert.is_nil(n)
            assert.matches("^query failed: duplicate key", err)
            assert.equal("23505", state)
            local rows
            rows, err, state = db:read("SELECT $1::int", "x")
            assert.is_nil(rows)
            assert.equal("22P02", state)
        end)

        it("leave the connection usable", function()
            db:query("SELEC")
            assert.same({ { one = 1 } }, assert(db:query("SELECT 1 AS one")))
        end)
    end)

    it("cancels a statement past statement_timeout_ms (57014)", function()
        local quick = assert(pg.connect(srv.url,
                                        { statement_timeout_ms = 200 }))
        local t0 = sys.now()
        local rows, err, state = quick:query("SELECT pg_sleep(5)")
        assert.is_nil(rows)
        assert.equal("query failed: canceling statement due to statement "
                     .. "timeout", err)
        assert.equal("57014", state)
        assert.is_true(sys.now() - t0 < 3)
        assert.same({ { t = "200ms" } },
                    assert(quick:query("SELECT current_setting("
                                       .. "'statement_timeout') AS t")))
        quick:close()
    end)

    it("sets the session up: UTC, ISO dates, application_name", function()
        local r = assert(db:query(
            "SELECT current_setting('TimeZone') AS tz, "
            .. "current_setting('DateStyle') AS ds, "
            .. "current_setting('application_name') AS app, "
            .. "current_setting('client_encoding') AS enc"))[1]
        assert.same({ tz = "UTC", ds = "ISO, YMD", app = "errors-spec",
                      enc = "UTF8" }, r)
    end)

    it("refuses COPY and stays usable", function()
        local rows, err, state = db:query("COPY u TO STDOUT")
        assert.is_nil(rows)
        assert.equal("query failed: COPY is not supported", err)
        assert.equal("0A000", state)
        rows, err, state = db:query("COPY u FROM STDIN")
        assert.is_nil(rows)
        assert.equal("0A000", state)
        assert(db:query("SELECT 1"))
        assert.equal("idle", db.conn:tx_status())
    end)

    it("returns no rows for an empty statement", function()
        local rows, n = db:query("")
        assert.same({}, rows)
        assert.equal(0, n)
    end)

    it("runs a multi-statement script", function()
        local rows, n = db:script("CREATE TABLE s1 (i int); "
                                  .. "INSERT INTO s1 VALUES (1), (2); "
                                  .. "SELECT count(*) AS n FROM s1")
        assert.same({ { n = 2 } }, rows)
        assert.equal(1, n)
        local r, err, state = db:script("SELECT 1; SELEC 2")
        assert.is_nil(r)
        assert.matches("syntax error", err)
        assert.equal("42601", state)
        assert.has_error(function() db.conn:script("SELECT 1", {}) end)
    end)

    describe("connect", function()
        it("reports an unknown database with the server's message", function()
            local url = srv.url:gsub("/postgres$", "/nope")
            local c, err, state = pg.connect(url)
            assert.is_nil(c)
            assert.matches(
                "^connect failed: .*database \"nope\" does not exist", err)
            assert.equal("08001", state)
        end)

        it("reports a malformed URL", function()
            local c, err = pg.connect("postgresql://[oops")
            assert.is_nil(c)
            assert.matches("^connect failed: ", err)
        end)

        it("raises on bad options", function()
            assert.has_error(function() pg.connect(nil) end)
            assert.has_error(function() pg.connect(srv.url, { bogus = 1 }) end)
            assert.has_error(function()
                pg.connect(srv.url, { statement_timeout_ms = "5" })
            end)
            assert.has_error(function()
                core.connect(srv.url, { connect_timeout = -1 })
            end)
        end)
    end)

    describe("misuse raises", function()
        it("a nil parameter (NULL is pg.null)", function()
            local ok, err = pcall(function() db:query("SELECT $1", nil) end)
            assert.is_false(ok)
            assert.matches("05%-errors_spec%.lua:%d+: bad argument #2 to "
                           .. "'query' %(parameter %$1 is nil; use pg.null "
                           .. "for NULL%)$", err)
            ok, err = pcall(function() db:exec("SELECT $1, $2", 1, nil) end)
            assert.matches("bad argument #3 to 'exec' %(parameter %$2 is nil",
                           err)
            assert.has_error(function()
                db.conn:query("SELECT $1", {}, 1)
            end, "bad argument #2 to 'query' (parameter $1 is nil (use "
                 .. "pg.null for NULL))")
        end)

        it("a table that is not pg.bytea, a function", function()
            assert.has_error(function() db:query("SELECT $1", { 1 }) end)
            assert.has_error(function() db:query("SELECT $1", print) end)
            assert.has_error(function()
                db:query("SELECT $1", io.stdout)
            end)
            assert.has_error(function()
                db.conn:query("SELECT $1", { { 1 } })
            end)
            assert.has_error(function()
                db.conn:query("SELECT $1", { print })
            end)
        end)

        it("sql that is not a string or holds a NUL", function()
            assert.has_error(function() db:query(42) end)
            assert.has_error(function() db:exec() end)
            assert.has_error(function() db:query("SELECT 1\0") end)
        end)
    end)

    describe("closed connections", function()
        it("return nil, 'closed' and close twice safely", function()
            local c = assert(pg.connect(srv.url))
            assert.is_true(c:close())
            assert.is_true(c:close())
            assert.same({ nil, "closed" }, { c:query("SELECT 1") })
            assert.same({ nil, "closed" }, { c:exec("SELECT 1") })
            assert.same({ nil, "closed" }, { c:read("SELECT 1") })
            assert.same({ nil, "closed" }, { c:tx(function() end) })
            assert.equal("closed", c:status())
        end)

        it("at the C level too, and __gc after close is harmless", function()
            local c = assert(core.connect(srv.url))
            assert.is_true(c:close())
            for _, m in ipairs({ "query", "script", "reset", "check",
                                 "tx_status", "backend_pid",
                                 "server_version" })
            do
                local a, b = c[m](c, "SELECT 1")
                assert.is_nil(a)
                assert.equal("closed", b)
            end
            c = nil          -- luacheck: ignore
            collectgarbage()
            collectgarbage()
        end)

        it("unreferenced connections are closed by the collector", function()
            local function count()
                return assert(db:query("SELECT count(*) AS n FROM "
                                       .. "pg_stat_activity WHERE "
                                       .. "application_name = 'gc-spec'"))[1].n
            end
            for _ = 1, 3 do
                assert(pg.connect(srv.url, { application_name = "gc-spec" }))
            end
            assert.equal(3, count())
            collectgarbage()
            collectgarbage()
            assert.truthy(require("spec.support.server").eventually(function()
                return count() == 0
            end))
        end)
    end)
end)
