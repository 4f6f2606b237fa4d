--- Guitar Pro 7 (.gp) from a tab document (docs/tab.md).
--
--     local bytes, err = require("wtt.tab.out.gp").encode(doc)
--
-- A .gp file is a zip archive whose `Content/score.gpif` holds the score
-- as GPIF XML: a Score (title), a MasterTrack (tracks, tempo automation,
-- pickup), Tracks (one staff with its Tuning and CapoFret properties),
-- MasterBars (time signature, one Bar per track), then Bars, Voices, Beats,
-- Notes and Rhythms, each a flat list that the one before refers to by id.
-- Equal beats, notes and rhythms are written once and shared, as Guitar Pro
-- does.
--
-- GPIF counts strings from the lowest, from 0 (`String`), and lists the
-- tuning lowest first; the document counts from the highest, from 1. Frets
-- count from the capo in both (alphaTab sounds a note at tuning + capo +
-- fret). Hammer-ons, pull-offs and slides are marked on the note the hand
-- leaves (`HopoOrigin`, `Slide` flags 2 = legato) and the one it reaches
-- (`HopoDestination`); bends are in GPIF units of 25 per quarter tone.

local events = require "wtt.tab.out.events"
local zip = require "wtt.zip"
local buffer = require "string.buffer"

local concat = table.concat
local tostring = tostring
local ipairs = ipairs

local _M = {}

-- Track name, General MIDI program (0-based), clef and written octave per
-- instrument: guitars and basses are written an octave above where they
-- sound.
local TRACKS = {
    guitar = { "Guitar", 25, "G2", -1 },
    guitar7 = { "7-string guitar", 25, "G2", -1 },
    bass = { "Bass", 33, "F4", -1 },
    bass5 = { "5-string bass", 33, "F4", -1 },
    ukulele = { "Ukulele", 24, "G2", 0 },
}

local NOTE_VALUES = { [1] = "Whole", [2] = "Half", [4] = "Quarter",
                      [8] = "Eighth", [16] = "16th", [32] = "32nd" }

-- Deflate level of score.gpif: on GPIF's repetitive XML, 1 is more than
-- twice as fast as 6 for a file about 5% larger.
local LEVEL = 1


local XML_ESCAPES = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;" }


-- Text as Guitar Pro writes it, in one CDATA section; text that cannot be
-- one (it holds "]]>") is escaped instead, since alphaTab reads only the
-- last of several CDATA sections.
local function cdata(s)
    s = tostring(s)
    if s:find("]]>", 1, true) then
        return (s:gsub("[&<>]", XML_ESCAPES))
    end
    return "<![CDATA[" .. s .. "]]>"
end


-- A bend's <Property> elements (GPIF: 25 per quarter tone, offsets 0-100).
local function put_bend(b, bend)
    local v = 25 * events.quarter_tones(bend.semitones)
    b:put('<Property name="Bended"><Enable/></Property>',
          '<Property name="BendOriginValue"><Float>0</Float></Property>',
          '<Property name="BendOriginOffset"><Float>0</Float></Property>')
    if bend.release then
        b:put('<Property name="BendMiddleValue"><Float>', v,
              "</Float></Property>",
              '<Property name="BendMiddleOffset1"><Float>33</Float>',
              "</Property>",
              '<Property name="BendMiddleOffset2"><Float>66</Float>',
              "</Property>",
              '<Property name="BendDestinationValue"><Float>0</Float>',
              "</Property>")
    else
        b:put('<Property name="BendDestinationValue"><Float>', v,
              "</Float></Property>")
    end
    b:put('<Property name="BendDestinationOffset"><Float>100</Float>',
          "</Property>")
end


-- One <Note>: `first` when its event starts the note (not a tied
-- continuation), `last` when the next event does not continue it.
local function put_note(b, n_strings, id, note, first, last, origin)
    b:put('<Note id="', id, '">')
    if not first or not last then
        b:put('<Tie origin="', last and "false" or "true",
              '" destination="', first and "false" or "true", '"/>')
    end
    local techs = note.techniques
    local has = techs and #techs > 0 and first
    if has and events.technique(note, "let_ring") then
        b:put("<LetRing/>")
    end
    if has and events.technique(note, "vibrato") then
        b:put("<Vibrato>Slight</Vibrato>")
    end
    b:put('<Properties><Property name="String"><String>',
          n_strings - note.string,
          '</String></Property><Property name="Fret"><Fret>', note.fret,
          "</Fret></Property>")
    if last and origin == "hopo" then
        b:put('<Property name="HopoOrigin"><Enable/></Property>')
    elseif last and origin == "slide" then
        b:put('<Property name="Slide"><Flags>2</Flags></Property>')
    end
    if has then
        if events.technique(note, "hammer_on")
           or events.technique(note, "pull_off") then
            b:put('<Property name="HopoDestination"><Enable/></Property>')
        end
        local bend = events.technique(note, "bend")
        if bend then
            put_bend(b, bend)
        end
    end
    b:put("</Properties></Note>")
