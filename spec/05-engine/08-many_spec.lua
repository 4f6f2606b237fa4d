-- Several files in one engine call (m:transcribe_many, core m:infer_many):
-- their windows share the model's batches, and each keeps its own progress
-- and outcome. Sharing must not change a single note: every file gives
-- what it gives alone, whatever its batch-mates and the batch size. A file
-- that fails (unreadable, corrupt, cancelled) fails alone; a model failure
-- (a device fault) fails them all with kind "device".

local model = require "wtt.model"
local audio = require "wtt.audio"
local sys = require "wtt.sys"
local runtime = require "wtt.runtime"

local CLIPS = runtime.source_dir .. "/spec/fixtures/clips/"
local FILES = { "bass_line", "guitar_strum", "piano_chords", "guitar_bend" }


local function open_fds()
    return #assert(sys.listdir("/proc/self/fd"))
end


local function notes_of(list)
    local out = {}
    for i, n in ipairs(list) do
        out[i] = string.format("%d %.6f %.6f %.6f", n.pitch, n.start_s,
                               n.end_s, n.amplitude)
    end
    return out
end


describe("transcribe_many", function()
    local alone, dir, corrupt = {}, nil, nil
    local single                 -- one window per run, one thread
    setup(function()
        single = assert(model.load(nil, { threads = 1, device = "cpu" }))
        for _, name in ipairs(FILES) do
            local notes = assert(single:transcribe(CLIPS .. name .. ".wav"))
            alone[name] = notes_of(notes)
        end
        dir = assert(sys.mkdtemp("wtt-many-"))
        corrupt = dir .. "/corrupt.wav"
        assert(sys.write_file(corrupt, "RIFF\0\0\0\0WAVEfmt garbage"
                                       .. string.rep("\255", 4000)))
    end)
    teardown(function()
        single:close()
        sys.rmtree(dir)
    end)

    -- The AddressSanitizer build (scripts/test's second pass) runs the
    -- shape with threads and a batch that spans files; the other two
    -- repeat the same code with other sizes and run in the plain build.
    for _, shape in ipairs({ { threads = 1, batch = 3 },
                             { threads = 2, batch = 2, sanitized = true },
                             { threads = 1, batch = 16 } }) do
        it(string.format("gives every file its own notes (%d thread(s), "
                         .. "batch %d)", shape.threads, shape.batch),
           function()
            if runtime.sanitized and not shape.sanitized then
                pending("skipped, because the sanitizer build runs one "
                        .. "batch shape (threads 2, batch 2); the plain "
                        .. "build runs all three")
                return
            end
            local m = assert(model.load(nil, { threads = shape.threads,
                                              batch = shape.batch,
                                              device = "cpu" }))
            assert.equal(shape.threads * shape.batch, m:batch_items())
            local items, calls = {}, {}
            for i, name in ipairs(FILES) do
                calls[i] = {}
                items[i] = { audio = CLIPS .. name .. ".wav",
                             on_window = function(done, total)
                                 table.insert(calls[i], { done, total })
                             end }
            end
            local res = assert(m:transcribe_many(items))
            for i, name in ipairs(FILES) do
                assert.is_nil(res[i].err)
                assert.same(alone[name], notes_of(res[i].notes))
                res[i].post:close()
                -- Progress counts this file's windows only, up to its total.
                local last = calls[i][#calls[i]]
                assert.equal(last[1], last[2])
                for k = 2, #calls[i] do
                    assert.truthy(calls[i][k][1] > calls[i][k - 1][1])
                end
            end
            m:close()
        end)
    end

    it("fails a corrupt, a missing and a cancelled file alone", function()
        local m = assert(model.load(nil, { threads = 1, batch = 4,
                                           device = "cpu" }))
        local before = open_fds()
        local res = assert(m:transcribe_many({
            { audio = CLIPS .. "bass_line.wav" },
            { audio = corrupt },
            { audio = dir .. "/missing.wav" },
            { audio = CLIPS .. "guitar_strum.wav",
              on_window = function() return false end },
            { audio = audio.pcm_from_string(string.rep("\0", 4 * 8000), 8000) },
            { audio = CLIPS .. "piano_chords.wav" },
        }))
        assert.same(alone.bass_line, notes_of(res[1].notes))
        assert.matches("^open failed", res[2].err)
        assert.matches("^open failed", res[3].err)
        assert.equal("inference failed: cancelled", res[4].err)
        assert.matches("pcm at 8000 Hz", res[5].err, 1, true)
        assert.same(alone.piano_chords, notes_of(res[6].notes))
        res[1].post:close()
        res[6].post:close()
        assert.equal(before, open_fds())
        m:close()
    end)

    it("raises an on_window error once every file is closed", function()
        local m = assert(model.load(nil, { threads = 1, batch = 2,
                                           device = "cpu" }))
        local before = open_fds()
        local ok, err = pcall(m.transcribe_many, m, {
            { audio = CLIPS .. "bass_line.wav" },
            { audio = CLIPS .. "guitar_strum.wav",
              on_window = function() error("boom", 0) end },
        })
        assert.is_false(ok)
        assert.equal("boom", err)
        assert.equal(before, open_fds())
        -- Still usable.
        local res = assert(m:transcribe_many({
            { audio = CLIPS .. "bass_line.wav" } }))
        assert.same(alone.bass_line, notes_of(res[1].notes))
        m:close()
    end)

    it("fails every file with kind 'device' when the device fails",
       function()
        local m = assert(model.load(nil, { threads = 1, batch = 2,
                                           device = "cpu", fault_after = 1 }))
        local res, err, kind = m:transcribe_many({
            { audio = CLIPS .. "bass_line.wav" },
            { audio = CLIPS .. "guitar_strum.wav" },
        })
        assert.is_nil(res)
        assert.equal("inference failed: device fault (injected for tests)",
                     err)
        assert.equal("device", kind)
        local notes, err2, kind2 = m:transcribe(CLIPS .. "bass_line.wav")
        assert.is_nil(notes)
        assert.matches("device fault", err2, 1, true)
        assert.equal("device", kind2)
        m:close()
    end)

    it("runs nothing more for a file once its on_window cancels", function()
        -- The next batch is planned while one runs; a cancel must drop it
        -- rather than run it. Any run past the second fails as a device
        -- fault here, so an extra run would show as one.
        local m = assert(model.load(nil, { threads = 1, batch = 1,
                                           device = "cpu", fault_after = 2 }))
        local notes, err, kind = m:transcribe(CLIPS .. "guitar_strum.wav",
            {}, function(done) return done < 2 end)
        assert.is_nil(notes)
        assert.equal("inference failed: cancelled", err)
        assert.is_nil(kind)
        m:close()
    end)

    it("takes an empty list", function()
        local res = assert(single:transcribe_many({}))
        assert.same({}, res)
    end)
end)
