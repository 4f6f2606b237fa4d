-- The two API routes the page added (docs/api.md), against real
-- PostgreSQL, Redis and `wtt serve`: GET /transcribe/audio/{id}/ (the
-- uploaded recording, inline, by ranges, for the page's player) and
-- GET /transcribe/notes/{id}/?format=csv (the notes as CSV).

local S = require "spec.support.service"
local json = require "wtt.json"
local sys = require "wtt.sys"
local notes_io = require "wtt.notes_io"

describe("the page's API routes #redis #pg", function()
    local e

    setup(function()
        e = S.start({})
    end)
    teardown(function()
        if e then e:stop() end
    end)

    local function uploaded(bytes, name)
        local res = e:upload(bytes, name)
        assert.equal(201, res.status, res.body)
        return res.json.audio_midi_id
    end

    describe("GET /transcribe/audio/{id}/", function()
        it("answers the uploaded bytes inline, with their type", function()
            local wav = S.wav(0.5)
            local id = uploaded(wav, 'x"; evil=".wav')
            local res = assert(e.srv:request("GET", "/transcribe/audio/" .. id .. "/"))
            assert.equal(200, res.status)
            assert.equal(wav, res.body)
            assert.equal("audio/wav", res.headers["content-type"])
            assert.equal('inline; filename="' .. id .. '.wav"',
                         res.headers["content-disposition"])
            assert.equal("bytes", res.headers["accept-ranges"])
            assert.equal("nosniff", res.headers["x-content-type-options"])
        end)

        it("answers ranges, as browsers ask when seeking", function()
            local wav = S.wav(0.5)
            local id = uploaded(wav)
            local res = assert(e.srv:request("GET", "/transcribe/audio/" .. id .. "/", {
                headers = { Range = "bytes=100-199" } }))
            assert.equal(206, res.status)
            assert.equal(wav:sub(101, 200), res.body)
            assert.equal("bytes 100-199/" .. #wav, res.headers["content-range"])
            local tail = assert(e.srv:request("GET", "/transcribe/audio/" .. id .. "/", {
                headers = { Range = "bytes=-10" } }))
            assert.equal(wav:sub(-10), tail.body)
            local bad = assert(e.srv:request("GET", "/transcribe/audio/" .. id .. "/", {
                headers = { Range = "bytes=999999-" } }))
            assert.equal(416, bad.status)
        end)

        it("is 404 for an unknown or malformed id", function()
            for _, id in ipairs({ "00000000-0000-0000-0000-000000000000",
                                  "nope", "..%2F..%2Fetc" }) do
                local res = assert(e.srv:json("GET", "/transcribe/audio/" .. id .. "/"))
                assert.equal(404, res.status, id)
                assert.equal("not_found", res.json.error)
            end
        end)
    end)

    describe("GET /transcribe/notes/{id}/?format=csv", function()
        local notes = {
            { start_s = 0.5, end_s = 1.25, pitch_midi = 64, amplitude = 0.5,
              velocity = 64, pitch_bends = { 0, 1, 2 } },
            { start_s = 1.0, end_s = 1.5, pitch_midi = 40, amplitude = 0.25,
              velocity = 32, pitch_bends = {} },
        }

        local function completed_with_notes()
            local id = uploaded(S.wav(0.5))
            local name = string.rep("c", 32) .. ".json"
            assert(sys.write_file(e.media .. "/" .. name,
                                  json.encode({ notes = notes })))
            assert(e.db:exec("UPDATE audio_midi SET status = 'completed', "
                .. "notes_path = $2, note_count = 2 WHERE id = $1", id, name))
            return id
        end

        it("writes the notes as `wtt transcribe --notes-csv` does", function()
            local id = completed_with_notes()
            local res = assert(e.srv:request("GET", "/transcribe/notes/" .. id
                                                    .. "/?format=csv"))
            assert.equal(200, res.status, res.body)
            assert.equal("text/csv; charset=utf-8", res.headers["content-type"])
            assert.equal('attachment; filename="' .. id .. '.csv"',
                         res.headers["content-disposition"])
            local expect = notes_io.to_csv({
                { start_s = 0.5, end_s = 1.25, pitch = 64, amplitude = 0.5,
                  bends = { 0, 1, 2 } },
                { start_s = 1.0, end_s = 1.5, pitch = 40, amplitude = 0.25,
                  bends = {} },
            })
            assert.equal(expect, res.body)
            assert.matches("^start_time_s,end_time_s,pitch_midi,velocity,pitch_bend\n"
                           .. "0%.500000000,1%.250000000,64,64,0,1,2\n", res.body)
            -- format=json (or none) is the JSON file, as before
            local j = assert(e.srv:json("GET", "/transcribe/notes/" .. id .. "/?format=json"))
            assert.equal(200, j.status)
            assert.equal(2, #j.json.notes)
        end)

        it("is 404 not_ready before completion and 422 for an unknown format", function()
            local id = uploaded(S.wav(0.5))
            local res = assert(e.srv:json("GET", "/transcribe/notes/" .. id .. "/?format=csv"))
            assert.equal(404, res.status)
            assert.equal("not_ready", res.json.error)
            local bad = assert(e.srv:json("GET", "/transcribe/notes/" .. id .. "/?format=xml"))
            assert.equal(422, bad.status)
        end)
    end)
end)
