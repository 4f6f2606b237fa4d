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
--
-- Written in C (core/tab/wtt_tab_alphatex.c, through wtt.core.tabout).

local tabout = require "wtt.core.tabout"

local _M = {}


--- Writes `doc` as alphaTex.
-- @param doc the tab document
-- @return the alphaTex text | nil, err when an event is not one
--   notatable length ("measure N: an event of T ticks ...") or the
--   document is malformed
function _M.encode(doc)
    if type(doc) ~= "table" then
        error("alphatex.encode: doc must be a table", 2)
    end
    return tabout.alphatex(doc)
end


return _M