end


local function put_rhythm(b, id, value, dots, tuplet)
    b:put('<Rhythm id="', id, '"><NoteValue>', NOTE_VALUES[value],
          "</NoteValue>")
    if dots > 0 then
        b:put('<AugmentationDot count="', dots, '"/>')
    end
    if tuplet then
        b:put('<PrimaryTuplet num="', tuplet, '" den="2"/>')
    end
    b:put("</Rhythm>")
end


local function put_track(b, doc, track)
    b:put('<Tracks><Track id="0"><Name>', cdata(track[1]), "</Name>",
          "<ShortName>", cdata(track[1]), "</ShortName>",
          "<Color>200 0 0</Color><Staves><Staff><Properties>",
          '<Property name="CapoFret"><Fret>', doc.capo or 0,
          "</Fret></Property>",
          '<Property name="Tuning"><Pitches>')
    for i = #doc.tuning, 1, -1 do
        b:put(doc.tuning[i], i > 1 and " " or "")
    end
    b:put("</Pitches></Property></Properties></Staff></Staves>",
          "<Transpose><Chromatic>0</Chromatic><Octave>", track[4],
          "</Octave></Transpose>",
          "<MidiConnection><Port>0</Port><PrimaryChannel>0</PrimaryChannel>",
          "<SecondaryChannel>1</SecondaryChannel></MidiConnection>",
          "<Sounds><Sound><Name>", cdata(track[1]), "</Name><Path>Midi/",
          track[2], "</Path><Role>Factory</Role><MIDI><LSB>0</LSB>",
          "<MSB>0</MSB><Program>", track[2], "</Program></MIDI></Sound>",
          "</Sounds></Track></Tracks>")
end


