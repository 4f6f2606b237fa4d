-- Two web replicas on one Redis and one PostgreSQL, with the shared media
-- store (WTT_MEDIA_STORE=pg, docs/operations.md "The shared media store"),
-- each with its own media directory (its local cache only), nothing shared
-- on disk. A recording uploaded to web A is downloaded by a worker that
-- only knows web B, whose results go to B; both serve the same MIDI, notes
-- and audio. Both run the subscriber and the reaper: each task is still
-- recorded once (one completed row, the completed counter of the two
-- together counts it once), and no result or large object is left over
-- (spec/support/invariants.lua).

local helpers = require "spec.support.server"
local real_stack = require "spec.support.real_stack"
local inv = require "spec.support.invariants"
local json = require "wtt.json"
local pg = require "wtt.pg"
local sys = require "wtt.sys"
local midi = require "wtt.midi"

local CLIP = helpers.FIXTURES .. "/clips/guitar_strum.wav"
local PG_ENV = { WTT_MEDIA_STORE = "pg" }


-- The value of counter `name` in a Prometheus text body (0 when absent).
local function counter(text, name)
    local total = 0
    for line in text:gmatch("[^\n]+") do
        local v = line:match("^" .. name .. "%s+([%d%.e%+]+)$")
                  or line:match("^" .. name .. "{[^}]*}%s+([%d%.e%+]+)$")
        if v then
            total = total + tonumber(v)
        end
    end
    return total
end


