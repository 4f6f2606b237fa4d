--- String-and-fret fingering: a Viterbi search over chord fingerings
-- through the whole piece (docs/tab.md, "Fingering").
--
-- Notes that start together (within `chord_gap_ms` of the chord's previous
-- note and `chord_window_ms` of its first) form a chord. All of it runs in
-- C (core/tab/wtt_fingering.c, wtt_finger_run, through `wtt.core.tab`):
-- range checks and octave folding, chord grouping, removing notes from
-- chords that cannot be fingered, each chord's candidate fingerings
-- (distinct strings, fretted notes within the span limit, on at most four
-- distinct frets) and their shape costs, the transition costs between
-- consecutive candidates with the hand's position carried along the best
-- path, the cheapest path through the piece, and assigning its answer to
-- the notes. A first call (one `wtt tab`) would otherwise spend most of
-- its time compiling this side's loops.
--
-- Frets are counted from the capo, as tabs are written.

local core = require "wtt.core.tab"

local ipairs = ipairs

local _M = {}


--- Fingers `notes` (sorted by start_s, then pitch) on `inst`.
-- Sets note.string, note.fret and note.chord (chord index) on every note
-- it can place, and note.pitch on every note it folds.
-- @param inst an instrument from wtt.tab.instrument.resolve
-- @param w weights { move, move_line, stretch, height, home, open,
--   string, ring, skip, cross, bass }
-- @param lim { span, span_open, chord_gap_ms, chord_window_ms,
--   candidates }
-- @param fold move out-of-range notes by octaves instead of reporting them
-- @return placed notes (by start, then pitch), unplayable list
--   ({ start_s, end_s, pitch_midi, reason, folded_to? }, by start),
--   stats { chords, transitions (candidate pairs weighed: the search's
--   work) } | nil, err (settings out of range)
function _M.run(notes, inst, w, lim, fold)
    local f, err = core.fingering(inst, w, lim)
    if not f then
        return nil, "fingering failed: " .. err
    end
    local placed, unplayable, transitions, chords = f:run(notes, fold)
    if not placed then
        return nil, "fingering failed: " .. unplayable
    end
    return placed, unplayable, { transitions = transitions, chords = chords }
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
