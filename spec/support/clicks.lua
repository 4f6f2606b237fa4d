--- Click-track clips for the rhythm specs: a MIDI file written with
-- wtt.midi (one short plucked note per beat, a higher one on each
-- downbeat, as a metronome sounds) rendered to WAV by fluidsynth with the
-- General MIDI soundfont the clip tools use (tools/clips/make.sh).

local midi = require "wtt.midi"
local sys = require "wtt.sys"

local _M = {}

_M.SF2 = os.getenv("SF2") or "/usr/share/sounds/sf2/FluidR3_GM.sf2"
_M.FLUIDSYNTH = "/usr/bin/fluidsynth"


--- Why clips cannot be made here, or nil when they can.
function _M.missing()
    if not sys.file_size(_M.FLUIDSYNTH) then
        return "fluidsynth is not installed (apt-get install fluidsynth)"
    end
    if not sys.file_size(_M.SF2) then
        return "no soundfont at " .. _M.SF2 .. " (apt-get install fluid-soundfont-gm)"
    end
end


--- The click notes: `seconds` of beats at `bpm`, `per_measure` beats to a
-- measure, starting at `lead_s`.
function _M.notes(bpm, seconds, per_measure, lead_s)
    local period, list = 60 / bpm, {}
    local t, k = lead_s or 0.25, 0
    while t + 0.25 < seconds do
        local down = k % (per_measure or 4) == 0
        list[#list + 1] = { start_s = t, end_s = t + 0.25,
                            pitch = down and 84 or 79, amplitude = 0.8 }
        k = k + 1
        t = (lead_s or 0.25) + k * period
    end
    return list
end


--- Writes DIR/<name>.mid and renders DIR/<name>.wav (22,050 Hz); returns
-- the WAV path, or nil, err.
function _M.render(dir, name, notes)
    local mid, wav = dir .. "/" .. name .. ".mid", dir .. "/" .. name .. ".wav"
    -- Steel-string guitar (GM 26): a plucked tone with a sharp attack, the
    -- sound the transcriber is made for, so every click becomes a note.
    local ok, err = midi.write(mid, notes, { program = 25 })
    if not ok then
        return nil, err
    end
    local log = dir .. "/" .. name .. ".fluidsynth.log"
    local pid = assert(sys.spawn({ _M.FLUIDSYNTH, "-ni", "-q", "-F", wav,
                                   "-r", "22050", "-g", "0.8", "-T", "wav",
                                   _M.SF2, mid },
                                 { stdout = log, stderr = "stdout" }))
    local how, code = sys.wait(pid, 60)
    if how ~= "exited" or code ~= 0 or not sys.file_size(wav) then
        return nil, "fluidsynth failed: " .. tostring(sys.read_file(log))
    end
    return wav
end


return _M
