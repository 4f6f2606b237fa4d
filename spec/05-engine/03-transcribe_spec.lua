-- `wtt transcribe` end to end: real audio in, files out, read back by an
-- independent MIDI parser (python3-mido).

local cli = require "spec.support.cli"
local json = require "wtt.json"
local sys = require "wtt.sys"
local runtime = require "wtt.runtime"

local CLIPS = runtime.source_dir .. "/spec/fixtures/clips"
local GOLDEN = runtime.source_dir .. "/spec/fixtures/golden"

local function wtt(args, dir)
    return cli.wtt(args, dir, 120)
end

local MIDO = [[
import json, sys, mido
f = mido.MidiFile(sys.argv[1])
tempo = 500000
for track in f.tracks:
    for m in track:
        if m.type == 'set_tempo':
            tempo = m.tempo
notes = []
for track in f.tracks:
    now = 0
    open_ = {}
    for m in track:
        now += m.time
        if m.type == 'note_on' and m.velocity > 0:
            open_.setdefault((m.channel, m.note), []).append((now, m.velocity))
        elif m.type in ('note_off', 'note_on'):
            start, vel = open_[(m.channel, m.note)].pop(0)
            sec = lambda k: mido.tick2second(k, f.ticks_per_beat, tempo)
            notes.append([sec(start), sec(now), m.note, vel])
print(json.dumps({"notes": notes, "division": f.ticks_per_beat, "tempo": tempo}))
]]

