--- The tab document as JSON (docs/tab.md, "The tab document").
--
-- Written in C (core/tab/wtt_tab_json.c, through wtt.core.tabout) rather
-- than with cjson: Debian's lua-cjson has no array marker, so an empty
-- list (no techniques, nothing unplayable) would come out as {}. Keys are
-- written in a fixed order so the files diff well; strings are escaped as
-- wtt.json escapes them and numbers written as LuaJIT writes them.

local tabout = require "wtt.core.tabout"

local _M = {}


--- Encodes a tab document as JSON.
-- @param doc the tab document (docs/tab.md)
-- @return the JSON text, or nil and an error naming the field of a
--   malformed document
function _M.encode(doc)
    if type(doc) ~= "table" then
        error("json.encode: doc must be a table", 2)
    end
    return tabout.json(doc)
end


return _M
