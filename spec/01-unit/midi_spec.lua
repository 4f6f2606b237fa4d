-- wtt.midi: Standard MIDI File writer and reader, checked against itself
-- and against an independent parser (Debian's python3-mido).

local midi = require "wtt.midi"
local sys = require "wtt.sys"

local PYTHON = "/usr/bin/python3"

-- Prints every note mido finds (merged tracks, seconds from its own tempo
-- handling, program per channel) and every pitch-wheel message.
local MIDO_DUMP = [[
import sys, mido
m = mido.MidiFile(sys.argv[1])
print("H", m.type, m.ticks_per_beat, len(m.tracks))
t = 0.0
prog = [0] * 16
active = {}
notes = []
for msg in m:
    t += msg.time
    if msg.type == "set_tempo":
        print("T", msg.tempo)
    elif msg.type == "program_change":
        prog[msg.channel] = msg.program
    elif msg.type == "pitchwheel":
        print("B %.9f %d %d" % (t, msg.channel, msg.pitch))
    elif msg.type == "note_on" and msg.velocity > 0:
        active[(msg.channel, msg.note)] = (t, msg.velocity, prog[msg.channel])
    elif msg.type in ("note_on", "note_off"):
        k = (msg.channel, msg.note)
        if k in active:
            s, v, p = active.pop(k)
            notes.append((s, t, msg.note, v, msg.channel, p))
notes.sort()
for n in notes:
    print("N %.9f %.9f %d %d %d %d" % n)
]]

local TICK = 60 / (120 * 220)     -- seconds per tick at the defaults

local dir


local function tmp(name)
    return dir .. "/" .. name
end


--- Deterministic pseudo-random numbers in [0, 1).
local function lcg(seed)
    local s = seed
    return function()
        s = (s * 1103515245 + 12345) % 2147483648
        return s / 2147483648
    end
end


--- Notes that never overlap another note of the same pitch.
local function random_notes(count, seed)
    local rnd = lcg(seed)
    local last_end = {}
    local notes = {}
    for _ = 1, count do
        local pitch = 21 + math.floor(rnd() * 88)
        local start = rnd() * 60
        start = math.max(start, (last_end[pitch] or 0) + 0.01)
        local stop = start + 0.02 + rnd() * 2
        last_end[pitch] = stop
        notes[#notes + 1] = {
            start_s = start, end_s = stop, pitch = pitch,
            amplitude = 0.3 + 0.7 * rnd(),
        }
    end
    return notes
end


--- Sorts a copy the way decode sorts: start tick, then pitch.
local function by_start(notes, tick)
    local copy = {}
    for i, n in ipairs(notes) do
        copy[i] = n
    end
    table.sort(copy, function(a, b)
        local ta = math.floor(a.start_s / tick + 0.5)
        local tb = math.floor(b.start_s / tick + 0.5)
        if ta ~= tb then
            return ta < tb
        end
        return a.pitch < b.pitch
    end)
    return copy
end


local function velocity_of(n)
    if n.velocity then
        return n.velocity
    end
    local v = 127 * n.amplitude
    local r = math.floor(v + 0.5)
    if r - v == 0.5 and r % 2 == 1 then   -- numpy rounds half to even
        r = r - 1
    end
    return math.max(1, r)
end


local HAVE_MIDO = (function()
    if not sys.exists(PYTHON) then
        return false
    end
    local pid = sys.spawn({ PYTHON, "-c", "import mido" },
                          { stdout = "null", stderr = "null" })
    return pid ~= nil and select(2, sys.wait(pid, 30)) == 0
end)()


local function mido(path)
    local out = tmp("mido-" .. math.random(1e9) .. ".txt")
    local pid = assert(sys.spawn({ PYTHON, "-c", MIDO_DUMP, path },
                                 { stdout = out, stderr = "stdout" }))
    local how, code = sys.wait(pid, 60)
    local text = sys.read_file(out) or ""
    assert(how == "exited" and code == 0, "mido failed: " .. text)
    local res = { notes = {}, bends = {}, tempos = {} }
    for line in text:gmatch("[^\n]+") do
        local kind, rest = line:match("^(%a) (.*)$")
        local f = {}
        for w in rest:gmatch("%S+") do
            f[#f + 1] = tonumber(w)
        end
        if kind == "H" then
            res.type, res.division, res.ntracks = f[1], f[2], f[3]
        elseif kind == "T" then
            res.tempos[#res.tempos + 1] = f[1]
        elseif kind == "B" then
            res.bends[#res.bends + 1] = { time = f[1], channel = f[2],
                                          value = f[3] }
        else
            res.notes[#res.notes + 1] = {
                start_s = f[1], end_s = f[2], pitch = f[3], velocity = f[4],
                channel = f[5], program = f[6],
            }
        end
    end
    return res
end


local function bends_on(decoded, channel)
    local out = {}
    for _, b in ipairs(decoded.bends) do
        if b.channel == channel then
            out[#out + 1] = b.value
        end
    end
    return out
end


local function channels_of(decoded)
    local set, list = {}, {}
    for _, n in ipairs(decoded.notes) do
        if not set[n.channel] then
            set[n.channel] = true
            list[#list + 1] = n.channel
        end
    end
    table.sort(list)
    return list
end


lazy_setup(function()
    dir = assert(sys.mkdtemp("wtt-midi-spec-"))
end)


lazy_teardown(function()
    if dir then
        sys.rmtree(dir)
    end
end)


describe("wtt.midi round trip", function()

    it("gives back every note within half a tick", function()
        local notes = random_notes(400, 7)
        local d = assert(midi.decode(assert(midi.encode(notes))))
        assert.equal(1, d.format)
        assert.equal(220, d.division)
        assert.equal(120, d.tempo)
        assert.equal(2, #d.tracks)
        assert.equal(#notes, #d.notes)
        local want = by_start(notes, TICK)
        for i, n in ipairs(d.notes) do
            local w = want[i]
            assert.equal(w.pitch, n.pitch)
            assert.near(w.start_s, n.start_s, TICK / 2 + 1e-9)
            assert.near(w.end_s, n.end_s, TICK / 2 + 1e-9)
            assert.equal(velocity_of(w), n.velocity)
            assert.equal(0, n.channel)
            assert.equal(midi.PROGRAMS.guitar, n.program)
        end
    end)

    it("agrees with python3-mido on every note", function()
        if not HAVE_MIDO then
            return pending("python3-mido is not installed")
        end
        local notes = random_notes(300, 11)
        local path = tmp("mido.mid")
        assert.is_true(midi.write(path, notes, { tempo = 97 }))
        local m = mido(path)
        assert.equal(1, m.type)
        assert.equal(220, m.division)
        assert.same({ math.floor(60e6 / 97 + 0.5) }, m.tempos)
        local tick = math.floor(60e6 / 97 + 0.5) / 1e6 / 220
        local want = by_start(notes, tick)
        assert.equal(#notes, #m.notes)
        -- mido sorts by (start, end, pitch); match each note by start tick
        -- and pitch instead.
        local index = {}
        for _, n in ipairs(m.notes) do
            index[math.floor(n.start_s / tick + 0.5) .. ":" .. n.pitch] = n
        end
        for _, w in ipairs(want) do
            local key = math.floor(w.start_s / tick + 0.5) .. ":" .. w.pitch
            local n = index[key]
            assert.truthy(n, "mido lacks note " .. key)
            assert.near(w.start_s, n.start_s, tick / 2 + 1e-6)
            assert.near(w.end_s, n.end_s, tick / 2 + 1e-6)
            assert.equal(velocity_of(w), n.velocity)
            assert.equal(25, n.program)
            assert.equal(0, n.channel)
        end
    end)

    it("agrees with python3-mido on channels and bends of a chord",
       function()
        if not HAVE_MIDO then
            return pending("python3-mido is not installed")
        end
        local notes = {
            { start_s = 0, end_s = 1, pitch = 60, velocity = 80,
              bends = { 0, 1, 2, 3 } },
            { start_s = 0, end_s = 1, pitch = 64, velocity = 81,
              bends = { 0, -1, -2, -3 } },
            { start_s = 0.5, end_s = 1.5, pitch = 67, velocity = 82,
              bends = { 6, 6 } },
        }
        local path = tmp("chord.mid")
        assert.is_true(midi.write(path, notes,
                                  { multiple_pitch_bends = true }))
        local m = mido(path)
        local d = assert(midi.decode(assert(sys.read_file(path))))
        assert.equal(4, m.ntracks)
        assert.equal(#d.notes, #m.notes)
        assert.equal(#d.bends, #m.bends)
        local function order(a, b)
            if a.channel ~= b.channel then
                return a.channel < b.channel
            end
            return a.time < b.time
        end
        table.sort(m.bends, order)
        for i, b in ipairs(d.bends) do
            assert.equal(b.value, m.bends[i].value)
            assert.equal(b.channel, m.bends[i].channel)
            assert.near(b.time, m.bends[i].time, 1e-6)
        end
        assert.same({ 0, 1365, 2731, 4096 }, bends_on(d, 0))
        assert.same({ 0, -1365, -2731, -4096 }, bends_on(d, 1))
        assert.same({ 8191, 8191 }, bends_on(d, 2))
    end)
end)


describe("wtt.midi writer conventions", function()

    it("maps amplitude to velocity like int(np.round(127 * a))", function()
        local cases = {
            { 0.5, 64 }, { 0.3, 38 }, { 1, 127 }, { 0.999, 127 },
            { 0.1, 13 }, { 0, 1 }, { 0.001, 1 },
        }
        local notes = {}
        for i, c in ipairs(cases) do
            notes[i] = { start_s = i, end_s = i + 0.5, pitch = 60,
                         amplitude = c[1] }
        end
        local d = assert(midi.decode(assert(midi.encode(notes))))
        for i, c in ipairs(cases) do
            assert.equal(c[2], d.notes[i].velocity)
        end
    end)

    it("writes the requested General MIDI program", function()
        local notes = { { start_s = 0, end_s = 1, pitch = 40,
                          velocity = 100 } }
        local function program(opts)
            return assert(midi.decode(assert(midi.encode(notes, opts))))
                .notes[1].program
        end
        assert.equal(25, program())
        assert.equal(25, midi.DEFAULT_PROGRAM)
        assert.equal(24, program({ program = "acoustic_guitar_nylon" }))
        assert.equal(25, program({ program = "acoustic_guitar_steel" }))
        assert.equal(27, program({ program = "electric_guitar_clean" }))
        assert.equal(0, program({ program = "piano" }))
        assert.equal(33, program({ program = "bass" }))
        assert.equal(4, program({ program = "electric_piano" }))
        assert.equal(73, program({ program = 73 }))
        assert.equal(24, midi.PROGRAMS.acoustic_guitar_nylon)
        assert.equal("Acoustic Guitar (steel)", midi.PROGRAM_NAMES[26])
        assert.has_error(function() midi.encode(notes, { program = "kazoo" })
        end)
        assert.has_error(function() midi.encode(notes, { program = 128 }) end)
    end)

    it("converts times with the tempo and division written", function()
        local notes = random_notes(50, 3)
        for _, opts in ipairs({ { tempo = 90 }, { tempo = 200 },
                                { division = 480 },
                                { tempo = 61.5, division = 96 } }) do
            local d = assert(midi.decode(assert(midi.encode(notes, opts))))
            local div = opts.division or 220
            local us = math.floor(60e6 / (opts.tempo or 120) + 0.5)
            local tick = us / 1e6 / div
            assert.equal(div, d.division)
            assert.near(60e6 / us, d.tempo, 1e-9)
            local want = by_start(notes, tick)
            for i, n in ipairs(d.notes) do
                assert.equal(want[i].pitch, n.pitch)
                assert.near(want[i].start_s, n.start_s, tick / 2 + 1e-9)
                assert.near(want[i].end_s, n.end_s, tick / 2 + 1e-9)
            end
        end
    end)

    it("spreads overlapping voices over channels, skipping 9", function()
        local notes = {}
        for i = 1, 12 do
            notes[i] = { start_s = 0, end_s = 2, pitch = 40 + i,
                         velocity = 90, bends = { 1 } }
        end
        notes[13] = { start_s = 2, end_s = 3, pitch = 50, velocity = 90,
                      bends = { 2 } }
        local d = assert(midi.decode(assert(midi.encode(notes,
                            { multiple_pitch_bends = true }))))
        assert.same({ 0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12 },
                    channels_of(d))
        assert.equal(13, #d.tracks)      -- tempo track + 12 channels
        for _, ch in ipairs(channels_of(d)) do
            assert.equal(1365, bends_on(d, ch)[1])
        end
        -- The note after the chord reuses channel 0 with its own bend.
        assert.equal(0, d.notes[13].channel)
        assert.same({ 1365, 2731 }, bends_on(d, 0))
    end)

    it("shares channels past 15 voices and drops the clashing bends",
       function()
        local notes = {}
        for i = 1, 17 do
            notes[i] = { start_s = 0, end_s = 1 + i / 100, pitch = 40 + i,
                         velocity = 90, bends = { 3 } }
        end
        local d = assert(midi.decode(assert(midi.encode(notes,
                            { multiple_pitch_bends = true }))))
        assert.equal(17, #d.notes)
        local count = 0
        for _, n in ipairs(d.notes) do
            assert.are_not.equal(9, n.channel)
        end
        for ch = 0, 15 do
            count = count + #bends_on(d, ch)
        end
        -- Voices 16 and 17 share channels 0 and 1 with voices 1 and 2:
        -- those four lose their bends.
        assert.equal(17 - 4, count)
    end)

    it("drops bends of overlapping notes on one channel, like the official "
       .. "drop_overlapping_pitch_bends", function()
        local notes = {
            { start_s = 0, end_s = 1, pitch = 60, velocity = 90,
              bends = { 1, 1 } },
            { start_s = 0.5, end_s = 1.5, pitch = 64, velocity = 90,
              bends = { 1, 1 } },
            { start_s = 2, end_s = 3, pitch = 67, velocity = 90,
              bends = { 1, 2, 3 } },
            { start_s = 3, end_s = 4, pitch = 69, velocity = 90 },
        }
        local d = assert(midi.decode(assert(midi.encode(notes))))
        -- Only the third note keeps its bends; the fourth, which has none,
        -- starts from a wheel reset to 0.
        assert.same({ 1365, 2731, 4096, 0 }, bends_on(d, 0))
        assert.equal(3, d.bends[4].time)
    end)

    it("places bends on np.linspace(start, end, n) or given times",
       function()
        local notes = {
            { start_s = 1, end_s = 2, pitch = 60, velocity = 90,
              bends = { 0, 3, 0 } },
            { start_s = 3, end_s = 4, pitch = 60, velocity = 90,
              bends = { 3, 0 }, bend_times = { 3.25, 3.75 } },
        }
        local d = assert(midi.decode(assert(midi.encode(notes))))
        local times = {}
        for i, b in ipairs(d.bends) do
            times[i] = b.time
        end
        assert.same({ 1, 1.5, 2, 3.25, 3.75 }, times)
    end)

    it("scales bends by the unit and range, clips, and sets the range "
       .. "with RPN 0", function()
        local notes = {
            { start_s = 0, end_s = 1, pitch = 60, velocity = 90,
              bends = { 0.5, 1, -12, 30 } },
        }
        local d = assert(midi.decode(assert(midi.encode(notes,
                            { bend_unit = "semitones", bend_range = 12 }))))
        assert.same({ 341, 683, -8192, 8191 }, bends_on(d, 0))
        local rpn = {}
        for _, e in ipairs(d.tracks[2]) do
            if e.type == "control_change" then
                rpn[#rpn + 1] = e.controller .. "=" .. e.value
            end
        end
        assert.same({ "101=0", "100=0", "6=12", "38=0", "101=127",
                      "100=127" }, rpn)

        -- The default range writes no RPN, like the official files.
        local plain = assert(midi.decode(assert(midi.encode(notes,
                            { bend_unit = "semitones" }))))
        for _, e in ipairs(plain.tracks[2]) do
            assert.are_not.equal("control_change", e.type)
        end
        assert.same({ 2048, 4096, -8192, 8191 }, bends_on(plain, 0))
    end)

    it("gives zero-length notes one tick", function()
        local d = assert(midi.decode(assert(midi.encode({
            { start_s = 1, end_s = 1, pitch = 60, velocity = 90 },
            { start_s = 2, end_s = 2.0001, pitch = 61, velocity = 90 },
        }))))
        assert.equal(2, #d.notes)
        assert.near(1, d.notes[1].start_s, 1e-9)
        assert.near(1 + TICK, d.notes[1].end_s, 1e-9)
        assert.near(2 + TICK, d.notes[2].end_s, 1e-9)
    end)

    it("cuts an overlapped same-pitch note and merges same-start ones",
       function()
        local d = assert(midi.decode(assert(midi.encode({
            { start_s = 0, end_s = 2, pitch = 60, velocity = 50 },
            { start_s = 1, end_s = 3, pitch = 60, velocity = 60 },
            { start_s = 5, end_s = 6, pitch = 62, velocity = 70 },
            { start_s = 5, end_s = 7, pitch = 62, velocity = 40 },
        }))))
        assert.equal(3, #d.notes)
        assert.same({ 0, 1, 60, 50 }, { d.notes[1].start_s, d.notes[1].end_s,
                                         d.notes[1].pitch,
                                         d.notes[1].velocity })
        assert.same({ 1, 3, 60, 60 }, { d.notes[2].start_s, d.notes[2].end_s,
                                         d.notes[2].pitch,
                                         d.notes[2].velocity })
        assert.same({ 5, 7, 62, 70 }, { d.notes[3].start_s, d.notes[3].end_s,
                                         d.notes[3].pitch,
                                         d.notes[3].velocity })
    end)

    it("writes an empty but valid file for no notes", function()
        local bytes = assert(midi.encode({}))
        assert.is_true(midi.validate(bytes))
        local d = assert(midi.decode(bytes))
        assert.equal(0, #d.notes)
        assert.equal(2, #d.tracks)
    end)

    it("returns nil, err for values out of range", function()
        local function bad(note, pattern)
            local bytes, err = midi.encode({ note })
            assert.is_nil(bytes)
            assert.matches(pattern, err)
        end
        bad({ start_s = 0, end_s = 1, pitch = 128, velocity = 1 },
            "^encode failed: note 1: pitch must be an integer in 0%-127$")
        bad({ start_s = 0, end_s = 1, pitch = 60.5, velocity = 1 },
            "pitch must be an integer")
        bad({ start_s = 1, end_s = 0.5, pitch = 60, velocity = 1 },
            "^encode failed: note 1: times must be finite")
        bad({ start_s = -1, end_s = 0.5, pitch = 60, velocity = 1 },
            "times must be finite")
        bad({ start_s = 0 / 0, end_s = 0.5, pitch = 60, velocity = 1 },
            "times must be finite")
        bad({ start_s = 0, end_s = 1, pitch = 60, velocity = 0 },
            "velocity must be an integer in 1%-127")
        bad({ start_s = 0, end_s = 1, pitch = 60, amplitude = 1.5 },
            "amplitude must be in 0%-1")
        bad({ start_s = 0, end_s = 1e9, pitch = 60, velocity = 1 },
            "beyond the largest tick")
        bad({ start_s = 0, end_s = 1, pitch = 60, velocity = 1,
              bends = { 0 / 0 } }, "bend values must be finite")
    end)

    it("raises on misuse", function()
        assert.has_error(function() midi.encode("notes") end)
        assert.has_error(function() midi.encode({ 1 }) end)
        assert.has_error(function()
            midi.encode({ { start_s = 0, end_s = 1, velocity = 1 } })
        end)
        assert.has_error(function()
            midi.encode({ { start_s = 0, end_s = 1, pitch = 60 } })
        end)
        assert.has_error(function()
            midi.encode({ { start_s = "0", end_s = 1, pitch = 60,
                            velocity = 1 } })
        end)
        assert.has_error(function()
            midi.encode({ { start_s = 0, end_s = 1, pitch = 60,
                            velocity = 1, bends = { 1 },
                            bend_times = { 1, 2 } } })
        end)
        assert.has_error(function() midi.encode({}, { temp = 120 }) end)
        assert.has_error(function() midi.encode({}, { tempo = 0 }) end)
        assert.has_error(function() midi.encode({}, { division = 0 }) end)
        assert.has_error(function() midi.encode({}, { bend_range = 0 }) end)
        assert.has_error(function() midi.encode({}, { bend_unit = "cents" })
        end)
        assert.has_error(function()
            midi.encode({}, { multiple_pitch_bends = 1 })
        end)
    end)
end)


describe("wtt.midi.write", function()

    it("writes the file atomically and leaves no temporary file",
       function()
        local sub = tmp("w")
        local pid = assert(sys.spawn({ "mkdir", sub }))
        assert.same({ "exited", 0 }, { sys.wait(pid, 5) })
        local p = sub .. "/out.mid"
        assert.equal(nil, sys.exists(p))
        local notes = random_notes(10, 5)
        assert.is_true(midi.write(p, notes))
        assert.equal(midi.encode(notes), assert(sys.read_file(p)))
        assert.is_true(midi.write(p, { notes[1] }))
        assert.equal(midi.encode({ notes[1] }), assert(sys.read_file(p)))
        assert.same({ "out.mid" }, assert(sys.listdir(sub)))
    end)

    it("returns nil, err and writes nothing when it cannot", function()
        local ok, err = midi.write(tmp("missing/dir/out.mid"), {})
        assert.is_nil(ok)
        assert.matches("^write failed: .*no such file or directory$", err)
        local bad, berr = midi.write(tmp("bad.mid"),
            { { start_s = 0, end_s = 1, pitch = 200, velocity = 1 } })
        assert.is_nil(bad)
        assert.matches("^encode failed: ", berr)
        assert.is_nil(sys.exists(tmp("bad.mid")))
    end)
end)


describe("wtt.midi reader", function()

    local function be32(v)
        return string.char(math.floor(v / 16777216) % 256,
                           math.floor(v / 65536) % 256,
                           math.floor(v / 256) % 256, v % 256)
    end

    local function smf(format, ntracks, division, tracks)
        local parts = { "MThd", be32(6), string.char(0, format, 0, ntracks,
                        math.floor(division / 256), division % 256) }
        for _, t in ipairs(tracks) do
            parts[#parts + 1] = "MTrk" .. be32(#t) .. t
        end
        return table.concat(parts)
    end

    it("follows running status and skips meta and sysex events", function()
        local track = table.concat({
            "\0\255\3\4name",                    -- track name
            "\0\240\3\1\2\247",                  -- sysex
            "\0\192\30",                         -- program 30, channel 0
            "\0\144\60\100",                     -- note on 60
            "\0\64\90",                          -- running status: on 64
            "\131\96\60\0",                      -- 480 ticks: 60 off (vel 0)
            "\0\255\127\2\0\0",                  -- sequencer-specific meta
            "\0\64\0",                           -- 64 off
            "\0\255\47\0",
        })
        local d = assert(midi.decode(smf(0, 1, 480, { track })))
        assert.equal(0, d.format)
        assert.equal(2, #d.notes)
        assert.same({ 0, 0.5, 60, 100, 30 }, { d.notes[1].start_s,
            d.notes[1].end_s, d.notes[1].pitch, d.notes[1].velocity,
            d.notes[1].program })
        assert.same({ 0, 0.5, 64, 90 }, { d.notes[2].start_s,
            d.notes[2].end_s, d.notes[2].pitch, d.notes[2].velocity })
        assert.equal("track_name", d.tracks[1][1].type)
        assert.equal("name", d.tracks[1][1].data)
        assert.equal("sysex", d.tracks[1][2].type)
        assert.equal("end_of_track", d.tracks[1][#d.tracks[1]].type)
    end)

    it("applies tempo changes and SMPTE divisions", function()
        -- 120 BPM for one beat, then 60 BPM.
        local t0 = "\0\255\81\3\7\161\32" .. "\131\96\255\81\3\15\66\64"
                   .. "\0\255\47\0"
        local t1 = "\0\144\60\100" .. "\135\64\128\60\0" .. "\0\255\47\0"
        local d = assert(midi.decode(smf(1, 2, 480, { t0, t1 })))
        assert.near(0, d.notes[1].start_s, 1e-12)
        assert.near(0.5 + 1, d.notes[1].end_s, 1e-12)   -- 960 ticks
        assert.equal(120, d.tempo)

        -- 25 fps x 40 ticks per frame: 1000 ticks per second.
        local s = smf(0, 1, 0xE728, { "\0\144\60\100\135\104\128\60\0" })
        local sd = assert(midi.decode(s))
        assert.equal(25, sd.smpte_fps)
        assert.near(1, sd.notes[1].end_s, 1e-12)
    end)

    it("closes notes left open at the end of their track", function()
        local d = assert(midi.decode(smf(0, 1, 100,
                         { "\0\144\60\100\100\255\47\0" })))
        assert.equal(1, #d.notes)
        assert.near(0.5, d.notes[1].end_s, 1e-12)
    end)

    it("refuses garbage with nil, err", function()
        local good = assert(midi.encode(random_notes(20, 1)))
        local cases = {
            { "", "not a MIDI file" },
            { "RIFF0000WAVEfmt ", "not a MIDI file" },
            { "MThd\0\0\0\6\0\1\0\1", "not a MIDI file" },
            { "MThd\0\0\0\2\0\0\0\1\0\96", "header chunk of 2 bytes" },
            { "MThd\0\0\0\255\0\0\0\1\0\96", "past the end" },
            { smf(3, 1, 96, { "" }), "unsupported format 3" },
            { smf(0, 2, 96, { "", "" }), "format 0 with 2 tracks" },
            { smf(1, 0, 96, {}), "no tracks" },
            { smf(1, 1, 0, { "" }), "division of 0" },
            { smf(1, 2, 96, { "\0\255\47\0" }),
              "header declares 2 tracks, found 1" },
            { good:sub(1, 14) .. "MTrk\127\255\255\255" .. good:sub(23),
              "chunk 1 length 2147483647 past the end" },
            { good:sub(1, 14) .. "MTrk\255\255\255\255",
              "chunk 1 length 4294967295 past the end" },
            { smf(0, 1, 96, { "\0\60\100" }),
              "without running status" },
            { smf(0, 1, 96, { "\255\255\255\255\0\144\60\100" }),
              "bad delta time" },
            { smf(0, 1, 96, { "\0\144\60\200" }), "bad data byte" },
            { smf(0, 1, 96, { "\0\144\60" }), "truncated event" },
            { smf(0, 1, 96, { "\0\244\1" }), "unexpected status 0xf4" },
            { smf(0, 1, 96, { "\0\255\1\20abc" }), "bad meta length" },
            { smf(0, 1, 96, { "\0\240\127" }), "bad sysex length" },
            { smf(0, 1, 96, { "\0\255\81\2\1\1" }), "tempo event of 2" },
            { smf(0, 1, 96, { "\0\255\81\3\0\0\0" }), "tempo of 0" },
        }
        for _, c in ipairs(cases) do
            local d, err = midi.decode(c[1])
            assert.is_nil(d)
            assert.matches("^decode failed: ", err)
            assert.truthy(err:find(c[2], 1, true), err)
            local ok, verr = midi.validate(c[1])
            assert.is_nil(ok)
            assert.matches("^validate failed: ", verr)
        end
    end)

    it("survives every truncation and random corruption of a file",
       function()
        local good = assert(midi.encode(random_notes(30, 2),
                                        { multiple_pitch_bends = true }))
        assert.is_true(midi.validate(good))
        for len = 0, #good - 1 do
            local d, err = midi.decode(good:sub(1, len))
            assert(d == nil and err, "a cut file decoded at " .. len)
            assert.is_nil(midi.validate(good:sub(1, len)))
        end
        local rnd = lcg(99)
        for _ = 1, 2000 do
            local s = good
            for _ = 1, 1 + math.floor(rnd() * 4) do
                local pos = 1 + math.floor(rnd() * #s)
                s = s:sub(1, pos - 1) .. string.char(math.floor(rnd() * 256))
                    .. s:sub(pos + 1)
            end
            local d, err = midi.decode(s)
            assert(d ~= nil or err ~= nil)
            assert.equal(d ~= nil, midi.validate(s) == true)
        end
        for _ = 1, 500 do
            local t = {}
            for i = 1, 1 + math.floor(rnd() * 300) do
                t[i] = string.char(math.floor(rnd() * 256))
            end
            local s = table.concat(t)
            assert.is_nil(midi.decode(s))
            local d, err = midi.decode("MThd\0\0\0\6\0\1\0\1\0\96MTrk"
                                       .. be32(#s) .. s)
            assert(d ~= nil or err ~= nil)
        end
    end)
end)