describe("two web replicas, one shared media store #redis #pg", function()
    local stack, a, b, db

    setup(function()
        stack = real_stack.start({ name = "two-webs", serve_env = PG_ENV })
        a = stack.srv
        b = stack:start_web()
        db = assert(pg.connect(stack.pg.url))
        stack:start_worker({ WTT_WEB_URL = b.url })
    end)

    teardown(function()
        if db then db:close() end
        if stack then stack:stop() end
    end)

    local function generate(srv, id)
        local g = assert(srv:json("POST", "/transcribe/generate/", {
            headers = { ["Content-Type"] = "application/json" },
            body = json.encode({ audio_midi_id = id, options = {} }),
        }))
        assert.equal(202, g.status, g.body)
        return g.json.task_id
    end

    local function wait_done(srv, id)
        local doc
        assert(helpers.eventually(function()
            local s = srv:json("GET", "/transcribe/status/" .. id .. "/")
            doc = s and s.json
            return doc and (doc.status == "completed"
                            or doc.status == "failed")
        end, 180), "task not done after 180 s" .. stack:logs())
        assert.equal("completed", doc.status, json.encode(doc) .. stack:logs())
        return doc
    end

    local function get(srv, path, headers)
        local res = assert(srv:request("GET", path, { headers = headers }))
        return res
    end

    it("upload to A, work through B, the same results from either",
       function()
        local clip = assert(sys.read_file(CLIP))
        -- one recording arrives at A, one at B
        local up_a = stack:upload(CLIP)
        assert.equal(201, up_a.status, up_a.body)
        local up_b = assert(b:json("POST", "/transcribe/upload/", {
            multipart = { { name = "file", file = CLIP,
                            filename = "guitar_strum.wav",
                            content_type = "audio/wav" } },
        }))
        assert.equal(201, up_b.status, up_b.body)
        local ids = { up_a.json.audio_midi_id, up_b.json.audio_midi_id }

        -- nothing of either upload is on a replica's disk
        for _, dir in ipairs({ stack.media, stack.media .. "-2" }) do
            for _, n in ipairs(sys.listdir(dir) or {}) do
                assert.is_nil(n:match("%.wav$"), "upload on disk: " .. n)
            end
        end

        local task_ids = { generate(a, ids[1]), generate(b, ids[2]) }
        for _, id in ipairs(ids) do
            wait_done(a, id)
            wait_done(b, id)
        end

        for i, id in ipairs(ids) do
            -- the same bytes from both replicas
            for _, what in ipairs({ "midi", "notes", "audio" }) do
                local path = "/transcribe/" .. what .. "/" .. id .. "/"
                local ra, rb = get(a, path), get(b, path)
                assert.equal(200, ra.status, what .. " from A: " .. ra.body)
                assert.equal(200, rb.status, what .. " from B: " .. rb.body)
                assert.equal(ra.body, rb.body, what .. " differs")
                assert.equal(tostring(#ra.body), ra.headers["content-length"])
            end
            local m = assert(midi.decode(get(b, "/transcribe/midi/" .. id
                                                .. "/").body))
            assert.is_true(#m.notes > 0)
            assert.equal(clip, get(b, "/transcribe/audio/" .. id .. "/").body)

            -- the player's ranges, from the replica that did not receive it
            local other = i == 1 and b or a
            local r = get(other, "/transcribe/audio/" .. id .. "/",
                          { Range = "bytes=100-199" })
            assert.equal(206, r.status)
            assert.equal(clip:sub(101, 200), r.body)
            assert.equal("100", r.headers["content-length"])
            assert.equal("bytes 100-199/" .. #clip, r.headers["content-range"])
            r = get(other, "/transcribe/audio/" .. id .. "/",
                    { Range = "bytes=" .. #clip .. "-" })
            assert.equal(416, r.status)
            assert.equal("bytes */" .. #clip, r.headers["content-range"])
        end

        -- The worker reached B only: the audio came from B's /media/ and
        -- the results went to B (the access log has every request).
        for _, id in ipairs(ids) do
            local row = assert(db:query("SELECT audio_path FROM audio_midi "
                                        .. "WHERE id = $1", id))[1]
            local wanted = "/media/" .. row.audio_path
            assert.truthy(b:log_text():find(wanted, 1, true),
                          "B served no " .. wanted .. stack:logs())
            assert.falsy(a:log_text():find(wanted, 1, true),
                         "A served " .. wanted)
        end
        assert.falsy(a:log_text():find("/transcribe/_result/", 1, true))

        -- Recorded once: one completed row per task, and the completed
        -- counters of both subscribers together count each task once.
        local rows = assert(db:query(
            "SELECT count(*)::int AS n FROM audio_midi "
            .. "WHERE status = 'completed' AND task_id = ANY($1::text[])",
            "{" .. table.concat(task_ids, ",") .. "}"))
        assert.equal(2, rows[1].n)
        local completed = 0
        for _, srv in ipairs({ a, b }) do
            local res = get(srv, "/metrics")
            assert.equal(200, res.status)
            completed = completed + counter(res.body,
                                            "wtt_tasks_completed_total")
        end
        assert.equal(2, completed)

        -- media_objects: two uploads and the results the rows name, each
        -- one large object; nothing orphaned, no duplicate result.
        local r = assert(stack.redis:client())
        inv.check({ r = r, prefix = stack.prefix, db = db, media_store = "pg",
                    url = a.url, timeout = 10 })
        r:close()
        local n = assert(db:query("SELECT count(*)::int AS n "
                                  .. "FROM media_objects"))[1].n
        local named = assert(db:query(
            "SELECT count(*)::int AS n FROM audio_midi, LATERAL (VALUES "
            .. "(audio_path), (midi_path), (notes_path), (posteriors_path)) "
            .. "AS v(name) WHERE v.name IS NOT NULL"))[1].n
        assert.equal(named, n)
        local los = assert(db:query("SELECT count(*)::int AS n "
                                    .. "FROM pg_largeobject_metadata"))[1].n
        assert.equal(n, los)
    end)

    it("answers 404 on both replicas for a name the store does not hold",
       function()
        for _, srv in ipairs({ a, b }) do
            local res = assert(srv:request("GET", "/media/"
                .. string.rep("0", 32) .. ".wav", { headers = {
                    Authorization = "Bearer " .. real_stack.TOKEN } }))
            assert.equal(404, res.status)
        end
    end)
end)
