-- wtt.tab.out.musicxml: every sample tab document (spec/support/tabdoc.lua)
-- validates against the MusicXML 4.0 schema with xmllint, offline, and reads
-- back with an independent parser (Python's xml.etree) to the same strings,
-- frets, pitches, tuning, capo, lengths and techniques.

local json = require "wtt.json"
local sys = require "wtt.sys"
local musicxml = require "wtt.tab.out.musicxml"
local tabdoc = require "spec.support.tabdoc"
local tools = require "spec.support.musicxml"

local PYTHON = "/usr/bin/python3"

-- Reads MusicXML files back into plain JSON: the attributes of the first
-- measure, then per measure each staff's total length and every <note>.
local READ_BACK = [[
import json, sys
import xml.etree.ElementTree as ET

STEP = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}

def midi(step, alter, octave):
    return STEP[step] + int(float(alter or 0)) + 12 * (int(octave) + 1)

def types(parent, tag):
    if parent is None:
        return []
    return [e.get("type") for e in parent.iter(tag)]

def number(parent, tag):
    if parent is None or parent.find(tag) is None:
        return None
    return int(parent.findtext(tag))

def bends(tech):
    if tech is None:
        return []
    return [[float(b.findtext("bend-alter")), b.find("release") is not None]
            for b in tech.iter("bend")]

out = {}
for path in sys.argv[1:]:
    root = ET.parse(path).getroot()
    part = root.find("part")
    attrs = part.find("measure/attributes")
    details = attrs.find("staff-details")
    doc = {
        "version": root.get("version"),
        "title": root.findtext("work/work-title"),
        "divisions": int(attrs.findtext("divisions")),
        "time": [int(attrs.findtext("time/beats")),
                 int(attrs.findtext("time/beat-type"))],
        "staves": int(attrs.findtext("staves")),
        "clefs": {c.get("number"): [c.findtext("sign"),
                                    c.findtext("line") or "",
                                    c.findtext("clef-octave-change") or ""]
                  for c in attrs.findall("clef")},
        "details_staff": details.get("number"),
        "staff_lines": int(details.findtext("staff-lines")),
        "tuning": {t.get("line"): midi(t.findtext("tuning-step"),
                                       t.findtext("tuning-alter"),
                                       t.findtext("tuning-octave"))
                   for t in details.findall("staff-tuning")},
        "capo": details.findtext("capo"),
        "tempo": float(part.find(".//sound").get("tempo")),
        "per_minute": part.findtext(".//metronome/per-minute"),
        "measures": [],
    }
    for m in part.findall("measure"):
        mm = {"number": m.get("number"), "implicit": m.get("implicit"),
              "length": {"1": 0, "2": 0}, "backup": [], "notes": [],
              "words": []}
        for el in m:
            if el.tag == "backup":
                mm["backup"].append(int(el.findtext("duration")))
            elif el.tag == "direction":
                for w in el.iter("words"):
                    mm["words"].append([el.findtext("staff"), w.text])
            elif el.tag == "note":
                staff = el.findtext("staff")
                dur = int(el.findtext("duration"))
                chord = el.find("chord") is not None
                if not chord:
                    mm["length"][staff] += dur
                p = el.find("pitch")
                tm = el.find("time-modification")
                nota = el.find("notations")
                tech = nota.find("technical") if nota is not None else None
                rest = el.find("rest")
                mm["notes"].append({
                    "staff": staff, "chord": chord,
                    "voice": el.findtext("voice"),
                    "rest": rest is not None,
                    "pitch": midi(p.findtext("step"), p.findtext("alter"),
                                  p.findtext("octave")) if p is not None
                             else None,
                    "duration": dur, "type": el.findtext("type"),
                    "dots": len(el.findall("dot")),
                    "tm": [number(tm, "actual-notes"),
                           number(tm, "normal-notes")] if tm is not None
                          else None,
                    "string": number(tech, "string"),
                    "fret": number(tech, "fret"),
                    "tie": [t.get("type") for t in el.findall("tie")],
                    "tied": types(nota, "tied"),
                    "tuplet": types(nota, "tuplet"),
                    "slur": types(nota, "slur"),
                    "slide": types(nota, "slide"),
                    "wavy": types(nota, "wavy-line"),
                    "hammer": types(tech, "hammer-on"),
                    "pull": types(tech, "pull-off"),
                    "bend": bends(tech),
                })
        doc["measures"].append(mm)
    out[path] = doc

# Absent values are left out, so they read as nil in Lua.
def clean(o):
    if isinstance(o, dict):
        return {k: clean(v) for k, v in o.items() if v is not None}
    if isinstance(o, list):
        return [clean(v) for v in o]
    return o

print(json.dumps(clean(out)))
]]