-- What makes one sounding of a note distinct in GPIF, as a table key:
-- string, fret and the tie ends (a number, for most notes), then for the
-- first sounding its techniques and for the last the legato it starts (a
-- string, for the few that have them).
local function note_key(note, first, last, origin)
    local key = (note.string * 256 + note.fret) * 4 + (first and 0 or 2)
                + (last and 0 or 1)
    local techs = first and note.techniques
    if (not techs or #techs == 0) and not origin then
        return key
    end
    local k = { key, origin or "" }
    for _, t in ipairs(techs or {}) do
        k[#k + 1] = t.type .. (t.semitones or "") .. (t.release and "r" or "")
    end
    return concat(k, " ")
end


-- The leaf of the path `ids[1..n]` in the trie `node`, made as needed. Its
-- `id` field holds the id of the element the path names, once given: equal
-- lists of ids find the same leaf without building a key string.
local function leaf(node, ids, n)
    for i = 1, n do
        local id = ids[i]
        local nxt = node[id]
        if not nxt then
            nxt = {}
            node[id] = nxt
        end
        node = nxt
    end
    return node
end


local function put_ids(b, ids, n)
    for i = 1, n do
        b:put(i > 1 and " " or "", ids[i])
    end
end


--- The GPIF XML of `doc` (the content of Content/score.gpif).
-- @param doc the tab document
-- @return the XML | nil, err when an event is not one notatable length
function _M.gpif(doc)
    local track = TRACKS[doc.instrument] or TRACKS.guitar
    local div = doc.divisions
    local notes = doc.notes
    local n_strings = #doc.tuning
    local origins = events.legato_origins(doc)
    local ts = doc.time_signature
    local time = ("<MasterBar><Key><AccidentalCount>0</AccidentalCount>"
                  .. "<Mode>Major</Mode></Key><Time>%d/%d</Time><Bars>")
                 :format(ts[1], ts[2])

    -- One buffer per GPIF list, filled in one walk over the events. As in
    -- Guitar Pro's own files, equal beats, notes and rhythms are written
    -- once and shared: one that occurs again refers to the first one's id
    -- (alphaTab copies them as it reads them). Bars and voices are not
    -- shared: alphaTab links each to its neighbours, so it needs its own.
    -- Ids are kept as the strings they are written as.
    local master_bars, bars, voices = buffer.new(), buffer.new(), buffer.new()
    local beats, note_x, rhythms = buffer.new(), buffer.new(), buffer.new()
    local rhythm_of, note_of = {}, {}
    local beat_of = {}            -- rhythm id -> trie of note ids
    local n_rhythms, n_notes, n_beats = 0, 0, 0
    local tied_on = events.tied_on(doc)
    local beat_ids, nids = {}, {}
    for mi, m in ipairs(doc.measures) do
        local nb = 0
        for _, ev in ipairs(m.events) do
            local rid = rhythm_of[ev.ticks]
            if not rid then
                local v, dots, tuplet = events.value(ev.ticks, div)
                if not v then
                    return nil, ("measure %s: %s"):format(m.number, dots)
                end
                rid = tostring(n_rhythms)
                n_rhythms = n_rhythms + 1
                rhythm_of[ev.ticks] = rid
                beat_of[rid] = {}
                put_rhythm(rhythms, rid, v, dots, tuplet)
            end
            local ev_notes = ev.notes
            local nn = 0
            if not ev.rest and ev_notes then
                local first, last = not ev.tied, not tied_on[ev]
                for _, ni in ipairs(ev_notes) do
                    local note = notes[ni]
                    local origin = last and origins[ni] or nil
                    local key = note_key(note, first, last, origin)
                    local nid = note_of[key]
                    if not nid then
                        nid = tostring(n_notes)
                        n_notes = n_notes + 1
                        note_of[key] = nid
                        put_note(note_x, n_strings, nid, note, first, last,
                                 origin)
                    end
                    nn = nn + 1
                    nids[nn] = nid
                end
            end
            local beat = leaf(beat_of[rid], nids, nn)
            local bid = beat.id
            if not bid then
                bid = tostring(n_beats)
                n_beats = n_beats + 1
                beat.id = bid
                beats:put('<Beat id="', bid, '"><Rhythm ref="', rid, '"/>')
                if nn > 0 then
                    beats:put("<Notes>")
                    put_ids(beats, nids, nn)
                    beats:put("</Notes>")
                end
                beats:put("</Beat>")
            end
            nb = nb + 1
            beat_ids[nb] = bid
        end
        local bar = tostring(mi - 1)
        voices:put('<Voice id="', bar, '"><Beats>')
        put_ids(voices, beat_ids, nb)
        voices:put("</Beats></Voice>")
        bars:put('<Bar id="', bar, '"><Clef>', track[3], "</Clef><Voices>",
                 bar, " -1 -1 -1</Voices></Bar>")
        master_bars:put(time, bar, "</Bars></MasterBar>")
    end

    local out = buffer.new(#beats + #note_x + 4096)
    out:put('<?xml version="1.0" encoding="utf-8"?>\n<GPIF>',
            "<GPVersion>7</GPVersion>",
            "<Score><Title>", cdata(doc.title or ""), "</Title></Score>",
            "<MasterTrack><Tracks>0</Tracks><Automations><Automation>",
            "<Type>Tempo</Type><Linear>false</Linear><Bar>0</Bar>",
            "<Position>0</Position><Visible>true</Visible>",
            "<Value>", events.decimal(doc.tempo_bpm), " 2</Value>",
            "</Automation></Automations>",
            (doc.pickup_ticks or 0) > 0 and "<Anacrusis/>" or "",
            "</MasterTrack>")
    put_track(out, doc, track)
    out:put("<MasterBars>", master_bars, "</MasterBars>",
            "<Bars>", bars, "</Bars>",
            "<Voices>", voices, "</Voices>",
            "<Beats>", beats, "</Beats>",
            "<Notes>", note_x, "</Notes>",
            "<Rhythms>", rhythms, "</Rhythms>",
            "</GPIF>\n")
    return out:tostring()
end


--- Writes `doc` as a Guitar Pro 7 file.
-- @param doc the tab document
-- @return the .gp bytes | nil, err
function _M.encode(doc)
    local xml, err = _M.gpif(doc)
    if not xml then
        return nil, err
    end
    return zip.archive({
        { name = "VERSION", data = "7.0", store = true },
        { name = "Content/score.gpif", data = xml },
    }, { level = LEVEL })
end


return _M
