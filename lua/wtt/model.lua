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
local log = require "wtt.log"
local runtime = require "wtt.runtime"

local _M = { _VERSION = runtime.version }

local DEFAULTS = {
    onset_threshold = 0.5,
    frame_threshold = 0.3,
    min_note_ms = 127.70,       -- the Python CLI's default (11 frames)
    melodia = true,
    infer_onsets = true,
    multiple_pitch_bends = false,
    mode = "official",
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


--- The backends compiled into this binary, best first.
_M.backends = core.backends


local function has_backend(name)
    for _, b in ipairs(core.backends()) do
        if b == name then
            return true
        end
    end
    return false
end


--- "auto" | "cpu" | "cuda" | "cuda:N" -> backend name, device index
-- (nil for a string that is none of these).
local function parse_device(spec)
    if spec == "auto" or spec == "cpu" then
        return spec, 0
    elseif spec == "cuda" then
        return "cuda", 0
    end
    local n = type(spec) == "string" and spec:match("^cuda:(%d+)$")
    if n then
        return "cuda", tonumber(n)
    end
    return nil
end
_M.parse_device = parse_device


local function gib(bytes)
    return string.format("%.1f", (bytes or 0) / 2^30)
end


--- The GPUs this process can use now ({} without a CUDA build or a GPU):
-- { index, name, memory, free, cc } each.
function _M.gpus()
    if not has_backend("cuda") then
        return {}
    end
    return core.devices("cuda") or {}
end


--- Picks the backend and device for `spec`, logging the choice.
-- @return backend, index | nil, err
local function choose(spec)
    local backend, index = parse_device(spec)
    if not backend then
        return nil, "unknown device '" .. tostring(spec)
                    .. "' (auto, cpu, cuda or cuda:N)"
    end
    if backend == "cpu" then
        return "cpu", 0
    end
    if not has_backend("cuda") then
        if backend == "auto" then
            log.info("model.device", { device = "cpu",
                reason = "this build has no CUDA backend" })
            return "cpu", 0
        end
        return nil, "device " .. spec .. ": this build has no CUDA backend"
    end
    local gpus = _M.gpus()
    local gpu = gpus[index + 1]
    if not gpu then
        if backend == "auto" then
            log.info("model.device", { device = "cpu",
                reason = "no usable CUDA device" })
            return "cpu", 0
        end
        return nil, string.format("device %s: %s", spec, #gpus == 0
            and "no usable CUDA device on this host"
            or string.format("this host has %d CUDA device(s)", #gpus))
    end
    log.info("model.device", { device = "cuda:" .. index, name = gpu.name,
                               memory_gib = gib(gpu.memory),
                               free_gib = gib(gpu.free), cc = gpu.cc })
    return "cuda", index
end


--- Loads the model.
-- @param dir model folder (default `default_dir()`)
-- @param opts { threads = n, device = "auto"|"cpu"|"cuda"|"cuda:N"
-- (default WTT_DEVICE, else "auto": the first usable GPU, else the CPU),
-- batch = windows per run (default: one per thread on the CPU, what half
-- the free device memory holds on a GPU), memory_mb = device memory for a
-- batch, fault_after = n (tests: runs after n fail as device faults) }
-- @return model | nil, err, kind ("device" when the device failed)
function _M.load(dir, opts)
    opts = opts or {}
    local spec = opts.device or os.getenv("WTT_DEVICE") or "auto"
    if spec == "" then
        spec = "auto"
    end
    local backend, index = choose(spec)
    if not backend then
        return nil, index
    end
    local m, err, kind = core.load(dir or _M.default_dir(), {
        threads = opts.threads,
        backend = backend,
        device = index,
        batch = opts.batch,
        memory_mb = opts.memory_mb,
        fault_after = opts.fault_after,
    })
    if not m then
        return nil, err, kind
    end
    local name = m:backend()
    return setmetatable({ core = m,
                          device = name == "cpu" and "cpu"
                                   or (name .. ":" .. index),
                          dir = dir or _M.default_dir() }, mt)
end


--- Releases the model (its device memory too) now rather than at
-- collection.
function _M.close(self)
    self.core:close()
end


--- Windows one run of the engine takes at once (the batch that a
-- transcribe_many call shares among its files).
function _M.batch_items(self)
    local _, _, n = self.core:backend()
    return n
end


--- The decoding modes and their rules (docs/engine.md, "Guitar mode").
_M.MODES = { "official", "guitar", "bass" }
_M.RULES = { "ghost", "weak", "retrigger", "split", "bend", "range",
             "register" }


--- Checks a mode and a rule list (a comma-separated string or a list of
-- names). @return the mode's defaults { mode, rules, onset_threshold,
-- frame_threshold, min_note_frames, melodia, infer_onsets } with rules as
-- given (comma-separated) | nil, err
function _M.check_mode(mode, rules)
    if mode ~= nil and type(mode) ~= "string" then
        return nil, "mode must be a string (official, guitar or bass)"
    end
    if type(rules) == "table" then
        for _, r in ipairs(rules) do
            if type(r) ~= "string" or r:find(",", 1, true) then
                return nil, "rules must be a list of rule names"
            end
        end
        rules = table.concat(rules, ",")
    elseif rules ~= nil and type(rules) ~= "string" then
        return nil, "rules must be a comma-separated string or a list"
    end
    return core.note_defaults({ mode = mode or "official", rules = rules })
end


--- Note-extraction options from the CLI-style ones (milliseconds, Hz).
-- `mode` ("official", the default, "guitar" or "bass") picks the decoding
-- and its defaults (guitar and bass: a 4-frame minimum note and all their
-- rules); `rules` (a comma-separated string or a list) names the rules of
-- guitar and bass. Thresholds given override the mode's. An unknown mode
-- or rule is left for post:notes to refuse (nil, err).
function _M.note_options(opts)
    opts = opts or {}
    local o = {}
    for k, v in pairs(DEFAULTS) do
        o[k] = v
    end
    for k, v in pairs(opts) do
        o[k] = v
    end
    local rules = o.rules
    if type(rules) == "table" then
        rules = table.concat(rules, ",")
    end
    local d = o.mode ~= "official" and core.note_defaults({ mode = o.mode })
    if d and rules == nil then
        rules = d.rules
    end
    local frames = o.min_note_frames
    if not frames then
        if opts.min_note_ms == nil and d then
            frames = d.min_note_frames
        end
        frames = frames or math.floor(o.min_note_ms / 1000 * 22050 / 256 + 0.5)
    end
    return {
        mode = o.mode,
        rules = rules,
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


-- The engine's options among the transcription options.
local function infer_options(opts, on_window)
    opts = opts or {}
    return { on_window = on_window, nonfinite = opts.nonfinite,
             max_duration = opts.max_duration, full_tail = opts.full_tail,
             memory_mb = opts.memory_mb }
end


--- Posteriorgrams for `audio` (a path or a 22,050 Hz pcm).
-- @param on_window function(done, total) called after every batch of
-- windows: return false to cancel (nil, "inference failed: cancelled"); an
-- error it raises is raised again from here once the engine has closed the
-- audio and freed its buffers
-- @return posteriors | nil, err
function _M.infer(self, audio, on_window, opts)
    return self.core:infer(audio, infer_options(opts, on_window))
end


--- Notes (and the posteriors they came from) for `audio`.
-- @return notes, posteriors | nil, err, kind ("device" when the device
-- failed: nothing more will run on this model)
function _M.transcribe(self, audio, opts, on_window)
    local post, err, kind = self:infer(audio, on_window, opts)
    if not post then
        return nil, err, kind
    end
    local notes
    notes, err = post:notes(_M.note_options(opts))
    if not notes then
        return nil, err
    end
    return notes, post
end


--- Several files in one run of the engine, their windows sharing batches.
-- @param items { { audio = path or pcm, opts = (as transcribe's),
-- on_window = function(done, total) (false cancels that file) }, ... }
-- @return results, with results[i] = { notes = , post = } or { err = }
-- (a file that fails fails alone) | nil, err, kind when the model failed
-- for all of them
function _M.transcribe_many(self, items)
    local list = {}
    for i, it in ipairs(items) do
        list[i] = { it.audio, infer_options(it.opts, it.on_window) }
    end
    local res, err, kind = self.core:infer_many(list)
    if not res then
        return nil, err, kind
    end
    local out = {}
    for i, r in ipairs(res) do
        if r.post then
            local notes, nerr = r.post:notes(_M.note_options(items[i].opts))
            if notes then
                out[i] = { notes = notes, post = r.post }
            else
                r.post:close()
                out[i] = { err = nerr }
            end
        else
            out[i] = { err = r.err }
        end
    end
    return out
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
