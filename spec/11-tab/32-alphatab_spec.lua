-- alphaTab (npm @coderline/alphatab, the library that shows tabs in the
-- browser) reads wtt's alphaTex, Guitar Pro 7 and MusicXML files back:
-- every sample of spec/support/tabdoc.lua, in all three formats, must come
-- back with the document's tuning, capo and bar count, and every note on
-- its string and fret at its place and length. alphaTex and .gp must also
-- keep ties and techniques. tools/alphatab/check.sh runs alphaTab's own
-- importers under Node (installing them with `npm ci` when missing).

local json = require "wtt.json"
local sys = require "wtt.sys"
local runtime = require "wtt.runtime"
local tabdoc = require "spec.support.tabdoc"
local alphatex = require "wtt.tab.out.alphatex"
local gp = require "wtt.tab.out.gp"
local musicxml = require "wtt.tab.out.musicxml"

local CHECK = runtime.source_dir .. "/tools/alphatab/check.sh"
local TICKS = 960               -- alphaTab's ticks per quarter note

local FORMATS = {
    { name = "alphatex", ext = "alphatex", enc = alphatex,
      importer = "AlphaTex", techniques = true },
    { name = "gp", ext = "gp", enc = gp,
      importer = "Guitar Pro 7-8", techniques = true },
    -- MusicXML (wtt.tab.out.musicxml) is checked for notes, not for how
    -- alphaTab's MusicXML importer reads techniques.
    { name = "musicxml", ext = "musicxml", enc = musicxml,
      importer = "MusicXML", techniques = false },
}


