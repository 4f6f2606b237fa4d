local pgh = require "spec.support.pg"
local pg = require "wtt.pg"
local json = require "wtt.json"

local null = pg.null


describe("wtt.pg: types #pg", function()
    local srv, db

    setup(function()
        srv = pgh.start()
        db = assert(pg.connect(srv.url))
    end)
    teardown(function()
        if db then db:close() end
        if srv then srv:stop() end
    end)

    -- The single row of a one-row SELECT.
    local function row(sql, ...)
        local rows, err = db:query(sql, ...)
        assert(rows, err)
        assert.equal(1, #rows)
        return rows[1]
    end

    describe("results by column type", function()
        it("int2, int4 and oid are numbers", function()
            local r = row("SELECT 7::int2 AS a, '-2147483648'::int4 AS b, "
                          .. "4294967295::oid AS c")
            assert.same({ a = 7, b = -2147483648, c = 4294967295 }, r)
        end)

        it("int8 is a number up to 2^53 and an exact string beyond", function()
            local r = row("SELECT 9007199254740992::int8 AS max, "
                          .. "'-9007199254740992'::int8 AS min, "
                          .. "9007199254740993::int8 AS over, "
                          .. "'-9223372036854775808'::int8 AS lowest, "
                          .. "42::int8 AS small")
            assert.equal(2 ^ 53, r.max)
            assert.equal(-2 ^ 53, r.min)
            assert.equal("9007199254740993", r.over)
            assert.equal("-9223372036854775808", r.lowest)
            assert.equal(42, r.small)
            assert.equal("number", type(r.small))
        end)

        it("float4 and float8 are numbers, NaN and infinities too", function()
            local r = row("SELECT 0.1::float8 AS a, 1.5::float4 AS b, "
                          .. "'NaN'::float8 AS nan, 'Infinity'::float8 AS inf,"
                          .. " '-Infinity'::float4 AS ninf, "
                          .. "1e308::float8 AS big")
            assert.equal(0.1, r.a)
            assert.equal(1.5, r.b)
            assert.is_true(r.nan ~= r.nan)
            assert.equal(math.huge, r.inf)
            assert.equal(-math.huge, r.ninf)
            assert.equal(1e308, r.big)
        end)

        it("numeric is an exact string", function()
            local r = row("SELECT 12345678901234567890.123456789::numeric AS n,"
                          .. " 'NaN'::numeric AS nan")
            assert.equal("12345678901234567890.123456789", r.n)
            assert.equal("NaN", r.nan)
        end)

        it("bool is a boolean", function()
            assert.same({ t = true, f = false },
                        row("SELECT true AS t, false AS f"))
        end)

        it("text, varchar, name, char and uuid are strings", function()
            local r = row("SELECT 'héllo'::text AS t, 'v'::varchar(5) AS v, "
                          .. "'nm'::name AS n, 'ab'::char(4) AS c, "
                          .. "'x'::\"char\" AS c1, "
                          .. "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid "
                          .. "AS u")
            assert.same({ t = "héllo", v = "v", n = "nm", c = "ab  ", c1 = "x",
                          u = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11" }, r)
        end)

        it("bytea is a binary string", function()
            local r = row("SELECT '\\x00ff0041'::bytea AS b, ''::bytea AS e")
            assert.equal("\0\255\0A", r.b)
            assert.equal("", r.e)
        end)

        it("json and jsonb are decoded", function()
            local r = row([[
                SELECT '{"a": [1, 2.5, null, "x"], "b": {"c": true}}'::jsonb
                           AS j,
                       '[1, {"k": "v"}]'::json AS arr,
                       '"s"'::jsonb AS s, '3'::json AS n,
                       'null'::jsonb AS jnull]])
            assert.same({ a = { 1, 2.5, null, "x" }, b = { c = true } }, r.j)
            assert.same({ 1, { k = "v" } }, r.arr)
            assert.equal("s", r.s)
            assert.equal(3, r.n)
            assert.equal(null, r.jnull)
        end)

        it("timestamptz is ISO 8601 in UTC with Z", function()
            local r = row("SELECT '2026-11-29 03:12:07.123456+01'::timestamptz"
                          .. " AS frac, '2026-11-29 02:12:07Z'::timestamptz"
                          .. " AS whole, 'infinity'::timestamptz AS inf")
            assert.equal("2026-11-29T02:12:07.123456Z", r.frac)
            assert.equal("2026-11-29T02:12:07Z", r.whole)
            assert.equal("infinity", r.inf)
        end)

        it("now() is reported in UTC whatever the server zone", function()
            local r = row("SELECT now() AS t, current_setting('TimeZone') "
                          .. "AS tz")
            assert.equal("UTC", r.tz)
            assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d[%.%d]*Z$",
                           r.t)
        end)

        it("timestamp has a T and no zone; date is YYYY-MM-DD", function()
            local r = row("SELECT '2026-11-29 02:12:07.5'::timestamp AS ts, "
                          .. "'2026-11-29'::date AS d")
            assert.same({ ts = "2026-11-29T02:12:07.5", d = "2026-11-29" }, r)
        end)

        it("NULL is pg.null, distinct from nil and false", function()
            local r = row("SELECT NULL::text AS t, NULL::int AS i, "
                          .. "NULL::jsonb AS j, NULL::bool AS b")
            for _, k in ipairs({ "t", "i", "j", "b" }) do
                assert.equal(null, r[k])
                assert.is_not_nil(r[k])
                assert.is_not_false(r[k])
            end
            assert.equal(json.null, null)
        end)

        it("rows are keyed by column name, one table per row", function()
            local rows, n = db:query("SELECT g AS id, g * 2 AS twice "
                                     .. "FROM generate_series(1, 3) g")
            assert.equal(3, n)
            assert.same({ { id = 1, twice = 2 }, { id = 2, twice = 4 },
                          { id = 3, twice = 6 } }, rows)
        end)
    end)

    describe("parameters", function()
        setup(function()
            assert(db:exec("CREATE TABLE vals (k text PRIMARY KEY, t text, "
                           .. "i int8, f float8, n numeric, b bool, "
                           .. "by bytea, j jsonb)"))
        end)

        it("pg.null is sent as NULL", function()
            local r = row("SELECT $1::text IS NULL AS a, $2::int IS NULL AS b",
                          null, null)
            assert.same({ a = true, b = true }, r)
        end)

        it("booleans are sent as t/f", function()
            assert.same({ a = true, b = false },
                        row("SELECT $1::bool AS a, $2::bool AS b", true, false))
        end)

        it("integers are sent as integers, without precision loss", function()
            local r = row("SELECT $1::text AS a, $2::text AS b, $3::int8 AS c, "
                          .. "$4::text AS d, $5::int4 AS e",
                          42, -7, 2 ^ 53, 1e20, 2147483647)
            assert.same({ a = "42", b = "-7", c = 2 ^ 53,
                          d = "100000000000000000000", e = 2147483647 }, r)
        end)

        it("fractions round-trip exactly", function()
            for _, v in ipairs({ 0.1, 1 / 3, -2.5e-300, 1.7976931348623157e308,
                                 123456.789 })
            do
                local r = row("SELECT $1::float8 AS f", v)
                assert.equal(v, r.f)
            end
            assert.equal("0.1", row("SELECT $1::numeric::text AS t", 0.1).t)
        end)

        it("NaN and infinities are sent as float words", function()
            local r = row("SELECT $1::float8 AS nan, $2::float8 AS inf, "
                          .. "$3::float8 AS ninf", 0 / 0, math.huge,
                          -math.huge)
            assert.is_true(r.nan ~= r.nan)
            assert.equal(math.huge, r.inf)
            assert.equal(-math.huge, r.ninf)
        end)

        it("int8 beyond 2^53 goes in and comes out as a string", function()
            assert(db:exec("INSERT INTO vals (k, i) VALUES ($1, $2)", "big",
                           "9223372036854775807"))
            local r = row("SELECT i FROM vals WHERE k = $1", "big")
            assert.equal("9223372036854775807", r.i)
        end)

        it("strings are stored verbatim (UTF-8, quotes, backslashes)",
           function()
            local s = "it's \"q\" \\ back\\slash é 😀 \t\n%s $1"
            assert(db:exec("INSERT INTO vals (k, t) VALUES ($1, $2)", "str", s))
            assert.equal(s, row("SELECT t FROM vals WHERE k = $1", "str").t)
        end)

        it("a NUL byte in a text parameter is an error, not a cut", function()
            local rows, err, state = db:query("SELECT $1::text AS t", "a\0b")
            assert.is_nil(rows)
            assert.matches("^query failed: parameter %$1 contains a NUL byte",
                           err)
            assert.equal("22021", state)
        end)

        it("bytea round-trips every byte value, NUL included", function()
            local bytes = {}
            for i = 0, 255 do
                bytes[#bytes + 1] = string.char(i)
            end
            local blob = table.concat(bytes) .. "\0\0end\0"
            assert.equal(1, db:exec("INSERT INTO vals (k, by) VALUES ($1, $2)",
                                    "blob", pg.bytea(blob)))
            local r = row("SELECT by, octet_length(by) AS len FROM vals "
                          .. "WHERE k = $1", "blob")
            assert.equal(#blob, r.len)
            assert.equal(blob, r.by)
            assert.equal(pg.bytea("x\0y")[1], "x\0y")
        end)

        it("json parameters are text, pg.json encodes a table", function()
            local doc = { name = "a", list = { 1, 2, 3 },
                          nested = { ok = true } }
            assert(db:exec("INSERT INTO vals (k, j) VALUES ($1, $2)", "doc",
                           pg.json(doc)))
            assert.same(doc, row("SELECT j FROM vals WHERE k = $1", "doc").j)
            assert.same({ x = 1 }, row("SELECT $1::jsonb AS j", '{"x": 1}').j)
        end)

        it("numeric accepts exact strings", function()
            assert.equal("0.30000000000000000001",
                         row("SELECT $1::numeric AS n",
                             "0.30000000000000000001").n)
        end)

        it("commands return the affected row count", function()
            assert(db:exec("CREATE TABLE cnt (id int)"))
            assert.equal(3, db:exec("INSERT INTO cnt "
                                    .. "SELECT generate_series(1, 3)"))
            assert.equal(2, db:exec("UPDATE cnt SET id = id + 10 WHERE id < 3"))
            assert.equal(0, db:exec("DELETE FROM cnt WHERE id = 99"))
            local rows, n = db:query("INSERT INTO cnt VALUES (7) RETURNING id")
            assert.same({ { id = 7 } }, rows)
            assert.equal(1, n)
            rows, n = db:query("CREATE INDEX ON cnt (id)")
            assert.same({}, rows)
            assert.equal(0, n)
        end)
    end)

    describe("SQL injection", function()
        setup(function()
            assert(db:exec("CREATE TABLE victims (name text)"))
        end)

        it("a hostile parameter stays data", function()
            local evil = "'); DROP TABLE victims; --"
            assert.equal(1, db:exec("INSERT INTO victims (name) VALUES ($1)",
                                    evil))
            local rows = assert(db:query("SELECT name FROM victims"))
            assert.same({ { name = evil } }, rows)
            assert(db:query("SELECT count(*) AS n FROM victims"))
            assert.equal(0, #assert(db:query(
                "SELECT name FROM victims WHERE name = $1",
                "x' OR '1'='1")))
        end)

        it("a second statement after the first is refused", function()
            local rows, err, state = db:query(
                "SELECT 1; DROP TABLE victims")
            assert.is_nil(rows)
            assert.matches("^query failed: cannot insert multiple commands",
                           err)
            assert.equal("42601", state)
            assert(db:query("SELECT count(*) AS n FROM victims"))
        end)
    end)
end)