describe("wtt transcribe", function()
    local dir
    before_each(function() dir = assert(sys.mkdtemp("wtt-transcribe-")) end)
    after_each(function() sys.rmtree(dir) end)

    it("writes MIDI, JSON, CSV and posteriors that agree", function()
        local code, out = wtt({ "transcribe", CLIPS .. "/guitar_strum.wav",
                                "-o", dir, "--midi", "--notes-json",
                                "--notes-csv", "--save-posteriors" }, dir)
        assert.equal(0, code)
        assert.matches("guitar_strum.wav: %d+ notes", out)
        for _, ext in ipairs({ ".mid", ".notes.json", ".notes.csv",
                               ".posteriors.npy" }) do
            assert.truthy((sys.file_size(dir .. "/guitar_strum" .. ext) or 0) > 0,
                          ext .. " missing")
        end
        -- The JSON notes are the official ones (python preset).
        local doc = json.decode((sys.read_file(dir .. "/guitar_strum.notes.json")))
        local golden = json.decode((sys.read_file(GOLDEN
                                    .. "/guitar_strum/notes-python.json"))).notes
        assert.equal(#golden, #doc.notes)
        for i, g in ipairs(golden) do
            assert.equal(g.pitch_midi, doc.notes[i].pitch_midi)
            assert.near(g.start_s, doc.notes[i].start_s, 1e-9)
            assert.near(g.end_s, doc.notes[i].end_s, 1e-9)
        end
        assert.matches("^%x+$", doc.model_sha256)
        -- CSV: the official header, one row per note.
        local csv = sys.read_file(dir .. "/guitar_strum.notes.csv")
        local lines = {}
        for l in csv:gmatch("[^\n]+") do
            lines[#lines + 1] = l
        end
        assert.equal("start_time_s,end_time_s,pitch_midi,velocity,pitch_bend",
                     lines[1])
        assert.equal(#golden + 1, #lines)
        assert.matches("^%d+%.%d%d%d%d%d%d", lines[2])
        -- Every note is in the MIDI file, as an independent parser reads it.
        assert(sys.write_file(dir .. "/read_midi.py", MIDO))
        local p = io.popen("/usr/bin/python3 " .. dir .. "/read_midi.py " .. dir
                           .. "/guitar_strum.mid")
        local parsed = json.decode(p:read("*a"))
        p:close()
        assert.equal(#doc.notes, #parsed.notes)
        local tick = parsed.tempo / 1e6 / parsed.division
        local want = {}
        for _, n in ipairs(doc.notes) do
            want[#want + 1] = n
        end
        local function key(a, b) return a[1] < b[1] or (a[1] == b[1] and a[3] < b[3]) end
        table.sort(parsed.notes, key)
        table.sort(want, function(a, b)
            return key({ a.start_s, 0, a.pitch_midi }, { b.start_s, 0, b.pitch_midi })
        end)
        for i, n in ipairs(want) do
            local m = parsed.notes[i]
            assert.equal(n.pitch_midi, m[3])
            assert.near(n.start_s, m[1], tick)
            assert.near(n.end_s, m[2], tick)
            assert.equal(n.velocity, m[4])
        end
    end)

    it("re-thresholds saved posteriors without the model", function()
        assert.equal(0, (wtt({ "transcribe", CLIPS .. "/piano_chords.wav",
                               "-o", dir, "--save-posteriors",
                               "--notes-json", "--quiet" }, dir)))
        local first = json.decode((sys.read_file(dir .. "/piano_chords.notes.json")))
        os.remove(dir .. "/piano_chords.notes.json")
        assert.equal(0, (wtt({ "transcribe", "--from-posteriors",
                               dir .. "/piano_chords.posteriors.npy", "-o",
                               dir, "--notes-json", "--quiet" }, dir)))
        local again = json.decode((sys.read_file(dir .. "/piano_chords.notes.json")))
        assert.same(first.notes, again.notes)
        -- A higher threshold gives fewer notes.
        assert.equal(0, (wtt({ "transcribe", "--from-posteriors",
                               dir .. "/piano_chords.posteriors.npy", "-o",
                               dir, "--notes-json", "--onset-threshold",
                               "0.9", "--frame-threshold", "0.6",
                               "--quiet" }, dir)))
        local strict = json.decode((sys.read_file(dir .. "/piano_chords.notes.json")))
        assert.truthy(#strict.notes < #first.notes)
    end)

    it("fails with a one-line reason and writes nothing for bad audio",
       function()
        assert(sys.write_file(dir .. "/noise.wav", string.rep("\1\2\3\250", 5000)))
        local code, _, err = wtt({ "transcribe", dir .. "/noise.wav", "-o",
                                   dir, "--quiet" }, dir)
        assert.equal(1, code)
        assert.matches("noise.wav: open failed", err)
        assert.is_nil(sys.exists(dir .. "/noise.mid"))
        code, _, err = wtt({ "transcribe", dir .. "/absent.wav", "-o", dir,
                             "--quiet" }, dir)
        assert.equal(1, code)
        assert.matches("absent.wav:", err)
    end)

    it("goes on with the other files when one fails", function()
        local code = wtt({ "transcribe", dir .. "/absent.wav",
                           CLIPS .. "/bass_line.wav", "-o", dir, "--quiet" },
                         dir)
        assert.equal(1, code)
        assert.truthy((sys.file_size(dir .. "/bass_line.mid") or 0) > 0)
    end)

    it("refuses bad options with exit code 2", function()
        for _, args in ipairs({
            { "transcribe", "--onset-threshold", "2", "x.wav" },
            { "transcribe", "--bogus", "x.wav" },
            { "transcribe" },
            { "transcribe", "x.wav", "-o", "/nonexistent/dir" },
            { "transcribe", "--min-freq", "500", "--max-freq", "100", "x.wav" },
        }) do
            local code, _, err = wtt(args, dir)
            assert.equal(2, code)
            assert.matches("^wtt transcribe: ", err)
        end
    end)

    it("refuses --device cuda clearly without a CUDA build or a GPU",
       function()
        local model = require "wtt.model"
        local cuda = false
        for _, b in ipairs(model.backends()) do
            cuda = cuda or b == "cuda"
        end
        local code, _, err = wtt({ "transcribe", CLIPS .. "/bass_line.wav",
                                   "-o", dir, "--device", "cuda" }, dir)
        if not cuda then
            assert.equal(2, code)
            assert.matches("device cuda: this build has no CUDA backend",
                           err, 1, true)
        elseif #model.gpus() == 0 then
            assert.equal(2, code)
            assert.matches("device cuda: no usable CUDA device on this host",
                           err, 1, true)
        else
            assert.equal(0, code, err)
        end
    end)
end)
