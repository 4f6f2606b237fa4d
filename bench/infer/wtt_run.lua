-- Times wtt on one file for bench/infer.sh: decode + inference + notes.
-- usage: wtt run wtt_run.lua FILE [THREADS]
-- Prints: wtt audio_s=<x> wall_s=<y> rtf=<x/y> notes=<n> rss_mb=<peak>
local model = require "wtt.model"
local sys = require "wtt.sys"

local path, threads = arg[1], tonumber(arg[2] or 0)
local m = assert(model.load(nil, { threads = threads > 0 and threads or nil,
                                   device = "cpu" }))
local t0 = sys.now()
local notes, post = assert(m:transcribe(path, {}))
local wall = sys.now() - t0
local audio = post:n_frames() / 86
local hwm = (sys.read_file("/proc/self/status") or ""):match("VmHWM:%s*(%d+)")
io.write(string.format("wtt audio_s=%.2f wall_s=%.3f rtf=%.1f notes=%d rss_mb=%.0f\n",
    audio, wall, audio / wall, #notes, (tonumber(hwm) or 0) / 1024))
