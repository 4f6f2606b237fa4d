-- End to end on the golden clips: audio -> `wtt transcribe --tab`, and
-- audio -> notes files -> `wtt tab`. Every transcribed note is accounted
-- for: in the tab's notes (on a string and fret that sound its pitch) or
-- in its unplayable list, never dropped.

local cli = require "spec.support.cli"
local goldens = require "spec.support.goldens"
local json = require "wtt.json"
local notes_in = require "wtt.tab.notes_in"
local sys = require "wtt.sys"
local runtime = require "wtt.runtime"

local CLIPS = goldens.FIXTURES .. "/clips"

local function wtt(args, dir)
    return cli.wtt(args, dir, 300)
end

local function read_json(path)
    local text = sys.read_file(path)
    assert(text, path .. " missing")
    return json.decode(text)
end

local function mkdir(path)
    assert(os.execute("mkdir -p '" .. path .. "'"))
    return path
end


-- Every transcribed note is in the tab (same pitch and start, on a string
-- and fret that sound it) or unplayable (not folded); the counts add up.
local function assert_accounted(transcribed, doc, label)
    local dropped = 0
    for _, u in ipairs(doc.unplayable) do
        assert.is_string(u.reason, label)
        if not u.folded_to then
            dropped = dropped + 1
        end
    end
    assert.equal(#transcribed, #doc.notes + dropped, label
        .. ": " .. #transcribed .. " transcribed, " .. #doc.notes
        .. " in the tab, " .. dropped .. " unplayable")
    -- as multisets of (pitch, start rounded to 1 us)
    local want = {}
    local function key(p, t)
        return p .. "@" .. math.floor(t * 1e6 + 0.5)
    end
    for _, n in ipairs(transcribed) do
        local k = key(n.pitch_midi, n.start_s)
        want[k] = (want[k] or 0) + 1
    end
    local folded = {}
    for _, u in ipairs(doc.unplayable) do
        if u.folded_to then
            folded[key(u.folded_to, u.start_s)] = u.pitch_midi
        else
            local k = key(u.pitch_midi, u.start_s)
            assert.is_true((want[k] or 0) > 0, label .. ": unplayable " .. k
                           .. " was not transcribed")
            want[k] = want[k] - 1
        end
    end
    for _, n in ipairs(doc.notes) do
        assert.equal(n.pitch_midi, doc.tuning[n.string] + doc.capo + n.fret,
                     label .. ": string/fret do not sound the note")
        local k = key(n.pitch_midi, n.start_s)
        if folded[k] then
            k = key(folded[k], n.start_s)
        end
        assert.is_true((want[k] or 0) > 0, label .. ": tab note " .. k
                       .. " was not transcribed")
        want[k] = want[k] - 1
    end
    for k, left in pairs(want) do
        assert.equal(0, left, label .. ": transcribed note " .. k .. " lost")
    end
end


-- Where two notes of one column (event) share a string, a tab cannot show
-- both (the ASCII cell holds one fret): nil or a description.
local function string_clash(doc)
    for _, m in ipairs(doc.measures) do
        for _, ev in ipairs(m.events) do
            local used = {}
            for _, i in ipairs(ev.notes or {}) do
                local n = doc.notes[i]
                if used[n.string] then
                    local o = doc.notes[used[n.string]]
                    return string.format("measure %d tick %d: notes at %.3f s "
                        .. "(pitch %d, fret %d) and %.3f s (pitch %d, fret %d) "
                        .. "both on string %d", m.number, ev.tick, o.start_s,
                        o.pitch_midi, o.fret, n.start_s, n.pitch_midi, n.fret,
                        n.string)
                end
                used[n.string] = i
            end
        end
    end
    return nil
end


