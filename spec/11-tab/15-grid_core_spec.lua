-- wtt.core.grid and wtt.core.technique: the C grid's and techniques' Lua
-- faces (core/bind/wtt_tab_grid.c, core/bind/wtt_tab_technique.c): the
-- tables they make, expected failures as nil, err, and misuse raising.

local grid = require "wtt.core.grid"
local technique = require "wtt.core.technique"
local rhythm = require "wtt.core.rhythm"

--- A steady estimate at 120 bpm in 4/4.
local function steady(n)
    local beats = {}
    for k = 1, n do
        beats[k] = (k - 1) * 0.5
    end
    return { tempo_bpm = 120, beats = beats, beats_per_measure = 4,
             beat_type = 4, pickup_beats = 0, first_downbeat = 1 }
end

local function quarters(n)
    local notes = {}
    for k = 1, n do
        notes[k] = { start_s = (k - 1) * 0.5, end_s = k * 0.5, pitch = 59 + k,
                     chord = k, string = 1 + k % 6 }
    end
    return notes
end

describe("wtt.core.grid", function()
    it("makes the measures and sets the notes' fields", function()
        local notes = quarters(5)
        local ms = assert(grid.build(notes, steady(8),
                                     (rhythm.chords(notes)), nil, true))
        assert.equal(2, #ms)
        assert.same({ number = 1, start_tick = 0, ticks = 48, start_s = 0 },
                    { number = ms[1].number, start_tick = ms[1].start_tick,
                      ticks = ms[1].ticks, start_s = ms[1].start_s })
        assert.equal(4, #ms[1].events)
        assert.same({ tick = 12, ticks = 12, notes = { 2 } }, ms[1].events[2])
        assert.same({ tick = 12, ticks = 12, rest = true }, ms[2].events[2])
        assert.same({ 48, 12, "1/4", 2, 1, 64 },
                    { notes[5].tick, notes[5].ticks, notes[5].duration,
                      notes[5].measure, notes[5].beat, notes[5].pitch_midi })
        -- without `doc`, no pitch_midi
        notes = quarters(2)
        assert(grid.build(notes, steady(8), (rhythm.chords(notes))))
        assert.is_nil(notes[1].pitch_midi)
    end)

    it("shares one notes table among a chord's tied pieces", function()
        local notes = { { start_s = 0.25, end_s = 1.0, pitch = 60 } }
        local ms = assert(grid.build(notes, steady(8),
                                     (rhythm.chords(notes))))
        local ev = ms[1].events
        assert.same({ "r", "n", "n" }, { ev[1].rest and "r", ev[2].notes
                     and "n", ev[3].notes and "n" })
        assert.is_true(ev[3].tied)
        assert.equal(ev[2].notes, ev[3].notes)
    end)

    it("takes cost overrides and ignores other keys", function()
        local notes = quarters(3)
        assert(grid.build(notes, steady(8), (rhythm.chords(notes)),
                          { collide = 0, t3 = 9, other = "x" }))
        assert.has_error(function()
            grid.build(notes, steady(8), (rhythm.chords(notes)),
                       { err = "big" })
        end)
    end)

    it("refuses a meter it cannot write with nil, err", function()
        local notes = quarters(2)
        local ch = rhythm.chords(notes)
        for _, change in ipairs({
            { beat_type = 3 }, { beats_per_measure = 0 },
            { beats_per_measure = "4" }, { pickup_beats = 4 },
            { pickup_beats = 0.3 }, { first_downbeat = 0.5 },
            { tempo_bpm = 0 }, { beats = "none" },
        }) do
            local r = steady(8)
            for k, v in pairs(change) do
                r[k] = v
            end
            local ms, err = grid.build(notes, r, ch)
            assert.is_nil(ms)
            assert.is_string(err)
        end
        local ms, err = grid.build(notes, 42, ch)
        assert.is_nil(ms)
        assert.equal("rhythm estimate missing", err)
    end)

    it("raises on misuse", function()
        local notes = quarters(2)
        local ch = rhythm.chords(notes)
        assert.has_error(function() grid.build(notes, steady(8), nil) end)
        local bad = { n = 2, t = ch.t, first = { 1, 9 }, nxt = ch.nxt,
                      end_s = ch.end_s, string = ch.string }
        assert.has_error(function() grid.build(notes, steady(8), bad) end)
        -- (strings are read where two chords land on one position)
        bad = { n = 2, t = { 0, 0.01 }, first = ch.first, nxt = ch.nxt,
                end_s = ch.end_s, string = { 65, 1 } }
        assert.has_error(function()
            grid.build(notes, steady(8), bad, { collide = 0 })
        end)
        assert.has_error(function()
            grid.build(notes, steady(8), { n = 3, t = {}, first = {},
                       nxt = {}, end_s = {}, string = {} })
        end)
    end)
end)

describe("wtt.core.technique", function()
    local NONE, RING = {}, { { type = "let_ring" } }

    it("sets the shared lists or new ones", function()
        local notes = {
            { start_s = 0, end_s = 2, string = 6, fret = 0, chord = 1,
              bends = { 0, 3, 6, 6, 2 } },
            { start_s = 0.5, end_s = 0.7, string = 3, fret = 2, chord = 2,
              onset = 0.9 },
            { start_s = 0.7, end_s = 0.9, string = 3, fret = 4, chord = 3,
              onset = 0.1 },
        }
        assert.equal(notes, technique.annotate(notes, NONE, RING))
        assert.same({ { type = "bend", semitones = 2, release = true },
                      RING[1] }, notes[1].techniques)
        assert.equal(RING[1], notes[1].techniques[2])
        assert.equal(NONE, notes[2].techniques)
        assert.same({ { type = "hammer_on", from = 2 } }, notes[3].techniques)
        assert.equal(technique.annotate({}, NONE, RING)[1], nil)
    end)

    it("reads a long contour whole", function()
        -- 5,000 bins (read in pieces): the bend comes at the end
        local bends = {}
        for k = 1, 5000 do
            bends[k] = k > 4500 and 6 or 1
        end
        local notes = { { start_s = 0, end_s = 60, string = 1, fret = 2,
                          chord = 1, bends = bends } }
        technique.annotate(notes, NONE, RING)
        assert.same({ { type = "bend", semitones = 2, release = false } },
                    notes[1].techniques)
        bends[5000] = 2
        technique.annotate(notes, NONE, RING)
        assert.is_true(notes[1].techniques[1].release)
    end)

    it("raises on misuse", function()
        for _, bad in ipairs({
            { string = 65 }, { string = "1" }, { fret = "x" },
            { start_s = false }, { onset = "low" }, { bends = 7 },
            { bends = { 0, "x", 1 } },
        }) do
            local n = { start_s = 0, end_s = 1, string = 1, fret = 0,
                        chord = 1 }
            for k, v in pairs(bad) do
                n[k] = v
            end
            assert.has_error(function()
                technique.annotate({ n }, NONE, RING)
            end)
        end
        assert.has_error(function() technique.annotate({ 5 }, NONE, RING) end)
        assert.has_error(function() technique.annotate({}, NONE) end)
    end)
end)
