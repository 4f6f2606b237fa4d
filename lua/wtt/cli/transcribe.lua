-- `wtt transcribe IN... [options]`: audio files to MIDI, notes and
-- posteriorgrams, with no service running. The options and defaults are
-- the official basic-pitch command line's (see docs/transcribe.md).

local model = require "wtt.model"
local notes_io = require "wtt.notes_io"
local midi = require "wtt.midi"
local tab_args = require "wtt.cli.tab_args"
local sys = require "wtt.sys"
local ffi = require "ffi"

local USAGE = [=[
usage: wtt transcribe IN... [-o OUT] [--midi] [--notes-json] [--notes-csv]
       [--onset-threshold X] [--frame-threshold Y] [--min-note-ms Z]
       [--min-freq HZ] [--max-freq HZ] [--no-melodia]
       [--mode official|guitar|bass] [--rules LIST]
       [--multiple-pitch-bends] [--tempo BPM] [--instrument NAME]
       [--save-posteriors] [--from-posteriors FILE]
       [--device auto|cpu|cuda|cuda:N] [--threads N] [--batch N]
       [--nonfinite error|zero]
       [--model DIR] [--full-tail] [--quiet]
       [--tab [tab options]]

Writes OUT/<name>.mid (the default when no output is chosen),
<name>.notes.json, <name>.notes.csv and <name>.posteriors.npy.
Defaults: onset 0.5, frame 0.3, minimum note 127.70 ms, melodia on,
tempo 120, instrument guitar (General MIDI 25, acoustic steel).
--mode picks the decoding: official (the default: Basic Pitch's own,
bit-identical), or guitar / bass, for plucked strings (docs/engine.md,
"Guitar mode": overtone ghosts, retriggers, re-plucks, bends and strums
handled from the posteriorgrams; minimum note 46 ms unless --min-note-ms
is given). With --tab for a guitar (guitar, guitar7) or a bass (bass,
bass5) the default is that mode. --rules LIST (guitar and bass only)
applies only the rules named: ghost, weak, retrigger, split, bend, range,
register, strum, chord, all or none, comma-separated (default all).
--device (default WTT_DEVICE, else auto) auto takes the first usable GPU
and logs it, else the CPU and says why; cuda fails clearly without one.
`wtt version` lists the backends and devices. --batch: windows per engine
run (default one per thread on the CPU, what half the free GPU memory
holds on a GPU).
--tab also writes the tablature of the notes: OUT/<name>.tab.txt,
<name>.tab.json, ... (--tab-format). --instrument then also picks the tab
instrument (guitar, bass, ukulele, guitar7, bass5) and --tempo, when
given, the tab's tempo (otherwise estimated from the notes).

]=] .. tab_args.USAGE

ffi.cdef [[ int isatty(int fd); ]]

local VALUE_FLAGS = {
    ["-o"] = "out", ["--output"] = "out",
    ["--onset-threshold"] = "onset_threshold",
    ["--frame-threshold"] = "frame_threshold",
    ["--min-note-ms"] = "min_note_ms", ["--min-freq"] = "min_freq",
    ["--max-freq"] = "max_freq", ["--tempo"] = "tempo",
    ["--instrument"] = "instrument", ["--from-posteriors"] = "from",
    ["--device"] = "device", ["--threads"] = "threads",
    ["--batch"] = "batch",
    ["--nonfinite"] = "nonfinite", ["--model"] = "model",
    ["--mode"] = "mode", ["--rules"] = "rules",
}
local NUMERIC = {
    onset_threshold = { 0, 1 }, frame_threshold = { 0, 1 },
    min_note_ms = { 0, 1e6 }, min_freq = { 1, 1e5 }, max_freq = { 1, 1e5 },
    tempo = { 1, 1000 }, threads = { 1, 256 }, batch = { 1, 4096 },
}
local BOOL_FLAGS = {
    ["--midi"] = "midi", ["--notes-json"] = "notes_json",
    ["--notes-csv"] = "notes_csv", ["--save-posteriors"] = "posteriors",
    ["--no-melodia"] = "no_melodia",
    ["--multiple-pitch-bends"] = "multiple_pitch_bends",
    ["--quiet"] = "quiet",
    ["--full-tail"] = "full_tail",
    ["--tab"] = "tab",
}


local function fail(msg)
    io.stderr:write("wtt transcribe: ", msg, "\n")
    os.exit(2)
end


-- The MIDI program of --instrument: a General MIDI name, or a tab
-- instrument's (ukulele, guitar7, bass5 have no GM program of their own).
local function midi_instrument(name)
    if name == nil or midi.PROGRAMS[name] then
        return name
    end
    local tab = require "wtt.tab"
    local opts = tab.options({ instrument = name })
    return opts and opts.instrument.midi or nil
end


