-- wtt.core.tab: the C fingering's Lua face (core/bind/wtt_tab.c):
-- expected failures come back as nil, err; misuse raises.

local core = require "wtt.core.tab"
local tab = require "wtt.tab"

local GUITAR = { tuning = { 64, 59, 55, 50, 45, 40 }, capo = 0, max_fret = 22,
                 ordered = true }

local function settings()
    local w, lim = tab.settings("guitar")
    local ww, ll = {}, {}
    for k, v in pairs(w) do ww[k] = v end
    for k, v in pairs(lim) do ll[k] = v end
    return ww, ll
end

describe("wtt.core.tab", function()
    it("gives every position of a pitch, string by string", function()
        local f = assert(core.fingering(GUITAR))
        assert.same({ 1, 0, 2, 5, 3, 9, 4, 14, 5, 19 }, { f:positions(64) })
        assert.same({}, { f:positions(39) })     -- below the low E
        assert.same({}, { f:positions(60.5) })   -- not a MIDI note
    end)

    it("fingers a piece from flat arrays", function()
        local f = assert(core.fingering(GUITAR, settings()))
        -- Open C (x32010), then a single E4.
        local strings, frets, steps = f:search(
            { 48, 52, 55, 60, 64, 64 }, { 0, 0, 0, 0, 0, 1 },
            { 0.9, 0.9, 0.9, 0.9, 0.9, 1.9 }, { 5, 1 })
        assert.same({ 5, 4, 3, 2, 1, 1 }, strings)
        assert.same({ 3, 2, 0, 1, 0, 0 }, frets)
        assert.is_true(steps > 0)
        assert.same({ {}, {}, 0 }, { f:search({}, {}, {}, {}) })
    end)

    it("fingers a piece from its notes, and lists what it cannot play", function()
        local f = assert(core.fingering(GUITAR, settings()))
        local function note(p, t, e) return { pitch = p, start_s = t, end_s = e or t + 1 } end
        local notes = {
            note(30, 0, 0.5),                                       -- below E2
            note(48, 1), note(52, 1.01), note(60, 1.02), note(55, 1.03), note(64, 1.04),
            note(40, 3), note(45, 3), note(50, 3.01), note(55, 3.01), note(59, 3.02),
            note(64, 3.02), note(69, 3.03),                         -- 7 notes
            note(64, 5),
        }
        local placed, un, transitions, chords = f:run(notes, false)
        assert.equal(12, #placed)
        assert.equal(3, chords)
        assert.is_true(transitions > 0)
        -- By start, then pitch; the strummed open C (x32010) is chord 1.
        local got = {}
        for i, n in ipairs(placed) do
            got[i] = { n.pitch, n.string, n.fret, n.chord }
            assert.equal(n.pitch, GUITAR.tuning[n.string] + n.fret)
        end
        assert.same({ { 48, 5, 3, 1 }, { 52, 4, 2, 1 }, { 60, 2, 1, 1 },
                      { 55, 3, 0, 1 }, { 64, 1, 0, 1 } }, { unpack(got, 1, 5) })
        assert.same({ 64, 3 }, { got[12][1], got[12][4] })
        -- Out of range first (by start), then the inner A2 that doubles the
        -- top A4's pitch class, removed from the seven.
        assert.same({ { start_s = 0, end_s = 0.5, pitch_midi = 30, reason = "out_of_range" },
                      { start_s = 3, end_s = 4, pitch_midi = 45, reason = "too_many_notes" } },
                    un)
        assert.is_false(notes[1].string or false)

        -- Folded: moved up an octave, placed, and listed with folded_to.
        notes = { note(30, 0, 0.5), note(100, 1) }
        placed, un = f:run(notes, true)
        assert.same({ 42, 76 }, { placed[1].pitch, placed[2].pitch })
        assert.same({ start_s = 0, end_s = 0.5, pitch_midi = 30, reason = "out_of_range",
                      folded_to = 42 }, un[1])
        assert.equal(76, un[2].folded_to)
        assert.same({ {}, {}, 0, 0 }, { f:run({}) })
    end)

    it("names the chords with no fingering and tests one chord", function()
        local w, lim = settings()
        lim.span, lim.span_open = 1, 1
        local f = assert(core.fingering(GUITAR, w, lim))
        -- A stretch of five frets on the three lowest strings.
        assert.is_false(f:playable({ 41, 47, 53 }))
        assert.is_true(f:playable({ 40 }))
        local s, err = f:search({ 40, 41, 47, 53 }, { 0, 1, 1, 1 },
                                { 1, 2, 2, 2 }, { 1, 3 })
        assert.is_nil(s)
        assert.equal("a chord has no fingering", err)
    end)

    it("returns nil, err for settings and chords out of range", function()
        local w, lim = settings()
        lim.candidates = 0
        local f, err = core.fingering(GUITAR, w, lim)
        assert.is_nil(f)
        assert.matches("candidates", err)
        f, err = core.fingering({ tuning = {}, capo = 0, max_fret = 22 })
        assert.is_nil(f)
        assert.matches("strings", err)
        f = assert(core.fingering(GUITAR, settings()))
        local ok
        ok, err = f:playable({ 40, 45, 50, 55, 59, 64, 69 })
        assert.is_nil(ok)
        assert.matches("as many notes as the instrument strings", err)
        ok, err = f:run({ { pitch = 40, start_s = 0 / 0, end_s = 1 } })
        assert.is_nil(ok)
        assert.equal("note times must be finite", err)
        w, lim = settings()
        lim.chord_window_ms = 1 / 0
        ok, err = core.fingering(GUITAR, w, lim)
        assert.is_nil(ok)
        assert.matches("finite", err)
        ok, err = f:search({ 40 }, { 0 }, { 1 }, { 2 })
        assert.is_nil(ok)
        assert.is_string(err)
    end)

    it("raises on misuse", function()
        local f = assert(core.fingering(GUITAR, settings()))
        assert.has_error(function() core.fingering("guitar") end)
        assert.has_error(function()
            local w, lim = settings()
            w.move = "fast"
            core.fingering(GUITAR, w, lim)
        end)
        assert.has_error(function() f:search({ 40 }, { 0, 1 }, { 1 }, { 1 }) end)
        assert.has_error(function() f:search({ 40.5 }, { 0 }, { 1 }, { 1 }) end)
        assert.has_error(function() f:playable({ "E2" }) end)
        assert.has_error(function() f:run("notes") end)
        assert.has_error(function() f:run({ 40 }) end)
        assert.has_error(function() f:run({ { pitch = "E2", start_s = 0, end_s = 1 } }) end)
        assert.has_error(function()
            local w, lim = settings()
            lim.chord_gap_ms = nil
            core.fingering(GUITAR, w, lim)
        end)
        local positions_only = assert(core.fingering(GUITAR))
        assert.has_error(function() positions_only:playable({ 40 }) end)
    end)
end)
