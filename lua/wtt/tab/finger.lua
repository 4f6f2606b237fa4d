--- String-and-fret fingering: a Viterbi search over chord fingerings
-- through the whole piece (docs/tab.md, "Fingering").
--
-- Notes that start together (within `chord_gap_ms` of the chord's previous
-- note and `chord_window_ms` of its first) form a chord. The search itself
-- runs in C (core/tab/wtt_fingering.c, through `wtt.core.tab`): each
-- chord's candidate fingerings (distinct strings, fretted notes within the
-- span limit, on at most four distinct frets), their shape costs, the
-- transition costs between consecutive candidates with the hand's position
-- carried along the best path, and the cheapest path through the piece.
-- This side keeps what is about notes rather than costs: range checks and
-- octave folding, chord grouping, removing notes from chords that cannot
-- be fingered (asking C whether a chord can be), assigning the results and
-- listing what could not be played.
--
-- Frets are counted from the capo, as tabs are written.

local core = require "wtt.core.tab"

local floor = math.floor
local max = math.max
local min = math.min
local huge = math.huge
local remove = table.remove
local ipairs = ipairs

local _M = {}


-- The note to remove from `chord`: the first inner note whose pitch class
-- is doubled, else the middle one (or the last of two).
local function pick(chord)
    local k = #chord
    local seen = {}
    for i = 1, k do
        local pc = chord[i].pitch % 12
        seen[pc] = (seen[pc] or 0) + 1
    end
    for i = 2, k - 1 do
        if seen[chord[i].pitch % 12] > 1 then
            return i
        end
    end
    return k > 2 and floor((k + 1) / 2) or k
end


