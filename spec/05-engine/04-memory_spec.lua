-- Posteriorgrams beyond the memory budget go to a temporary file and are
-- read back through a row cache (core/wtt_rows.c). Whatever the budget, the
-- posteriorgrams and the notes must be the same to the bit: the file path is
-- the one every long recording takes, and the goldens only cover short clips
-- that stay in memory.

local model = require "wtt.model"
local audio = require "wtt.audio"
local sys = require "wtt.sys"
local runtime = require "wtt.runtime"

local CLIPS = runtime.source_dir .. "/spec/fixtures/clips/"

-- Note-option sets that take different branches of the extraction.
local OPTION_SETS = {
    defaults = {},
    js = { min_note_frames = 5 },
    banded = { min_freq = 110, max_freq = 880 },
    raw_onsets = { infer_onsets = false, melodia = false },
    numpy = { numpy_ties = true, frame_threshold = 0.2 },
}

-- Every golden clip end to end, tiled to `seconds`: long enough that the
-- cache (32 blocks of 128 rows) evicts and writes back.
local function long_pcm(seconds)
    local parts, n = {}, 0
    local names = { "guitar_strum", "piano_chords", "bass_line",
                    "guitar_bend", "guitar_fast_run" }
    while n < seconds * 22050 * 4 do
        for _, name in ipairs(names) do
            local pcm = assert(audio.load(CLIPS .. name .. ".wav",
                                          { rate = 22050 }))
            parts[#parts + 1] = pcm:to_string()
            n = n + #parts[#parts]
        end
    end
    return assert(audio.pcm_from_string(table.concat(parts), 22050))
end

local function same_notes(a, b)
    assert.equal(#a, #b)
    for i = 1, #a do
        local x, y = a[i], b[i]
        assert.equal(x.pitch, y.pitch)
        assert.equal(x.start_frame, y.start_frame)
        assert.equal(x.n_frames, y.n_frames)
        assert.equal(x.amplitude, y.amplitude)
        assert.same(x.bends, y.bends)
    end
end

describe("posteriorgrams beyond the memory budget", function()
    local m, pcm, in_mem, on_disk, dir
    setup(function()
        m = assert(model.load(nil, { threads = 2 }))
        dir = assert(sys.mkdtemp("wtt-memory-"))
        -- One long inference (slow under ASan): its file-backed twin is the
        -- same posteriorgrams saved and read back through the row cache.
        -- The engine's own spill to a file is compared on a short clip.
        pcm = long_pcm(56)
        in_mem = assert(m:infer(pcm, nil, { memory_mb = 1024 }))
        assert(in_mem:save(dir .. "/long.npy"))
        on_disk = assert(model.load_posteriors(dir .. "/long.npy"))
    end)
    teardown(function()
        sys.rmtree(dir)
    end)

    it("spill to a file from the engine bit-identical to memory", function()
        local clip = CLIPS .. "guitar_strum.wav"
        local a = assert(m:infer(clip, nil, { memory_mb = 1024 }))
        local b = assert(m:infer(clip, nil, { memory_mb = 0 }))
        assert.equal("file", b:storage())
        assert.equal(a:n_frames(), b:n_frames())
        for _, kind in ipairs({ "frames", "onsets", "contours" }) do
            assert.truthy(a:to_string(kind) == b:to_string(kind),
                          kind .. " differ")
        end
        same_notes(assert(a:notes(model.note_options({}))),
                   assert(b:notes(model.note_options({}))))
    end)

    it("are kept in memory or in a file by the budget", function()
        assert.equal("memory", in_mem:storage())
        assert.equal("file", on_disk:storage())
        assert.equal("memory", assert(m:infer(CLIPS .. "bass_line.wav")):storage())
    end)

    it("honour the options when a progress callback is given too",
       function()
        local calls = 0
        local p = assert(m:infer(CLIPS .. "bass_line.wav",
                                 function() calls = calls + 1 end,
                                 { memory_mb = 0 }))
        assert.equal("file", p:storage())
        assert.truthy(calls >= 1)
        local none, err = m:infer(CLIPS .. "bass_line.wav", function() end,
                                  { max_duration = 0.5 })
        assert.is_nil(none)
        assert.matches("exceeds the limit", err)
    end)

    it("covers more frames than the row cache holds", function()
        assert.truthy(in_mem:n_frames() > 32 * 128 * 1.1,
                      "only " .. in_mem:n_frames() .. " frames")
    end)

    it("read back bit-identical to the in-memory ones", function()
        assert.equal(in_mem:n_frames(), on_disk:n_frames())
        for _, kind in ipairs({ "frames", "onsets", "contours" }) do
            assert.truthy(in_mem:to_string(kind) == on_disk:to_string(kind),
                          kind .. " differ")
        end
        local last = in_mem:n_frames()
        assert.equal(in_mem:get("contours", last, 264),
                     on_disk:get("contours", last, 264))
    end)

    for name, opts in pairs(OPTION_SETS) do
        it("give the same notes (" .. name .. ")", function()
            local o = model.note_options(opts)
            local a = assert(in_mem:notes(o))
            assert.truthy(#a > 100, "only " .. #a .. " notes")
            same_notes(a, assert(on_disk:notes(o)))
        end)
    end

    it("give the same notes twice from the same file (no state left)",
       function()
        local o = model.note_options({})
        same_notes(assert(on_disk:notes(o)), assert(on_disk:notes(o)))
    end)

    it("save again from the file and load back", function()
        local path = dir .. "/again.npy"
        assert(on_disk:save(path))
        local size = #assert(sys.read_file(path))
        assert.equal(on_disk:n_frames() * 440 * 4, size - 128)
        local back = assert(model.load_posteriors(path))
        assert.equal("file", back:storage())
        assert.equal(on_disk:n_frames(), back:n_frames())
        assert.truthy(back:to_string("onsets") == in_mem:to_string("onsets"))
    end)

    it("refuse a truncated .npy", function()
        local path = dir .. "/cut.npy"
        assert(on_disk:save(path))
        local text = assert(sys.read_file(path))
        local f = assert(io.open(path, "wb"))
        f:write(text:sub(1, #text - 4))
        f:close()
        local p, err = model.load_posteriors(path)
        assert.is_nil(p)
        assert.matches("expected float32", err)
    end)
end)