describe("transcribe then tab, on the golden clips", function()
    local dir
    local clips = goldens.clips()

    setup(function()
        dir = assert(sys.mkdtemp("wtt-tab-e2e-"))
        assert(#clips > 0, "no golden clips in " .. CLIPS)
    end)
    teardown(function()
        if dir then sys.rmtree(dir) end
    end)

    local function clip_paths()
        local list = {}
        for i, c in ipairs(clips) do
            list[i] = CLIPS .. "/" .. c .. ".wav"
        end
        return list
    end

    -- `wtt transcribe --tab` on every clip, once (the later tests compare
    -- with it, also when run alone).
    local direct_dir
    local function direct()
        if not direct_dir then
            local out = mkdir(dir .. "/direct")
            local argv = { "transcribe", "-o", out, "--quiet", "--notes-json",
                           "--tab", "--tab-format", "json,ascii" }
            for _, p in ipairs(clip_paths()) do
                argv[#argv + 1] = p
            end
            local code, _, stderr = wtt(argv, dir)
            assert.equal(0, code, stderr)
            direct_dir = out
        end
        return direct_dir
    end

    it("wtt transcribe --tab writes tabs that account for every note",
       function()
        local out = direct()
        local total = 0
        for _, c in ipairs(clips) do
            assert.is_true((sys.file_size(out .. "/" .. c .. ".tab.txt") or 0)
                           > 0, c .. ".tab.txt missing")
            -- --tab is an output: no MIDI unless asked for
            assert.is_falsy(sys.exists(out .. "/" .. c .. ".mid"))
            local notes = read_json(out .. "/" .. c .. ".notes.json").notes
            local doc = read_json(out .. "/" .. c .. ".tab.json")
            assert_accounted(notes, doc, c)
            total = total + #notes
        end
        assert.is_true(total > 0, "the clips gave no notes at all")
    end)

    it("wtt transcribe --notes-json, then wtt tab on the notes files, "
       .. "gives the same tab; so do the CSV and the MIDI", function()
        local notes_dir = mkdir(dir .. "/notes")
        -- --tab for a guitar decodes in guitar mode: so must these
        local argv = { "transcribe", "-o", notes_dir, "--quiet",
                       "--notes-json", "--notes-csv", "--midi",
                       "--mode", "guitar" }
        for _, p in ipairs(clip_paths()) do
            argv[#argv + 1] = p
        end
        local code, _, stderr = wtt(argv, dir)
        assert.equal(0, code, stderr)

        for _, kind in ipairs({ "notes.json", "notes.csv", "mid" }) do
            local out = mkdir(dir .. "/tab-" .. kind)
            argv = { "tab", "-o", out, "--tab-format", "json,ascii" }
            for _, c in ipairs(clips) do
                argv[#argv + 1] = notes_dir .. "/" .. c .. "." .. kind
            end
            local stdout
            code, stdout, stderr = wtt(argv, dir)
            assert.equal(0, code, kind .. ": " .. stderr)
            for _, c in ipairs(clips) do
                assert.matches(c .. "%." .. kind:gsub("%.", "%%.")
                               .. ": %d+ notes tabbed", stdout)
                assert.is_true((sys.file_size(out .. "/" .. c .. ".tab.txt")
                                or 0) > 0)
                local notes = read_json(notes_dir .. "/" .. c
                                        .. ".notes.json").notes
                local doc = read_json(out .. "/" .. c .. ".tab.json")
                if kind == "notes.json" then
                    assert_accounted(notes, doc, c .. " via " .. kind)
                    -- the same notes make the same tab as --tab did
                    local direct = read_json(direct() .. "/" .. c
                                             .. ".tab.json")
                    assert.same(direct.notes, doc.notes)
                    assert.same(direct.measures, doc.measures)
                else
                    -- CSV rounds times to 1 ns and MIDI to ticks (and
                    -- merges same-pitch notes that start on one tick):
                    -- every note the file holds must add up
                    local held = assert(notes_in.read(notes_dir .. "/" .. c
                                                      .. "." .. kind))
                    if kind == "notes.csv" then
                        assert.equal(#notes, #held, c)
                    end
                    local dropped = 0
                    for _, u in ipairs(doc.unplayable) do
                        if not u.folded_to then dropped = dropped + 1 end
                    end
                    assert.equal(#held, #doc.notes + dropped,
                                 c .. " via " .. kind)
                end
            end
        end
    end)

    it("puts no two notes of one column on one string", function()
        local clashes = {}
        for _, c in ipairs(clips) do
            local doc = read_json(direct() .. "/" .. c .. ".tab.json")
            local why = string_clash(doc)
            if why then
                clashes[#clashes + 1] = c .. ": " .. why
            end
        end
        assert.same({}, clashes)
    end)
end)
