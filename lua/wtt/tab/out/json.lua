--- The tab document as JSON (docs/tab.md, "The tab document").
--
-- Written by hand, not with cjson: Debian's lua-cjson has no array marker,
-- so an empty list (no techniques, nothing unplayable) would come out as
-- {}. Keys are written in a fixed order so the files diff well.

local json = require "wtt.json"

local floor = math.floor
local format = string.format
local concat = table.concat
local ipairs = ipairs
local tostring = tostring
local type = type

local _M = {}


local function num(x)
    if x ~= x or x == math.huge or x == -math.huge then
        return "null"
    end
    if x == floor(x) and x >= -2^53 and x <= 2^53 then
        return format("%d", x)
    end
    -- Microseconds are plenty for times and beats.
    return format("%.6f", x)
end


local function str(s)
    return json.encode(tostring(s))
end


local function ints(list)
    local out = {}
    for i, v in ipairs(list) do
        out[i] = num(v)
    end
    return "[" .. concat(out, ",") .. "]"
end


-- An object with keys in `order` (absent values skipped).
local function object(t, order)
    local parts = {}
    for _, k in ipairs(order) do
        local v = t[k]
        if v ~= nil then
            local s
            local ty = type(v)
            if ty == "number" then
                s = num(v)
            elseif ty == "boolean" then
                s = v and "true" or "false"
            elseif ty == "table" then
                s = ints(v)
            else
                s = str(v)
            end
            parts[#parts + 1] = '"' .. k .. '":' .. s
        end
    end
    return "{" .. concat(parts, ",") .. "}"
end


local MEASURE = { "number", "start_s", "start_tick", "ticks" }
local TECH = { "type", "semitones", "release", "from", "direction" }
local UNPLAYABLE = { "start_s", "end_s", "pitch_midi", "reason", "folded_to" }


--- @return the JSON text
function _M.encode(doc)
    local measures = {}
    for i, m in ipairs(doc.measures) do
        local events = {}
        for j, e in ipairs(m.events) do
            if e.rest then
                events[j] = format('{"tick":%d,"ticks":%d,"rest":true}',
                                   e.tick, e.ticks)
            else
                events[j] = format('{"tick":%d,"ticks":%d,"notes":%s%s}',
                                   e.tick, e.ticks, ints(e.notes),
                                   e.tied and ',"tied":true' or "")
            end
        end
        local head = object(m, MEASURE)
        measures[i] = head:sub(1, -2) .. ',"events":['
                      .. concat(events, ",") .. "]}"
    end
    local notes = {}
    for i, n in ipairs(doc.notes) do
        local techs = ""
        if n.techniques and n.techniques[1] then
            local list = {}
            for j, t in ipairs(n.techniques) do
                list[j] = object(t, TECH)
            end
            techs = concat(list, ",")
        end
        -- One format per note: this runs 10,000 times for ten minutes.
        notes[i] = format('{"start_s":%s,"end_s":%s,"pitch_midi":%d,'
            .. '"velocity":%d,"string":%d,"fret":%d,"measure":%d,'
            .. '"beat":%s,"duration":"%s","tick":%d,"ticks":%d,'
            .. '"techniques":[%s]}',
            num(n.start_s), num(n.end_s), n.pitch_midi, n.velocity or 0,
            n.string, n.fret, n.measure, num(n.beat), n.duration, n.tick,
            n.ticks, techs)
    end
    local unplayable = {}
    for i, u in ipairs(doc.unplayable) do
        unplayable[i] = object(u, UNPLAYABLE)
    end
    local head = object(doc, { "version", "title", "instrument", "tuning",
                               "tuning_name", "capo", "tempo_bpm",
                               "time_signature", "pickup_ticks",
                               "divisions" })
    return head:sub(1, -2)
        .. ',\n"measures":[\n' .. concat(measures, ",\n")
        .. '],\n"notes":[\n' .. concat(notes, ",\n")
        .. '],\n"unplayable":[' .. concat(unplayable, ",\n") .. "]}\n"
end


return _M
