--- alphaTex (alphaTab's text format, version 1.8) from a tab document
-- (docs/tab.md).
--
--     local bytes, err = require("wtt.tab.out.alphatex").encode(doc)
--
-- One track with a notation staff and a tab staff, the document's tuning
-- (alphaTex lists it highest string first, as the document does), capo,
-- tempo and time signature, then one line per measure. A note is
-- `fret.string` with alphaTex's string 1 the highest, as in the document;
-- frets count from the capo in both. Techniques are note effects in braces:
-- `{b (0 4)}` bends (quarter tones), `{h}` and `{sl}` on the note a
-- hammer-on, pull-off or slide leaves, `{v}` vibrato, `{lr}` let ring,
-- `{t}` a tied continuation.

local events = require "wtt.tab.out.events"
local instrument = require "wtt.tab.instrument"
local buffer = require "string.buffer"

local concat = table.concat
local format = string.format
local tostring = tostring
local ipairs = ipairs

local _M = {}

-- Track name and General MIDI program (0-based) per instrument.
local TRACKS = {
    guitar = { "Guitar", 25 },
    guitar7 = { "7-string guitar", 25 },
    bass = { "Bass", 33 },
    bass5 = { "5-string bass", 33 },
    ukulele = { "Ukulele", 24 },
}

local ESCAPES = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n",
                  ["\r"] = "\\r", ["\t"] = "\\t" }


local function quote(s)
    s = tostring(s):gsub('[%c"\\]', function(c)
        return ESCAPES[c] or format("\\u%04x", c:byte())
    end)
    return '"' .. s .. '"'
end


local function header(doc, out)
    local track = TRACKS[doc.instrument] or TRACKS.guitar
    if doc.title and doc.title ~= "" then
        out[#out + 1] = "\\title " .. quote(doc.title)
    end
    out[#out + 1] = format("\\track %s { instrument %d }",
                           quote(track[1]), track[2])
    out[#out + 1] = "\\staff { score tabs }"
    local names = {}
    for i, p in ipairs(doc.tuning) do
        names[i] = quote(instrument.name_of(p))
    end
    out[#out + 1] = "\\tuning (" .. concat(names, " ") .. ")"
    if (doc.capo or 0) > 0 then
        out[#out + 1] = format("\\capo %d", doc.capo)
    end
    local ts = doc.time_signature
    out[#out + 1] = format("\\ts (%d %d)", ts[1], ts[2])
    out[#out + 1] = "\\tempo " .. events.decimal(doc.tempo_bpm)
end


-- Writes the effects of one sounding of a note: `first` when its event
-- starts it, `last` when the next event does not continue it, `origin` the
-- legato technique it starts (events.legato_origins).
local function put_effects(b, note, first, last, origin)
    local techs = first and note.techniques
    if first and (not techs or #techs == 0) and not (last and origin) then
        return
    end
    local sep = "{"
    if not first then
        b:put(sep, "t")
        sep = " "
    else
        local bend = events.technique(note, "bend")
        if bend then
            local q = events.quarter_tones(bend.semitones)
            b:put(sep, "b (0 ", q, bend.release and " 0)" or ")")
            sep = " "
        end
        if events.technique(note, "vibrato") then
            b:put(sep, "v")
            sep = " "
        end
        if events.technique(note, "let_ring") then
            b:put(sep, "lr")
            sep = " "
        end
    end
    if last and origin then
        b:put(sep, origin == "hopo" and "h" or "sl")
        sep = " "
    end
    if sep == " " then
        b:put("}")
    end
end


--- Writes `doc` as alphaTex.
-- @param doc the tab document
-- @return the alphaTex text | nil, err when an event is not one
--   notatable length
function _M.encode(doc)
    local out = {}
    header(doc, out)
    local b = buffer.new()
    b:put(concat(out, "\n"), "\n")
    local origins = events.legato_origins(doc)
    local notes = doc.notes
    local div = doc.divisions
    local value_of = {}           -- ticks -> the written length's suffix
    local tied_on = events.tied_on(doc)
    for mi, m in ipairs(doc.measures) do
        if mi > 1 then
            b:put(" |\n")
        end
        if mi == 1 and (doc.pickup_ticks or 0) > 0 then
            b:put("\\ac ")
        end
        for ei, ev in ipairs(m.events) do
            if ei > 1 then
                b:put(" ")
            end
            local suffix = value_of[ev.ticks]
            if not suffix then
                local v, dots, tuplet = events.value(ev.ticks, div)
                if not v then
                    return nil, ("measure %s: %s"):format(m.number, dots)
                end
                suffix = "." .. v .. (dots > 0 and "{d}" or "")
                         .. (tuplet and "{tu " .. tuplet .. "}" or "")
                value_of[ev.ticks] = suffix
            end
            local ev_notes = ev.notes
            if ev.rest or not ev_notes or #ev_notes == 0 then
                b:put("r")
            else
                local first, last = not ev.tied, not tied_on[ev]
                local chord = #ev_notes > 1
                if chord then
                    b:put("(")
                end
                for k, ni in ipairs(ev_notes) do
                    local n = notes[ni]
                    b:put(k > 1 and " " or "", n.fret, ".", n.string)
                    put_effects(b, n, first, last, origins[ni])
                end
                if chord then
                    b:put(")")
                end
            end
            b:put(suffix)
        end
    end
    b:put("\n")
    return b:tostring()
end


return _M
