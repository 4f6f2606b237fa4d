--- Small hand-made tab documents (docs/tab.md) for the encoder specs, so
-- each output format is tested on the same known passages without running
-- the fingering or the rhythm.
--
--     local tabdoc = require "spec.support.tabdoc"   -- or dofile
--     for _, name in ipairs(tabdoc.names()) do
--         local doc = tabdoc.sample(name)            -- a fresh table
--     end
--
-- Every document is built by `build` from a compact description, so the
-- derived fields (pitch_midi, tick, beat, duration, start_s, measure
-- ticks, note indices) agree with each other by construction.

local _M = {}

local DIVISIONS = 12

local TUNINGS = {
    guitar = { 64, 59, 55, 50, 45, 40 },
    drop_d = { 64, 59, 55, 50, 45, 38 },
    guitar7 = { 64, 59, 55, 50, 45, 40, 35 },
    bass4 = { 43, 38, 33, 28 },
    ukulele = { 69, 64, 60, 67 },
}


local function gcd(a, b)
    while b ~= 0 do
        a, b = b, a % b
    end
    return a
end


local function copy_list(t)
    local c = {}
    for i, v in ipairs(t) do
        c[i] = v
    end
    return c
end


local function copy_techniques(list)
    local out = {}
    for i, t in ipairs(list or {}) do
        local c = {}
        for k, v in pairs(t) do
            c[k] = v
        end
        out[i] = c
    end
    return out
end


