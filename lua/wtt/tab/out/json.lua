--- The tab document as JSON (docs/tab.md, "The tab document").
--
-- Written by hand, not with cjson: Debian's lua-cjson has no array marker,
-- so an empty list (no techniques, nothing unplayable) would come out as
-- {}. Keys are written in a fixed order so the files diff well. The text
-- goes into one string buffer: a ten-minute piece has 10,000 notes, and a
-- Lua string per number would cost more than the writing. The buffer is
-- held between calls (wtt.tab.out.held says why).

local json = require "wtt.json"
local held = require "wtt.tab.out.held"

local floor = math.floor
local ipairs = ipairs
local tostring = tostring
local type = type

local _M = {}

local OUT = held.new()


-- Numbers as LuaJIT writes them (%.14g, its own fast formatter: a
-- printf per number was most of the time); integers without a fraction.
local function put_num(b, x)
    if x ~= x or x == math.huge or x == -math.huge then
        b:put("null")
    elseif x == floor(x) and x >= -2^53 and x <= 2^53 then
        b:putf("%d", x)
    else
        b:put(x)
    end
end


local function put_ints(b, list)
    b:put("[")
    for i, v in ipairs(list) do
        if i > 1 then
            b:put(",")
        end
        put_num(b, v)
    end
    b:put("]")
end


-- Strings as JSON, memoised: they are few (technique types, reasons,
-- directions, the title), written thousands of times.
local QUOTED = setmetatable({}, { __mode = "k", __index = function(t, v)
    local q = json.encode(tostring(v))
    t[v] = q
    return q
end })


-- The fields of `t` in `order` (absent values skipped), no braces.
local function put_fields(b, t, order)
    local first = true
    for _, k in ipairs(order) do
        local v = t[k]
        if v ~= nil then
            b:put(first and '"' or ',"', k, '":')
            first = false
            local ty = type(v)
            if ty == "number" then
                put_num(b, v)
            elseif ty == "boolean" then
                b:put(v and "true" or "false")
            elseif ty == "table" then
                put_ints(b, v)
            else
                b:put(QUOTED[v])
            end
        end
    end
end


local function put_object(b, t, order)
    b:put("{")
    put_fields(b, t, order)
    b:put("}")
end


local HEAD = { "version", "title", "instrument", "tuning", "tuning_name",
               "capo", "tempo_bpm", "time_signature", "pickup_ticks",
               "divisions" }
local MEASURE = { "number", "start_s", "start_tick", "ticks" }
local TECH = { "type", "semitones", "release", "from", "direction" }
local UNPLAYABLE = { "start_s", "end_s", "pitch_midi", "reason", "folded_to" }


--- @return the JSON text
function _M.encode(doc)
    local b = OUT
    b:reset()
    -- Room for the whole text at once on a first call (about 230 bytes a
    -- note), rather than growing it by copies.
    b:reserve(256 * (#doc.notes + #doc.measures) + 1024)
    b:put("{")
    put_fields(b, doc, HEAD)
    b:put(',\n"measures":[\n')
    for i, m in ipairs(doc.measures) do
        if i > 1 then
            b:put(",\n")
        end
        b:putf('{"number":%d,"start_s":', m.number)
        put_num(b, m.start_s)
        b:putf(',"start_tick":%d,"ticks":%d,"events":[', m.start_tick,
               m.ticks)
        for j, e in ipairs(m.events) do
            if j > 1 then
                b:put(",")
            end
            if e.rest then
                b:putf('{"tick":%d,"ticks":%d,"rest":true}', e.tick, e.ticks)
            else
                b:putf('{"tick":%d,"ticks":%d,"notes":', e.tick, e.ticks)
                put_ints(b, e.notes)
                b:put(e.tied and ',"tied":true}' or "}")
            end
        end
        b:put("]}")
    end
    b:put('],\n"notes":[\n')
    for i, n in ipairs(doc.notes) do
        if i > 1 then
            b:put(",\n")
        end
        b:put('{"start_s":')
        put_num(b, n.start_s)
        b:put(',"end_s":')
        put_num(b, n.end_s)
        b:putf(',"pitch_midi":%d,"velocity":%d,"string":%d,"fret":%d,'
               .. '"measure":%d,"beat":', n.pitch_midi, n.velocity or 0,
               n.string, n.fret, n.measure)
        put_num(b, n.beat)
        b:putf(',"duration":"%s","tick":%d,"ticks":%d,"techniques":[',
               n.duration, n.tick, n.ticks)
        for j, t in ipairs(n.techniques or {}) do
            if j > 1 then
                b:put(",")
            end
            put_object(b, t, TECH)
        end
        b:put("]}")
    end
    b:put('],\n"unplayable":[')
    for i, u in ipairs(doc.unplayable) do
        if i > 1 then
            b:put(",\n")
        end
        put_object(b, u, UNPLAYABLE)
    end
    b:put("]}\n")
    return held.take(b)
end


return _M
