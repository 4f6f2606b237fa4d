-- Fingering: known passages get the string and fret a guitarist would
-- write, and the rules hold on every one (docs/tab.md, "Fingering").

local tab = require "wtt.tab"
local runtime = require "wtt.runtime"
local passages = dofile(runtime.source_dir .. "/spec/support/tab_passages.lua")

local function rules(placed, unplayable, notes, opts, lim)
    local inst = opts.instrument
    assert.equal(#notes, #placed + #unplayable,
                 "every note is placed or reported")
    local by_chord = {}
    for _, n in ipairs(placed) do
        assert.equal(n.pitch, inst.tuning[n.string] + inst.capo + n.fret,
                     "string and fret play the note's pitch")
        assert.is_true(n.fret >= 0 and n.fret + inst.capo <= inst.max_fret)
        local c = by_chord[n.chord] or {}
        by_chord[n.chord] = c
        c[#c + 1] = n
    end
    for _, c in pairs(by_chord) do
        local used, lo, hi, open = {}, math.huge, -math.huge, false
        for _, n in ipairs(c) do
            assert.is_nil(used[n.string], "two notes of a chord share a string")
            used[n.string] = true
            if n.fret > 0 then
                lo, hi = math.min(lo, n.fret), math.max(hi, n.fret)
            else
                open = true
            end
        end
        if hi > lo then
            assert.is_true(hi - lo <= (open and lim.span_open or lim.span),
                           "span " .. (hi - lo) .. " within the limit")
        end
    end
end

describe("tab fingering", function()
    local _, lim = tab.settings("guitar")

    for _, p in ipairs(passages.list) do
        it(p.name, function()
            local opts = assert(tab.options(p.options))
            local notes, expect = passages.notes(p)
            local placed, unplayable = assert(tab.finger(notes, opts))
            rules(placed, unplayable, notes, opts, lim)
            -- Match placed notes back to the passage by start and pitch.
            local wrong = {}
            for _, n in ipairs(placed) do
                for i, src in ipairs(notes) do
                    if src.start_s == n.start_s and src.pitch == n.pitch then
                        local e = expect[i]
                        if e and (e.string ~= n.string or e.fret ~= n.fret) then
                            wrong[#wrong + 1] = string.format(
                                "%.3fs pitch %d: %d/%d, a guitarist writes %d/%d",
                                n.start_s, n.pitch, n.string, n.fret,
                                e.string, e.fret)
                        end
                    end
                end
            end
            assert.same({}, wrong)
            local extra = #(p.extra or {})
            assert.equal(extra, #unplayable)
            for _, u in ipairs(unplayable) do
                assert.equal("too_many_notes", u.reason)
            end
        end)
    end

    it("reports notes out of range with time and pitch, or folds them", function()
        local notes = { { start_s = 0, end_s = 0.5, pitch = 30, amplitude = 0.5 },
                        { start_s = 1, end_s = 1.5, pitch = 64, amplitude = 0.5 },
                        { start_s = 2, end_s = 2.5, pitch = 100, amplitude = 0.5 } }
        local placed, un = tab.finger(notes, assert(tab.options{}))
        assert.equal(1, #placed)
        assert.same({ 0, 30, "out_of_range" }, { un[1].start_s, un[1].pitch_midi, un[1].reason })
        assert.same({ 2, 100, "out_of_range" }, { un[2].start_s, un[2].pitch_midi, un[2].reason })
        placed, un = tab.finger(notes, assert(tab.options{ fold_octaves = "true" }))
        assert.equal(3, #placed)
        assert.equal(2, #un)
        assert.equal(42, un[1].folded_to)
        assert.equal(76, un[2].folded_to)  -- 86 is the highest note
        assert.equal(42, placed[1].pitch)
    end)

    it("names the option at fault", function()
        local cases = {
            { { capo = "13" }, "capo" }, { { capo = "x" }, "capo" },
            { { instrument = "banjo" }, "instrument" },
            { { tuning = "E2 A2 D3" }, "tuning" }, { { tuning = "Q2 A2 D3 G3 B3 E4" }, "tuning" },
            { { tuning = "weird" }, "tuning" }, { { max_fret = "40" }, "max_fret" },
            { { tempo = "5" }, "tempo" }, { { time_signature = "5/3" }, "time_signature" },
            { { pickup = "-1" }, "pickup" }, { { formats = "ascii,pdf" }, "format" },
            { { fold_octaves = "maybe" }, "fold_octaves" },
        }
        for _, c in ipairs(cases) do
            local o, err, option = tab.options(c[1])
            assert.is_nil(o)
            assert.equal(c[2], option, err)
            assert.is_string(err)
        end
    end)

    it("reads custom tunings lowest string first and names known ones", function()
        local o = assert(tab.options{ tuning = "D2 A2 D3 G3 B3 E4" })
        assert.same({ 64, 59, 55, 50, 45, 38 }, o.instrument.tuning)
        assert.equal("drop_d", o.instrument.tuning_name)
        o = assert(tab.options{ tuning = "C2 G2 C3 G3 C4 E4" })
        assert.equal("custom", o.instrument.tuning_name)
        for _, inst in ipairs({ "guitar7", "bass", "bass5", "ukulele" }) do
            o = assert(tab.options{ instrument = inst })
            assert.equal(inst, o.instrument.name)
        end
        assert.same({ 69, 64, 60, 67 }, assert(tab.options{ instrument = "ukulele" }).instrument.tuning)
    end)

    it("costs grow linearly with the number of notes", function()
        -- The same phrase 1x and 8x: the search's work (candidate pairs
        -- weighed) per note must not grow. Counted, not timed.
        local function phrase(reps)
            local notes, t = {}, 0
            local pitches = { 52, 55, 57, 59, 62, 64, 67, 69, 71, 74, 76, 72 }
            for r = 1, reps do
                for i = 1, 200 do
                    local p = pitches[(i * 7 + r) % #pitches + 1]
                    notes[#notes + 1] = { start_s = t, end_s = t + 0.2, pitch = p, amplitude = 0.6 }
                    if i % 4 == 0 then
                        notes[#notes + 1] = { start_s = t + 0.002, end_s = t + 0.2, pitch = p - 12, amplitude = 0.6 }
                    end
                    t = t + 0.125
                end
            end
            return notes
        end
        local opts = assert(tab.options{})
        local function per_note(reps)
            local notes = phrase(reps)
            local _, _, stats = tab.finger(notes, opts)
            assert.is_true(stats.transitions > 0)
            return stats.transitions / #notes
        end
        local small, big = per_note(1), per_note(8)
        assert.is_true(big <= small * 1.1, ("%.1f pairs per note at 1x, %.1f at 8x"):format(small, big))
        -- Capped candidates bound the work per chord.
        local _, lim = tab.settings("guitar")
        assert.is_true(big <= lim.candidates ^ 2)
    end)
end)
