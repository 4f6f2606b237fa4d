--- Basic Pitch inference: audio in, posteriorgrams and notes out.
--
--     local model = require "wtt.model"
--     local m = assert(model.load())                 -- models/basic-pitch
--     local notes, post = m:transcribe("song.wav", { min_note_ms = 127.7 },
--                                      function(done, total) ... end)
--
-- The engine is C (core/engine/: the graph engine and its backend registry,
-- the Basic Pitch pipeline; kernels/: the backends); this module picks the
-- model folder and the backend, maps the options of the official command
-- line onto the note extraction, and records what produced a result
-- (provenance).

local core = require "wtt.core.model"
local runtime = require "wtt.runtime"

local _M = { _VERSION = runtime.version }

local DEFAULTS = {
    onset_threshold = 0.5,
    frame_threshold = 0.3,
    min_note_ms = 127.70,       -- the Python CLI's default (11 frames)
    melodia = true,
    infer_onsets = true,
    multiple_pitch_bends = false,
}
_M.DEFAULTS = DEFAULTS

local mt = { __index = _M }


--- The model folder: WTT_MODEL_DIR, else models/basic-pitch beside lua/.
function _M.default_dir()
    local env = os.getenv("WTT_MODEL_DIR")
    if env and env ~= "" then
        return env
    end
    return (runtime.lua_dir:gsub("/lua$", "")) .. "/models/basic-pitch"
end


--- The backends compiled into this binary, best first ({ "cpu" } until
-- the CUDA backend is built in).
_M.backends = core.backends


local function has_backend(name)
    for _, b in ipairs(core.backends()) do
        if b == name then
            return true
        end
    end
    return false
end


--- Loads the model.
-- @param dir model folder (default `default_dir()`)
-- @param opts { threads = n, device = "cpu"|"cuda"|"auto" }; "auto" takes
-- the first compiled-in backend (`backends()`)
-- @return model | nil, err
function _M.load(dir, opts)
    opts = opts or {}
    local device = opts.device or os.getenv("WTT_DEVICE") or "auto"
    if device ~= "cpu" and device ~= "auto" and device ~= "cuda" then
        return nil, "unknown device '" .. tostring(device) .. "'"
    end
    if device ~= "auto" and not has_backend(device) then
        return nil, "device " .. device .. ": this build has no "
                    .. device:upper() .. " backend"
    end
    local m, err = core.load(dir or _M.default_dir(), {
        threads = opts.threads,
        backend = device ~= "auto" and device or nil,
    })
    if not m then
        return nil, err
    end
    return setmetatable({ core = m, device = m:backend(),
                          dir = dir or _M.default_dir() }, mt)
end


--- Note-extraction options from the CLI-style ones (milliseconds, Hz).
function _M.note_options(opts)
    opts = opts or {}
    local o = {}
    for k, v in pairs(DEFAULTS) do
        o[k] = v
    end
    for k, v in pairs(opts) do
        o[k] = v
    end
    local frames = o.min_note_frames
    if not frames then
        frames = math.floor(o.min_note_ms / 1000 * 22050 / 256 + 0.5)
    end
    return {
        onset_threshold = o.onset_threshold,
        frame_threshold = o.frame_threshold,
        min_note_frames = frames,
        min_freq = o.min_freq,
        max_freq = o.max_freq,
        melodia = o.melodia,
        infer_onsets = o.infer_onsets,
        pitch_bends = true,
        numpy_ties = o.numpy_ties,
    }
end


--- Posteriorgrams for `audio` (a path or a 22,050 Hz pcm).
-- @param on_window function(done, total) called after every batch of
-- windows: return false to cancel (nil, "inference failed: cancelled"); an
-- error it raises is raised again from here once the engine has closed the
-- audio and freed its buffers
-- @return posteriors | nil, err
function _M.infer(self, audio, on_window, opts)
    opts = opts or {}
    return self.core:infer(audio, { on_window = on_window,
                                    nonfinite = opts.nonfinite,
                                    max_duration = opts.max_duration,
                                    full_tail = opts.full_tail,
                                    memory_mb = opts.memory_mb })
end


--- Notes (and the posteriors they came from) for `audio`.
-- @return notes, posteriors | nil, err
function _M.transcribe(self, audio, opts, on_window)
    local post, err = self:infer(audio, on_window, opts)
    if not post then
        return nil, err
    end
    local notes
    notes, err = post:notes(_M.note_options(opts))
    if not notes then
        return nil, err
    end
    return notes, post
end


--- What produced a result, for the task record and the notes file.
function _M.provenance(self, opts)
    return {
        engine = "wtt " .. runtime.version,
        model = "basic-pitch (@spotify/basic-pitch 1.0.1)",
        model_sha256 = self.core:hash(),
        device = self.device,
        options = _M.note_options(opts),
    }
end


_M.load_posteriors = core.load_posteriors

return _M
