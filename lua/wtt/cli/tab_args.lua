--- The tablature flags and file writing that `wtt tab` and
-- `wtt transcribe --tab` share: one table of flags, one check (through
-- tab.options), one way to name, write and warn.
--
--     local raw = {}
--     tab_args.take(raw, "--capo", "2")   -- true when it is a tab flag
--     local opts, err = tab_args.options(raw)   -- err names the flag
--     local files, err = tab_args.write(doc, opts.formats, "out/song")

local sys = require "wtt.sys"

-- wtt.tab loads on first use: `wtt transcribe` without --tab needs none of it.
local function tab()
    return require "wtt.tab"
end

local format = string.format

local _M = {}

-- Flag -> key of tab.options. A value flag takes `--flag value` or
-- `--flag=value`.
_M.VALUES = {
    ["--instrument"] = "instrument", ["--tuning"] = "tuning",
    ["--capo"] = "capo", ["--max-fret"] = "max_fret",
    ["--tempo"] = "tempo", ["--time-signature"] = "time_signature",
    ["--pickup"] = "pickup", ["--tab-format"] = "formats",
}
_M.SWITCHES = { ["--fold-octaves"] = "fold_octaves" }

-- tab.options' option names back to the flags that set them.
local FLAG_OF = { format = "--tab-format" }
for flag, key in pairs(_M.VALUES) do
    FLAG_OF[key] = flag
end
for flag, key in pairs(_M.SWITCHES) do
    FLAG_OF[key] = flag
end
_M.FLAG_OF = FLAG_OF

_M.DEFAULT_FORMATS = "ascii,json"

_M.USAGE = [[
Tab options:
  --instrument guitar|bass|ukulele|guitar7|bass5   (default guitar)
  --tuning NAME|"NOTES"  standard, half_step_down, drop_d, dadgad, open_g,
                         open_d, ... or note names lowest string first
                         ("D2 A2 D3 G3 B3 E4")
  --capo N               0-12 (frets are written from the capo)
  --max-fret N           highest usable fret (default per instrument)
  --fold-octaves         move notes out of range by octaves (else reported)
  --tempo BPM            20-400 (default: estimated from the notes)
  --time-signature N/D   e.g. 4/4, 3/4 (default: estimated, 4/4 or 3/4)
  --pickup BEATS         beats before the first downbeat (in 16ths)
  --tab-format LIST      ascii,json,musicxml,alphatex,gp (default ascii,json)
]]


--- Records `flag` (with `value`) in `raw` when it is a tab flag.
-- @return true when taken, false when it is no tab flag
function _M.take(raw, flag, value)
    local key = _M.VALUES[flag]
    if key then
        raw[key] = value
        return true
    end
    key = _M.SWITCHES[flag]
    if key then
        raw[key] = true
        return true
    end
    return false
end


--- The checked options (tab.options) with the formats defaulted.
-- @return opts | nil, err (starting with the flag at fault), flag
function _M.options(raw)
    local r = {}
    for k, v in pairs(raw) do
        r[k] = v
    end
    if r.formats == nil then
        r.formats = _M.DEFAULT_FORMATS
    end
    local opts, err, option = tab().options(r)
    if not opts then
        local flag = FLAG_OF[option] or ("--" .. tostring(option))
        return nil, flag .. ": " .. tostring(err), flag
    end
    return opts
end


--- Encodes `doc` in each of `formats` and writes `<base>.<ext>` for each
-- (song.tab.txt, song.tab.json, song.musicxml, song.alphatex, song.gp).
-- All or nothing: on a failure the files already written are removed.
-- @return list of paths | nil, err
function _M.write(doc, formats, base)
    local written = {}
    local function undo(err)
        for _, p in ipairs(written) do
            os.remove(p)
        end
        return nil, err
    end
    local out, err, bad = tab().encode_many(doc, formats)
    if not out then
        return nil, (bad and bad .. ": " or "") .. tostring(err)
    end
    for _, f in ipairs(formats) do
        local bytes, ext = out[f][1], out[f][3]
        local path = base .. "." .. ext
        local ok, werr = sys.write_file(path, bytes)
        if not ok then
            return undo("cannot write " .. path .. ": " .. tostring(werr))
        end
        written[#written + 1] = path
    end
    return written
end


local NAMES = { "C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#",
                "B" }

local function note_name(p)
    return NAMES[p % 12 + 1] .. (math.floor(p / 12) - 1)
end


--- One line per note the instrument cannot play (time, pitch, reason), or
-- that was moved by octaves into its range.
function _M.unplayable_lines(doc)
    local lines = {}
    for _, u in ipairs(doc.unplayable or {}) do
        local line = format("unplayable note at %.3f s, pitch %d (%s): %s",
                            u.start_s, u.pitch_midi, note_name(u.pitch_midi),
                            tostring(u.reason))
        if u.folded_to then
            line = format("note at %.3f s, pitch %d (%s): %s, folded to "
                          .. "%d (%s)", u.start_s, u.pitch_midi,
                          note_name(u.pitch_midi), tostring(u.reason),
                          u.folded_to, note_name(u.folded_to))
        end
        lines[#lines + 1] = line
    end
    return lines
end


--- A one-line summary of a tab document.
function _M.summary(doc)
    local dropped = 0
    for _, u in ipairs(doc.unplayable or {}) do
        if not u.folded_to then
            dropped = dropped + 1
        end
    end
    local ts = doc.time_signature or {}
    return format("%d notes tabbed, %d unplayable, %.1f bpm %s/%s, "
                  .. "%d measures", #(doc.notes or {}), dropped,
                  doc.tempo_bpm or 0, tostring(ts[1]), tostring(ts[2]),
                  #(doc.measures or {}))
end


return _M
