--- MusicXML 4.0 of a tab document (docs/tab.md, "MusicXML"): one part
-- with two staves, standard notation on staff 1 and TAB on staff 2, the
-- TAB staff carrying the tuning, the capo and every note's string and fret.
--
-- Every piece that depends only on a small value (a pitch, a length, a
-- string and fret) is made once per encode, and a plain note (most of
-- them) is one such piece, so a long piece costs about one append per
-- note and staff.

local concat = table.concat
local format = string.format
local floor = math.floor
local ipairs = ipairs
local pairs = pairs
local tostring = tostring
local type = type
local new_table = require "table.new"
local held = require "wtt.tab.out.held"

local _M = {}

-- The text is written into one buffer held between calls
-- (wtt.tab.out.held says why).
local OUT = held.new()

-- An empty list to iterate instead of allocating one per rest.
local EMPTY = {}

local HEADER = '<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n'
    .. '<!DOCTYPE score-partwise PUBLIC'
    .. ' "-//Recordare//DTD MusicXML 4.0 Partwise//EN"'
    .. ' "http://www.musicxml.org/dtds/partwise.dtd">\n'
    .. '<score-partwise version="4.0">\n'

-- Pitch classes spelled with sharps: step, alter.
local SPELLING = {
    { "C", 0 }, { "C", 1 }, { "D", 0 }, { "D", 1 }, { "E", 0 }, { "F", 0 },
    { "F", 1 }, { "G", 0 }, { "G", 1 }, { "A", 0 }, { "A", 1 }, { "B", 0 },
}

-- Notatable lengths in ticks at 12 divisions (docs/tab.md): note type,
-- dots, and whether it is a 3:2 triplet.
local LENGTHS = {
    [48] = { "whole", 0 }, [36] = { "half", 1 }, [24] = { "half", 0 },
    [18] = { "quarter", 1 }, [12] = { "quarter", 0 }, [9] = { "eighth", 1 },
    [6] = { "eighth", 0 }, [3] = { "16th", 0 },
    [16] = { "half", 0, true }, [8] = { "quarter", 0, true },
    [4] = { "eighth", 0, true }, [2] = { "16th", 0, true },
}

-- A triplet group is complete once its lengths add up to a multiple of
-- 3 sixteenth-triplets (6 ticks at 12 divisions): no triplet length is a
-- multiple of 3 ticks, so no shorter run of them fills whole straight time.
local TRIPLET_GROUP = 6

-- Clef of the notation staff, written at sounding pitch (the octave clefs
-- say the instrument sounds an octave below the usual written range).
local CLEFS = {
    guitar = '<clef number="1"><sign>G</sign><line>2</line>'
        .. '<clef-octave-change>-1</clef-octave-change></clef>',
    bass = '<clef number="1"><sign>F</sign><line>4</line>'
        .. '<clef-octave-change>-1</clef-octave-change></clef>',
    ukulele = '<clef number="1"><sign>G</sign><line>2</line></clef>',
}
CLEFS.guitar7 = CLEFS.guitar
CLEFS.bass5 = CLEFS.bass

-- Line 5 as other writers put it; musicxml2ly knows a TAB clef only there.
local TAB_CLEF = '<clef number="2"><sign>TAB</sign><line>5</line></clef>'

-- Part name and General MIDI program (1-based, as MusicXML counts).
local PARTS = {
    guitar = { "Guitar", 26 }, guitar7 = { "7-string Guitar", 26 },
    bass = { "Bass", 34 }, bass5 = { "5-string Bass", 34 },
    ukulele = { "Ukulele", 25 },
}

-- Legato techniques written as <technical> marks: tag and text.
local LEGATO = { hammer_on = { "hammer-on", "H" },
                 pull_off = { "pull-off", "P" } }

local STAFF = { "<staff>1</staff>", "<staff>2</staff>" }
local STAFF1_END = "<staff>1</staff></note>\n"

-- The number attribute of slurs, slides and legato marks: the string's,
-- since a legato pair stays on one string and pairs on different strings
-- may overlap.
local NUMBER = {}
for s = 1, 16 do
    NUMBER[s] = ' number="' .. s .. '"'
end

local XML_ESCAPES = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;",
                      ['"'] = "&quot;", ["'"] = "&apos;" }


local function escape(s)
    return (s:gsub("[&<>\"']", XML_ESCAPES))
end


