-- The service routes with the shared media store (WTT_MEDIA_STORE=pg) on a
-- real PostgreSQL, Redis and `wtt serve`: uploads land in media_objects and
-- not on disk; GET /media/ answers full and ranged requests (206, 416,
-- Content-Length, Content-Range) as the directory store does; a replayed
-- result stores nothing twice and a refused one leaves no object; the
-- downloads, the CSV, the tab cache, retune and the page's audio all read
-- through the store. Each large object belongs to a media_objects row.

local S = require "spec.support.service"
local helpers = require "spec.support.server"
local json = require "wtt.json"
local sys = require "wtt.sys"

local AUTH = { Authorization = "Bearer " .. S.TOKEN }
local NOTES = json.encode({ notes = { { start_s = 0.25, end_s = 0.75,
                                        pitch_midi = 60, amplitude = 0.8,
                                        pitch_bends = {} } } })


describe("service routes on the PostgreSQL media store #redis #pg", function()
    local e

    setup(function()
        e = S.start({ serve_env = { WTT_MEDIA_STORE = "pg",
                                    WTT_SUBSCRIBER = "on" },
                      max_upload = 8 * 1024 * 1024 })
    end)
    teardown(function()
        if e then e:stop() end
    end)

    local function objects()
        return assert(e.db:query("SELECT count(*)::int AS n "
                                 .. "FROM media_objects"))[1].n
    end

    local function large_objects()
        return assert(e.db:query("SELECT count(*)::int AS n "
                                 .. "FROM pg_largeobject_metadata"))[1].n
    end

    local function object(name)
        return assert(e.db:query("SELECT size FROM media_objects "
                                 .. "WHERE name = $1", name))[1]
    end

    local function media_get(name, range)
        local h = { Authorization = AUTH.Authorization, Range = range }
        return assert(e.srv:request("GET", "/media/" .. name, { headers = h }))
    end

    it("stores an upload as a large object, not on disk", function()
        local wav = S.wav(0.5)
        local res = e:upload(wav)
        assert.equal(201, res.status, res.body)
        local row = e:row(res.json.audio_midi_id)
        assert.equal(#wav, object(row.audio_path).size)
        assert.is_nil(sys.exists(e.media .. "/" .. row.audio_path))
        assert.equal(objects(), large_objects())
    end)

    it("serves /media/ with Range as the directory store does", function()
        local wav = S.wav(0.5)
        local name = e:row(e:upload(wav).json.audio_midi_id).audio_path
        local size = #wav

        local r = media_get(name)
        assert.equal(200, r.status)
        assert.equal(wav, r.body)
        assert.equal(tostring(size), r.headers["content-length"])
        assert.equal("bytes", r.headers["accept-ranges"])
        assert.equal("audio/wav", r.headers["content-type"])

        r = media_get(name, "bytes=10-19")
        assert.equal(206, r.status)
        assert.equal(wav:sub(11, 20), r.body)
        assert.equal("10", r.headers["content-length"])
        assert.equal("bytes 10-19/" .. size, r.headers["content-range"])

        r = media_get(name, "bytes=-100")
        assert.equal(206, r.status)
        assert.equal(wav:sub(-100), r.body)
        assert.equal(("bytes %d-%d/%d"):format(size - 100, size - 1, size),
                     r.headers["content-range"])

        r = media_get(name, "bytes=" .. (size - 5) .. "-99999999")
        assert.equal(206, r.status)
        assert.equal(wav:sub(-5), r.body)

        r = media_get(name, "bytes=" .. size .. "-")
        assert.equal(416, r.status)
        assert.equal("bytes */" .. size, r.headers["content-range"])

        -- several ranges: the whole file, as http.file answers them
        r = media_get(name, "bytes=0-1,5-6")
        assert.equal(200, r.status)
        assert.equal(wav, r.body)

        assert.equal(404, media_get(string.rep("a", 32) .. ".wav").status)
        assert.equal(404, media_get("..%2f..%2fetc%2fpasswd").status)
        assert.equal(401, assert(e.srv:request("GET", "/media/" .. name)).status)
    end)

    it("serves a recording over 4 MiB from the replica's copy, with Range",
       function()
        local wav = S.wav(110, 22050, 220)        -- about 4.9 MB
        assert.is_true(#wav > 4 * 1048576)
        local name = e:row(e:upload(wav).json.audio_midi_id).audio_path
        assert.is_nil(sys.exists(e.media .. "/cache/" .. name))
        local r = media_get(name)
        assert.equal(200, r.status)
        assert.equal(tostring(#wav), r.headers["content-length"])
        assert.is_true(r.body == wav, "the body differs from the upload")
        assert.equal(#wav, sys.file_size(e.media .. "/cache/" .. name))
        r = media_get(name, "bytes=1000-")
        assert.equal(206, r.status)
        assert.equal(tostring(#wav - 1000), r.headers["content-length"])
        assert.equal(("bytes 1000-%d/%d"):format(#wav - 1, #wav),
                     r.headers["content-range"])
        assert.is_true(r.body == wav:sub(1001))
        -- a copy deleted by hand (the cache is safe to delete) comes back
        assert(os.remove(e.media .. "/cache/" .. name))
        r = media_get(name)
        assert.equal(200, r.status)
        assert.is_true(r.body == wav)
    end)

    it("stores a replayed result once; a refused one leaves no object",
       function()
        local id = e:upload(S.wav(0.3)).json.audio_midi_id
        local task_id = e:generate(id, {}).json.task_id
        e:claim(task_id, 3)
        local function post(midi_bytes)
            return e:post_result(task_id, 3, { midi = midi_bytes,
                                               notes = NOTES })
        end
        local before = objects()
        local first = post(S.midi_bytes(60))
        assert.equal(200, first.status, first.body)
        assert.equal(before + 2, objects())
        local again = post(S.midi_bytes(60))
        assert.equal(200, again.status, again.body)
        assert.is_true(again.json.replay)
        assert.equal(first.json.midi, again.json.midi)
        assert.equal(before + 2, objects())
        local other = post(S.midi_bytes(61))
        assert.equal(409, other.status, other.body)
        assert.equal(before + 2, objects())
        assert.equal(objects(), large_objects())

        e:complete(task_id, { midi = first.json.midi, notes = first.json.notes,
                              n_notes = 1 })
        assert.truthy(S.eventually(function()
            return e:row(id).status == "completed"
        end, 10), e.srv:log_text())

        -- the downloads read through the store
        local m = e.srv:request("GET", "/transcribe/midi/" .. id .. "/")
        assert.equal(200, m.status)
        assert.equal(S.midi_bytes(60), m.body)
        assert.equal(tostring(#m.body), m.headers["content-length"])
        local part = e.srv:request("GET", "/transcribe/midi/" .. id .. "/",
                                   { headers = { Range = "bytes=0-3" } })
        assert.equal(206, part.status)
        assert.equal("MThd", part.body)
        local csv = e.srv:request("GET", "/transcribe/notes/" .. id
                                  .. "/?format=csv")
        assert.equal(200, csv.status, csv.body .. e.srv:log_text())
        assert.matches("\n[%d%.]+,[%d%.]+,60", csv.body)

        -- the tab cache: rendered from the stored notes, then a hit
        local t1 = e.srv:request("GET", "/transcribe/tab/" .. id .. "/")
        assert.equal(200, t1.status, t1.body .. e.srv:log_text())
        assert.equal("miss", t1.headers["x-wtt-cache"])
        local t2 = e.srv:request("GET", "/transcribe/tab/" .. id .. "/")
        assert.equal(200, t2.status, t2.body)
        assert.equal("hit", t2.headers["x-wtt-cache"])
        assert.equal(t1.body, t2.body)

        -- the page's audio
        local a = e.srv:request("GET", "/transcribe/audio/" .. id .. "/",
                                { headers = { Range = "bytes=0-3" } })
        assert.equal(206, a.status)
        assert.equal("RIFF", a.body)
    end)

    it("retunes from the stored posteriorgram into new objects", function()
        local id = e:upload(S.wav(0.3)).json.audio_midi_id
        local task_id = e:generate(id, { outputs = { "midi", "notes",
                                                     "posteriors" } })
                         .json.task_id
        e:claim(task_id, 1)
        local res = e:post_result(task_id, 1, {
            midi = S.midi_bytes(45), notes = '{"notes":[]}',
            posteriors = S.npy(200, 20) })
        assert.equal(200, res.status, res.body)
        e:complete(task_id, { midi = res.json.midi, notes = res.json.notes,
                              posteriors = res.json.posteriors, n_notes = 0 })
        assert.truthy(S.eventually(function()
            return e:row(id).status == "completed"
        end, 10), e.srv:log_text())

        local r = e.srv:json("POST", "/transcribe/retune/" .. id .. "/",
                             { body = json.encode({}) })
        assert.equal(200, r.status, r.body)
        assert.is_true(r.json.n_notes > 0)
        -- the loader read this replica's copy
        assert.equal("file", sys.exists(e.media .. "/cache/"
                                         .. res.json.posteriors))
        -- again: from memory (or the copy), the same notes
        local r2 = e.srv:json("POST", "/transcribe/retune/" .. id .. "/",
                              { body = json.encode({}) })
        assert.equal(200, r2.status, r2.body)
        assert.equal(r.json.n_notes, r2.json.n_notes)
        local row = e:row(id)
        assert.is_not.equal(res.json.midi, row.midi_path)
        assert.truthy(object(row.midi_path))
        assert.truthy(object(row.notes_path))
        local m = e.srv:request("GET", "/transcribe/midi/" .. id .. "/")
        assert.equal(200, m.status)
        assert.equal("MThd", m.body:sub(1, 4))
        local n = e.srv:json("GET", "/transcribe/notes/" .. id .. "/")
        assert.equal(r.json.n_notes, #n.json.notes)
        assert.equal(objects(), large_objects())
        assert.equal(200, e.srv:json("GET", "/livez").status)
    end)

    it("answers 503 while PostgreSQL is down, and serves again after",
       function()
        local wav = S.wav(0.2)
        local name = e:row(e:upload(wav).json.audio_midi_id).audio_path
        assert.equal(200, media_get(name).status)
        e.db:close()
        e.db = nil
        -- a clean stop: the test server runs with synchronous_commit off,
        -- so a crash (kill) could lose the upload's commit itself
        assert(e.pgsrv:pg_ctl("-w", "-t", "30", "-m", "fast", "stop"))
        local r = media_get(name)
        assert.equal(503, r.status, r.body)
        assert.matches("media store unavailable", r.body)
        assert.truthy(r.headers["retry-after"])
        assert.equal(200, e.srv:json("GET", "/livez").status)
        e.pgsrv:start()
        assert.truthy(S.eventually(function()
            local res = media_get(name)
            return res.status == 200 and res.body == wav
        end, 20), e.srv:log_text())
        e.db = assert(require("wtt.pg").connect(e.pgsrv.url))
    end)
end)