-- Removes notes from a chord until `fits(chord)`; the removed ones are
-- returned in order. Doubled pitch classes go first, then inner voices;
-- the lowest and highest notes (bass and melody) go last.
local function reduce(chord, fits, removed)
    while true do
        local ok, err = fits(chord)
        if ok == nil then
            return nil, err
        end
        if ok then
            return true
        end
        removed[#removed + 1] = remove(chord, pick(chord))
    end
end


-- The chords' notes as the flat arrays the search takes.
local function flatten(chords)
    local pitches, starts, ends, sizes = {}, {}, {}, {}
    local i = 0
    for c, chord in ipairs(chords) do
        for _, n in ipairs(chord) do
            i = i + 1
            pitches[i], starts[i], ends[i] = n.pitch, n.start_s, n.end_s
        end
        sizes[c] = #chord
    end
    return pitches, starts, ends, sizes
end


-- Stable insertion sorts. The lists here come nearly sorted (chords in
-- time order, a few notes each), and unlike table.sort their comparisons
-- are compiled, not calls from C back into Lua; each is written out for
-- its order so no comparator is called at all.

-- By pitch, then start.
local function sort_by_pitch(list)
    for i = 2, #list do
        local v = list[i]
        local vp, vs = v.pitch, v.start_s
        local j = i - 1
        while j >= 1 do
            local u = list[j]
            local up = u.pitch
            if vp < up or (vp == up and vs < u.start_s) then
                list[j + 1] = u
                j = j - 1
            else
                break
            end
        end
        list[j + 1] = v
    end
end


-- By start, then pitch (`by_pitch` false: by start alone).
local function sort_by_time(list, by_pitch)
    for i = 2, #list do
        local v = list[i]
        local vs, vp = v.start_s, v.pitch
        local j = i - 1
        while j >= 1 do
            local u = list[j]
            local us = u.start_s
            if vs < us or (by_pitch and vs == us and vp < u.pitch) then
                list[j + 1] = u
                j = j - 1
            else
                break
            end
        end
        list[j + 1] = v
    end
end


local function pitches_of(chord)
    local out = {}
    for i, n in ipairs(chord) do
        out[i] = n.pitch
    end
    return out
end


--- Fingers `notes` (sorted by start_s, then pitch) on `inst`.
-- Sets note.string, note.fret and note.chord (chord index) on every note
-- it can place.
-- @param inst an instrument from wtt.tab.instrument.resolve
-- @param w weights { move, move_line, stretch, height, home, open,
--   string, ring, skip, cross, bass }
-- @param lim { span, span_open, chord_gap_ms, chord_window_ms,
--   candidates }
-- @param fold move out-of-range notes by octaves instead of reporting them
-- @return placed notes (in order), unplayable list, stats { chords,
--   transitions (candidate pairs weighed: the search's work) }
--   | nil, err (settings out of range)
function _M.run(notes, inst, w, lim, fold)
    local f, err = core.fingering(inst, w, lim)
    if not f then
        return nil, "fingering failed: " .. err
    end
    local unplayable = {}
    local window = lim.chord_window_ms / 1000
    local gap = lim.chord_gap_ms / 1000
    local nstrings = #inst.tuning

    -- Range (and octave folding).
    local inrange = {}
    local fits = {}            -- pitch -> whether it has a position
    for _, n in ipairs(notes) do
        local ok = fits[n.pitch]
        if ok == nil then
            ok = f:positions(n.pitch) and true or false
            fits[n.pitch] = ok
        end
        if not ok and fold then
            local lo = huge
            for _, open in ipairs(inst.tuning) do
                lo = min(lo, open + inst.capo)
            end
            local hi = -huge
            for _, open in ipairs(inst.tuning) do
                hi = max(hi, open + inst.max_fret)
            end
            local p = n.pitch
            while p < lo do p = p + 12 end
            while p > hi do p = p - 12 end
            ok = f:positions(p)
            if ok then
                unplayable[#unplayable + 1] = {
                    start_s = n.start_s, end_s = n.end_s,
                    pitch_midi = n.pitch, reason = "out_of_range",
                    folded_to = p }
                n.pitch = p
            end
        end
        if not ok then
            unplayable[#unplayable + 1] = {
                start_s = n.start_s, end_s = n.end_s, pitch_midi = n.pitch,
                reason = "out_of_range" }
        else
            inrange[#inrange + 1] = n
        end
    end

    -- Chords.
    local chords = {}
    local i, ni = 1, #inrange
    while i <= ni do
        -- A note joins the chord when it starts within `gap` of the
        -- chord's previous note and `window` of its first: a strum's
        -- strings follow each other closely, and chords stay apart by more
        -- than `gap`, so notes of two chords never sound almost at once.
        local anchor = inrange[i].start_s
        local chord = { inrange[i] }
        i = i + 1
        while i <= ni and inrange[i].start_s - anchor <= window
              and inrange[i].start_s - inrange[i - 1].start_s <= gap do
            chord[#chord + 1] = inrange[i]
            i = i + 1
        end
        if #chord > 1 then
            sort_by_pitch(chord)
        end
        chords[#chords + 1] = chord
    end

    -- Chords the hand cannot hold lose notes: first down to the number of
    -- strings, then until C finds a fingering. Removals are listed chord
    -- by chord.
    local removed = {}
    local function fewer(chord)
        return #chord <= nstrings
    end
    local function playable(chord)
        return f:playable(pitches_of(chord))
    end
    for c, chord in ipairs(chords) do
        if #chord > nstrings then
            removed[c] = {}
            reduce(chord, fewer, removed[c])
        end
    end
    local pitches, starts, ends, sizes = flatten(chords)
    local missing
    missing, err = f:unplayable(pitches, sizes)
    if not missing then
        return nil, "fingering failed: " .. err
    end
    if #missing > 0 then
        for _, c in ipairs(missing) do
            removed[c] = removed[c] or {}
            local ok
            ok, err = reduce(chords[c], playable, removed[c])
            if not ok then
                return nil, "fingering failed: " .. err
            end
        end
        pitches, starts, ends, sizes = flatten(chords)
    end
    for c = 1, #chords do
        for _, n in ipairs(removed[c] or {}) do
            unplayable[#unplayable + 1] = {
                start_s = n.start_s, end_s = n.end_s, pitch_midi = n.pitch,
                reason = "too_many_notes" }
        end
    end

    -- The search, and its answer assigned.
    local strings, frets, steps = f:search(pitches, starts, ends, sizes)
    if not strings then
        return nil, "fingering failed: " .. frets
    end
    local placed = {}
    local k = 0
    for c, chord in ipairs(chords) do
        for _, n in ipairs(chord) do
            k = k + 1
            n.string, n.fret, n.chord = strings[k], frets[k], c
            placed[k] = n
        end
    end
    sort_by_time(placed, true)
    sort_by_time(unplayable, false)
    return placed, unplayable, { transitions = steps, chords = #chords }
end


--- The naive baseline: every note on the string that gives it the lowest
-- fret (what a tool with no search does). Sets string and fret.
function _M.lowest(notes, inst)
    local f = assert(core.fingering(inst))
    for _, n in ipairs(notes) do
        local o = { f:positions(n.pitch) }
        local best
        for j = 1, #o, 2 do
            if not best or o[j + 1] < o[best + 1] then
                best = j
            end
        end
        if best then
            n.string, n.fret = o[best], o[best + 1]
        end
    end
    return notes
end


return _M
