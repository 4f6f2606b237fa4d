-- Times wtt on one file for bench/infer.sh: decode + inference + notes.
-- usage: wtt run wtt_run.lua FILE [THREADS] [TIMES]
-- TIMES (default 1) transcriptions in this one process, after one model
-- load, as a worker runs task after task; the fastest is reported.
-- Prints: wtt audio_s=<x> wall_s=<y> rtf=<x/y> notes=<n> rss_mb=<peak>
local model = require "wtt.model"
local sys = require "wtt.sys"

local path, threads = arg[1], tonumber(arg[2] or 0)
local times = tonumber(arg[3] or 1)
local m = assert(model.load(nil, { threads = threads > 0 and threads or nil,
                                   device = "cpu" }))
local best, notes, post
for _ = 1, times do
    local t0 = sys.now()
    notes, post = assert(m:transcribe(path, {}))
    local wall = sys.now() - t0
    best = best and math.min(best, wall) or wall
end
local audio = post:n_frames() / 86
local hwm = (sys.read_file("/proc/self/status") or ""):match("VmHWM:%s*(%d+)")
io.write(string.format("wtt audio_s=%.2f wall_s=%.3f rtf=%.1f notes=%d rss_mb=%.0f\n",
    audio, best, audio / best, #notes, (tonumber(hwm) or 0) / 1024))
