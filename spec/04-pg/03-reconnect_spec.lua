local pgh = require "spec.support.pg"
local pg = require "wtt.pg"

-- die_first(seq, k): counts its calls in `seq` (sequences are not
-- transactional, so the count survives the session) and, on the first k
-- calls, terminates its own backend in the middle of the statement: the
-- client sees the connection drop while the statement is in flight.
local DIE_FIRST = [[
CREATE FUNCTION die_first(seq regclass, k int) RETURNS bigint
    LANGUAGE plpgsql AS $$
DECLARE
    n bigint := nextval(seq);
BEGIN
    IF n <= k THEN
        PERFORM pg_terminate_backend(pg_backend_pid());
        PERFORM pg_sleep(5);
    END IF;
    RETURN n;
END
$$]]


describe("wtt.pg: lost connections #pg", function()
    local srv, db, seq_n = nil, nil, 0

    setup(function()
        srv = pgh.start()
        db = assert(pg.connect(srv.url))
        assert(db:exec(DIE_FIRST))
        assert(db:exec("CREATE TABLE log (id serial PRIMARY KEY, v text)"))
    end)
    teardown(function()
        if db then db:close() end
        if srv then srv:stop() end
    end)

    -- A fresh call counter.
    local function new_seq()
        seq_n = seq_n + 1
        local name = "calls_" .. seq_n
        assert(db:read("SELECT 1"))
        assert(db:exec("CREATE SEQUENCE " .. name))
        return name
    end

    local function calls(name)
        local rows = assert(db:read("SELECT last_value, is_called FROM "
                                    .. name))
        return rows[1].is_called and rows[1].last_value or 0
    end

    it("reconnects on the next call after a restart", function()
        local pid = db:backend_pid()
        local before = db.reconnects
        srv:restart()
        local rows, err = db:query("SELECT 1 AS one")
        assert.same({ { one = 1 } }, rows, err)
        assert.are_not.equal(pid, db:backend_pid())
        assert.equal(before + 1, db.reconnects)
        assert.equal("ok", db:status())
    end)

    it("runs an unsent statement once on the new session", function()
        assert(db:exec("TRUNCATE log"))
        srv:restart()
        -- The dead session is noticed before anything is sent, so even a
        -- non-idempotent statement is safe to run on the new one.
        assert.equal(1, db:exec("INSERT INTO log (v) VALUES ($1)", "once"))
        local rows = assert(db:query("SELECT v FROM log"))
        assert.same({ { v = "once" } }, rows)
    end)

    it("retries a read once when the connection dies under it", function()
        local seq = new_seq()
        local before = db.reconnects
        local rows, err = db:read("SELECT die_first($1, 1) AS n", seq)
        assert.same({ { n = 2 } }, rows, err)
        assert.equal(2, calls(seq))
        assert.equal(before + 1, db.reconnects)
    end)

    it("retries a read only once", function()
        local seq = new_seq()
        local rows, err, state = db:read("SELECT die_first($1, 5) AS n", seq)
        assert.is_nil(rows)
        assert.matches("^query failed: ", err)
        assert.truthy(state == "57P01" or state == "08006", state)
        assert.equal(2, calls(seq))
    end)

    it("does not re-run query or exec when the connection dies", function()
        local seq = new_seq()
        local n, err, state = db:exec("SELECT die_first($1, 1)", seq)
        assert.is_nil(n)
        assert.matches("^query failed: ", err)
        assert.truthy(state == "57P01" or state == "08006", state)
        assert.equal("lost", db:status())
        assert.equal(1, calls(seq))       -- this call reconnected

        seq = new_seq()
        local rows
        rows, err = db:query("SELECT die_first($1, 1)", seq)
        assert.is_nil(rows)
        assert.matches("^query failed: ", err)
        assert.equal(1, calls(seq))
    end)

    it("never retries inside a transaction", function()
        local seq = new_seq()
        local ok, err = db:tx(function(tx)
            local rows, e = tx:read("SELECT die_first($1, 1)", seq)
            assert.is_nil(rows)
            -- The session is gone: later statements fail, no reconnect.
            local n, e2, s2 = tx:exec("INSERT INTO log (v) VALUES ('lost')")
            assert.is_nil(n)
            assert.matches("connection lost inside a transaction", e2)
            assert.equal("08006", s2)
            return e
        end)
        assert.is_nil(ok)
        assert.matches("^query failed: ", err)
        assert.equal(1, calls(seq))
        local rows = assert(db:query("SELECT count(*) AS n FROM log "
                                     .. "WHERE v = 'lost'"))
        assert.equal(0, rows[1].n)
    end)

    it("reports a server that is down, then recovers when it is back",
       function()
        srv:kill()
        local rows, err, state = db:query("SELECT 1")
        assert.is_nil(rows)
        assert.matches("^query failed: cannot reconnect: ", err)
        assert.equal("08001", state)
        assert.equal("lost", db:status())
        rows, err = db:read("SELECT 1")
        assert.is_nil(rows)
        srv:start()
        rows, err = db:read("SELECT 2 AS two")
        assert.same({ { two = 2 } }, rows, err)
    end)

    it("with reconnect = false stays lost", function()
        local once = assert(pg.connect(srv.url, { reconnect = false }))
        assert(once:query("SELECT 1"))
        srv:restart()
        local rows, err, state = once:read("SELECT 1")
        assert.is_nil(rows)
        assert.equal("query failed: connection lost", err)
        assert.equal("08006", state)
        assert.equal("lost", once:status())
        once:close()
        assert(db:read("SELECT 1"))
    end)

    it("connects with a bounded timeout to an address that drops", function()
        -- A port nobody listens on: refused at once, not hung.
        local port = assert(require("wtt.sys").free_port())
        local t0 = require("wtt.sys").now()
        local c, err, state = pg.connect(
            ("postgresql://postgres@127.0.0.1:%d/postgres"):format(port),
            { connect_timeout = 2 })
        assert.is_nil(c)
        assert.matches("^connect failed: ", err)
        assert.equal("08001", state)
        assert.is_true(require("wtt.sys").now() - t0 < 5)
    end)
end)
