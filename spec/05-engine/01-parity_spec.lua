-- The engine against the official implementation: posteriorgrams and notes
-- of @spotify/basic-pitch 1.0.1 (tfjs CPU backend) on synthesised clips
-- (spec/fixtures/golden, made by tools/reference/make-goldens.sh).

local model = require "wtt.model"
local json = require "wtt.json"
local sys = require "wtt.sys"
local npy = require "spec.support.npy"
local ffi = require "ffi"

local goldens = require "spec.support.goldens"
local FIXTURES = goldens.FIXTURES
local TOLERANCE = 1e-4     -- the official CPU and WASM backends: 2.5e-5

local PRESETS = goldens.PRESETS

local clips = goldens.clips()


describe("engine parity with the official Basic Pitch", function()
    local m
    setup(function()
        m = assert(model.load(nil, { threads = 2 }))
    end)

    it("has golden clips to compare against", function()
        assert.truthy(#clips >= 5, "found " .. #clips .. " golden clips")
    end)

    for _, name in ipairs(clips) do
        describe(name, function()
            local post
            setup(function()
                post = assert(m:infer(FIXTURES .. "/clips/" .. name .. ".wav"))
            end)

            for _, kind in ipairs({ "frames", "onsets", "contours" }) do
                it(kind .. " match within " .. TOLERANCE, function()
                    local g = npy.load(FIXTURES .. "/golden/" .. name .. "/"
                                       .. kind .. ".npy")
                    assert.equal(g.rows, post:n_frames())
                    local ours = post:to_string(kind)
                    local f = ffi.cast("const float *", ours)
                    local worst = 0
                    for i = 0, g.rows * g.cols - 1 do
                        local d = math.abs(f[i] - g.data[i])
                        if d > worst then
                            worst = d
                        end
                    end
                    assert.truthy(worst <= TOLERANCE,
                                  kind .. " differ by " .. worst)
                end)
            end

            for preset, opts in pairs(PRESETS) do
                it("gives the same notes with the " .. preset .. " preset",
                   function()
                    local text = assert(sys.read_file(
                        FIXTURES .. "/golden/" .. name .. "/notes-" .. preset
                        .. ".json"))
                    local golden = json.decode(text).notes
                    local notes = assert(post:notes(model.note_options(opts)))
                    assert.equal(#golden, #notes)
                    for i, g in ipairs(golden) do
                        local n = notes[i]
                        assert.equal(g.pitch_midi, n.pitch)
                        assert.near(g.start_s, n.start_s, 1e-6)
                        assert.near(g.end_s, n.end_s, 1e-6)
                        assert.near(g.amplitude, n.amplitude, 1e-6)
                        assert.same(g.pitch_bends, n.bends)
                    end
                end)
            end
        end)
    end
end)
