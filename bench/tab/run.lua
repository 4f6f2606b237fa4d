-- The measurement of bench/tab.sh: tablature for one notes file.
-- usage: wtt run run.lua NOTES_JSON [REPEATS]
--
-- Times the whole tab stage (fingering, techniques, rhythm, measure grid
-- and all five encodings) on NOTES_JSON: the first run (a cold JIT, as one
-- `wtt tab` call sees it) and the median of REPEATS more (a warm serve).
-- Memory is the growth of the process's peak RSS (VmHWM) over the stage,
-- measured after the notes are loaded. Prints one line of key=value.
local tab = require "wtt.tab"
local notes_in = require "wtt.tab.notes_in"
local sys = require "wtt.sys"

local path, repeats = arg[1], tonumber(arg[2]) or 7
if not path then
    io.stderr:write("usage: wtt run run.lua NOTES_JSON [REPEATS]\n")
    os.exit(2)
end

local function hwm_kb()
    local s = sys.read_file("/proc/self/status") or ""
    return tonumber(s:match("VmHWM:%s*(%d+)")) or 0
end

local notes = assert(notes_in.read(path))
local opts = assert(tab.options{})
collectgarbage("collect")
local base_kb = hwm_kb()

local function once()
    local t0 = sys.now()
    local doc = assert(tab.build(notes, opts))
    local bytes = 0
    -- As `wtt tab` writes every format: the document read out once.
    local out = assert(tab.encode_many(doc, tab.FORMATS))
    for _, f in ipairs(tab.FORMATS) do
        bytes = bytes + #out[f][1]
    end
    return (sys.now() - t0) * 1000, doc, bytes
end

local first, doc, bytes = once()
local peak_kb = hwm_kb()
local times = {}
for i = 1, repeats do
    times[i] = once()
end
table.sort(times)
local warm = times[math.floor((#times + 1) / 2)]
local last = notes[#notes]
print(("notes=%d audio_s=%.1f placed=%d unplayable=%d measures=%d "
       .. "tempo_bpm=%.1f bytes=%d first_ms=%.1f warm_ms=%.1f mb=%.1f")
      :format(#notes, last and last.end_s or 0, #doc.notes, #doc.unplayable,
              #doc.measures, doc.tempo_bpm, bytes, first, warm,
              (peak_kb - base_kb) / 1024))
