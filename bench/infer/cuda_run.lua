-- One device's figures for bench/infer.sh --device cuda.
-- usage: wtt run cuda_run.lua DEVICE LONG.wav SHORT_DIR
--   DEVICE: cpu or cuda; LONG.wav: the long clip; SHORT_DIR: the short
--   clips (*.wav), run as one transcribe_many call.
--
-- Measures, after one warm-up file (cuDNN's algorithm search and the
-- first-run allocations happen there, once per model):
--   - end to end (decode, inference, notes, as `wtt transcribe` does) on the
--     long clip, and on all the short clips in one call: realtime factors;
--   - the split, each stage timed alone on the same audio: decode and
--     resample (audio.load), the model (m:infer on decoded audio: the
--     input and output copies and the kernels; the backend exposes no
--     timer that separates them), note extraction (post:notes);
--   - achieved FLOP/s of the model stage (flops.lua) and its host<->device
--     traffic (input and output bytes) per second.
-- Prints one line of key=value fields.
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;"
               .. package.path

local model = require "wtt.model"
local audio = require "wtt.audio"
local sys = require "wtt.sys"
local flops = require "flops"

local device, long, short_dir = arg[1], arg[2], arg[3]
local IN_BYTES = 43844 * 4              -- one window in
local OUT_BYTES = 172 * (88 + 88 + 264) * 4

local m = assert(model.load(nil, { device = device }))

local shorts = {}
for _, name in ipairs(sys.listdir(short_dir) or {}) do
    if name:match("%.wav$") then
        shorts[#shorts + 1] = short_dir .. "/" .. name
    end
end
table.sort(shorts)
assert(#shorts > 0, "no short clips in " .. short_dir)

-- Warm-up: what happens once per model, not per file.
assert(m:transcribe(shorts[1], {}))

local function timed(fn)
    local t0 = sys.now()
    local a, b = fn()
    return sys.now() - t0, a, b
end

local out = { "dev=" .. m.device }
local function put(k, fmt, v)
    out[#out + 1] = k .. "=" .. string.format(fmt, v)
end

-- --- the long clip ----------------------------------------------------------
local wall, notes, post = timed(function()
    return assert(m:transcribe(long, {}))
end)
local audio_s = post:n_frames() / 86
put("audio_10min_s", "%.1f", audio_s)
put("rtf_10min", "%.1f", audio_s / wall)
put("notes_10min", "%d", #notes)
post:close()

local dec, pcm = timed(function() return assert(audio.load(long)) end)
local windows = 0
local model_s
model_s, post = timed(function()
    return assert(m:infer(pcm, function(_, total)
        windows = total
    end))
end)
local notes_s = timed(function() return assert(post:notes(
    model.note_options({}))) end)
post:close()
pcm = nil
put("decode_s", "%.3f", dec)
put("model_s", "%.3f", model_s)
put("notes_s", "%.3f", notes_s)
put("windows", "%d", windows)
put("gflops", "%.1f", windows * flops.per_window() / model_s / 1e9)
put("io_gbs", "%.2f", windows * (IN_BYTES + OUT_BYTES) / model_s / 1e9)

-- --- the short clips, one call ---------------------------------------------
local items = {}
for i, path in ipairs(shorts) do
    items[i] = { audio = path }
end
local res
wall, res = timed(function() return assert(m:transcribe_many(items)) end)
local batch_audio = 0
for i, r in ipairs(res) do
    assert(r.post, "clip " .. i .. ": " .. tostring(r.err))
    batch_audio = batch_audio + r.post:n_frames() / 86
    r.post:close()
end
put("batch_files", "%d", #shorts)
put("batch_audio_s", "%.1f", batch_audio)
put("rtf_batch", "%.1f", batch_audio / wall)

local pcms = {}
dec = timed(function()
    for i, path in ipairs(shorts) do
        pcms[i] = assert(audio.load(path))
    end
end)
local per_file = {}
for i, p in ipairs(pcms) do
    items[i] = { p, { on_window = function(_, total)
        per_file[i] = total
    end } }
end
model_s, res = timed(function() return assert(m.core:infer_many(items)) end)
windows = 0
for i = 1, #pcms do
    windows = windows + (per_file[i] or 0)
end
notes_s = timed(function()
    for _, r in ipairs(res) do
        assert(r.post:notes(model.note_options({})))
    end
end)
put("batch_decode_s", "%.3f", dec)
put("batch_model_s", "%.3f", model_s)
put("batch_notes_s", "%.3f", notes_s)
put("batch_windows", "%d", windows)
put("batch_gflops", "%.1f", windows * flops.per_window() / model_s / 1e9)

io.write(table.concat(out, " "), "\n")
