--- Playing techniques from what the transcription knows (docs/tab.md,
-- "Techniques"):
-- - bends and vibrato from a note's pitch-bend contour (1/3-semitone bins
--   per frame, relative to the note's pitch);
-- - hammer-ons, pull-offs and slides where a note follows another on the
--   same string with no new pluck: its onset posterior stayed low. Notes
--   read from a CSV or MIDI file carry no onset strength, so they get none;
-- - let-ring where a note is still sounding when a later one starts on
--   another string.
--
-- The pass over the notes and their contours runs in C
-- (core/tab/wtt_technique.c, through wtt.core.technique), which reads each
-- note's fields from its table and sets its `techniques`.

local core = require "wtt.core.technique"

local _M = {}


-- Most notes have no technique, and many only let ring: they share these
-- two read-only lists rather than each making its own (a ten-minute piece
-- has 10,000 notes).
local function frozen(t)
    return setmetatable(t, { __newindex = function()
        error("a shared technique list is read-only", 2)
    end })
end
local NONE = frozen({})
local LET_RING = frozen({ frozen({ type = "let_ring" }) })


--- Adds `techniques` to every placed note (sorted by start). Notes with
-- none, or only let-ring, share one read-only list.
function _M.annotate(notes)
    return core.annotate(notes, NONE, LET_RING)
end


return _M
