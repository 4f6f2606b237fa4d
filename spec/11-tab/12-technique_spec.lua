-- Techniques from what the transcription knows (docs/tab.md,
-- "Techniques"): bends from pitch bends, legato from a missing pluck,
-- let-ring from overlaps.

local cli = require "spec.support.cli"
local tab = require "wtt.tab"
local technique = require "wtt.tab.technique"
local runtime = require "wtt.runtime"
local sys = require "wtt.sys"

local function note(s, e, pitch, string, fret, extra)
    local n = { start_s = s, end_s = e, pitch = pitch, string = string,
                fret = fret, chord = s }
    for k, v in pairs(extra or {}) do
        n[k] = v
    end
    return n
end

local function types(n)
    local out = {}
    for _, t in ipairs(n.techniques) do
        out[#out + 1] = t.type
    end
    return table.concat(out, ",")
end

describe("tab techniques", function()
    it("reads a bend and its release from the contour, in half steps", function()
        local up = { 0, 1, 3, 5, 6, 6, 6, 6 }                -- 2 semitones
        local back = { 0, 2, 3, 3, 3, 2, 1, 0 }              -- 1, released
        local notes = technique.annotate({
            note(0, 0.5, 57, 3, 2, { bends = up }),
            note(1, 1.5, 64, 1, 0, { bends = back }),
            note(2, 2.5, 64, 1, 0, { bends = { 0, 0, 1, 0, 0 } }),  -- noise
        })
        assert.same({ type = "bend", semitones = 2, release = false }, notes[1].techniques[1])
        assert.same({ type = "bend", semitones = 1, release = true }, notes[2].techniques[1])
        assert.equal("", types(notes[3]))
    end)

    it("tells vibrato from a bend", function()
        local notes = technique.annotate({
            note(0, 1, 60, 2, 1, { bends = { 0, 1, 2, 1, 0, 1, 2, 1, 0, 1, 2, 1, 0 } }) })
        assert.equal("vibrato", types(notes[1]))
    end)

    it("marks hammer-ons, pull-offs and slides only where no new pluck sounds", function()
        local notes = technique.annotate({
            note(0.0, 0.25, 57, 3, 2, { onset = 0.9 }),
            note(0.25, 0.5, 59, 3, 4, { onset = 0.1 }),     -- up 2: hammer-on
            note(0.5, 0.75, 57, 3, 2, { onset = 0.2 }),     -- down 2: pull-off
            note(0.75, 1.0, 64, 3, 9, { onset = 0.1 }),     -- up 7: slide
            note(1.0, 1.25, 62, 3, 7, { onset = 0.9 }),     -- plucked
            note(1.25, 1.5, 64, 3, 9),                      -- no onset known
        })
        assert.equal("", types(notes[1]))
        assert.equal("hammer_on", types(notes[2]))
        assert.equal(1, notes[2].techniques[1].from)
        assert.equal("pull_off", types(notes[3]))
        assert.equal("slide", types(notes[4]))
        assert.equal("up", notes[4].techniques[1].direction)
        assert.equal("", types(notes[5]))
        assert.equal("", types(notes[6]))
    end)

    it("lets a note ring over a later note on another string", function()
        local notes = technique.annotate({
            note(0, 2.0, 40, 6, 0), note(0.5, 0.9, 59, 2, 0), note(1.0, 1.2, 62, 2, 3) })
        assert.equal("let_ring", types(notes[1]))
        assert.equal("", types(notes[2]))
    end)

    it("finds the bend of the real bend clip", function()
        local dir = assert(sys.mkdtemp("wtt-tech-"))
        finally(function() sys.rmtree(dir) end)
        local code = cli.wtt({ "transcribe",
            runtime.source_dir .. "/spec/fixtures/clips/guitar_bend.wav",
            "--notes-json", "-o", dir, "--quiet" }, dir)
        assert.equal(0, code)
        local notes = assert(require("wtt.tab.notes_in").read(dir .. "/guitar_bend.notes.json"))
        local placed = assert(tab.finger(notes, assert(tab.options{})))
        technique.annotate(placed)
        local bends = {}
        for _, n in ipairs(placed) do
            for _, t in ipairs(n.techniques) do
                if t.type == "bend" then
                    bends[#bends + 1] = n.pitch .. "+" .. t.semitones
                end
            end
        end
        -- The clip bends A3 up two semitones and E4 up one (clips.tsv).
        assert.is_true(#bends >= 1, "no bend found")
        local text = table.concat(bends, " ")
        assert.matches("57%+", text)
    end)
end)
