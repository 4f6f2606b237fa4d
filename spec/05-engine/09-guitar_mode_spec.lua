-- The decoding modes (docs/engine.md, "Guitar mode"): official stays the
-- default and bit-identical to the goldens; guitar and bass are selectable
-- through the Lua API, `wtt transcribe` (--mode, --rules, the default with
-- --tab) and the service's options; unknown modes and rules are refused
-- with a clear error. The rules themselves are tested on synthetic
-- posteriorgrams in spec/c/test_notes_guitar.c.

local model = require "wtt.model"
local json = require "wtt.json"
local sys = require "wtt.sys"
local cli = require "spec.support.cli"
local options = require "wtt.service.options"
local goldens = require "spec.support.goldens"

local FIXTURES = goldens.FIXTURES
local CLIP = "guitar_bend"


local function golden_notes(name, preset)
    local text = assert(sys.read_file(FIXTURES .. "/golden/" .. name
                                      .. "/notes-" .. preset .. ".json"))
    return json.decode(text).notes
end


local function same_as_golden(golden, notes)
    assert.equal(#golden, #notes)
    for i, g in ipairs(golden) do
        local n = notes[i]
        assert.equal(g.pitch_midi, n.pitch)
        assert.near(g.start_s, n.start_s, 1e-6)
        assert.near(g.end_s, n.end_s, 1e-6)
        assert.near(g.amplitude, n.amplitude, 1e-6)
        assert.same(g.pitch_bends, n.bends)
    end
end


describe("decoding modes", function()
    local dir, npy_path, post

    setup(function()
        dir = assert(sys.mkdtemp("wtt-modes-"))
        local m = assert(model.load(nil, { threads = 2 }))
        post = assert(m:infer(FIXTURES .. "/clips/" .. CLIP .. ".wav"))
        npy_path = dir .. "/" .. CLIP .. ".posteriors.npy"
        assert(post:save(npy_path))
        m:close()
    end)
    teardown(function()
        sys.rmtree(dir)
    end)

    describe("the Lua API", function()
        it("keeps official the default and identical to the goldens",
           function()
            for preset, opts in pairs(goldens.PRESETS) do
                local golden = golden_notes(CLIP, preset)
                local plain = assert(post:notes(model.note_options(opts)))
                local o = {}
                for k, v in pairs(opts) do o[k] = v end
                o.mode = "official"
                same_as_golden(golden, plain)
                same_as_golden(golden, assert(post:notes(model.note_options(o))))
            end
            -- and without note_options, straight through the binding
            same_as_golden(golden_notes(CLIP, "js"),
                           assert(post:notes({ mode = "official",
                                               min_note_frames = 5 })))
        end)

        it("selects guitar and bass, with their defaults and rules",
           function()
            local o = model.note_options({ mode = "guitar" })
            assert.equal("guitar", o.mode)
            assert.equal("ghost,weak,retrigger,split,bend,range,register,"
                         .. "strum,chord", o.rules)
            assert.equal(4, o.min_note_frames)
            -- a minimum given in ms wins over the mode's
            assert.equal(11, model.note_options({ mode = "guitar",
                                                  min_note_ms = 127.7 })
                             .min_note_frames)
            local official = assert(post:notes(model.note_options({})))
            local guitar = assert(post:notes(o))
            local bass = assert(post:notes(model.note_options({ mode = "bass" })))
            assert.truthy(#guitar > 0 and #bass > 0)
            assert.are_not.same(official, guitar)
            -- sorted by start, then pitch; bends on every note
            for i, n in ipairs(guitar) do
                assert.equal(n.n_frames, #n.bends)
                if i > 1 then
                    local p = guitar[i - 1]
                    assert.truthy(p.start_frame < n.start_frame
                                  or (p.start_frame == n.start_frame
                                      and p.pitch <= n.pitch))
                end
            end
            for _, n in ipairs(bass) do
                assert.truthy(n.pitch <= 72, "bass note " .. n.pitch)
            end
            -- no rules: the official notes of a 4-frame minimum, re-sorted
            local none = assert(post:notes(model.note_options({
                mode = "guitar", rules = "none" })))
            local short = assert(post:notes(model.note_options({
                min_note_frames = 4 })))
            assert.equal(#short, #none)
            -- a list of rules is the same as the string
            assert.same(assert(post:notes(model.note_options({
                            mode = "guitar", rules = { "ghost", "bend" } }))),
                        assert(post:notes(model.note_options({
                            mode = "guitar", rules = "ghost,bend" }))))
        end)

        it("refuses unknown modes and rules with nil, err", function()
            local notes, err = post:notes(model.note_options({ mode = "jazz" }))
            assert.is_nil(notes)
            assert.matches("unknown mode 'jazz' %(official, guitar or bass%)",
                           err)
            notes, err = post:notes(model.note_options({ mode = "guitar",
                                                         rules = "ghost,bogus" }))
            assert.is_nil(notes)
            assert.matches("unknown rule 'bogus'", err)
            notes, err = post:notes({ rules = "ghost" })
            assert.is_nil(notes)
            assert.matches("rules need mode guitar or bass", err)
            local ok
            ok, err = model.check_mode("guitar", { "ghost", 3 })
            assert.is_nil(ok)
            assert.matches("rules must be", err)
            ok, err = model.check_mode("bass", "range")
            assert.truthy(ok, err)
            assert.equal("range", ok.rules)
            assert.equal(4, ok.min_note_frames)
        end)
    end)

    describe("wtt transcribe", function()
        local function notes_json(args)
            local out = assert(sys.mkdtemp("wtt-modes-out-"))
            local argv = { "transcribe", "--from-posteriors", npy_path, "-o",
                           out, "--notes-json", "--quiet" }
            for _, a in ipairs(args) do argv[#argv + 1] = a end
            local code, _, err = cli.wtt(argv, dir)
            local text = sys.read_file(out .. "/" .. CLIP .. ".notes.json")
            sys.rmtree(out)
            assert.equal(0, code, err)
            return json.decode((assert(text))).notes
        end
        local function pitches(list, key)
            local p = {}
            for i, n in ipairs(list) do p[i] = n[key] .. "@" .. n.start_s end
            return p
        end

        it("decodes with --mode and --rules as the API does", function()
            local want = assert(post:notes(model.note_options({ mode = "guitar" })))
            assert.same(pitches(want, "pitch"),
                        pitches(notes_json({ "--mode", "guitar" }), "pitch_midi"))
            want = assert(post:notes(model.note_options({ mode = "guitar",
                                                          rules = "bend" })))
            assert.same(pitches(want, "pitch"),
                        pitches(notes_json({ "--mode=guitar", "--rules=bend" }),
                                "pitch_midi"))
            want = assert(post:notes(model.note_options({})))
            assert.same(pitches(want, "pitch"),
                        pitches(notes_json({ "--mode", "official" }), "pitch_midi"))
        end)

        it("uses the instrument's mode when a tab is asked for", function()
            local want = assert(post:notes(model.note_options({ mode = "bass" })))
            assert.same(pitches(want, "pitch"),
                        pitches(notes_json({ "--tab", "--instrument", "bass" }),
                                "pitch_midi"))
            want = assert(post:notes(model.note_options({ mode = "guitar" })))
            assert.same(pitches(want, "pitch"),
                        pitches(notes_json({ "--tab" }), "pitch_midi"))
            -- an explicit --mode wins
            want = assert(post:notes(model.note_options({})))
            assert.same(pitches(want, "pitch"),
                        pitches(notes_json({ "--tab", "--mode", "official" }),
                                "pitch_midi"))
        end)

        it("refuses a bad --mode or --rules with exit code 2", function()
            for _, case in ipairs({
                { { "--mode", "jazz" }, "%-%-mode must be official, guitar or bass" },
                { { "--rules", "ghost" }, "%-%-rules needs %-%-mode guitar or bass" },
                { { "--mode", "guitar", "--rules", "ghost,nope" },
                  "unknown rule 'nope'" },
            }) do
                local argv = { "transcribe", "--from-posteriors", npy_path,
                               "-o", dir }
                for _, a in ipairs(case[1]) do argv[#argv + 1] = a end
                local code, _, err = cli.wtt(argv, dir)
                assert.equal(2, code)
                assert.matches("^wtt transcribe: ", err)
                assert.matches(case[2], err)
            end
        end)
    end)

    describe("the service's options", function()
        it("accepts mode and rules and refuses bad ones clearly", function()
            local o = assert(options.validate({ mode = "guitar",
                                                rules = "ghost,bend" }))
            assert.equal("guitar", o.mode)
            assert.equal("ghost,bend", o.rules)
            assert(options.validate({ mode = "bass", rules = { "range" } }))
            assert(options.validate({ mode = "official" }))
            for _, case in ipairs({
                { { mode = "jazz" }, "mode must be official, guitar or bass" },
                { { mode = 3 }, "mode must be" },
                { { rules = "ghost" }, "rules needs mode guitar or bass" },
                { { mode = "official", rules = "ghost" }, "rules needs mode" },
                { { mode = "guitar", rules = "ghost,nope" },
                  "unknown rule 'nope'" },
                { { mode = "guitar", rules = {} }, "rules must be" },
                { { mode = "guitar", rules = 5 }, "rules must be" },
            }) do
                local ok, err = options.validate(case[1])
                assert.is_nil(ok)
                assert.matches(case[2], err, 1, true)
            end
        end)
    end)
end)