-- docs/tab.md's notatable lengths (12 divisions): type, dots, triplet.
local LENGTHS = {
    [48] = { "whole", 0 }, [36] = { "half", 1 }, [24] = { "half", 0 },
    [18] = { "quarter", 1 }, [12] = { "quarter", 0 }, [9] = { "eighth", 1 },
    [6] = { "eighth", 0 }, [3] = { "16th", 0 },
    [16] = { "half", 0, true }, [8] = { "quarter", 0, true },
    [4] = { "eighth", 0, true }, [2] = { "16th", 0, true },
}


local function has_technique(note, ty)
    for _, t in ipairs(note.techniques or {}) do
        if t.type == ty then
            return t
        end
    end
    return nil
end


-- Every event of a document in order, and for each note the first and
-- last event it sounds in (ties make it span several).
local function events_of(doc)
    local flat = {}
    for _, m in ipairs(doc.measures) do
        for _, ev in ipairs(m.events) do
            flat[#flat + 1] = ev
        end
    end
    local first, last = {}, {}
    for k, ev in ipairs(flat) do
        for _, ni in ipairs(ev.notes or {}) do
            first[ni] = first[ni] or k
            last[ni] = k
        end
    end
    return flat, first, last
end


describe("wtt.tab.out.musicxml", function()
    local dir, docs, paths, parsed

    lazy_setup(function()
        dir = assert(sys.mkdtemp("wtt-musicxml-"))
        docs, paths = {}, {}
        for _, name in ipairs(tabdoc.names()) do
            docs[name] = tabdoc.sample(name)
            paths[name] = dir .. "/" .. name .. ".musicxml"
            local xml = assert(musicxml.encode(docs[name]))
            assert(sys.write_file(paths[name], xml))
        end
    end)

    lazy_teardown(function()
        if dir then
            sys.rmtree(dir)
        end
    end)

    local function read_back()
        if not parsed then
            local argv = { PYTHON, "-c", READ_BACK }
            for _, name in ipairs(tabdoc.names()) do
                argv[#argv + 1] = paths[name]
            end
            local code, out, err = tools.run(argv, dir, { timeout = 60 })
            assert.equal(0, code, err)
            parsed = json.decode(out)
        end
        return parsed
    end

    it("validates every sample against the MusicXML 4.0 schema", function()
        local list = {}
        for _, name in ipairs(tabdoc.names()) do
            list[#list + 1] = paths[name]
        end
        local code, out, err = tools.validate(list, dir)
        assert.equal(0, code, out .. err)
        for _, name in ipairs(tabdoc.names()) do
            assert.matches(name .. ".musicxml validates", err, 1, true)
        end
    end)

    it("validates offline only through the catalog's local copies", function()
        -- The schema imports xml.xsd and xlink.xsd by their network
        -- locations; the catalog maps them here.
        local catalog = assert(sys.read_file(tools.CATALOG))
        for _, f in ipairs({ "musicxml.xsd", "xml.xsd", "xlink.xsd" }) do
            assert.matches('<uri name="http://www.musicxml.org/xsd/' .. f
                           .. '" uri="' .. f .. '"/>', catalog, 1, true)
            assert.equal("file", sys.exists(tools.SCHEMA_DIR .. "/" .. f))
        end
        local xsd = assert(sys.read_file(tools.SCHEMA))
        assert.matches('schemaLocation="http://www.musicxml.org/xsd/xml.xsd"',
                       xsd, 1, true)
        -- Without the catalog, --nonet cannot load the imports.
        local empty = dir .. "/empty-catalog.xml"
        assert(sys.write_file(empty, '<?xml version="1.0"?>\n<catalog xmlns='
            .. '"urn:oasis:names:tc:entity:xmlns:xml:catalog"/>\n'))
        local code, out, err = tools.validate({ paths.chords }, dir, empty)
        assert.is_not.equal(0, code, out .. err)
    end)

    it("rejects what breaks the schema (the check can fail)", function()
        local xml = assert(musicxml.encode(docs.chords))
        -- <note> is a sequence: a <duration> after <type> breaks it.
        local broken = xml:gsub("(<duration>%d+</duration>)(<voice>1</voice>"
                                .. "<type>quarter</type>)", "%2%1", 1)
        assert.are_not.equal(xml, broken)
        local path = dir .. "/broken.musicxml"
        assert(sys.write_file(path, broken))
        local code, out, err = tools.validate({ path }, dir)
        assert.is_not.equal(0, code, out .. err)
        assert.matches("fails to validate", err, 1, true)
    end)

    it("writes a score-partwise 4.0 with its DOCTYPE and title", function()
        local xml = assert(musicxml.encode(docs.chords))
        assert.matches('^<%?xml version="1.0" encoding="UTF%-8"', xml)
        assert.matches('<!DOCTYPE score-partwise PUBLIC "-//Recordare//DTD '
                       .. 'MusicXML 4.0 Partwise//EN"', xml, 1, true)
        local got = read_back()[paths.chords]
        assert.equal("4.0", got.version)
        assert.equal("Open chords", got.title)
        assert.is_nil(read_back()[paths.rests].title)
    end)

    it("puts notation on staff 1 and TAB on staff 2, with the clefs of "
       .. "each instrument", function()
        local want = {
            chords = { "G", "2", "-1" }, guitar7 = { "G", "2", "-1" },
            drop_d = { "G", "2", "-1" }, bass4 = { "F", "4", "-1" },
            ukulele = { "G", "2", "" },
        }
        for name, clef in pairs(want) do
            local got = read_back()[paths[name]]
            assert.equal(2, got.staves)
            assert.same(clef, got.clefs["1"], name)
            assert.equal("TAB", got.clefs["2"][1], name)
            assert.equal("2", got.details_staff)
        end
    end)

    it("writes the tuning lowest string on line 1, the capo, the tempo and "
       .. "the divisions", function()
        for _, name in ipairs(tabdoc.names()) do
            local doc, got = docs[name], read_back()[paths[name]]
            local n = #doc.tuning
            assert.equal(n, got.staff_lines, name)
            for line = 1, n do
                assert.equal(doc.tuning[n + 1 - line],
                             got.tuning[tostring(line)], name)
            end
            if doc.capo > 0 then
                assert.equal(tostring(doc.capo), got.capo, name)
            else
                assert.is_nil(got.capo, name)
            end
            assert.equal(doc.tempo_bpm, got.tempo, name)
            assert.equal(tostring(doc.tempo_bpm), got.per_minute, name)
            assert.equal(doc.divisions, got.divisions, name)
            assert.same(doc.time_signature, got.time, name)
        end
        -- Spot checks that do not lean on the loop's arithmetic.
        assert.equal("2", read_back()[paths.capo2].capo)
        assert.equal(38, read_back()[paths.drop_d].tuning["1"])   -- D2
        assert.equal(35, read_back()[paths.guitar7].tuning["1"])  -- B1
        assert.equal(28, read_back()[paths.bass4].tuning["1"])    -- E1
        assert.equal(67, read_back()[paths.ukulele].tuning["1"])  -- G4
    end)

    it("fills every measure to its time signature on both staves, the "
       .. "pickup as measure 0", function()
        for _, name in ipairs(tabdoc.names()) do
            local doc, got = docs[name], read_back()[paths[name]]
            local ts = doc.time_signature
            local full = ts[1] * doc.divisions * 4 / ts[2]
            assert.equal(#doc.measures, #got.measures, name)
            for i, m in ipairs(doc.measures) do
                local gm = got.measures[i]
                assert.equal(tostring(m.number), gm.number, name)
                local want = full
                if m.number == 0 then
                    assert.equal("yes", gm.implicit, name)
                    want = doc.pickup_ticks
                else
                    assert.is_nil(gm.implicit, name)
                end
                assert.equal(want, gm.length["1"], name .. " m" .. i)
                assert.equal(want, gm.length["2"], name .. " m" .. i)
                assert.same({ want }, gm.backup, name)
            end
        end
        assert.equal("0", read_back()[paths.pickup].measures[1].number)
        assert.equal(12, read_back()[paths.pickup].measures[1].length["1"])
        assert.equal(36, read_back()[paths.waltz].measures[1].length["2"])
    end)

    it("writes every note's string, fret and pitch (tuning + capo + fret) "
       .. "and every rest, on both staves", function()
        for _, name in ipairs(tabdoc.names()) do
            local doc, got = docs[name], read_back()[paths[name]]
            for mi, m in ipairs(doc.measures) do
                local want = { ["1"] = {}, ["2"] = {} }
                for _, ev in ipairs(m.events) do
                    for _, staff in ipairs({ "1", "2" }) do
                        local w = want[staff]
                        if ev.rest then
                            w[#w + 1] = { rest = true, chord = false }
                        else
                            for i, ni in ipairs(ev.notes) do
                                local n = doc.notes[ni]
                                w[#w + 1] = {
                                    rest = false, chord = i > 1,
                                    pitch = doc.tuning[n.string] + doc.capo
                                        + n.fret,
                                    string = staff == "2" and n.string or nil,
                                    fret = staff == "2" and n.fret or nil,
                                }
                            end
                        end
                    end
                end
                local have = { ["1"] = {}, ["2"] = {} }
                for _, gn in ipairs(got.measures[mi].notes) do
                    local h = have[gn.staff]
                    h[#h + 1] = { rest = gn.rest, chord = gn.chord,
                                  pitch = gn.pitch, string = gn.string,
                                  fret = gn.fret }
                    assert.equal(gn.staff == "1" and "1" or "5", gn.voice)
                end
                assert.same(want["1"], have["1"], name .. " m" .. mi)
                assert.same(want["2"], have["2"], name .. " m" .. mi)
            end
        end
        -- Capo 2: fret 3 on the low E sounds A2 (45), not G2.
        local capo = read_back()[paths.capo2].measures[1].notes
        local first_tab
        for _, gn in ipairs(capo) do
            if gn.staff == "2" then
                first_tab = first_tab or gn
            end
        end
        assert.same({ 6, 3, 45 }, { first_tab.string, first_tab.fret,
                                    first_tab.pitch })
    end)

    it("writes the type, dots and triplet ratio of docs/tab.md's lengths, "
       .. "with tuplet brackets around each group", function()
        local seen = {}
        for _, name in ipairs(tabdoc.names()) do
            local doc, got = docs[name], read_back()[paths[name]]
            for mi, m in ipairs(doc.measures) do
                local k = 0
                local staff_notes = {}
                for _, gn in ipairs(got.measures[mi].notes) do
                    if gn.staff == "2" and not gn.chord then
                        staff_notes[#staff_notes + 1] = gn
                    end
                end
                for _, ev in ipairs(m.events) do
                    k = k + 1
                    local gn = staff_notes[k]
                    local l = LENGTHS[ev.ticks]
                    assert.equal(ev.ticks, gn.duration)
                    assert.equal(l[1], gn.type, name)
                    assert.equal(l[2], gn.dots, name)
                    if l[3] then
                        assert.same({ 3, 2 }, gn.tm, name)
                    else
                        assert.is_nil(gn.tm, name)
                    end
                    seen[ev.ticks] = true
                end
            end
        end
        for ticks in pairs(LENGTHS) do
            assert.is_true(seen[ticks], "no sample has a " .. ticks
                           .. "-tick event")
        end
        -- The triplets sample's first bar: 8th triplets, then two groups of
        -- 16th triplets, then a quarter-triplet group ending on a rest.
        local tuplets = {}
        for _, gn in ipairs(read_back()[paths.triplets].measures[1].notes) do
            if gn.staff == "1" then
                tuplets[#tuplets + 1] = table.concat(gn.tuplet, "+")
            end
        end
        assert.same({ "start", "", "stop", "start", "", "stop", "start", "",
                      "stop", "start", "", "stop" }, tuplets)
    end)

    it("ties continuations to the note before, across a bar line too",
       function()
        local doc, got = docs.ties, read_back()[paths.ties]
        local tab = {}
        for mi in ipairs(doc.measures) do
            for _, gn in ipairs(got.measures[mi].notes) do
                if gn.staff == "2" then
                    tab[#tab + 1] = gn
                end
            end
        end
        local k = 0
        local flat = events_of(doc)
        for ei, ev in ipairs(flat) do
            local nxt = flat[ei + 1]
            for _, ni in ipairs(ev.notes or { false }) do
                k = k + 1
                local want = {}
                if ev.tied then
                    want[#want + 1] = "stop"
                end
                if nxt and nxt.tied and ni then
                    want[#want + 1] = "start"
                end
                assert.same(want, tab[k].tie, "event " .. ei)
                assert.same(want, tab[k].tied, "event " .. ei)
            end
        end
        assert.equal(k, #tab)
        -- The whole note of bar 2 continues bar 1's last quarter.
        assert.same({ "stop" }, got.measures[2].notes[1].tie)
        assert.same({ "start" }, got.measures[1].notes[5].tie)
    end)

    it("writes bends, hammer-ons, pull-offs, slides, vibrato and let ring",
       function()
        for _, name in ipairs({ "techniques", "legato" }) do
            local doc, got = docs[name], read_back()[paths[name]]
            local flat, first, last = events_of(doc)
            -- Staff 2's notes in document order, one per (event, note).
            local tab, staff1 = {}, {}
            for mi in ipairs(doc.measures) do
                for _, gn in ipairs(got.measures[mi].notes) do
                    local list = gn.staff == "2" and tab or staff1
                    list[#list + 1] = gn
                end
            end
            local at, k = {}, 0       -- (event, note) -> index into tab
            for ei, ev in ipairs(flat) do
                for _, ni in ipairs(ev.notes or { 0 }) do
                    k = k + 1
                    at[ei .. ":" .. ni] = k
                end
            end
            local vib_prev = false
            for ei, ev in ipairs(flat) do
                local vib = false
                for _, ni in ipairs(ev.notes or {}) do
                    local n = doc.notes[ni]
                    local gn = tab[at[ei .. ":" .. ni]]
                    vib = vib or has_technique(n, "vibrato") ~= nil
                    if first[ni] == ei then
                        local bend = has_technique(n, "bend")
                        if bend then
                            local want = { { bend.semitones, false } }
                            if bend.release then
                                want[2] = { -bend.semitones, true }
                            end
                            assert.same(want, gn.bend, name)
                        else
                            assert.same({}, gn.bend, name)
                        end
                        for ty, field in pairs({ hammer_on = "hammer",
                                                 pull_off = "pull" }) do
                            local t = has_technique(n, ty)
                            if t then
                                assert.truthy(gn[field][1] == "stop",
                                              name .. " " .. ty)
                                local from = tab[at[last[t.from] .. ":"
                                                    .. t.from]]
                                assert.same("start", from[field][#from[field]])
                                assert.truthy(#gn.slur > 0)
                            end
                        end
                        local slide = has_technique(n, "slide")
                        if slide then
                            assert.equal("stop", gn.slide[1])
                            local from = tab[at[last[slide.from] .. ":"
                                                .. slide.from]]
                            assert.equal("start", from.slide[#from.slide])
                        end
                    end
                end
                -- A wavy line starts where vibrato starts and stops on the
                -- first event after it, on both staves.
                local first_tab = tab[at[ei .. ":" .. ((ev.notes or
                                                         { 0 })[1])]]
                if vib and not vib_prev then
                    assert.same({ "start" }, first_tab.wavy, name)
                elseif vib_prev and not vib then
                    assert.same({ "stop" }, first_tab.wavy, name)
                else
                    assert.same({}, first_tab.wavy, name)
                end
                vib_prev = vib
            end
            assert.equal(k, #tab)
            assert.equal(#tab, #staff1)
        end
        -- Hand-checked spots of the techniques sample.
        local got = read_back()[paths.techniques]
        local m1 = {}
        for _, gn in ipairs(got.measures[1].notes) do
            if gn.staff == "2" then
                m1[#m1 + 1] = gn
            end
        end
        assert.same({ { 1.5, false }, { -1.5, true } }, m1[2].bend)
        assert.same({ { 0.5, false } }, m1[3].bend)
        assert.same({ { "2", "let ring" } }, got.measures[3].words)
    end)

    it("encodes silence as one bar of rest", function()
        local doc = tabdoc.sample("chords")
        doc.measures, doc.notes = {}, {}
        local xml = assert(musicxml.encode(doc))
        local path = dir .. "/silence.musicxml"
        assert(sys.write_file(path, xml))
        local code, out, err = tools.validate({ path }, dir)
        assert.equal(0, code, out .. err)
        assert.matches('<note><rest measure="yes"/><duration>48</duration>',
                       xml, 1, true)
    end)

    it("returns an error naming an event it cannot notate", function()
        local doc = tabdoc.sample("rests")
        local ev = doc.measures[2].events[1]
        ev.ticks = 5
        local xml, err = musicxml.encode(doc)
        assert.is_nil(xml)
        assert.equal("musicxml: measure 2, event at tick 0: 5 ticks is not a"
                     .. " notatable length", err)
        doc = tabdoc.sample("chords")
        doc.notes[1].string = 9
        xml, err = musicxml.encode(doc)
        assert.is_nil(xml)
        assert.matches("note 1 has no string and fret", err, 1, true)
    end)

    it("encodes a 10,000-note document whole (its speed is bench/tab.sh's)", function()
        local doc = tabdoc.large(10000)
        assert.truthy(#doc.notes >= 10000)
        local xml = assert(musicxml.encode(doc))
        local frets = select(2, xml:gsub("<fret>", ""))
        assert.equal(#doc.notes, frets)
    end)
end)