-- --tab's options, checked before any audio is read. Without --tab the tab
-- flags are a mistake, and --instrument only a MIDI program.
local function check_tab(o)
    if not o.tab then
        if o.tab_flags[1] then
            fail(o.tab_flags[1] .. " needs --tab")
        end
        if o.instrument and not midi_instrument(o.instrument) then
            fail("--instrument: unknown instrument '" .. o.instrument
                 .. "' (docs/midi.md lists the names)")
        end
        return
    end
    local raw = o.tab_raw
    raw.instrument = o.instrument
    raw.tempo = o.tempo
    local opts, err = tab_args.options(raw)
    if not opts then
        fail(err)
    end
    o.tab_opts = opts
end


-- The decoding mode: --mode, else guitar or bass when a tab is asked for
-- one, else official; --rules checked against it.
local TAB_MODES = { guitar = "guitar", guitar7 = "guitar", bass = "bass",
                    bass5 = "bass" }

local function check_mode(o)
    if o.mode == nil and o.tab then
        o.mode = TAB_MODES[o.tab_opts.instrument.name]
    end
    if o.mode ~= nil and o.mode ~= "official" and o.mode ~= "guitar"
       and o.mode ~= "bass"
    then
        fail("--mode must be official, guitar or bass, got '" .. o.mode
             .. "'")
    end
    if o.rules ~= nil then
        if o.mode == nil or o.mode == "official" then
            fail("--rules needs --mode guitar or bass")
        end
        local ok, err = model.check_mode(o.mode, o.rules)
        if not ok then
            fail("--rules: " .. err)
        end
    end
end


