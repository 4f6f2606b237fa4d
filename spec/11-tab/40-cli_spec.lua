-- `wtt tab` on notes files written here (Basic Pitch CSV, wtt JSON, MIDI),
-- and the reader behind it (wtt.tab.notes_in).

local cli = require "spec.support.cli"
local json = require "wtt.json"
local midi = require "wtt.midi"
local notes_io = require "wtt.notes_io"
local notes_in = require "wtt.tab.notes_in"
local sys = require "wtt.sys"
local runtime = require "wtt.runtime"

local function wtt(args, dir)
    return cli.wtt(args, dir, 60)
end

-- A phrase in E minor pentatonic, a chord, a bent note, and one note no
-- guitar reaches (pitch 20, below its low E at 40).
local function phrase()
    local notes = {}
    local pitches = { 40, 43, 45, 47, 50, 52, 55, 57, 59, 62, 64, 67 }
    for i, p in ipairs(pitches) do
        local t = (i - 1) * 0.25
        notes[#notes + 1] = { start_s = t, end_s = t + 0.24, pitch = p,
                              amplitude = 0.6 }
    end
    for _, p in ipairs({ 40, 47, 52, 55, 59, 64 }) do   -- E minor
        notes[#notes + 1] = { start_s = 3.0, end_s = 4.0, pitch = p,
                              amplitude = 0.7 }
    end
    notes[#notes + 1] = { start_s = 4.0, end_s = 4.5, pitch = 62,
                          amplitude = 0.8, bends = { 0, 1, 2, 3, 3 } }
    notes[#notes + 1] = { start_s = 4.5, end_s = 5.0, pitch = 20,
                          amplitude = 0.5 }
    return notes
end

local FORMATS = { "ascii", "json", "musicxml", "alphatex", "gp" }
local SUFFIX = { ascii = ".tab.txt", json = ".tab.json",
                 musicxml = ".musicxml", alphatex = ".alphatex", gp = ".gp" }


local function read_json(path)
    local text = sys.read_file(path)
    assert(text, path .. " missing")
    return json.decode(text)
end


