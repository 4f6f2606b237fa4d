-- lua/wtt/service/posteriors.lua: the re-tune route's posteriorgrams kept in
-- memory, least recently used out, within WTT_RETUNE_CACHE_MB.
local S = require "spec.support.service"
local sys = require "wtt.sys"
local model = require "wtt.model"
local ffi = require "ffi"
pcall(ffi.cdef, "int setenv(const char *, const char *, int);")

describe("service posteriorgram cache", function()
    local cache = require "wtt.service.posteriors"
    local dir, files = nil, {}

    setup(function()
        dir = assert(sys.mkdtemp("wtt-postcache-"))
        -- three posteriorgrams of 1,000 frames (1.68 MiB each), one note each
        for i = 1, 3 do
            local name = string.format("%032x.npy", i)
            assert(sys.write_file(dir .. "/" .. name, S.npy(1000, 30 + i)))
            files[i] = { name = name, path = dir .. "/" .. name }
        end
    end)

    before_each(function()
        cache.clear()
    end)

    after_each(function()
        ffi.C.setenv("WTT_RETUNE_CACHE_MB", "", 1)
        cache.clear()
    end)

    teardown(function()
        sys.rmtree(dir)
    end)

    it("decodes the same notes as a posteriorgram read from its file, and serves a repeat from memory", function()
        local direct = assert(model.load_posteriors(files[1].path))
        local want = assert(direct:notes(model.note_options({})))
        local a = assert(cache.open(files[1].name, files[1].path))
        assert.equal("memory", a:storage())
        local got = assert(a:notes(model.note_options({})))
        assert.same(want, got)
        local b = assert(cache.open(files[1].name, files[1].path))
        assert.equal(a, b)
        local st = cache.stats()
        assert.same({ 1, 1, 1 }, { st.entries, st.hits, st.misses })
        assert.equal(1000 * 440 * 4, st.bytes)
    end)

    it("lets the least recently used go when the budget is full", function()
        ffi.C.setenv("WTT_RETUNE_CACHE_MB", "4", 1)   -- room for two
        local p1 = assert(cache.open(files[1].name, files[1].path))
        assert(cache.open(files[2].name, files[2].path))
        assert.equal(p1, cache.open(files[1].name, files[1].path))  -- 1 is now the newest
        assert(cache.open(files[3].name, files[3].path))           -- 2 goes
        local st = cache.stats()
        assert.equal(2, st.entries)
        assert.equal(1, st.evictions)
        assert.equal(p1, cache.open(files[1].name, files[1].path))
        assert.equal(2, cache.stats().hits)
        cache.open(files[2].name, files[2].path)                    -- a miss again
        assert.equal(4, cache.stats().misses)
        assert.is_true(cache.stats().bytes <= 4 * 1048576)
    end)

    it("keeps nothing larger than its budget, and reads it from the file", function()
        ffi.C.setenv("WTT_RETUNE_CACHE_MB", "1", 1)
        local p = assert(cache.open(files[1].name, files[1].path))
        assert.equal("file", p:storage())
        assert.is_table(assert(p:notes(model.note_options({}))))
        assert.equal(0, cache.stats().entries)
    end)

    it("answers nil and the loader's error for a missing or broken file", function()
        local p, err = cache.open("0000.npy", dir .. "/missing.npy")
        assert.is_nil(p)
        assert.matches("load failed", err)
        assert(sys.write_file(dir .. "/bad.npy", "not numpy"))
        p, err = cache.open("bad.npy", dir .. "/bad.npy")
        assert.is_nil(p)
        assert.matches("not a .npy", err)
        assert.equal(0, cache.stats().entries)
    end)
end)