--- Builds a tab document from a description:
--
--     { instrument = "guitar", tuning = {...}, tuning_name = "standard",
--       capo = 0, tempo_bpm = 120, time_signature = { 4, 4 },
--       pickup = false, title = nil,
--       measures = {               -- one list of events per measure
--           { { 12, { 1, 0 }, { 2, 1 } },   -- ticks, then {string, fret}
--             { 12 },                       -- a rest
--             { 12, tied = true },          -- the previous chord, tied
--             { 12, { 3, 5, tech = { { type = "hammer_on" } } } } },
--       } }
--
-- With `pickup`, the first measure is a pickup (number 0) as long as its
-- events. A legato technique without `from` gets the latest earlier note
-- on the same string. Raises on a description that breaks docs/tab.md.
-- @param spec the description
-- @return the tab document
function _M.build(spec)
    local ts = spec.time_signature or { 4, 4 }
    local tempo = spec.tempo_bpm or 120
    local capo = spec.capo or 0
    local tuning = copy_list(spec.tuning)
    local beat_ticks = math.floor(DIVISIONS * 4 / ts[2])
    local full_ticks = ts[1] * beat_ticks
    local whole = DIVISIONS * 4
    local sec_per_tick = 60 / tempo / DIVISIONS

    local pickup_ticks = 0
    if spec.pickup then
        for _, ev in ipairs(spec.measures[1]) do
            pickup_ticks = pickup_ticks + ev[1]
        end
    end

    local doc = {
        version = 1,
        title = spec.title,
        instrument = spec.instrument or "guitar",
        tuning = tuning,
        tuning_name = spec.tuning_name or "standard",
        capo = capo,
        tempo_bpm = tempo,
        time_signature = { ts[1], ts[2] },
        pickup_ticks = pickup_ticks,
        divisions = DIVISIONS,
        measures = {},
        notes = {},
        unplayable = {},
    }
    for i, u in ipairs(spec.unplayable or {}) do
        doc.unplayable[i] = { start_s = u.start_s, end_s = u.end_s,
                              pitch_midi = u.pitch_midi, reason = u.reason }
    end

    local notes = doc.notes
    local last_on_string = {}   -- string -> index of its latest note
    local prev_chord            -- note indices of the latest sounding event
    local tick = 0
    for mi, events in ipairs(spec.measures) do
        local number = spec.pickup and mi - 1 or mi
        local m_ticks = (spec.pickup and mi == 1) and pickup_ticks
                        or full_ticks
        -- Where the measure's first tick sits in a full bar: a pickup is
        -- the end of one.
        local offset = full_ticks - m_ticks
        local m = { number = number, start_s = tick * sec_per_tick,
                    start_tick = tick, ticks = m_ticks, events = {} }
        doc.measures[mi] = m
        local in_measure = 0
        for _, ev in ipairs(events) do
            local len = ev[1]
            -- Events count from their measure's start, notes from the piece's.
            local out = { tick = in_measure, ticks = len }
            if ev.tied then
                assert(prev_chord, "tied event with nothing to tie")
                out.notes = copy_list(prev_chord)
                out.tied = true
                for _, ni in ipairs(prev_chord) do
                    local n = notes[ni]
                    n.ticks = n.ticks + len
                    n.end_s = n.end_s + len * sec_per_tick
                end
            elseif #ev == 1 then
                out.rest = true
                prev_chord = nil
            else
                out.notes = {}
                for k = 2, #ev do
                    local sf = ev[k]
                    local s, fret = sf[1], sf[2]
                    assert(tuning[s], "no string " .. s)
                    local techs = copy_techniques(sf.tech)
                    for _, t in ipairs(techs) do
                        if (t.type == "hammer_on" or t.type == "pull_off"
                            or t.type == "slide") and not t.from then
                            t.from = assert(last_on_string[s],
                                            "legato note with no earlier note")
                        end
                    end
                    local idx = #notes + 1
                    notes[idx] = {
                        start_s = tick * sec_per_tick,
                        end_s = (tick + len) * sec_per_tick,
                        pitch_midi = tuning[s] + capo + fret,
                        velocity = sf.velocity or 80,
                        string = s,
                        fret = fret,
                        measure = number,
                        beat = 1 + (offset + in_measure) / beat_ticks,
                        tick = tick,
                        ticks = len,
                        techniques = techs,
                    }
                    out.notes[#out.notes + 1] = idx
                    last_on_string[s] = idx
                end
                prev_chord = out.notes
            end
            m.events[#m.events + 1] = out
            tick = tick + len
            in_measure = in_measure + len
        end
        assert(in_measure == m_ticks, ("measure %d holds %d ticks, not %d")
               :format(number, in_measure, m_ticks))
    end
    for _, n in ipairs(notes) do
        local g = gcd(n.ticks, whole)
        n.duration = (n.ticks / g) .. "/" .. (whole / g)
    end
    return doc
end


local function tech(t)
    return { t }
end


-- The samples, by name. Fingerings are the ones a guitarist would write;
-- between them they use every notatable length of docs/tab.md.
local SAMPLES = {
    -- Open G, C, D, Em, Am and a barre F, quarters and halves.
    chords = {
        title = "Open chords",
        instrument = "guitar", tuning = TUNINGS.guitar,
        measures = {
            { { 12, { 6, 3 }, { 5, 2 }, { 4, 0 }, { 3, 0 }, { 2, 0 },
                { 1, 3 } },
              { 12, { 5, 3 }, { 4, 2 }, { 3, 0 }, { 2, 1 }, { 1, 0 } },
              { 12, { 4, 0 }, { 3, 2 }, { 2, 3 }, { 1, 2 } },
              { 12, { 6, 0 }, { 5, 2 }, { 4, 2 }, { 3, 0 }, { 2, 0 },
                { 1, 0 } } },
            { { 24, { 5, 0 }, { 4, 2 }, { 3, 2 }, { 2, 1 }, { 1, 0 } },
              { 24, { 6, 1 }, { 5, 3 }, { 4, 3 }, { 3, 2 }, { 2, 1 },
                { 1, 1 } } },
        },
        unplayable = {
            { start_s = 1.2, end_s = 1.4, pitch_midi = 30,
              reason = "out_of_range" },
        },
    },
    -- Rests of every straight length, between single notes.
    rests = {
        instrument = "guitar", tuning = TUNINGS.guitar,
        measures = {
            { { 48 } },
            { { 3, { 1, 0 } }, { 3 }, { 6, { 2, 1 } }, { 6 },
              { 9, { 3, 2 } }, { 3 }, { 18 } },
            { { 12, { 4, 2 } }, { 36 } },
            { { 24 }, { 24, { 5, 3 } } },
        },
    },
    -- Ties within a measure and across the bar line; dotted lengths.
    ties = {
        instrument = "guitar", tuning = TUNINGS.guitar,
        measures = {
            { { 18, { 3, 2 } }, { 6, tied = true },
              { 12, { 2, 3 }, { 1, 2 } }, { 12, { 1, 0 } } },
            { { 48, tied = true } },
            { { 36, { 5, 0 } }, { 9, { 4, 2 } }, { 3, { 3, 2 } } },
            { { 12, tied = true }, { 36 } },
        },
    },
    -- 8th, 16th, quarter and half triplets, each group filling its beats.
    triplets = {
        instrument = "guitar", tuning = TUNINGS.guitar,
        measures = {
            { { 4, { 1, 0 } }, { 4, { 1, 3 } }, { 4, { 1, 5 } },
              { 2, { 2, 0 } }, { 2, { 2, 1 } }, { 2, { 2, 3 } },
              { 2, { 2, 1 } }, { 2, { 2, 0 } }, { 2, { 3, 2 } },
              { 8, { 3, 0 } }, { 8, { 3, 2 } }, { 8 } },
            { { 16, { 4, 2 } }, { 16, { 4, 0 } }, { 16, { 5, 2 } } },
            { { 8, { 1, 0 } }, { 4, { 2, 1 } }, { 12, { 3, 0 } },
              { 24 } },
        },
    },
    -- 3/4 at 90 bpm, dotted half at the end.
    waltz = {
        instrument = "guitar", tuning = TUNINGS.guitar,
        tempo_bpm = 90, time_signature = { 3, 4 },
        measures = {
            { { 12, { 6, 3 } }, { 12, { 3, 0 }, { 2, 0 } },
              { 12, { 3, 0 }, { 2, 0 } } },
            { { 12, { 5, 3 } }, { 12, { 3, 0 }, { 2, 1 } },
              { 12, { 3, 0 }, { 2, 1 } } },
            { { 36, { 6, 3 }, { 2, 0 }, { 1, 3 } } },
        },
    },
    -- A two-8th pickup into 4/4.
    pickup = {
        instrument = "guitar", tuning = TUNINGS.guitar,
        pickup = true, tempo_bpm = 100,
        measures = {
            { { 6, { 3, 0 } }, { 6, { 3, 2 } } },
            { { 12, { 2, 0 } }, { 12, { 2, 1 } }, { 12, { 2, 3 } },
              { 12, { 1, 0 } } },
            { { 48, { 1, 3 } } },
        },
    },
    -- Every technique of docs/tab.md.
    techniques = {
        instrument = "guitar", tuning = TUNINGS.guitar, tempo_bpm = 96,
        measures = {
            { { 12, { 3, 7, tech = tech({ type = "bend", semitones = 1,
                                          release = false }) } },
              { 12, { 2, 8, tech = tech({ type = "bend", semitones = 1.5,
                                          release = true }) } },
              { 12, { 3, 5, tech = tech({ type = "bend", semitones = 0.5,
                                          release = false }) } },
              { 12, { 1, 5, tech = tech({ type = "vibrato" }) } } },
            { { 6, { 3, 5 } },
              { 6, { 3, 7, tech = tech({ type = "hammer_on" }) } },
              { 6, { 2, 8 } },
              { 6, { 2, 5, tech = tech({ type = "pull_off" }) } },
              { 6, { 4, 5 } },
              { 6, { 4, 7, tech = tech({ type = "slide",
                                         direction = "up" }) } },
              { 12, { 4, 5, tech = tech({ type = "slide",
                                          direction = "down" }) } } },
            { { 12, { 6, 0, tech = tech({ type = "let_ring" }) } },
              { 12, { 3, 0, tech = tech({ type = "let_ring" }) } },
              { 12, { 2, 0, tech = tech({ type = "let_ring" }) } },
              { 12, { 1, 0, tech = { { type = "let_ring" },
                                     { type = "vibrato" } } } } },
        },
    },
    -- Chained legato (5h7p5h7) and a vibrato held through a tie across
    -- the bar line, then a slide up and back.
    legato = {
        instrument = "guitar", tuning = TUNINGS.guitar,
        measures = {
            { { 6, { 3, 5 } },
              { 6, { 3, 7, tech = tech({ type = "hammer_on" }) } },
              { 6, { 3, 5, tech = tech({ type = "pull_off" }) } },
              { 6, { 3, 7, tech = tech({ type = "hammer_on" }) } },
              { 12, { 2, 5, tech = tech({ type = "vibrato" }) } },
              { 12, { 2, 7, tech = tech({ type = "vibrato" }) } } },
            { { 12, tied = true }, { 12, { 4, 7 } },
              { 12, { 4, 9, tech = tech({ type = "slide",
                                          direction = "up" }) } },
              { 12, { 4, 7, tech = tech({ type = "slide",
                                          direction = "down" }) } } },
        },
    },
    -- The open-chord shapes of `chords` with capo 2: same frets, sounding
    -- a whole tone higher.
    capo2 = {
        instrument = "guitar", tuning = TUNINGS.guitar, capo = 2,
        measures = {
            { { 12, { 6, 3 }, { 5, 2 }, { 4, 0 }, { 3, 0 }, { 2, 0 },
                { 1, 3 } },
              { 12, { 5, 3 }, { 4, 2 }, { 3, 0 }, { 2, 1 }, { 1, 0 } },
              { 12, { 4, 0 }, { 3, 2 }, { 2, 3 }, { 1, 2 } },
              { 12, { 1, 7 } } },
        },
    },
    -- A walking line on 4-string bass.
    bass4 = {
        instrument = "bass", tuning = TUNINGS.bass4, tempo_bpm = 110,
        measures = {
            { { 12, { 4, 3 } }, { 12, { 3, 2 } }, { 12, { 3, 0 } },
              { 12, { 4, 5 } } },
            { { 12, { 3, 3 } }, { 12, { 2, 2 } }, { 12, { 2, 0 } },
              { 12, { 1, 0 } } },
        },
    },
    -- A riff on the low strings in drop D.
    drop_d = {
        instrument = "guitar", tuning = TUNINGS.drop_d, tuning_name = "drop_d",
        tempo_bpm = 140,
        measures = {
            { { 6, { 6, 0 }, { 5, 0 }, { 4, 0 } }, { 6, { 6, 0 } },
              { 6, { 6, 3 }, { 5, 3 }, { 4, 3 } }, { 6, { 6, 0 } },
              { 6, { 6, 5 }, { 5, 5 }, { 4, 5 } }, { 6, { 6, 0 } },
              { 12, { 6, 7 }, { 5, 7 }, { 4, 7 } } },
        },
    },
    -- 7-string guitar, down to the low B.
    guitar7 = {
        instrument = "guitar7", tuning = TUNINGS.guitar7,
        measures = {
            { { 12, { 7, 0 } }, { 12, { 7, 2 } }, { 12, { 6, 0 } },
              { 12, { 7, 0 }, { 6, 2 }, { 5, 2 } } },
        },
    },
    -- Ukulele, re-entrant G.
    ukulele = {
        instrument = "ukulele", tuning = TUNINGS.ukulele,
        measures = {
            { { 24, { 4, 0 }, { 3, 0 }, { 2, 0 }, { 1, 3 } },
              { 24, { 4, 2 }, { 3, 2 }, { 2, 1 }, { 1, 0 } } },
        },
    },
}

local NAMES = {}
for name in pairs(SAMPLES) do
    NAMES[#NAMES + 1] = name
end
table.sort(NAMES)


--- The sample names, sorted.
-- @return a fresh list of names
function _M.names()
    return copy_list(NAMES)
end


--- A sample document, freshly built (callers may change it).
-- @param name one of `names()`
-- @return the tab document; raises on an unknown name
function _M.sample(name)
    local spec = SAMPLES[name]
    if not spec then
        error("no tab sample " .. tostring(name), 2)
    end
    return _M.build(spec)
end


--- A long guitar document of about `n_notes` notes (8th-note arpeggios
-- and chords, 4/4), for speed checks.
-- @param n_notes how many notes, at least
-- @return the tab document
function _M.large(n_notes)
    local bar = {
        { 6, { 6, 3 } }, { 6, { 4, 0 } }, { 6, { 3, 0 } }, { 6, { 2, 0 } },
        { 6, { 1, 3 }, { 2, 0 } }, { 6, { 2, 0 } }, { 6, { 3, 0 } },
        { 6, { 4, 0 } },
    }
    local per_bar = 9
    local measures = {}
    for i = 1, math.ceil(n_notes / per_bar) do
        measures[i] = bar
    end
    return _M.build({ instrument = "guitar", tuning = TUNINGS.guitar,
                      tempo_bpm = 120, measures = measures })
end

return _M