describe("wtt tab", function()
    local dir, input

    setup(function()
        dir = assert(sys.mkdtemp("wtt-tab-cli-"))
        input = dir .. "/in"
        assert(os.execute("mkdir -p '" .. input .. "'"))
        local notes = phrase()
        assert(sys.write_file(input .. "/song.notes.csv",
                              notes_io.to_csv(notes)))
        local with_onsets = notes_io.to_json(notes, { source = "spec" })
        assert(sys.write_file(input .. "/riff.notes.json", with_onsets))
        assert(midi.write(input .. "/lick.mid", notes))
        -- the command must exist in the binary that runs the specs
        local code, out, err = wtt({ "tab", "--help" }, dir)
        assert(code == 0 and out:find("wtt tab NOTES", 1, true),
               "this wtt has no `tab` command (rebuild after "
               .. "core/app/wtt_main.c): " .. out .. err)
    end)

    teardown(function()
        if dir then sys.rmtree(dir) end
    end)

    local function fresh_out(name)
        local out = dir .. "/" .. name
        assert(os.execute("mkdir -p '" .. out .. "'"))
        return out
    end

    it("writes all five formats for CSV, JSON and MIDI inputs, named "
       .. "after them, and accounts for every note", function()
        local out = fresh_out("all")
        local code, stdout, stderr = wtt({ "tab",
            input .. "/song.notes.csv", input .. "/riff.notes.json",
            input .. "/lick.mid", "-o", out,
            "--tab-format", "ascii,json,musicxml,alphatex,gp" }, dir)
        assert.equal(0, code, stderr)
        local n_in = #phrase()
        for _, stem in ipairs({ "song", "riff", "lick" }) do
            for _, f in ipairs(FORMATS) do
                local p = out .. "/" .. stem .. SUFFIX[f]
                assert.is_true((sys.file_size(p) or 0) > 0, p .. " missing")
            end
            local doc = read_json(out .. "/" .. stem .. ".tab.json")
            local dropped = 0
            for _, u in ipairs(doc.unplayable) do
                if not u.folded_to then dropped = dropped + 1 end
            end
            assert.equal(n_in, #doc.notes + dropped, stem)
            assert.equal(1, dropped, stem)
            assert.equal(20, doc.unplayable[1].pitch_midi)
            assert.equal("out_of_range", doc.unplayable[1].reason)
            for _, n in ipairs(doc.notes) do
                assert.equal(n.pitch_midi,
                             doc.tuning[n.string] + doc.capo + n.fret)
            end
            assert.matches(stem .. "%.[a-z.]+: 19 notes tabbed, 1 unplayable",
                           stdout)
        end
        -- the note no guitar plays is reported with its time and pitch
        assert.matches("song%.notes%.csv: unplayable note at 4%.500 s, "
                       .. "pitch 20 %(G#0%): out_of_range", stderr)
        assert.matches("lick%.mid: unplayable note at 4%.500 s", stderr)
        -- the MIDI file's bends came back: the bent note is a bend
        local doc = read_json(out .. "/lick.tab.json")
        local bent
        for _, n in ipairs(doc.notes) do
            for _, t in ipairs(n.techniques or {}) do
                if t.type == "bend" then bent = n end
            end
        end
        assert.is_table(bent, "no bend read back from the MIDI file")
        assert.equal(62, bent.pitch_midi)
        -- the MusicXML and ASCII are what they say
        assert.matches("<score%-partwise", sys.read_file(out .. "/song.musicxml"))
        assert.matches("|", sys.read_file(out .. "/song.tab.txt"))
        assert.equal("PK", sys.read_file(out .. "/song.gp"):sub(1, 2))
    end)

    it("writes ascii and json by default, and no other file", function()
        local out = fresh_out("default")
        local code, _, stderr = wtt({ "tab", input .. "/song.notes.csv",
                                      "-o", out, "--quiet" }, dir)
        assert.equal(0, code, stderr)
        local names = sys.listdir(out)
        table.sort(names)
        assert.same({ "song.tab.json", "song.tab.txt" }, names)
    end)

    it("applies the options", function()
        local out = fresh_out("opts")
        local code, _, stderr = wtt({ "tab", input .. "/song.notes.csv",
            "-o", out, "--capo=2", "--tuning", "drop_d", "--tempo", "90",
            "--time-signature", "3/4", "--max-fret", "19",
            "--tab-format", "json" }, dir)
        assert.equal(0, code, stderr)
        local doc = read_json(out .. "/song.tab.json")
        assert.equal(2, doc.capo)
        assert.same({ 64, 59, 55, 50, 45, 38 }, doc.tuning)
        assert.equal("drop_d", doc.tuning_name)
        assert.near(90, doc.tempo_bpm, 1e-9)
        assert.same({ 3, 4 }, doc.time_signature)
        for _, n in ipairs(doc.notes) do
            assert.is_true(n.fret + doc.capo <= 19)
        end

        out = fresh_out("bass")
        code, _, stderr = wtt({ "tab", input .. "/song.notes.csv", "-o", out,
            "--instrument", "bass", "--tuning", "E1 A1 D2 G2",
            "--fold-octaves", "--tab-format", "json" }, dir)
        assert.equal(0, code, stderr)
        doc = read_json(out .. "/song.tab.json")
        assert.equal("bass", doc.instrument)
        assert.same({ 43, 38, 33, 28 }, doc.tuning)
        -- folded notes are placed and listed with folded_to; none lost
        local folded, dropped = 0, 0
        for _, u in ipairs(doc.unplayable) do
            if u.folded_to then folded = folded + 1 else dropped = dropped + 1 end
        end
        assert.equal(#phrase(), #doc.notes + dropped)
        assert.is_true(folded > 0)
        assert.matches("folded to", stderr)
    end)

    it("refuses bad options with status 2 and names the option", function()
        local cases = {
            { { "--capo", "13" }, "--capo" },
            { { "--capo", "x" }, "--capo" },
            { { "--max-fret", "0" }, "--max-fret" },
            { { "--tuning", "E2 A2" }, "--tuning" },
            { { "--tuning", "weird" }, "--tuning" },
            { { "--instrument", "banjo" }, "--instrument" },
            { { "--tab-format", "ascii,pdf" }, "--tab-format" },
            { { "--tempo", "5" }, "--tempo" },
            { { "--time-signature", "7/5" }, "--time-signature" },
            { { "--pickup", "-1" }, "--pickup" },
            { { "--bogus" }, "--bogus" },
            { { "--capo" }, "--capo" },
        }
        local out = fresh_out("bad")
        for _, c in ipairs(cases) do
            local argv = { "tab", input .. "/song.notes.csv", "-o", out }
            for _, a in ipairs(c[1]) do argv[#argv + 1] = a end
            local code, _, stderr = wtt(argv, dir)
            assert.equal(2, code, table.concat(c[1], " ") .. ": " .. stderr)
            assert.truthy(stderr:find("wtt tab: ", 1, true), stderr)
            assert.truthy(stderr:find(c[2], 1, true),
                          c[2] .. " not named: " .. stderr)
        end
        assert.same({}, sys.listdir(out))
        local code, _, stderr = wtt({ "tab", "-o", out }, dir)
        assert.equal(2, code)
        assert.matches("no notes files", stderr)
        code, _, stderr = wtt({ "tab", input .. "/song.notes.csv", "-o",
                                dir .. "/nowhere" }, dir)
        assert.equal(2, code)
        assert.matches("does not exist", stderr)
    end)

    it("gives clear errors for malformed notes files and still tabs the "
       .. "good ones (status 1)", function()
        local bad = dir .. "/bad"
        assert(os.execute("mkdir -p '" .. bad .. "'"))
        local header = "start_time_s,end_time_s,pitch_midi,velocity,pitch_bend\n"
        local files = {
            ["a.notes.csv"] = { header .. "0.0,0.5,60,80\n0.5,1.0,x,80\n",
                                "a.notes.csv:3: pitch_midi must be an integer" },
            ["b.notes.csv"] = { "time,note\n0,60\n",
                                "b.notes.csv:1: expected the header" },
            ["c.notes.csv"] = { header .. "1.0,0.5,60,80\n",
                                "c.notes.csv:2: end must be" },
            ["d.notes.csv"] = { header .. "0.0,0.5,60\n",
                                "d.notes.csv:2: expected at least 4 columns" },
            ["e.notes.csv"] = { header .. "0.0,0.5,60,300\n",
                                "e.notes.csv:2: velocity must be" },
            ["f.notes.csv"] = { header .. "0.0,0.5,60,80,1,abc\n",
                                "f.notes.csv:2: pitch bend (column 6)" },
            ["g.notes.json"] = { '{"notes": [', "g.notes.json: malformed JSON" },
            ["h.notes.json"] = { '{"notes": [{"start_s": 0, "end_s": 1}]}',
                                 "h.notes.json: note 1: " },
            ["i.notes.json"] = { '{"other": 1}', 'i.notes.json: expected an '
                                 .. 'object with a "notes" list' },
            ["j.notes.json"] = { '{"notes": [{"start_s": 0, "end_s": 1, '
                                 .. '"pitch_midi": 60, "amplitude": 2}]}',
                                 "j.notes.json: note 1: amplitude" },
            ["k.mid"] = { "MThd\0\0\0\6\0\1", "k.mid: decode failed" },
            ["l.txt"] = { "hello", "l.txt: not a notes file" },
        }
        local argv = { "tab", "-o", fresh_out("partial") }
        for name, f in pairs(files) do
            assert(sys.write_file(bad .. "/" .. name, f[1]))
            argv[#argv + 1] = bad .. "/" .. name
        end
        argv[#argv + 1] = input .. "/song.notes.csv"
        argv[#argv + 1] = bad .. "/missing.notes.csv"
        local code, _, stderr = wtt(argv, dir)
        assert.equal(1, code, stderr)
        for _, f in pairs(files) do
            assert.truthy(stderr:find("wtt tab: " .. f[2], 1, true),
                          "expected '" .. f[2] .. "' in:\n" .. stderr)
        end
        assert.truthy(stderr:find("missing.notes.csv: ", 1, true))
        local names = sys.listdir(dir .. "/partial")
        table.sort(names)
        assert.same({ "song.tab.json", "song.tab.txt" }, names)
    end)
end)


describe("wtt.tab.notes_in", function()
    local dir
    setup(function() dir = assert(sys.mkdtemp("wtt-notes-in-")) end)
    teardown(function() if dir then sys.rmtree(dir) end end)

    local function read(name, bytes)
        assert(sys.write_file(dir .. "/" .. name, bytes))
        return notes_in.read(dir .. "/" .. name)
    end

    it("reads Basic Pitch's CSV: \\r\\n lines, empty bend cells, bends as "
       .. "columns, sorted by start then pitch", function()
        local notes = assert(read("x.notes.csv",
            "start_time_s,end_time_s,pitch_midi,velocity,pitch_bend\r\n"
            .. "0.5,1.0,64,127,\r\n0.0,0.5,60,64,1,2,-1\r\n"
            .. "0.0,0.5,55,0\r\n"))
        assert.equal(3, #notes)
        assert.same({ 55, 60, 64 }, { notes[1].pitch, notes[2].pitch,
                                      notes[3].pitch })
        assert.same({ 1, 2, -1 }, notes[2].bends)
        assert.is_nil(notes[3].bends)
        assert.equal(1, notes[3].amplitude)
        assert.equal(127, notes[3].velocity)
        assert.equal(1, notes[1].velocity)      -- velocity 0 still sounds
        assert.near(64 / 127, notes[2].amplitude, 1e-12)
    end)

    it("reads wtt's notes JSON with onsets and bends, and a bare list",
       function()
        local notes = assert(read("y.notes.json", '{"engine": "wtt", "notes": ['
            .. '{"start_s": 1, "end_s": 2, "pitch_midi": 40, "amplitude": 0.5,'
            .. ' "velocity": 64, "pitch_bends": [0, 1, 2], "onset": 0.25},'
            .. '{"start_s": 0, "end_s": 1, "pitch_midi": 41, "velocity": 100,'
            .. ' "pitch_bends": []}]}'))
        assert.equal(41, notes[1].pitch)
        assert.near(100 / 127, notes[1].amplitude, 1e-12)
        assert.is_nil(notes[1].bends)
        assert.same({ 0, 1, 2 }, notes[2].bends)
        assert.equal(0.25, notes[2].onset)
        assert.equal(0.5, notes[2].amplitude)
        local list = assert(read("z.json", '[{"start_s": 0, "end_s": 1, '
                                 .. '"pitch_midi": 50, "velocity": 90}]'))
        assert.equal(50, list[1].pitch)
        assert.same({}, assert(read("empty.notes.json", '{"notes": []}')))
        local n, err = read("o.notes.json", '{"notes": [{"start_s": 0, '
            .. '"end_s": 1, "pitch_midi": 50, "velocity": 90, "onset": 3}]}')
        assert.is_nil(n)
        assert.matches("o%.notes%.json: note 1: onset", err)
    end)

    it("refuses a note ending after WTT_MAX_AUDIO_S (4 h by default), "
       .. "MIDI included", function()
        local ok = assert(read("at.notes.json", '[{"start_s": 0, '
            .. '"end_s": 14400, "pitch_midi": 50, "velocity": 90}]'))
        assert.equal(14400, ok[1].end_s)
        local n, err = read("past.notes.json", '[{"start_s": 0, '
            .. '"end_s": 14400.5, "pitch_midi": 50, "velocity": 90}]')
        assert.is_nil(n)
        assert.matches("past%.notes%.json: note 1: end must be at most "
                       .. "14400 s", err)
        n, err = read("past.notes.csv", "start_time_s,end_time_s,"
                      .. "pitch_midi,velocity,pitch_bend\n0,1e6,60,64,\n")
        assert.is_nil(n)
        assert.matches("end must be at most", err)
        -- 298 bytes of MIDI whose notes end after 77 hours (fuzz_tab's
        -- regression input: the MIDI file follows its first line)
        local f = assert(io.open("spec/fuzz/regress/tab/"
            .. "timeout-0889b4424383388586ef4bac5a99ceb2a4ad4ff2", "rb"))
        local input = f:read("*a")
        f:close()
        n, err = read("long.mid", input:sub(input:find("\n", 1, true) + 1))
        assert.is_nil(n)
        assert.matches("end must be at most", err)
    end)

    it("reads MIDI notes with their bends (ranges other than 2 too), the "
       .. "bends of back-to-back notes apart", function()
        local src = {
            { start_s = 0, end_s = 1, pitch = 64, amplitude = 0.8,
              bends = { 0, 1, 2, 3 } },
            { start_s = 1, end_s = 2, pitch = 60, amplitude = 0.5 },
            { start_s = 2, end_s = 3, pitch = 62, amplitude = 0.5,
              bends = { -3, -3 } },
            { start_s = 3, end_s = 3.5, pitch = 36, velocity = 100 },
        }
        for _, range in ipairs({ 2, 12 }) do
            local bytes = assert(midi.encode(src, { bend_range = range }))
            local notes = assert(read("b" .. range .. ".mid", bytes))
            assert.equal(4, #notes)
            assert.same({ 0, 1, 2, 3 }, notes[1].bends)
            assert.is_nil(notes[2].bends)
            assert.same({ -3, -3 }, notes[3].bends)
            assert.is_nil(notes[4].bends)
            assert.equal(100, notes[4].velocity)
            assert.near(2, notes[3].start_s, 1e-3)
        end
        -- one channel per voice: a bent chord keeps both curves
        local chord = assert(midi.encode({
            { start_s = 0, end_s = 1, pitch = 64, amplitude = 0.8,
              bends = { 0, 1, 2, 3 } },
            { start_s = 0, end_s = 1, pitch = 60, amplitude = 0.8,
              bends = { 0, -1, -2, -3 } } }, { multiple_pitch_bends = true }))
        local notes = assert(read("chord.midi", chord))
        assert.same({ 0, -1, -2, -3 }, notes[1].bends)
        assert.same({ 0, 1, 2, 3 }, notes[2].bends)
    end)

    it("leaves MIDI percussion out and says so", function()
        -- format 0, one track: a drum hit on channel 10 and a note on 1
        local track = "\0\153\36\100" .. "\0\144\60\100"
            .. "\96\137\36\0" .. "\0\128\60\0" .. "\0\255\47\0"
        local bytes = "MThd\0\0\0\6\0\0\0\1\0\96" .. "MTrk\0\0\0"
            .. string.char(#track) .. track
        local notes, err, warnings = read("drums.mid", bytes)
        assert.is_nil(err)
        assert.equal(1, #notes)
        assert.equal(60, notes[1].pitch)
        assert.matches("drums%.mid: 1 percussion notes", warnings[1])
    end)

    it("names output files after the input", function()
        assert.equal("song", notes_in.stem("a/b/song.notes.csv"))
        assert.equal("song", notes_in.stem("song.notes.json"))
        assert.equal("song", notes_in.stem("/x/song.mid"))
        assert.equal("song", notes_in.stem("song.MIDI"))
        assert.equal("take.2", notes_in.stem("take.2.csv"))
    end)
end)
