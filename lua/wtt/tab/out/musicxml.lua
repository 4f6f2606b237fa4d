--- MusicXML 4.0 of a tab document (docs/tab.md, "MusicXML"): one part
-- with two staves, standard notation on staff 1 and TAB on staff 2, the
-- TAB staff carrying the tuning, the capo and every note's string and fret.
--
-- Written in C (core/tab/wtt_tab_musicxml.c, through wtt.core.tabout):
-- a ten-minute piece is some 3.5 MB of XML.

local tabout = require "wtt.core.tabout"

local _M = {}


--- Encodes a tab document as MusicXML 4.0 (score-partwise).
-- @param doc the tab document (docs/tab.md)
-- @return the XML text, or nil and an error naming the event or note that
--   cannot be written (or the field of a malformed document)
function _M.encode(doc)
    if type(doc) ~= "table" then
        error("musicxml.encode: doc must be a table", 2)
    end
    return tabout.musicxml(doc)
end


return _M