-- Runs check.sh on `files`; returns the objects it printed, by file.
local function alphatab_read(files, dir)
    local argv = { CHECK }
    for _, f in ipairs(files) do
        argv[#argv + 1] = f
    end
    local out, err = dir .. "/check.out", dir .. "/check.err"
    local pid = assert(sys.spawn(argv, { stdout = out, stderr = err }))
    local how, code = sys.wait(pid, 300)
    assert.equal("exited", how)
    local text, errtext = sys.read_file(out) or "", sys.read_file(err) or ""
    assert(code == 0 or code == 1, "check.sh failed (" .. tostring(code)
                                   .. "): " .. errtext)
    local by_file = {}
    for line in text:gmatch("[^\n]+") do
        local o = json.decode(line)
        by_file[o.file] = o
    end
    return by_file
end


-- Where each note is first and last sounded (event numbers over the
-- whole piece), read from the document alone.
local function occurrences(doc)
    local first, last = {}, {}
    local k = 0
    for _, m in ipairs(doc.measures) do
        for _, ev in ipairs(m.events) do
            k = k + 1
            for _, ni in ipairs(ev.notes or {}) do
                first[ni] = first[ni] or k
                last[ni] = k
            end
        end
    end
    return first, last
end


-- The techniques alphaTab should show on one sounding of note `ni`.
local function expected_techniques(doc, ni, is_first, is_last, from_of)
    local want = {}
    if is_first then
        for _, t in ipairs(doc.notes[ni].techniques or {}) do
            if t.type == "bend" then
                want.bend = t
            elseif t.type == "vibrato" then
                want.vibrato = "Slight"
            elseif t.type == "let_ring" then
                want.let_ring = true
            end
        end
    end
    if is_last and from_of[ni] then
        want[from_of[ni]] = true
    end
    return want
end


local function check_techniques(got, want, where)
    assert.equal(want.vibrato, got.vibrato, where .. ": vibrato")
    assert.equal(want.let_ring, got.let_ring, where .. ": let ring")
    assert.equal(want.hopo, got.hammer_pull_origin, where .. ": hammer/pull")
    assert.equal(want.slide and "Legato" or nil, got.slide_out,
                 where .. ": slide")
    if not want.bend then
        assert.is_nil(got.bend, where .. ": bend")
        return
    end
    assert.is_table(got.bend, where .. ": bend")
    local q = math.floor(want.bend.semitones * 2 + 0.5)
    local top = 0
    for _, p in ipairs(got.bend) do
        top = math.max(top, p[2])
    end
    assert.equal(q, top, where .. ": bend height (quarter tones)")
    assert.equal(want.bend.release and 0 or q, got.bend[#got.bend][2],
                 where .. ": bend end")
end


-- Compares what alphaTab read (`got`, check.js's object) with `doc`.
local function compare(doc, got, fmt, label)
    assert.is_nil(got.error, label .. ": " .. tostring(got.error))
    assert.equal(fmt.importer, got.importer, label)
    assert.same({}, got.diagnostics, label .. ": alphaTex diagnostics")
    assert.same({}, got.log, label .. ": alphaTab warnings")
    assert.same(doc.tuning, got.tuning, label .. ": tuning")
    assert.equal(doc.capo, got.capo, label .. ": capo")
    assert.equal(#doc.measures, got.bars, label .. ": bars")
    assert.equal(doc.tempo_bpm, got.tempo, label .. ": tempo")
    for i, m in ipairs(got.measures) do
        assert.same(doc.time_signature, m.time_signature,
                    label .. ": time signature of bar " .. i)
        assert.equal(doc.measures[i].ticks * TICKS / doc.divisions,
                     m.duration, label .. ": length of bar " .. i)
    end

    local scale = TICKS / doc.divisions
    local first, last = occurrences(doc)
    local from_of = {}
    for _, n in ipairs(doc.notes) do
        for _, t in ipairs(n.techniques or {}) do
            if t.from then
                from_of[t.from] = t.type == "slide" and "slide" or "hopo"
            end
        end
    end
    -- Positions are the sums of the lengths before (the same whether an
    -- event's `tick` counts from the piece or from its measure).
    local k, pos = 0, 0
    for _, m in ipairs(doc.measures) do
        for _, ev in ipairs(m.events) do
            k = k + 1
            local b = got.beats[k]
            local where = ("%s: measure %d, event at tick %d"):format(
                label, m.number, pos)
            assert.is_table(b, where .. ": missing in alphaTab")
            assert.equal(pos * scale, b.tick, where .. ": position")
            pos = pos + ev.ticks
            assert.equal(ev.ticks * scale, b.duration, where .. ": length")
            local notes = ev.notes or {}
            assert.equal(ev.rest == true, b.rest, where .. ": rest")
            assert.equal(#notes, #b.notes, where .. ": note count")
            local on_string = {}
            for _, n in ipairs(b.notes) do
                on_string[n.string] = n
            end
            for _, ni in ipairs(notes) do
                local want = doc.notes[ni]
                local n = on_string[want.string]
                local at = where .. ", note " .. ni
                assert.is_table(n, at .. ": no note on string "
                                   .. want.string)
                assert.equal(want.fret, n.fret, at .. ": fret")
                assert.equal(ev.tied == true, n.tie, at .. ": tie")
                if fmt.techniques then
                    check_techniques(n, expected_techniques(doc, ni,
                        first[ni] == k, last[ni] == k, from_of), at)
                end
            end
        end
    end
    assert.equal(k, #got.beats, label .. ": beat count")
end


-- A 10,000-note guitar part that repeats little: lengths, chords, frets,
-- rests, ties and techniques from a fixed pseudo-random sequence.
local function varied_doc(n_notes)
    local seed = 12345
    local function rand(n)
        seed = (seed * 1103515245 + 12345) % 2147483648
        return seed % n + 1
    end
    local lengths = { 3, 6, 6, 12, 12, 24, 4 }
    local measures, count = {}, 0
    while count < n_notes do
        local m, left = {}, 48
        while left > 0 do
            local len = lengths[rand(#lengths)]
            if len == 4 then           -- a whole 8th-triplet group
                if left % 12 ~= 0 then
                    len = 3
                else
                    for _ = 1, 3 do
                        count = count + 1
                        m[#m + 1] = { 4, { rand(6), rand(16) - 1 } }
                    end
                    left = left - 12
                    len = 0
                end
            end
            while len > left do
                len = len / 2
            end
            if len >= 3 and len % 3 == 0 then
                local r = rand(10)
                local prev = m[#m]
                if r == 1 then
                    m[#m + 1] = { len }
                elseif r == 2 and prev and #prev > 1 then
                    m[#m + 1] = { len, tied = true }
                else
                    local ev, used = { len }, {}
                    for _ = 1, rand(3) do
                        local s = rand(6)
                        if not used[s] then
                            used[s] = true
                            local tech
                            if rand(20) == 1 then
                                tech = { { type = "vibrato" } }
                            elseif rand(20) == 1 then
                                tech = { { type = "bend", semitones = 1,
                                           release = rand(2) == 1 } }
                            end
                            ev[#ev + 1] = { s, rand(16) - 1, tech = tech }
                            count = count + 1
                        end
                    end
                    m[#m + 1] = ev
                end
                left = left - len
            end
        end
        measures[#measures + 1] = m
    end
    return tabdoc.build({ instrument = "guitar",
                          tuning = { 64, 59, 55, 50, 45, 40 },
                          tempo_bpm = 120, measures = measures })
end


describe("alphaTab reads wtt's tabs", function()
    local dir, files, got

    setup(function()
        dir = assert(sys.mkdtemp("wtt-alphatab-"))
        files = {}
        for _, name in ipairs(tabdoc.names()) do
            for _, fmt in ipairs(FORMATS) do
                local bytes = assert(fmt.enc.encode(tabdoc.sample(name)))
                local path = ("%s/%s.%s"):format(dir, name, fmt.ext)
                assert(sys.write_file(path, bytes))
                files[#files + 1] = path
            end
        end
        got = alphatab_read(files, dir)
    end)

    teardown(function()
        if dir then
            sys.rmtree(dir)
        end
    end)

    for _, fmt in ipairs(FORMATS) do
        it("in " .. fmt.name .. ": every sample, note by note", function()
            for _, name in ipairs(tabdoc.names()) do
                local path = ("%s/%s.%s"):format(dir, name, fmt.ext)
                local o = got[path]
                assert.is_table(o, path .. ": no answer from check.js")
                compare(tabdoc.sample(name), o, fmt, name .. "." .. fmt.ext)
            end
        end)
    end

    it("keeps the title, quotes and all, in alphaTex and .gp", function()
        local doc = tabdoc.sample("chords")
        doc.title = 'Say "hi" \\ ]]> <&> tab\tend'
        local paths = {}
        for _, fmt in ipairs(FORMATS) do
            if fmt.techniques then
                local path = dir .. "/title." .. fmt.ext
                assert(sys.write_file(path, assert(fmt.enc.encode(doc))))
                paths[#paths + 1] = path
            end
        end
        local read = alphatab_read(paths, dir)
        for _, path in ipairs(paths) do
            assert.is_nil(read[path].error, read[path].error)
            assert.equal(doc.title, read[path].title, path)
        end
    end)

    it("reads a long, varied part (10,000 notes) in both formats", function()
        local doc = varied_doc(10000)
        local paths = {}
        for _, fmt in ipairs(FORMATS) do
            if fmt.techniques then
                local path = dir .. "/varied." .. fmt.ext
                assert(sys.write_file(path, assert(fmt.enc.encode(doc))))
                paths[#paths + 1] = path
            end
        end
        local read = alphatab_read(paths, dir)
        for i, fmt in ipairs(FORMATS) do
            if fmt.techniques then
                compare(doc, read[paths[i]], fmt, "varied." .. fmt.ext)
            end
        end
    end)
end)


describe("alphaTex and Guitar Pro encoders", function()
    it("refuse an event that is not one notatable length", function()
        local doc = tabdoc.sample("chords")
        local evs = doc.measures[1].events
        evs[1].ticks, evs[2].ticks = 5, 19
        for _, enc in ipairs({ alphatex, gp }) do
            local bytes, err = enc.encode(doc)
            assert.is_nil(bytes)
            assert.matches("measure 1: an event of 5 ticks", err)
        end
    end)

    it("write a GPIF whose strings count from the lowest, from 0", function()
        local xml = assert(gp.gpif(tabdoc.sample("guitar7")))
        -- The first note is on string 7 (the low B) at fret 0.
        assert.matches('<Note id="0">.-<String>0</String>.-<Fret>0</Fret>',
                       xml)
        assert.matches("<Pitches>35 40 45 50 55 59 64</Pitches>", xml)
    end)

    it("encode a 10,000-note part whole (its speed is bench/tab.sh's)", function()
        for _, doc in ipairs({ tabdoc.large(10000), varied_doc(10000) }) do
            assert.truthy(#doc.notes >= 10000)
            local tex = assert(alphatex.encode(doc))
            local xml = assert(gp.gpif(doc))
            assert.truthy(#tex > 0 and #xml > 0)
        end
    end)
end)
