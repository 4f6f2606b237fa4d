--- ASCII tab in the conventions of the big tab sites: the highest string on
-- top, tuning labels, bar lines, technique letters (h p b r / \ ~), lines
-- wrapped at 80 columns on measure boundaries.
--
-- Each event takes one column as wide as its widest token, followed by
-- dashes in proportion to its length (a 16th gets one), so the spacing
-- reads as rhythm. A tied continuation shows only dashes.
--
-- Written in C (core/tab/wtt_tab_ascii.c, through wtt.core.tabout).

local tabout = require "wtt.core.tabout"

local _M = {}


--- Encodes a tab document as ASCII tab.
-- @param doc the tab document (docs/tab.md)
-- @return the tab as text, or nil and an error naming the field of a
--   malformed document
function _M.encode(doc)
    if type(doc) ~= "table" then
        error("ascii.encode: doc must be a table", 2)
    end
    return tabout.ascii(doc)
end


return _M