local function parse(argv)
    local o, inputs, i = { tab_raw = {}, tab_flags = {} }, {}, 1
    -- A value flag's value: after "=", else the next argument.
    local function value(flag, inline)
        if inline then
            return inline
        end
        i = i + 1
        if argv[i] == nil then
            fail(flag .. " needs a value")
        end
        return argv[i]
    end
    while i <= #argv do
        local a = argv[i]
        local flag, inline = a:match("^(%-%-[%w-]+)=(.*)$")
        flag = flag or a
        if a == "-h" or a == "--help" then
            print(USAGE)
            os.exit(0)
        elseif VALUE_FLAGS[flag] then
            local v = value(flag, inline)
            local key = VALUE_FLAGS[flag]
            if NUMERIC[key] then
                local n = tonumber(v)
                local r = NUMERIC[key]
                if not n or n < r[1] or n > r[2] then
                    fail(flag .. " must be a number in [" .. r[1] .. ", "
                         .. r[2] .. "], got '" .. v .. "'")
                end
                v = n
            end
            o[key] = v
        elseif tab_args.VALUES[flag] and not VALUE_FLAGS[flag] then
            -- tab-only flags (--instrument and --tempo are also ours)
            local v = value(flag, inline)
            tab_args.take(o.tab_raw, flag, v)
            o.tab_flags[#o.tab_flags + 1] = flag
        elseif tab_args.SWITCHES[a] then
            tab_args.take(o.tab_raw, a)
            o.tab_flags[#o.tab_flags + 1] = a
        elseif BOOL_FLAGS[a] then
            o[BOOL_FLAGS[a]] = true
        elseif a:sub(1, 1) == "-" and a ~= "-" then
            fail("unknown option " .. a .. " (see --help)")
        else
            inputs[#inputs + 1] = a
        end
        i = i + 1
    end
    if o.min_freq and o.max_freq and o.min_freq >= o.max_freq then
        fail("--min-freq must be below --max-freq")
    end
    if o.nonfinite and o.nonfinite ~= "error" and o.nonfinite ~= "zero" then
        fail("--nonfinite must be error or zero")
    end
    if #inputs == 0 and not o.from then
        fail("no input files (see --help)")
    end
    check_tab(o)
    check_mode(o)
    if not (o.midi or o.notes_json or o.notes_csv or o.posteriors or o.tab)
    then
        o.midi = true
    end
    return o, inputs
end


-- A progress bar on a terminal, nothing otherwise.
local function progress_for(name, quiet)
    if quiet or ffi.C.isatty(2) == 0 then
        return nil, function() end
    end
    local t0 = sys.now()
    local function draw(done, total)
        local width, frac = 30, total > 0 and done / total or 0
        local fill = math.floor(frac * width + 0.5)
        local eta = ""
        if total > 0 and done > 0 then
            eta = string.format(" ETA %.0fs",
                                (sys.now() - t0) / done * (total - done))
        end
        io.stderr:write(string.format("\r%s [%s%s] %d/%s windows%s   ",
            name, string.rep("#", fill), string.rep(".", width - fill), done,
            total > 0 and tostring(total) or "?", eta))
        io.stderr:flush()
    end
    return draw, function() io.stderr:write("\n") end
end


local function stem(path)
    local base = path:match("([^/]+)$") or path
    return (base:gsub("%.[^.]+$", ""))
end


-- The tablature of `notes` as <base>.tab.txt, ...; unplayable notes are
-- listed on stderr. files | nil, err
local function write_tab(o, name, notes, base, label)
    local tab = require "wtt.tab"
    o.tab_opts.title = name
    local doc, err = tab.build(notes, o.tab_opts)
    if not doc then
        return nil, "tab: " .. tostring(err)
    end
    for _, line in ipairs(tab_args.unplayable_lines(doc)) do
        io.stderr:write("wtt transcribe: ", label, ": ", line, "\n")
    end
    local files
    files, err = tab_args.write(doc, o.tab_opts.formats, base)
    if not files then
        return nil, err
    end
    for _, p in ipairs(files) do
        if (sys.file_size(p) or 0) == 0 then
            for _, q in ipairs(files) do
                os.remove(q)
            end
            return nil, p .. " is empty"
        end
    end
    return files
end


-- Writes every requested output for one input; nil, err on the first
-- failure (files already written for it are removed: all or nothing).
local function write_outputs(o, name, notes, post, meta, label)
    local base = (o.out or ".") .. "/" .. name
    local written = {}
    local function done(path, ok, err)
        if not ok then
            for _, p in ipairs(written) do
                os.remove(p)
            end
            return nil, err
        end
        if (sys.file_size(path) or 0) == 0 then
            return nil, path .. " is empty"
        end
        written[#written + 1] = path
        return true
    end
    local steps = {}
    if o.midi then
        steps[#steps + 1] = { base .. ".mid", function(p)
            return notes_io.write_midi(p, notes, {
                tempo = o.tempo,
                instrument = midi_instrument(o.instrument) or "guitar",
                multiple_pitch_bends = o.multiple_pitch_bends })
        end }
    end
    if o.notes_json then
        steps[#steps + 1] = { base .. ".notes.json", function(p)
            return notes_io.write(p, notes_io.to_json(notes, meta))
        end }
    end
    if o.notes_csv then
        steps[#steps + 1] = { base .. ".notes.csv", function(p)
            return notes_io.write(p, notes_io.to_csv(notes))
        end }
    end
    if o.posteriors and post then
        steps[#steps + 1] = { base .. ".posteriors.npy", function(p)
            return post:save(p)
        end }
    end
    for _, s in ipairs(steps) do
        local ok, err = done(s[1], s[2](s[1]))
        if not ok then
            return nil, err
        end
    end
    if o.tab then
        local ok, err = write_tab(o, name, notes, base, label)
        if not ok then
            for _, p in ipairs(written) do
                os.remove(p)
            end
            return nil, err
        end
        for _, p in ipairs(ok) do
            written[#written + 1] = p
        end
    end
    return written
end


local function note_opts(o)
    return {
        onset_threshold = o.onset_threshold, frame_threshold = o.frame_threshold,
        min_note_ms = o.min_note_ms, min_freq = o.min_freq,
        max_freq = o.max_freq, melodia = not o.no_melodia,
        nonfinite = o.nonfinite, full_tail = o.full_tail,
        mode = o.mode, rules = o.rules,
    }
end


local function main(argv)
    local o, inputs = parse(argv)
    if o.out and sys.exists(o.out) ~= "dir" then
        fail("output directory " .. o.out .. " does not exist")
    end
    local failures = 0
    local function report(name, err)
        failures = failures + 1
        io.stderr:write("wtt transcribe: ", name, ": ", tostring(err), "\n")
    end

    if o.from then
        local post, err = model.load_posteriors(o.from)
        if not post then
            report(o.from, err)
        else
            local notes
            notes, err = post:notes(model.note_options(note_opts(o)))
            local ok
            if notes then
                ok, err = write_outputs(o, stem(o.from):gsub("%.posteriors$", ""),
                                        notes, nil, { source = o.from }, o.from)
            end
            if not notes or not ok then
                report(o.from, err)
            elseif not o.quiet then
                io.stdout:write(o.from, ": ", #notes, " notes\n")
            end
        end
    end

    local m, err
    if #inputs > 0 then
        m, err = model.load(o.model, { device = o.device, threads = o.threads,
                                       batch = o.batch })
        if not m then
            fail(err)
        end
    end
    for _, path in ipairs(inputs) do
        local draw, finish = progress_for(path, o.quiet)
        local t0 = sys.now()
        local notes, post = m:transcribe(path, note_opts(o), draw)
        finish()
        if not notes then
            report(path, post)
        else
            local meta = m:provenance(note_opts(o))
            meta.source = path:match("([^/]+)$")
            local files, werr = write_outputs(o, stem(path), notes, post,
                                              meta, path)
            if not files then
                report(path, werr)
            elseif not o.quiet then
                local secs = post:n_frames() / 86
                io.stdout:write(string.format(
                    "%s: %d notes, %.1f s of audio in %.2f s (%.0fx realtime) -> %s\n",
                    path, #notes, secs, sys.now() - t0,
                    secs / math.max(sys.now() - t0, 1e-9),
                    table.concat(files, ", ")))
            end
        end
    end
    if failures > 0 then
        os.exit(1)
    end
end

main(arg)
