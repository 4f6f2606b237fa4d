-- The model binding's callbacks and options. A raising on_window must not
-- unwind through the C frames that hold the decoder (its sndfile handle) and
-- the window buffers: the binding calls it protected, releases everything,
-- then raises the callback's error unchanged. A misused option raises
-- naming the option.

local core = require "wtt.core.model"
local model = require "wtt.model"
local audio = require "wtt.audio"
local sys = require "wtt.sys"
local runtime = require "wtt.runtime"

local CLIP = runtime.source_dir .. "/spec/fixtures/clips/bass_line.wav"


local function open_fds()
    return #assert(sys.listdir("/proc/self/fd"))
end


describe("a raising on_window", function()
    local m
    setup(function()
        m = assert(core.load(model.default_dir(), { threads = 1 }))
    end)
    teardown(function()
        m:close()
    end)

    it("propagates its message and closes the audio file", function()
        local before = open_fds()
        local ok, err = pcall(m.infer, m, CLIP, {
            on_window = function() error("boom from on_window", 0) end,
        })
        assert.is_false(ok)
        assert.equal("boom from on_window", err)
        assert.equal(before, open_fds())
    end)

    it("propagates a non-string error value as it was raised", function()
        local raised = { code = 42 }
        local ok, err = pcall(m.infer, m, CLIP, {
            on_window = function() error(raised) end,
        })
        assert.is_false(ok)
        assert.equal(raised, err)
    end)

    it("propagates from a pcm source too", function()
        local pcm = audio.pcm_from_string(string.rep("\0", 4 * 22050), 22050)
        local ok, err = pcall(m.infer, m, pcm, {
            on_window = function() error("pcm boom", 0) end,
        })
        assert.is_false(ok)
        assert.equal("pcm boom", err)
    end)

    it("leaves the model usable", function()
        local n = 0
        pcall(m.infer, m, CLIP, { on_window = function() error("x") end })
        local post = assert(m:infer(CLIP, {
            on_window = function() n = n + 1 end,
        }))
        assert.truthy(post:n_frames() > 0)
        assert.truthy(n > 0)
    end)

    it("through wtt.model's transcribe as well", function()
        local mm = assert(model.load(nil, { threads = 1 }))
        local before = open_fds()
        local ok, err = pcall(mm.transcribe, mm, CLIP, {}, function()
            error("boom from transcribe", 0)
        end)
        assert.is_false(ok)
        assert.equal("boom from transcribe", err)
        assert.equal(before, open_fds())
    end)

    it("may close its model: freed once infer has returned", function()
        local own = assert(core.load(model.default_dir(), { threads = 1 }))
        local post = assert(own:infer(CLIP, { on_window = function()
            own:close()
        end }))
        assert.truthy(post:n_frames() > 0)
        local none, err = own:infer(CLIP)
        assert.is_nil(none)
        assert.equal("closed", err)
    end)

    it("may not run its own model again", function()
        local ok, err = pcall(m.infer, m, CLIP, { on_window = function()
            m:infer(CLIP)
        end })
        assert.is_false(ok)
        assert.matches("own on_window", err, 1, true)
    end)

    it("returning false still cancels with nil, err", function()
        local before = open_fds()
        local post, err = m:infer(CLIP, { on_window = function()
            return false
        end })
        assert.is_nil(post)
        assert.matches("cancelled", err, 1, true)
        assert.equal(before, open_fds())
    end)
end)


describe("model binding options", function()
    local dir = model.default_dir()

    local function raises(fn, pattern)
        local ok, err = pcall(fn)
        assert.is_false(ok)
        assert.matches(pattern, tostring(err), 1, true)
    end

    it("refuses a threads value that is not a number", function()
        raises(function() core.load(dir, { threads = "x" }) end,
               "'threads' must be a number")
    end)

    it("refuses an unknown load option", function()
        raises(function() core.load(dir, { thread = 2 }) end,
               "thread")
    end)

    it("refuses a backend that is not a string", function()
        raises(function() core.load(dir, { backend = 1 }) end,
               "'backend' must be a string")
    end)

    describe("of infer", function()
        local m
        setup(function()
            m = assert(core.load(dir, { threads = 1 }))
        end)
        teardown(function()
            m:close()
        end)

        it("refuses an on_window that is not a function", function()
            raises(function() m:infer(CLIP, { on_window = 5 }) end,
                   "'on_window' must be a function")
        end)

        it("refuses a nonfinite value other than error or zero", function()
            raises(function() m:infer(CLIP, { nonfinite = "skip" }) end,
                   "'nonfinite' must be")
        end)

        it("refuses a full_tail that is not a boolean", function()
            raises(function() m:infer(CLIP, { full_tail = "yes" }) end,
                   "'full_tail' must be a boolean")
        end)

        it("refuses a max_duration that is not a number", function()
            raises(function() m:infer(CLIP, { max_duration = "1h" }) end,
                   "'max_duration' must be a number")
        end)

        it("refuses an unknown infer option", function()
            raises(function() m:infer(CLIP, { on_progress = print }) end,
                   "on_progress")
        end)

        it("opens no file when an option is wrong", function()
            local before = open_fds()
            pcall(m.infer, m, CLIP, { on_window = 5 })
            assert.equal(before, open_fds())
        end)
    end)

    it("wtt.model refuses an on_window that is not a function", function()
        local mm = assert(model.load(nil, { threads = 1 }))
        raises(function() mm:infer(CLIP, 5) end,
               "'on_window' must be a function")
    end)
end)