-- A decimal without trailing zeros: 120, 117.5, 0.5.
local function num(x)
    if x == floor(x) then
        return format("%d", x)
    end
    return (format("%.3f", x):gsub("0+$", ""))
end


local function pitch_xml(midi)
    local sp = SPELLING[midi % 12 + 1]
    local alter = sp[2] ~= 0 and "<alter>1</alter>" or ""
    return format("<pitch><step>%s</step>%s<octave>%d</octave></pitch>",
                  sp[1], alter, floor(midi / 12) - 1)
end


local function tuning_xml(line, midi)
    local sp = SPELLING[midi % 12 + 1]
    local alter = sp[2] ~= 0 and "<tuning-alter>1</tuning-alter>" or ""
    return format('<staff-tuning line="%d"><tuning-step>%s</tuning-step>%s'
                  .. "<tuning-octave>%d</tuning-octave></staff-tuning>",
                  line, sp[1], alter, floor(midi / 12) - 1)
end


-- The part of a <note> between the pitch (or rest) and <staff> for a
-- length of `ticks`: { duration, voice/type/dots/time-modification,
-- is a triplet, length at 12 divisions, both pieces joined }. The <tie>
-- elements go between the two pieces; most notes have none and take the
-- joined one.
local function length_xml(ticks, divisions, voice)
    local t12 = ticks * 12 / divisions
    local l = LENGTHS[t12]
    if not l then
        return nil
    end
    local after = { "<voice>", voice, "</voice><type>", l[1], "</type>" }
    for _ = 1, l[2] do
        after[#after + 1] = "<dot/>"
    end
    if l[3] then
        after[#after + 1] = "<time-modification><actual-notes>3"
            .. "</actual-notes><normal-notes>2</normal-notes>"
            .. "</time-modification>"
    end
    local dur = "<duration>" .. ticks .. "</duration>"
    after = concat(after)
    return { dur, after, l[3], t12, dur .. after }
end


-- Per-note facts the events need: which notes start a legato (hammer-on,
-- pull-off, slide) and how, which have vibrato, which let ring, which
-- carry a mark of their own on their first event (legato, slide, bend;
-- let ring and vibrato are written per event), and the key of a note's
-- plain element (string and fret, even; false for a note the events must
-- look at themselves). One pass over the notes, so the events need not
-- touch them again.
local function note_facts(notes, tuning)
    local starts, vibrato, rings, marked = {}, {}, {}, {}
    local keys = new_table(#notes, 0)
    for i = 1, #notes do
        local n = notes[i]
        local s, f = n.string, n.fret
        if tuning[s] and type(f) == "number" and f >= 0 and f < 1024
            and f % 1 == 0 then
            keys[i] = (s * 1024 + f) * 2
        else
            keys[i] = false
        end
        local ts = n.techniques
        if ts then
            for j = 1, #ts do
                local t = ts[j]
                local ty = t.type
                if t.from and (LEGATO[ty] or ty == "slide") then
                    starts[t.from] = ty
                elseif ty == "vibrato" then
                    vibrato[i] = true
                end
                if ty == "let_ring" then
                    rings[i] = true
                elseif LEGATO[ty] or ty == "slide" or ty == "bend" then
                    marked[i] = true
                end
            end
        end
    end
    return starts, vibrato, rings, marked, keys
end


-- Vibrato is a wavy line from the first event with it to the next event
-- without it, on each staff (number 1 and 2). Start and stop never share
-- a note: MuseScore 3 keeps one wavy-line per note and LilyPond cannot end
-- a spanner where it begins. A vibrato on the last event stays open.
local WAVY_START = { '<ornaments><wavy-line type="start" number="1"/>'
                         .. "</ornaments>",
                     '<ornaments><wavy-line type="start" number="2"/>'
                         .. "</ornaments>" }
local WAVY_STOP = { '<ornaments><wavy-line type="stop" number="1"/>'
                        .. "</ornaments>",
                    '<ornaments><wavy-line type="stop" number="2"/>'
                        .. "</ornaments>" }


-- Every event of the piece in order, so ties can look one event ahead
-- across a bar line.
local function flatten(doc)
    local flat = {}
    for _, m in ipairs(doc.measures) do
        for _, ev in ipairs(m.events) do
            flat[#flat + 1] = ev
        end
    end
    return flat
end


local function attributes_xml(doc)
    local inst = doc.instrument
    local clef = CLEFS[inst] or CLEFS.guitar
    local tuning = doc.tuning
    local n = #tuning
    local b = {
        "<attributes><divisions>", tostring(doc.divisions), "</divisions>",
        "<key><fifths>0</fifths></key><time><beats>",
        tostring(doc.time_signature[1]), "</beats><beat-type>",
        tostring(doc.time_signature[2]), "</beat-type></time>",
        "<staves>2</staves>", clef, TAB_CLEF,
        '<staff-details number="2"><staff-lines>', tostring(n),
        "</staff-lines>",
    }
    for line = 1, n do
        b[#b + 1] = tuning_xml(line, tuning[n + 1 - line])
    end
    if (doc.capo or 0) > 0 then
        b[#b + 1] = "<capo>" .. doc.capo .. "</capo>"
    end
    b[#b + 1] = "</staff-details></attributes>\n"
    return concat(b)
end


local function tempo_xml(bpm)
    local t = num(bpm)
    return '<direction placement="above"><direction-type>'
        .. "<metronome><beat-unit>quarter</beat-unit><per-minute>" .. t
        .. "</per-minute></metronome></direction-type><staff>1</staff>"
        .. '<sound tempo="' .. t .. '"/></direction>\n'
end


local LET_RING = '<direction placement="below"><direction-type>'
    .. "<words>let ring</words></direction-type><staff>2</staff>"
    .. "</direction>\n"


local function bend_xml(t)
    local alter = num(t.semitones or 1)
    local s = "<bend><bend-alter>" .. alter .. "</bend-alter></bend>"
    if t.release then
        s = s .. "<bend><bend-alter>-" .. alter
            .. "</bend-alter><release/></bend>"
    end
    return s
end


--- Encodes a tab document as MusicXML 4.0 (score-partwise).
-- @param doc the tab document (docs/tab.md)
-- @return the XML text, or nil and an error naming the event or note that
--   cannot be written
function _M.encode(doc)
    if type(doc) ~= "table" then
        error("musicxml.encode: doc must be a table", 2)
    end
    local notes, tuning = doc.notes, doc.tuning
    local divisions = doc.divisions or 12
    local capo = doc.capo or 0
    if #doc.measures == 0 then
        -- Silence still makes a score: one bar of rest.
        local full = doc.time_signature[1] * divisions * 4
            / doc.time_signature[2]
        local copy = {}
        for k, v in pairs(doc) do
            copy[k] = v
        end
        copy.measures = { { number = 1, start_s = 0, start_tick = 0,
                            ticks = full, events = { { tick = 0, ticks = full,
                                                       rest = true } } } }
        doc = copy
    end
    local flat = flatten(doc)
    local starts, vibrato_notes, rings, marked, keys =
        note_facts(notes, tuning)

    -- Where each note begins and ends among the events, so techniques go
    -- on its first event and legato starts on its last.
    local first_ev, last_ev = new_table(#notes, 0), new_table(#notes, 0)
    for k = 1, #flat do
        local evn = flat[k].notes or EMPTY
        for i = 1, #evn do
            local ni = evn[i]
            if not first_ev[ni] then
                first_ev[ni] = k
            end
            last_ev[ni] = k
        end
    end

    local len_cache = { {}, {} }

    local b = OUT
    b:reset()
    -- Room for the whole score at once on a first call (about 400 bytes a
    -- note), rather than growing it by copies.
    b:reserve(448 * #notes + 4096)
    b:put(HEADER)
    local function put(s)
        b:put(s)
    end

    if doc.title then
        put("<work><work-title>" .. escape(tostring(doc.title))
            .. "</work-title></work>\n")
    end
    local part = PARTS[doc.instrument] or PARTS.guitar
    put("<identification><encoding><software>wtt</software></encoding>"
        .. "</identification>\n<part-list>"
        .. '<score-part id="P1"><part-name>' .. part[1] .. "</part-name>"
        .. '<score-instrument id="P1-I1"><instrument-name>' .. part[1]
        .. "</instrument-name></score-instrument>"
        .. '<midi-instrument id="P1-I1"><midi-channel>1</midi-channel>'
        .. "<midi-program>" .. part[2] .. "</midi-program></midi-instrument>"
        .. '</score-part></part-list>\n<part id="P1">\n')

    -- "<note>" up to the pitch, per sounding pitch, alone and as a chord
    -- member; what follows the length when nothing else does, per staff
    -- (for the TAB staff, per string and fret).
    local open_cache, chord_cache, tab_end = {}, {}, {}

    local function note_open(p, chord)
        local cache = chord and chord_cache or open_cache
        local s = cache[p]
        if not s then
            s = (chord and "<note><chord/>" or "<note>") .. pitch_xml(p)
            cache[p] = s
        end
        return s
    end

    local function tab_tail(n)
        local key = n.string * 1000 + n.fret
        local s = tab_end[key]
        if not s then
            s = "<staff>2</staff><notations><technical><string>" .. n.string
                .. "</string><fret>" .. n.fret
                .. "</fret></technical></notations></note>\n"
            tab_end[key] = s
        end
        return s
    end

    -- The <notations> of a note that has more than its string and fret:
    -- ties, the tuplet bracket, legato slurs and marks, bends, the wavy
    -- line of a vibrato.
    local function notations_xml(n, staff, first, tie_stop, tie_start,
                                 tuplet, start, wavy)
        local nota, tech = {}, {}
        local number = NUMBER[n.string]
        if tie_stop then
            nota[#nota + 1] = '<tied type="stop"/>'
        end
        if tie_start then
            nota[#nota + 1] = '<tied type="start"/>'
        end
        if tuplet then
            nota[#nota + 1] = tuplet
        end
        if staff == 2 then
            tech[1] = "<string>" .. n.string .. "</string><fret>" .. n.fret
                .. "</fret>"
        end
        if first then
            for _, t in ipairs(n.techniques) do
                local ty = t.type
                if LEGATO[ty] then
                    nota[#nota + 1] = '<slur type="stop"' .. number .. "/>"
                    if staff == 2 then
                        tech[#tech + 1] = "<" .. LEGATO[ty][1] .. number
                            .. ' type="stop"/>'
                    end
                elseif ty == "slide" then
                    nota[#nota + 1] = '<slide type="stop"' .. number .. "/>"
                elseif ty == "bend" and staff == 2 then
                    tech[#tech + 1] = bend_xml(t)
                end
            end
        end
        if start == "slide" then
            nota[#nota + 1] = '<slide type="start" line-type="solid"'
                .. number .. "/>"
        elseif start then
            nota[#nota + 1] = '<slur type="start"' .. number .. "/>"
            if staff == 2 then
                local l = LEGATO[start]
                tech[#tech + 1] = "<" .. l[1] .. number .. ' type="start">'
                    .. l[2] .. "</" .. l[1] .. ">"
            end
        end
        if #tech > 0 then
            nota[#nota + 1] = "<technical>" .. concat(tech) .. "</technical>"
        end
        if wavy then
            nota[#nota + 1] = wavy
        end
        if #nota == 0 then
            return ""
        end
        return "<notations>" .. concat(nota) .. "</notations>"
    end

    -- A note element with nothing but its pitch, length and staff (and on
    -- the TAB staff its string and fret) is most of a piece: each is made
    -- once per length (len[6]) and note key with chord membership.
    local function plain_xml(len, staff, n, chord)
        return note_open(tuning[n.string] + capo + n.fret, chord) .. len[5]
            .. (staff == 1 and STAFF1_END or tab_tail(n))
    end

    -- One staff's notes for one event. `staff` is 1 or 2; `k` the event's
    -- place in `flat`; `group` the tuplet state of this staff.
    local function event_xml(ev, k, staff, group, full_rest, wavy)
        local lens = len_cache[staff]
        local len = lens[ev.ticks]
        if not len then
            len = length_xml(ev.ticks, divisions, staff == 1 and "1" or "5")
            if not len then
                return nil, format("event at tick %d: %d ticks is not a"
                                   .. " notatable length", ev.tick or -1,
                                   ev.ticks)
            end
            len[6] = {}
            lens[ev.ticks] = len
        end
        -- Tuplet brackets: start on the first triplet after straight time,
        -- stop once the group fills whole straight time.
        local tuplet
        if len[3] then
            if group.sum == 0 then
                tuplet = '<tuplet type="start" bracket="yes"/>'
            end
            group.sum = group.sum + len[4]
            if group.sum % TRIPLET_GROUP == 0 then
                tuplet = (tuplet or "") .. '<tuplet type="stop"/>'
                group.sum = 0
            end
        end
        if ev.rest then
            put(full_rest and '<note><rest measure="yes"/>' or "<note><rest/>")
            put(len[5])
            put(STAFF[staff])
            if tuplet or wavy then
                put("<notations>" .. (tuplet or "") .. (wavy or "")
                    .. "</notations>")
            end
            put("</note>\n")
            return true
        end
        local nxt = flat[k + 1]
        local tie_next = nxt and nxt.tied and nxt.notes
        local tie_stop = ev.tied
        local evn = ev.notes
        local plain_cache = len[6]
        for i = 1, #evn do
            local ni = evn[i]
            local tie_start = false
            if tie_next then
                for j = 1, #tie_next do
                    if tie_next[j] == ni then
                        tie_start = true
                        break
                    end
                end
            end
            local first = first_ev[ni] == k
            local start = last_ev[ni] == k and starts[ni]
            local tup = i == 1 and tuplet
            local wv = i == 1 and wavy
            local plain = not (tie_stop or tie_start or tup or start or wv
                               or (first and marked[ni]))
            local key = keys[ni]
            if plain and key then
                key = key + (i > 1 and 1 or 0)
                local s = plain_cache[key]
                if not s then
                    s = plain_xml(len, staff, notes[ni], i > 1)
                    plain_cache[key] = s
                end
                put(s)
            else
                local n = notes[ni]
                if not n or not tuning[n.string] or not n.fret then
                    return nil, format("event at tick %d: note %s has no"
                                       .. " string and fret on this"
                                       .. " instrument", ev.tick or -1,
                                       tostring(ni))
                end
                if plain then
                    put(plain_xml(len, staff, n, i > 1))
                else
                    put(note_open(tuning[n.string] + capo + n.fret, i > 1))
                    if tie_stop or tie_start then
                        put(len[1])
                        if tie_stop then
                            put('<tie type="stop"/>')
                        end
                        if tie_start then
                            put('<tie type="start"/>')
                        end
                        put(len[2])
                    else
                        put(len[5])
                    end
                    put(STAFF[staff])
                    put(notations_xml(n, staff, first, tie_stop, tie_start,
                                      tup, start, wv))
                    put("</note>\n")
                end
            end
        end
        return true
    end

    local k0 = 0            -- events of earlier measures
    local ringing = false   -- the last sounding event had let_ring
    local groups = { { sum = 0 }, { sum = 0 } }
    local wavy_open = { false, false }
    local full = doc.time_signature[1] * divisions * 4
        / doc.time_signature[2]
    local measures = doc.measures
    local nmeasures = #measures
    for mi = 1, nmeasures do
        local m = measures[mi]
        local implicit = m.number == 0 and ' implicit="yes"' or ""
        put('<measure number="' .. m.number .. '"' .. implicit .. ">\n")
        if mi == 1 then
            put(attributes_xml(doc))
            put(tempo_xml(doc.tempo_bpm))
        end
        local events = m.events
        local nevents = #events
        local full_rest = nevents == 1 and m.ticks == full
        -- A measure starts a new tuplet group whatever the last one did.
        groups[1].sum, groups[2].sum = 0, 0
        for staff = 1, 2 do
            if staff == 2 then
                put("<backup><duration>" .. m.ticks .. "</duration></backup>\n")
            end
            local group = groups[staff]
            for j = 1, nevents do
                local ev = events[j]
                local evn = ev.notes or EMPTY
                if staff == 2 and not ev.tied and not ev.rest then
                    local rs = false
                    for i = 1, #evn do
                        if rings[evn[i]] then
                            rs = true
                            break
                        end
                    end
                    if rs and not ringing then
                        put(LET_RING)
                    end
                    ringing = rs
                end
                local vib, wavy = false, nil
                for i = 1, #evn do
                    if vibrato_notes[evn[i]] then
                        vib = true
                        break
                    end
                end
                if vib ~= wavy_open[staff] then
                    wavy = vib and WAVY_START[staff] or WAVY_STOP[staff]
                    wavy_open[staff] = vib
                end
                local ok, err = event_xml(ev, k0 + j, staff, group,
                                          full_rest, wavy)
                if not ok then
                    return nil, "musicxml: measure " .. m.number .. ", " .. err
                end
            end
        end
        k0 = k0 + nevents
        if mi == nmeasures then
            put('<barline location="right"><bar-style>light-heavy'
                .. "</bar-style></barline>\n")
        end
        put("</measure>\n")
    end
    put("</part>\n</score-partwise>\n")
    return held.take(b)
end

return _M
