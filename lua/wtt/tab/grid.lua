--- The measure grid: note onsets and lengths quantised to 16ths and
-- triplets, one voice of events per measure (docs/tab.md, "Rhythm").
--
--     local measures, err = grid.build(notes, r, opts, doc)
--
-- r is wtt.tab.rhythm's estimate. Sets note.tick, .ticks, .measure, .beat
-- and .duration on every note, and returns the measures of the tab
-- document. opts.grid_weights (optional) overrides some of the costs of
-- the quantisation (err, c8, c16, t3, t6, switch, collide: see
-- core/tab/wtt_grid.h and docs/tab.md). doc: true when the notes become
-- a tab document's, so each also gets pitch_midi = pitch in the same pass.
--
-- The quantisation, the beat types' dynamic program and the events run
-- in C (core/tab/wtt_grid.c, through wtt.core.grid), which reads the
-- estimate's chords and makes the measures' and events' tables itself.

local rhythm = require "wtt.tab.rhythm"
local core = require "wtt.core.grid"

local _M = {}

local DIVISIONS = 12       -- ticks per quarter note
local WHOLE = 4 * DIVISIONS
_M.DIVISIONS = DIVISIONS

-- The notation of each notatable length (docs/tab.md).
local NOTATION = {
    [48] = { "whole", 0 }, [36] = { "half", 1 }, [24] = { "half", 0 },
    [18] = { "quarter", 1 }, [12] = { "quarter", 0 }, [9] = { "eighth", 1 },
    [6] = { "eighth", 0 }, [3] = { "16th", 0 },
    [16] = { "half", 0, true }, [8] = { "quarter", 0, true },
    [4] = { "eighth", 0, true }, [2] = { "16th", 0, true },
}


--- The notation of a length in ticks: { type = "quarter", dots = 0,
-- tuplet = nil | {3, 2} }, or nil, err when it is not a notatable value.
function _M.notation(ticks)
    local n = NOTATION[ticks]
    if not n then
        return nil, "not a notatable length: " .. tostring(ticks) .. " ticks"
    end
    return { type = n[1], dots = n[2], tuplet = n[3] and { 3, 2 } or nil }
end


--- Ticks per beat for a time signature's beat_type (4 -> 12).
function _M.beat_ticks(beat_type)
    return WHOLE / beat_type
end


local function gcd(a, b)
    while b ~= 0 do
        a, b = b, a % b
    end
    return a
end


--- A length in ticks as a reduced fraction of a whole note ("3/16").
local function fraction(ticks)
    local g = gcd(ticks, WHOLE)
    return (ticks / g) .. "/" .. (WHOLE / g)
end
_M.fraction = fraction


--- See the module's head.
function _M.build(notes, r, opts, doc)
    if type(r) ~= "table" or type(r.beats) ~= "table" then
        return nil, "rhythm estimate missing"
    end
    -- the estimate's own chords when it was made from these notes
    local ch = r.chords_of == notes and r.chords or rhythm.chords(notes)
    return core.build(notes, r, ch, opts and opts.grid_weights, doc)
end


return _M
