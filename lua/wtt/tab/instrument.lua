--- Instrument profiles and tunings for tablature: which strings there are,
-- what they are tuned to, the capo and the highest usable fret.
--
-- Tunings are stored highest string first (tab string 1 on top), as MIDI
-- pitches of the open strings without the capo. People write tunings
-- lowest string first ("D2 A2 D3 G3 B3 E4"), so `parse_notes` reads them
-- that way and reverses.

local floor = math.floor
local concat = table.concat
local tonumber = tonumber
local tostring = tostring
local type = type
local ipairs = ipairs

local _M = {}

-- Named tunings, lowest string first (how players say them).
local GUITAR_TUNINGS = {
    standard       = "E2 A2 D3 G3 B3 E4",
    half_step_down = "Eb2 Ab2 Db3 Gb3 Bb3 Eb4",
    drop_d         = "D2 A2 D3 G3 B3 E4",
    dadgad         = "D2 A2 D3 G3 A3 D4",
    open_g         = "D2 G2 D3 G3 B3 D4",
    open_d         = "D2 A2 D3 F#3 A3 D4",
}

local PROFILES = {
    guitar = { strings = 6, max_fret = 22, midi = "guitar",
               tunings = GUITAR_TUNINGS },
    guitar7 = { strings = 7, max_fret = 24, midi = "guitar",
                tunings = { standard = "B1 E2 A2 D3 G3 B3 E4",
                            drop_a = "A1 E2 A2 D3 G3 B3 E4" } },
    bass = { strings = 4, max_fret = 20, midi = "bass",
             tunings = { standard = "E1 A1 D2 G2",
                         drop_d = "D1 A1 D2 G2",
                         half_step_down = "Eb1 Ab1 Db2 Gb2" } },
    bass5 = { strings = 5, max_fret = 24, midi = "bass",
              tunings = { standard = "B0 E1 A1 D2 G2" } },
    -- Re-entrant: the 4th string (G4) is not the lowest pitch, so the
    -- order is the strings' order on the neck, not pitch order.
    ukulele = { strings = 4, max_fret = 15, midi = "guitar",
                tunings = { standard = "G4 C4 E4 A4",
                            low_g = "G3 C4 E4 A4",
                            baritone = "D3 G3 B3 E4" } },
}
_M.PROFILES = PROFILES

-- Aliases people type for the same tuning.
local ALIASES = {
    e = "standard", std = "standard", eb = "half_step_down",
    ["half-step-down"] = "half_step_down", ["drop-d"] = "drop_d",
    dropd = "drop_d", ["open-g"] = "open_g", ["open-d"] = "open_d",
    ["low-g"] = "low_g",
}

local STEP = { C = 0, D = 2, E = 4, F = 5, G = 7, A = 9, B = 11 }
local SHARP_NAMES = { "C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A",
                      "A#", "B" }


--- MIDI pitch of a note name ("E2", "F#3", "Bb1"); nil when malformed.
function _M.pitch_of(name)
    local letter, acc, oct = name:match("^([A-Ga-g])([#b]?)(%-?%d+)$")
    if not letter then
        return nil
    end
    local p = STEP[letter:upper()] + (acc == "#" and 1 or acc == "b" and -1
                                      or 0) + 12 * (tonumber(oct) + 1)
    if p < 0 or p > 127 then
        return nil
    end
    return p
end


local NAMES = {}
for p = 0, 127 do
    NAMES[p] = SHARP_NAMES[p % 12 + 1] .. tostring(floor(p / 12) - 1)
end


--- Note name of a MIDI pitch, with sharps ("F#3").
function _M.name_of(pitch)
    return NAMES[pitch] or SHARP_NAMES[pitch % 12 + 1]
                           .. tostring(floor(pitch / 12) - 1)
end


--- Parses a tuning written lowest string first ("D2 A2 D3 G3 B3 E4", also
-- comma-separated) into pitches, highest string first.
-- @return list | nil, err
function _M.parse_notes(s, strings)
    local low_first = {}
    for word in s:gmatch("[^%s,]+") do
        local p = _M.pitch_of(word)
        if not p then
            return nil, "'" .. word .. "' is not a note name like E2 or F#3"
        end
        low_first[#low_first + 1] = p
    end
    if #low_first ~= strings then
        return nil, "the tuning names " .. #low_first .. " strings, the "
                    .. "instrument has " .. strings
    end
    local out = {}
    for i = #low_first, 1, -1 do
        out[#out + 1] = low_first[i]
    end
    return out
end


local function names(t)
    local list = {}
    for k in pairs(t) do
        list[#list + 1] = k
    end
    table.sort(list)
    return concat(list, ", ")
end


--- Resolves an instrument, tuning, capo and max fret into a profile.
-- @param o { instrument = "guitar", tuning = name or note names,
--   capo = 0..12, max_fret = n }
-- @return { name, strings, tuning (highest first), tuning_name, capo,
--   max_fret, midi } | nil, err, option
function _M.resolve(o)
    local name = o.instrument or "guitar"
    local prof = PROFILES[name]
    if not prof then
        return nil, "instrument must be one of " .. names(PROFILES)
                    .. ", got '" .. tostring(name) .. "'", "instrument"
    end
    local tname = o.tuning or "standard"
    if type(tname) ~= "string" then
        return nil, "tuning must be a name or note names", "tuning"
    end
    local key = ALIASES[tname:lower()] or tname:lower()
    local tuning, err
    if prof.tunings[key] then
        tuning = assert(_M.parse_notes(prof.tunings[key], prof.strings))
        tname = key
    elseif tname:find("%d") then
        tuning, err = _M.parse_notes(tname, prof.strings)
        if not tuning then
            return nil, "tuning: " .. err, "tuning"
        end
        tname = "custom"
        for k, v in pairs(prof.tunings) do
            local t = _M.parse_notes(v, prof.strings)
            if concat(t, " ") == concat(tuning, " ") then
                tname = k
            end
        end
    else
        return nil, "tuning must be one of " .. names(prof.tunings)
                    .. " for " .. name .. ", or note names lowest string "
                    .. "first like \"D2 A2 D3 G3 B3 E4\"", "tuning"
    end
    local capo = o.capo or 0
    if type(capo) ~= "number" or capo % 1 ~= 0 or capo < 0 or capo > 12 then
        return nil, "capo must be an integer in [0, 12]", "capo"
    end
    local max_fret = o.max_fret or prof.max_fret
    if type(max_fret) ~= "number" or max_fret % 1 ~= 0 or max_fret <= capo
       or max_fret > 36 then
        return nil, "max_fret must be an integer in [" .. (capo + 1)
                    .. ", 36]", "max_fret"
    end
    -- Strings in pitch order (not a re-entrant tuning).
    local ordered = true
    for i = 2, #tuning do
        if tuning[i] >= tuning[i - 1] then
            ordered = false
        end
    end
    return { name = name, strings = prof.strings, tuning = tuning,
             ordered = ordered,
             tuning_name = tname, capo = capo, max_fret = max_fret,
             midi = prof.midi }
end


--- Labels for the strings, highest first, as tab sites write them: note
-- letters, the highest string in lower case when its letter repeats.
function _M.labels(tuning)
    local out, seen = {}, {}
    for i, p in ipairs(tuning) do
        out[i] = SHARP_NAMES[p % 12 + 1]
        seen[out[i]] = (seen[out[i]] or 0) + 1
    end
    if seen[out[1]] > 1 then
        out[1] = out[1]:lower()
    end
    return out
end


return _M
