local pgh = require "spec.support.pg"
local pg = require "wtt.pg"


describe("wtt.pg: transactions #pg", function()
    local srv, db, other

    setup(function()
        srv = pgh.start()
        db = assert(pg.connect(srv.url))
        other = assert(pg.connect(srv.url))
        assert(db:exec("CREATE TABLE items (id int PRIMARY KEY, name text)"))
        assert(db:exec("CREATE TABLE deferred (id int UNIQUE "
                       .. "DEFERRABLE INITIALLY DEFERRED)"))
    end)
    teardown(function()
        if db then db:close() end
        if other then other:close() end
        if srv then srv:stop() end
    end)
    before_each(function()
        assert(db:exec("TRUNCATE items, deferred"))
    end)

    local function ids()
        local rows = assert(other:query("SELECT id FROM items ORDER BY id"))
        local out = {}
        for i, r in ipairs(rows) do
            out[i] = r.id
        end
        return out
    end

    it("commits and passes the function's return values through", function()
        local a, b, c = db:tx(function(tx)
            assert.equal(1, tx:exec("INSERT INTO items VALUES ($1, $2)",
                                    1, "a"))
            assert(tx:query("INSERT INTO items VALUES ($1, $2)", 2, "b"))
            local rows = assert(tx:read("SELECT count(*) AS n FROM items"))
            return "done", rows[1].n, nil
        end)
        assert.equal("done", a)
        assert.equal(2, b)
        assert.is_nil(c)
        assert.same({ 1, 2 }, ids())
    end)

    it("returns true when the function returns nothing", function()
        assert.is_true(db:tx(function(tx)
            tx:exec("INSERT INTO items VALUES (1, 'a')")
        end))
        assert.same({ 1 }, ids())
    end)

    it("is invisible to other sessions until COMMIT", function()
        assert(db:tx(function(tx)
            tx:exec("INSERT INTO items VALUES (1, 'a')")
            assert.same({}, ids())
        end))
        assert.same({ 1 }, ids())
    end)

    it("rolls back on a Lua error and returns it", function()
        local ok, err, state = db:tx(function(tx)
            tx:exec("INSERT INTO items VALUES (1, 'a')")
            error("boom")
        end)
        assert.is_nil(ok)
        assert.matches("boom$", err)
        assert.is_nil(state)
        assert.same({}, ids())
        assert.equal("idle", db.conn:tx_status())
    end)

    it("returns a raised error object unchanged", function()
        local obj = { status = 409 }
        local ok, err = db:tx(function() error(obj) end)
        assert.is_nil(ok)
        assert.equal(obj, err)
    end)

    it("rolls back on a failed statement, whatever fn returns", function()
        local ok, err, state = db:tx(function(tx)
            assert(tx:exec("INSERT INTO items VALUES (1, 'a')"))
            local n, e = tx:exec("INSERT INTO items VALUES (1, 'dup')")
            assert.is_nil(n)
            assert.matches("duplicate key", e)
            return "ignored the error"
        end)
        assert.is_nil(ok)
        assert.matches("^query failed: duplicate key value", err)
        assert.equal("23505", state)
        assert.same({}, ids())
    end)

    it("reports the first failure, not the aborted ones after it", function()
        local ok, err, state = db:tx(function(tx)
            tx:exec("SELEC 1")
            tx:exec("INSERT INTO items VALUES (1, 'a')")   -- 25P02
        end)
        assert.is_nil(ok)
        assert.matches("syntax error", err)
        assert.equal("42601", state)
        assert.same({}, ids())
    end)

    it("returns the error of a failed COMMIT", function()
        local ok, err, state = db:tx(function(tx)
            assert(tx:exec("INSERT INTO deferred VALUES (1)"))
            assert(tx:exec("INSERT INTO deferred VALUES (1)"))
            return "fine so far"
        end)
        assert.is_nil(ok)
        assert.matches("^query failed: duplicate key", err)
        assert.equal("23505", state)
        local rows = assert(other:query("SELECT count(*) AS n FROM deferred"))
        assert.equal(0, rows[1].n)
    end)

    it("runs db calls made inside fn in the transaction", function()
        local ok = db:tx(function()
            db:exec("INSERT INTO items VALUES (1, 'a')")
            error("undo")
        end)
        assert.is_nil(ok)
        assert.same({}, ids())
    end)

    it("does not allow nested transactions", function()
        local ok, err = db:tx(function(tx)
            tx:exec("INSERT INTO items VALUES (1, 'a')")
            assert.has_error(function() tx:tx(function() end) end,
                             "nested transactions are not allowed")
            db:tx(function() end)
        end)
        assert.is_nil(ok)
        assert.matches("nested transactions are not allowed", err)
        assert.same({}, ids())
    end)

    it("raises on a transaction handle used after the end", function()
        local saved
        assert(db:tx(function(tx) saved = tx end))
        assert.has_error(function() saved:query("SELECT 1") end)
        assert(db:query("SELECT 1"))
    end)

    it("raises on misuse", function()
        assert.has_error(function() db:tx("BEGIN") end)
        assert.has_error(function() db:tx() end)
    end)

    it("leaves the connection usable after each outcome", function()
        db:tx(function() error("x") end)
        db:tx(function(tx) tx:exec("SELEC") end)
        assert.equal(7, assert(db:tx(function(tx)
            return tx:query("SELECT 7 AS v")[1].v
        end)))
        assert.equal("idle", db.conn:tx_status())
    end)
end)
