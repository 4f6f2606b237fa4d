-- Posteriorgrams beyond the memory budget go to a temporary file and are
-- read back through a cache (core/engine/wtt_frame_store.c). Whatever the
-- budget, the posteriorgrams and the notes must be the same to the bit: the
-- file path is the one every long recording takes, and the goldens only
-- cover short clips that stay in memory.

local model = require "wtt.model"
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
    guitar = { mode = "guitar" },
    guitar_banded = { mode = "bass", min_freq = 40, max_freq = 400 },
}

-- A posteriorgram file of at least `frames` rows: a real one (the engine's
-- on a golden clip, saved as .npy) repeated. Long enough that the row cache
-- (32 blocks of 128 rows) evicts and writes back, without the minute of
-- inference a long clip costs under ASan.
local function tiled_npy(post, frames, path)
    assert(post:save(path))
    local text = assert(sys.read_file(path))
    local hl = text:byte(9) + 256 * text:byte(10)
    local one = text:sub(10 + hl + 1)
    local n = post:n_frames()
    assert.equal(n * 440 * 4, #one)
    local times = math.ceil(frames / n)
    local header = ("{'descr': '<f4', 'fortran_order': False, "
                    .. "'shape': (%d, 440), }"):format(n * times)
    header = header .. (" "):rep(64 - (10 + #header + 1) % 64) .. "\n"
    local f = assert(io.open(path, "wb"))
    f:write("\147NUMPY\1\0", string.char(#header % 256, math.floor(#header / 256)),
            header, one:rep(times))
    f:close()
    return n * times
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
    local m, in_mem, on_disk, dir
    setup(function()
        m = assert(model.load(nil, { threads = 2 }))
        dir = assert(sys.mkdtemp("wtt-memory-"))
        local clip = assert(m:infer(CLIPS .. "guitar_strum.wav"))
        tiled_npy(clip, 32 * 128 * 1.5, dir .. "/long.npy")
        in_mem = assert(model.load_posteriors(dir .. "/long.npy",
                                              { memory_mb = 1024 }))
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
        assert.equal("file", assert(model.load_posteriors(
            dir .. "/long.npy", { memory_mb = 1 })):storage())
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
