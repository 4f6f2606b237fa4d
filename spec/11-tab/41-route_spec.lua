-- GET /transcribe/tab/{id}/ against real PostgreSQL, Redis and `wtt serve`:
-- every format, Accept negotiation, the cache, 422 naming the option, 404s.
-- The completed rows are written by hand, with their notes file in the
-- media dir, as the subscriber would after a worker's result.

local S = require "spec.support.service"
local json = require "wtt.json"
local midi = require "wtt.midi"
local notes_io = require "wtt.notes_io"
local sys = require "wtt.sys"

local FORMATS = {
    ascii = { "text/plain", ".tab.txt" },
    json = { "application/json", ".tab.json" },
    musicxml = { "application/vnd.recordare.musicxml+xml", ".musicxml" },
    alphatex = { "text/plain", ".alphatex" },
    gp = { "application/x-guitar-pro", ".gp" },
}

-- Eight bars of a G major arpeggio and one out-of-range note.
local function phrase()
    local notes = {}
    local pitches = { 43, 47, 50, 55, 59, 62, 67, 62, 59, 55, 50, 47 }
    for i = 1, 32 do
        local t = (i - 1) * 0.25
        notes[i] = { start_s = t, end_s = t + 0.24,
                     pitch = pitches[(i - 1) % #pitches + 1],
                     amplitude = 0.5 + (i % 3) * 0.1 }
    end
    notes[#notes + 1] = { start_s = 8, end_s = 8.5, pitch = 100,
                          amplitude = 0.5 }
    return notes
end


describe("GET /transcribe/tab/{id}/ #redis #pg", function()
    local e, id, notes_name

    local function media_name(ext)
        local f = assert(io.open("/dev/urandom", "rb"))
        local b = f:read(16)
        f:close()
        return (b:gsub(".", function(c)
            return string.format("%02x", c:byte())
        end)) .. "." .. ext
    end

    -- A row as the subscriber leaves it: status, file names, counts.
    local function row(status, notes_file, midi_file)
        local rows = assert(e.db:query(
            "INSERT INTO audio_midi (original_name, audio_path, status, "
            .. "notes_path, midi_path, note_count) VALUES ('My Song.wav', $1, "
            .. "$2, $3, $4, 33) RETURNING id",
            string.rep("a", 32) .. ".wav", status, notes_file or json.null,
            midi_file or json.null))
        return rows[1].id
    end

    local function get(path, headers)
        local res = e.srv:request("GET", path, { headers = headers or {} })
        if res.status == 500 then
            -- the traceback is in the server's log, not the answer
            res.body = res.body .. "\n" .. e.srv:log_text():sub(-2000)
        end
        return res
    end

    local function cache_files()
        local list = sys.listdir(e.media .. "/tab") or {}
        table.sort(list)
        return list
    end

    local function assert_error(res, status, code)
        assert.equal(status, res.status, res.body)
        local doc = json.decode(res.body)
        if code then
            assert.equal(code, doc.error)
        end
        assert.is_string(doc.detail)
        assert.is_string(doc.request_id)
        return doc
    end

    setup(function()
        e = S.start({})
        notes_name = media_name("json")
        assert(sys.write_file(e.media .. "/" .. notes_name,
            notes_io.to_json(phrase(), { source = "spec" })))
        id = row("completed", notes_name)
    end)
    teardown(function()
        if e then e:stop() end
    end)

    it("renders every format with its type and download name", function()
        for fmt, info in pairs(FORMATS) do
            local res = get("/transcribe/tab/" .. id .. "/?format=" .. fmt)
            assert.equal(200, res.status, fmt .. ": " .. tostring(res.body))
            assert.equal(info[1], res.headers["content-type"]:match("^[^;]+"),
                         fmt)
            assert.equal('attachment; filename="' .. id .. info[2] .. '"',
                         res.headers["content-disposition"])
            assert.equal("nosniff", res.headers["x-content-type-options"])
            assert.is_true(#res.body > 0)
        end
        local doc = json.decode(get("/transcribe/tab/" .. id
                                    .. "/?format=json").body)
        assert.equal(32, #doc.notes)
        assert.equal(1, #doc.unplayable)
        assert.equal(100, doc.unplayable[1].pitch_midi)
        assert.equal("guitar", doc.instrument)
        assert.matches("<score%-partwise", get("/transcribe/tab/" .. id
                                              .. "/?format=musicxml").body)
        assert.equal("PK", get("/transcribe/tab/" .. id
                               .. "/?format=gp").body:sub(1, 2))
    end)

    it("chooses the format by Accept when the query has none", function()
        local function fmt_of(accept)
            local res = get("/transcribe/tab/" .. id .. "/",
                            accept and { Accept = accept } or nil)
            assert.equal(200, res.status, res.body)
            assert.equal("Accept", res.headers["vary"])
            local name = res.headers["content-disposition"]
                :match('filename="[^.]+%.(.-)"')
            return name
        end
        assert.equal("tab.txt", fmt_of(nil))
        assert.equal("tab.txt", fmt_of("*/*"))
        assert.equal("tab.txt", fmt_of("text/plain"))
        assert.equal("tab.json", fmt_of("application/json"))
        assert.equal("musicxml", fmt_of("application/vnd.recordare.musicxml+xml"))
        assert.equal("musicxml", fmt_of("application/xml"))
        assert.equal("gp", fmt_of("application/x-guitar-pro"))
        assert.equal("tab.json", fmt_of("image/png, application/json;q=0.5"))
        assert.equal("tab.txt", fmt_of("application/json;q=0.5, text/plain"))
        assert.equal("tab.txt", fmt_of("application/json;q=0, text/html"))
        assert.equal("tab.txt", fmt_of("image/png"))
        -- ?format= wins over Accept
        local res = get("/transcribe/tab/" .. id .. "/?format=alphatex",
                        { Accept = "application/json" })
        assert.matches("%.alphatex\"$", res.headers["content-disposition"])
    end)

    it("applies the options", function()
        local res = get("/transcribe/tab/" .. id .. "/?format=json&capo=2"
            .. "&tuning=drop_d&tempo=100&time_signature=3/4&max_fret=15")
        assert.equal(200, res.status, res.body)
        local doc = json.decode(res.body)
        assert.equal(2, doc.capo)
        assert.same({ 64, 59, 55, 50, 45, 38 }, doc.tuning)
        assert.near(100, doc.tempo_bpm, 1e-9)
        assert.same({ 3, 4 }, doc.time_signature)
        res = get("/transcribe/tab/" .. id .. "/?format=json&instrument=bass"
                  .. "&fold_octaves=true")
        doc = json.decode(res.body)
        assert.equal("bass", doc.instrument)
        assert.equal(33, #doc.notes)        -- the high note folded in
        assert.is_number(doc.unplayable[1].folded_to)
        res = get("/transcribe/tab/" .. id .. "/?format=json&tuning="
                  .. "D2%20A2%20D3%20G3%20A3%20D4")
        assert.equal("dadgad", json.decode(res.body).tuning_name)
    end)

    it("serves a repeat from the cache, per option set", function()
        local path = "/transcribe/tab/" .. id .. "/?format=ascii&capo=3"
        local first = get(path)
        assert.equal(200, first.status, first.body)
        assert.equal("miss", first.headers["x-wtt-cache"])
        local n = #cache_files()
        local again = get(path)
        assert.equal("hit", again.headers["x-wtt-cache"])
        assert.equal(first.body, again.body)
        assert.equal(n, #cache_files())
        -- the same options in another order and spelling are the same set
        local same = get("/transcribe/tab/" .. id .. "/?capo=03&tuning=std"
                         .. "&format=ascii&instrument=guitar")
        assert.equal("hit", same.headers["x-wtt-cache"])
        -- Accept picking the same format shares the entry too
        local accept = get("/transcribe/tab/" .. id .. "/?capo=3",
                           { Accept = "text/plain" })
        assert.equal("hit", accept.headers["x-wtt-cache"])
        -- another option set or format is another entry
        assert.equal("miss", get("/transcribe/tab/" .. id
            .. "/?format=ascii&capo=4").headers["x-wtt-cache"])
        assert.equal("miss", get("/transcribe/tab/" .. id
            .. "/?format=json&capo=3").headers["x-wtt-cache"])
        assert.equal(n + 2, #cache_files())
        for _, name in ipairs(cache_files()) do
            assert.matches("^%x+%.%l+$", name)
            assert.equal(32, #name:match("^%x+"))
        end
        -- a cached entry keeps Range support (served from the file)
        local part = get(path, { Range = "bytes=0-3" })
        assert.equal(206, part.status)
        assert.equal(first.body:sub(1, 4), part.body)
    end)

    it("renders again when the notes change (a retune names a new file)",
       function()
        local path = "/transcribe/tab/" .. id .. "/?format=json&capo=1"
        assert.equal("miss", get(path).headers["x-wtt-cache"])
        assert.equal("hit", get(path).headers["x-wtt-cache"])
        local new_name = media_name("json")
        local fewer = phrase()
        table.remove(fewer)
        assert(sys.write_file(e.media .. "/" .. new_name,
                              notes_io.to_json(fewer)))
        assert(e.db:exec("UPDATE audio_midi SET notes_path = $2 WHERE id = $1",
                         id, new_name))
        local res = get(path)
        assert.equal("miss", res.headers["x-wtt-cache"])
        assert.equal(32, #json.decode(res.body).notes)
        assert.equal(0, #json.decode(res.body).unplayable)
        assert(e.db:exec("UPDATE audio_midi SET notes_path = $2 WHERE id = $1",
                         id, notes_name))
    end)

    it("renders from the MIDI when only MIDI was stored", function()
        local mid = media_name("mid")
        assert(midi.write(e.media .. "/" .. mid, phrase()))
        local only_midi = row("completed", nil, mid)
        local res = get("/transcribe/tab/" .. only_midi .. "/?format=json")
        assert.equal(200, res.status, res.body)
        local doc = json.decode(res.body)
        assert.equal(33, #doc.notes + #doc.unplayable)
    end)

    it("still answers when the cache cannot be written", function()
        local tabdir = e.media .. "/tab"
        sys.rmtree(tabdir)
        assert(sys.write_file(tabdir, "not a directory"))
        local res = get("/transcribe/tab/" .. id .. "/?format=json&capo=5")
        os.remove(tabdir)
        assert.equal(200, res.status, res.body)
        assert.equal("miss", res.headers["x-wtt-cache"])
        assert.equal(5, json.decode(res.body).capo)
        assert.equal('attachment; filename="' .. id .. '.tab.json"',
                     res.headers["content-disposition"])
        assert.matches("tab.cache_write_failed", e.srv:log_text())
    end)

    it("answers 422 naming the option for bad options", function()
        local cases = {
            { "capo=13", "capo" }, { "capo=x", "capo" },
            { "max_fret=0", "max_fret" }, { "tuning=E2%20A2", "tuning" },
            { "tuning=weird", "tuning" }, { "instrument=banjo", "instrument" },
            { "format=pdf", "format" }, { "tempo=5", "tempo" },
            { "time_signature=7/5", "time_signature" },
            { "pickup=-1", "pickup" }, { "fold_octaves=maybe", "fold_octaves" },
            { "colour=red", "colour" }, { "capo=1&capo=2", "capo" },
        }
        local before = #cache_files()
        for _, c in ipairs(cases) do
            local res = get("/transcribe/tab/" .. id .. "/?" .. c[1])
            local doc = assert_error(res, 422, "invalid")
            assert.equal(c[2], doc.option, c[1])
            assert.truthy(doc.detail:find(c[2], 1, true),
                          c[1] .. ": " .. doc.detail)
        end
        assert.equal(before, #cache_files())
    end)

    it("answers 404 for unknown or malformed ids and unfinished rows",
       function()
        assert_error(get("/transcribe/tab/7b0c4a3e-1111-4222-8333-944445555666/"),
                     404, "not_found")
        assert_error(get("/transcribe/tab/nope/"), 404, "not_found")
        assert.equal(404, get("/transcribe/tab/..%2f..%2fetc/").status)
        local pending = row("pending", notes_name)
        local doc = assert_error(get("/transcribe/tab/" .. pending .. "/"),
                                 404, "not_ready")
        assert.matches("pending", doc.detail)
        local failed = row("failed")
        assert_error(get("/transcribe/tab/" .. failed .. "/"), 404, "not_ready")
        local gone = row("completed", media_name("json"))
        assert_error(get("/transcribe/tab/" .. gone .. "/"), 404, "not_ready")
        -- the path without its slash redirects like the other downloads
        local res = get("/transcribe/tab/" .. id .. "?format=json")
        assert.equal(308, res.status)
        assert.equal("/transcribe/tab/" .. id .. "/?format=json",
                     res.headers.location)
    end)
end)
