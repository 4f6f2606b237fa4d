-- The media store's two backends (wtt.service.media: dir and pg) against
-- the same cases, on a real directory and a real PostgreSQL (migrated):
-- put/read/range/remove, idempotent puts, missing and invalid names, a
-- file larger than a chunk, Range answers, the local cache and its bound;
-- and for pg, that the large objects follow the rows (none left behind by
-- a removal or a lost race).

local pgh = require "spec.support.pg"
local pg = require "wtt.pg"
local sys = require "wtt.sys"
local runtime = require "wtt.runtime"
local migrate = require "wtt.migrate"
local media = require "wtt.service.media"
local pg_store = require "wtt.service.media.pg"

local MB = 1048576


-- Deterministic bytes, every value 0..255 included (NUL too).
local function blob(n, seed)
    local t, x = {}, seed or 7
    for i = 1, n do
        x = (x * 1103515245 + 12345) % 2147483648
        t[i] = string.char(x % 256)
    end
    return table.concat(t)
end


-- A request whose only header is Range (or none).
local function req_with(range)
    return { header = function(_, name)
        if name == "Range" then
            return range
        end
        return nil
    end }
end


-- The bytes a serve() answer carries: a string, or the range of a file
-- body (the file is `store`'s copy of `name`).
local function body_bytes(body, store, name)
    if type(body) == "string" then
        return body
    end
    assert.equal("file", body.kind)
    local path = store.kind == "dir" and store:path(name)
                 or store:cache_dir() .. "/" .. name
    local f = assert(io.open(path, "rb"))
    f:seek("set", body.offset)
    local s = f:read(body.length) or ""
    f:close()
    body.fd:close()
    return s
end


describe("media store #pg", function()
    local pgsrv, db, tmp

    setup(function()
        pgsrv = pgh.start()
        db = assert(pg.connect(pgsrv.url))
        assert(migrate.run(db, { dir = runtime.source_dir .. "/lua/migrations" }))
        tmp = assert(sys.mkdtemp("wtt-media-store-"))
    end)
    teardown(function()
        if db then db:close() end
        if pgsrv then pgsrv:stop() end
        if tmp then sys.rmtree(tmp) end
    end)

    local n_store = 0
    local BACKENDS = {
        dir = function(opts)
            n_store = n_store + 1
            local o = { dir = tmp .. "/dir" .. n_store }
            for k, v in pairs(opts or {}) do
                o[k] = v
            end
            return media.new_store("dir", o)
        end,
        pg = function(opts)
            n_store = n_store + 1
            local o = { db = function() return db end,
                        cache_dir = tmp .. "/cache" .. n_store }
            for k, v in pairs(opts or {}) do
                o[k] = v
            end
            return media.new_store("pg", o)
        end,
    }

    for _, kind in ipairs({ "dir", "pg" }) do
        describe(kind, function()
            local store

            before_each(function()
                store = BACKENDS[kind]()
            end)

            it("keeps its tab cache within its budget (H10b)", function()
                local small = BACKENDS[kind]({ cache_bytes = 150000 })
                local dir = small:cache_dir()
                local names = {}
                for i = 1, 4 do
                    names[i] = "tab-" .. i .. ".json"
                    assert(sys.write_file(dir .. "/" .. names[i],
                                          blob(60000, i)))
                    small:cache_added(names[i])
                end
                local total = 0
                for _, n in ipairs(sys.listdir(dir)) do
                    total = total + sys.file_size(dir .. "/" .. n)
                end
                assert.is_true(total <= 150000, "cache holds " .. total)
                assert.equal("file", sys.exists(dir .. "/" .. names[4]))
                assert.is_nil(sys.exists(dir .. "/" .. names[1]))
            end)

            it("reads back what was put, NUL bytes included", function()
                local name, bytes = media.new_name("mid"), blob(5000)
                assert.is_true(store:put(name, bytes))
                assert.is_true(store:exists(name))
                assert.equal(5000, store:size(name))
                assert.equal(bytes, store:read(name))
            end)

            it("stores an empty file", function()
                local name = media.new_name("json")
                assert.is_true(store:put(name, ""))
                assert.is_true(store:exists(name))
                assert.equal(0, store:size(name))
                assert.equal("", store:read(name))
            end)

            it("reads byte ranges, clipped at the end", function()
                local name, bytes = media.new_name("wav"), blob(3000, 3)
                assert(store:put(name, bytes))
                assert.equal(bytes:sub(101, 200), store:read_range(name, 100, 100))
                assert.equal(bytes:sub(2901), store:read_range(name, 2900, 500))
                assert.equal("", store:read_range(name, 3000, 10))
                assert.equal("", store:read_range(name, 5, 0))
            end)

            it("removes a name; a second removal is no error", function()
                local name = media.new_name("npy")
                assert(store:put(name, "\147NUMPY data"))
                assert.is_true(store:remove(name))
                assert.is_false(store:exists(name))
                assert.is_nil(store:read(name))
                assert.is_nil(store:local_path(name))
                assert.is_true(store:remove(name))
            end)

            it("keeps the first bytes of a name put twice", function()
                local name = media.content_name("t:midi", "abc", "mid")
                assert.is_true(store:put(name, "abc"))
                assert.is_true(store:put(name, "abc"))
                assert.is_true(store:put(name, "other"))
                assert.equal("abc", store:read(name))
            end)

            it("answers a missing name with nil", function()
                local name = media.new_name("mid")
                assert.is_false(store:exists(name))
                local v, err = store:size(name)
                assert.is_nil(v)
                assert.equal("not found", err)
                assert.is_nil(store:read(name))
                assert.is_nil(store:read_range(name, 0, 10))
                v, err = store:local_path(name)
                assert.is_nil(v)
                assert.equal("not found", err)
                assert.is_nil(store:serve(req_with(nil), name))
            end)

            it("refuses a name it could not have generated", function()
                for _, bad in ipairs({ "../etc/passwd", "x.mid",
                                       string.rep("a", 32) .. ".exe",
                                       string.rep("A", 32) .. ".mid" }) do
                    assert.has_error(function() store:put(bad, "x") end)
                    assert.has_error(function() store:exists(bad) end)
                    assert.has_error(function() store:remove(bad) end)
                end
            end)

            it("copies a file larger than a chunk, in chunks", function()
                local src = tmp .. "/big-" .. kind .. ".wav"
                local bytes = blob(2 * MB + 12345, 11)
                assert(sys.write_file(src, bytes))
                local name = media.new_name("wav")
                local saved = pg_store.CHUNK
                pg_store.CHUNK = 256 * 1024
                local ok, err = store:put_file(name, src)
                pg_store.CHUNK = saved
                assert(ok, err)
                assert.equal(#bytes, store:size(name))
                assert.equal(bytes, store:read(name))
                -- across a chunk boundary
                assert.equal(bytes:sub(MB - 9, MB + 10),
                             store:read_range(name, MB - 10, 20))
                assert.equal("file", sys.exists(src))    -- left in place
                local path = assert(store:local_path(name))
                assert.equal(bytes, sys.read_file(path))
            end)

            it("answers GET and Range like http.file", function()
                local name, bytes = media.new_name("wav"), blob(1000, 5)
                assert(store:put(name, bytes))
                local opts = { content_type = "audio/wav" }
                local status, body, h = store:serve(req_with(nil), name, opts)
                assert.equal(200, status)
                assert.equal(bytes, body_bytes(body, store, name))
                assert.equal("audio/wav", h["Content-Type"])
                assert.equal("bytes", h["Accept-Ranges"])

                status, body, h = store:serve(req_with("bytes=10-19"), name, opts)
                assert.equal(206, status)
                assert.equal("bytes 10-19/1000", h["Content-Range"])
                assert.equal(bytes:sub(11, 20), body_bytes(body, store, name))

                status, body, h = store:serve(req_with("bytes=-5"), name, opts)
                assert.equal(206, status)
                assert.equal("bytes 995-999/1000", h["Content-Range"])
                assert.equal(bytes:sub(996), body_bytes(body, store, name))

                status, body, h = store:serve(req_with("bytes=1000-"), name, opts)
                assert.equal(416, status)
                assert.equal("", body)
                assert.equal("bytes */1000", h["Content-Range"])
            end)
        end)
    end

    describe("pg only", function()
        local function lo_count()
            return assert(db:query("SELECT count(*)::int AS n "
                                   .. "FROM pg_largeobject_metadata"))[1].n
        end

        local function row_count()
            return assert(db:query("SELECT count(*)::int AS n "
                                   .. "FROM media_objects"))[1].n
        end

        it("unlinks the large object of a removed name", function()
            local store = BACKENDS.pg()
            local before = lo_count()
            local name = media.new_name("mid")
            assert(store:put(name, blob(100)))
            assert.equal(before + 1, lo_count())
            local oid = assert(db:query("SELECT oid FROM media_objects "
                                        .. "WHERE name = $1", name))[1].oid
            assert(store:remove(name))
            assert.equal(before, lo_count())
            assert.equal(0, assert(db:query(
                "SELECT count(*)::int AS n FROM pg_largeobject_metadata "
                .. "WHERE oid = $1", oid))[1].n)
            assert.equal(lo_count(), row_count())
        end)

        it("leaves no object behind when it loses a race for a name",
           function()
            -- A connection whose lookup always misses, as when another
            -- writer inserts the name between our lookup and our INSERT.
            local blind = setmetatable({
                read = function(self, sql, ...)
                    if sql:find("SELECT 1 AS x", 1, true) then
                        return {}, 0
                    end
                    return db:read(sql, ...)
                end,
            }, { __index = function(_, k)
                return function(_, ...) return db[k](db, ...) end
            end })
            local store = BACKENDS.pg({ db = function() return blind end })
            local name = media.content_name("race:midi", "first", "mid")
            assert(BACKENDS.pg():put(name, "first"))
            local before = lo_count()
            assert.is_true(store:put(name, "first"))
            assert.equal(before, lo_count())
            assert.equal("first", store:read(name))
            assert.equal(lo_count(), row_count())
        end)

        it("makes a name visible only once its bytes are complete",
           function()
            -- A connection whose third lo_put fails, as a full disk or a
            -- dropped connection would fail it mid-write.
            local puts = 0
            local failing = setmetatable({
                tx = function(_, fn)
                    return db:tx(function(t)
                        return fn(setmetatable({
                            exec = function(_, sql, ...)
                                if sql:find("lo_put", 1, true) then
                                    puts = puts + 1
                                    if puts == 3 then
                                        return t:exec("SELECT 1/0")
                                    end
                                end
                                return t:exec(sql, ...)
                            end,
                        }, { __index = function(_, k)
                            return function(_, ...) return t[k](t, ...) end
                        end }))
                    end)
                end,
            }, { __index = function(_, k)
                return function(_, ...) return db[k](db, ...) end
            end })
            local store = BACKENDS.pg({ db = function() return failing end })
            local src = tmp .. "/half.wav"
            assert(sys.write_file(src, blob(300000)))
            local name = media.new_name("wav")
            local saved = pg_store.CHUNK
            pg_store.CHUNK = 100000
            local before = lo_count()
            local ok, err = store:put_file(name, src)
            pg_store.CHUNK = saved
            assert.equal(3, puts)
            assert.is_nil(ok)
            assert.matches("division by zero", err)
            assert.is_false(store:exists(name))
            assert.equal(before, lo_count())
            assert.equal(lo_count(), row_count())
        end)

        it("keeps its local cache within its budget", function()
            local store = BACKENDS.pg({ cache_bytes = 150000 })
            local names = {}
            for i = 1, 4 do
                names[i] = media.new_name("wav")
                assert(store:put(names[i], blob(60000, i)))
                assert(store:local_path(names[i]))
            end
            local total = 0
            for _, n in ipairs(sys.listdir(store:cache_dir())) do
                total = total + sys.file_size(store:cache_dir() .. "/" .. n)
            end
            assert.is_true(total <= 150000, "cache holds " .. total)
            -- the newest copy stays; an evicted one is fetched again
            assert.equal("file", sys.exists(store:cache_dir() .. "/" .. names[4]))
            assert.equal(blob(60000, 1), sys.read_file(
                assert(store:local_path(names[1]))))
        end)

        it("fetches a copy again when it vanished under its reader",
           function()
            -- another serving thread's eviction, between the fetch and the
            -- reader opening the file
            local store = BACKENDS.pg()
            local name, bytes = media.new_name("npy"), blob(3000, 4)
            assert(store:put(name, bytes))
            local calls = 0
            local got = store:with_local_path(name, function(path)
                calls = calls + 1
                if calls == 1 then
                    os.remove(path)
                    error("open failed: No such file or directory")
                end
                return sys.read_file(path)
            end)
            assert.equal(2, calls)
            assert.equal(bytes, got)
            -- a reader that fails with the copy in place is not retried
            calls = 0
            local v, err = store:with_local_path(name, function()
                calls = calls + 1
                return nil, "bad posteriorgram"
            end)
            assert.equal(1, calls)
            assert.is_nil(v)
            assert.equal("bad posteriorgram", err)
            assert.has_error(function()
                store:with_local_path(name, function() error("boom", 0) end)
            end, "boom")
        end)

        it("sends a long answer from its cached copy", function()
            local store = BACKENDS.pg()
            local name, bytes = media.new_name("wav"), blob(50000, 9)
            assert(store:put(name, bytes))
            local saved = pg_store.DIRECT_MAX
            pg_store.DIRECT_MAX = 1000
            local status, body, h = store:serve(req_with("bytes=100-"), name)
            local status2, body2 = store:serve(req_with("bytes=0-99"), name)
            pg_store.DIRECT_MAX = saved
            assert.equal(206, status)
            assert.equal("table", type(body))
            assert.equal("bytes 100-49999/50000", h["Content-Range"])
            assert.equal(bytes:sub(101), body_bytes(body, store, name))
            assert.equal(206, status2)
            assert.equal(bytes:sub(1, 100), body_bytes(body2, store, name))
        end)

        it("refuses a name the table's check does not allow", function()
            local ok, err = db:query("INSERT INTO media_objects (name, oid, size) "
                                     .. "VALUES ('../x', 1, 0)")
            assert.is_nil(ok)
            assert.matches("media_objects_name_check", err)
        end)
    end)

    describe("the facade", function()
        it("never looks up an invalid name", function()
            assert.is_false(media.exists("../../etc/passwd"))
            assert.is_nil(media.read("../../etc/passwd"))
            assert.is_nil(media.local_path("x/../y.mid"))
            assert.is_nil(media.serve(req_with(nil), "/etc/passwd"))
            assert.is_true(media.remove("nope"))
            assert.has_error(function() media.put("../x.mid", "x") end)
        end)
    end)
end)


describe("WTT_MEDIA_STORE", function()
    it("refuses an unknown store at startup, naming the choices", function()
        local config = require "wtt.service.config"
        local saved = sys.getenv("WTT_MEDIA_STORE")
        sys.setenv("WTT_MEDIA_STORE", "s3")
        local ok, err = pcall(config.load)
        sys.setenv("WTT_MEDIA_STORE", saved)
        assert.is_false(ok)
        assert.equal("WTT_MEDIA_STORE must be 'dir' or 'pg', not 's3'", err)
    end)

    it("makes `wtt serve` exit with that error", function()
        local real_stack = require "spec.support.real_stack"
        local dir = assert(sys.mkdtemp("wtt-media-store-serve-"))
        local code, out = real_stack.wtt({ "serve", "--listen", "127.0.0.1:0" },
                                         { WTT_MEDIA_STORE = "s3" },
                                         dir .. "/serve.log")
        sys.rmtree(dir)
        assert.is_true(code ~= 0, out)
        assert.matches("WTT_MEDIA_STORE must be 'dir' or 'pg', not 's3'",
                       out, 1, true)
    end)
end)
