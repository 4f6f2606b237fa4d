-- Rhythm on real audio: click tracks (a plucked note every beat, a higher
-- one on each downbeat, as a metronome sounds) synthesised with
-- fluidsynth, transcribed by `wtt transcribe`, then given to the rhythm
-- estimate and the measure grid. The tempo must come back within 2%: not
-- half, not double.

local clicks = require "spec.support.clicks"
local grid = require "wtt.tab.grid"
local json = require "wtt.json"
local rhythm = require "wtt.tab.rhythm"
local runtime = require "wtt.runtime"
local sys = require "wtt.sys"

local SECONDS = 12


--- Runs `wtt transcribe WAV --notes-json -o DIR`; returns the notes in
-- the shape wtt.tab takes, sorted by start.
local function transcribe(wav, dir)
    local log = dir .. "/transcribe.log"
    local pid = assert(sys.spawn({ runtime.exe, "transcribe", wav,
                                   "--notes-json", "--quiet", "-o", dir },
                                 { stdout = log, stderr = "stdout" }))
    local how, code = sys.wait(pid, 120)
    assert.equal("exited", how)
    assert.equal(0, code, sys.read_file(log))
    local stem = wav:match("([^/]+)%.wav$")
    local doc = json.decode((assert(sys.read_file(dir .. "/" .. stem
                                                   .. ".notes.json"))))
    local notes = {}
    for i, n in ipairs(doc.notes) do
        notes[i] = { start_s = n.start_s, end_s = n.end_s,
                     pitch = n.pitch_midi, amplitude = n.amplitude }
    end
    table.sort(notes, function(a, b) return a.start_s < b.start_s end)
    return notes
end


describe("click track", function()
    local dir
    before_each(function() dir = assert(sys.mkdtemp("wtt-click-")) end)
    after_each(function() sys.rmtree(dir) end)

    for _, bpm in ipairs({ 90, 120, 160 }) do
        it("at " .. bpm .. " bpm comes back within 2%, measures whole",
           function()
            local why = clicks.missing()
            if why then
                pending("skipped, because " .. why)
                return
            end
            local truth = clicks.notes(bpm, SECONDS, 4)
            local wav = assert(clicks.render(dir, "click" .. bpm, truth))
            local notes = transcribe(wav, dir)
            -- the transcriber hears (nearly) every click
            assert.is_true(#notes >= #truth - 2,
                           #notes .. " notes for " .. #truth .. " clicks")

            local r = assert(rhythm.estimate(notes))
            assert.is_true(math.abs(r.tempo_bpm / bpm - 1) <= 0.02,
                           ("estimated %.2f bpm for %d"):format(r.tempo_bpm,
                                                                bpm))
            assert.equal(4, r.beats_per_measure)

            local measures = assert(grid.build(notes, r))
            assert.is_true(#measures >= 1)
            for _, m in ipairs(measures) do
                local sum = 0
                for _, e in ipairs(m.events) do
                    assert.equal(sum, e.tick)
                    sum = sum + e.ticks
                end
                assert.equal(m.ticks, sum)
                assert.equal(m.number == 0 and r.pickup_beats * 12
                             or r.beats_per_measure * 12, sum)
            end
            -- every click is a quarter note: one per beat
            local on_beats = 0
            for _, n in ipairs(notes) do
                assert.is_number(n.tick)
                if n.tick % 12 == 0 then
                    on_beats = on_beats + 1
                end
            end
            assert.is_true(on_beats >= #notes - 2)
        end)
    end
end)
