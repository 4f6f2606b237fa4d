-- The CUDA backend on a real GPU against the CPU engine, on every golden
-- clip (spec/fixtures/golden, as 01-parity_spec.lua finds them): the
-- posteriorgrams within TOLERANCE, and the note lists of both presets
-- identical, at one window per batch and at the backend's default batch.
--
-- cuDNN sums a convolution in its own order (the CPU follows the
-- reference's, docs/engine.md "Numerics"), so the posteriorgrams may differ
-- in the last bits; the notes must not. What the CPU can check of this
-- backend (every kernel body, node by node, on these clips) is
-- spec/c/test_cuda_emu.c's, which runs everywhere. This spec needs a build
-- with the CUDA backend and a device; without them every case reports
-- pending with the reason ("skipped, because ..."), never a pass. #cuda

local core = require "wtt.core.model"
local model = require "wtt.model"
local sys = require "wtt.sys"
local ffi = require "ffi"

local goldens = require "spec.support.goldens"
local FIXTURES = goldens.FIXTURES
-- Chosen before any GPU run (docs/engine.md, "CUDA kernels"); the worst
-- difference each case sees is printed so a GPU run measures it.
local TOLERANCE = 1e-3
local BATCHES = { 1, 0 }        -- 0: the backend's default batch

local PRESETS = goldens.PRESETS

local clips = goldens.clips()


-- Why this spec cannot run here, or nil when it can.
local function unavailable()
    local compiled = false
    for _, b in ipairs(core.backends()) do
        compiled = compiled or b == "cuda"
    end
    if not compiled then
        return "this build has no CUDA backend"
    end
    local devices = core.devices("cuda")
    if not devices or #devices == 0 then
        return "no CUDA device is present"
    end
    return nil
end


local function max_abs_diff(a, b, n)
    local fa = ffi.cast("const float *", a)
    local fb = ffi.cast("const float *", b)
    local worst = 0
    for i = 0, n - 1 do
        local d = math.abs(fa[i] - fb[i])
        if d ~= d then
            return math.huge        -- NaN on one side only
        end
        if d > worst then
            worst = d
        end
    end
    return worst
end


describe("CUDA backend parity with the CPU engine #cuda", function()
    local reason = unavailable()

    if reason then
        it("runs every golden clip on the GPU", function()
            pending("skipped, because " .. reason)
        end)
        return
    end

    it("has golden clips to compare against", function()
        assert.truthy(#clips >= 5, "found " .. #clips .. " golden clips")
    end)

    local dir = model.default_dir()
    local cpu
    local cpu_post = {}

    setup(function()
        cpu = assert(core.load(dir, { threads = 2, backend = "cpu" }))
        for _, name in ipairs(clips) do
            cpu_post[name] = assert(cpu:infer(FIXTURES .. "/clips/" .. name
                                              .. ".wav", {}))
        end
    end)

    for _, batch in ipairs(BATCHES) do
        local label = batch == 0 and "the default batch" or "batch " .. batch

        describe("at " .. label, function()
            local gpu

            setup(function()
                gpu = assert(core.load(dir, { backend = "cuda",
                                              batch = batch }))
                assert.equal("cuda", (gpu:backend()))
            end)

            teardown(function()
                if gpu then
                    gpu:close()
                end
            end)

            for _, name in ipairs(clips) do
                describe(name, function()
                    local post

                    setup(function()
                        post = assert(gpu:infer(FIXTURES .. "/clips/" .. name
                                                .. ".wav", {}))
                    end)

                    for _, kind in ipairs({ "frames", "onsets", "contours" }) do
                        it(kind .. " within " .. TOLERANCE .. " of the CPU's",
                           function()
                            local ref = cpu_post[name]
                            assert.equal(ref:n_frames(), post:n_frames())
                            local a = ref:to_string(kind)
                            local b = post:to_string(kind)
                            assert.equal(#a, #b)
                            local worst = max_abs_diff(a, b, #a / 4)
                            io.write(string.format(
                                "\ncuda parity %s %s %s: max |gpu - cpu| = "
                                .. "%.3g\n", name, kind, label, worst))
                            assert.truthy(worst <= TOLERANCE,
                                          kind .. " differ by " .. worst)
                        end)
                    end

                    for preset, opts in pairs(PRESETS) do
                        it("gives the CPU's notes with the " .. preset
                           .. " preset", function()
                            local o = model.note_options(opts)
                            local want = assert(cpu_post[name]:notes(o))
                            local got = assert(post:notes(o))
                            assert.equal(#want, #got)
                            assert.same(want, got)
                        end)
                    end
                end)
            end
        end)
    end
end)
