--- Guitar Pro 7 (.gp) from a tab document (docs/tab.md).
--
--     local bytes, err = require("wtt.tab.out.gp").encode(doc)
--
-- A .gp file is a zip archive whose `Content/score.gpif` holds the score
-- as GPIF XML: a Score (title), a MasterTrack (tracks, tempo automation,
-- pickup), Tracks (one staff with its Tuning and CapoFret properties),
-- MasterBars (time signature, one Bar per track), then Bars, Voices, Beats,
-- Notes and Rhythms, each a flat list that the one before refers to by id.
-- Equal beats, notes and rhythms are written once and shared, as Guitar Pro
-- does.
--
-- GPIF counts strings from the lowest, from 0 (`String`), and lists the
-- tuning lowest first; the document counts from the highest, from 1. Frets
-- count from the capo in both (alphaTab sounds a note at tuning + capo +
-- fret). Hammer-ons, pull-offs and slides are marked on the note the hand
-- leaves (`HopoOrigin`, `Slide` flags 2 = legato) and the one it reaches
-- (`HopoDestination`); bends are in GPIF units of 25 per quarter tone.
--
-- The GPIF is written in C (core/tab/wtt_tab_gpif.c, through
-- wtt.core.tabout); the zip around it is lua/wtt/zip.lua.

local tabout = require "wtt.core.tabout"
local zip = require "wtt.zip"

local _M = {}

-- Deflate level of score.gpif: on GPIF's repetitive XML, 1 is more than
-- twice as fast as 6 for a file about 5% larger.
local LEVEL = 1


--- The GPIF XML of `doc` (the content of Content/score.gpif).
-- @param doc the tab document
-- @return the XML | nil, err when an event is not one notatable length
function _M.gpif(doc)
    if type(doc) ~= "table" then
        error("gp.gpif: doc must be a table", 2)
    end
    return tabout.gpif(doc)
end


--- Writes `doc` as a Guitar Pro 7 file.
-- @param doc the tab document
-- @return the .gp bytes | nil, err
function _M.encode(doc)
    local xml, err = _M.gpif(doc)
    if not xml then
        return nil, err
    end
    return _M.pack(xml)
end


--- The .gp file around a GPIF text (as `gpif` makes it).
-- @return the .gp bytes | nil, err
function _M.pack(xml)
    return zip.archive({
        { name = "VERSION", data = "7.0", store = true },
        { name = "Content/score.gpif", data = xml },
    }, { level = LEVEL })
end


return _M
