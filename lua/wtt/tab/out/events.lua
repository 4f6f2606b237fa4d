--- What the alphaTex and Guitar Pro encoders read from a tab document
-- (docs/tab.md) beyond its fields: the written value of an event's length,
-- where a tied note is last sounded, and which notes start a legato
-- technique.
--
-- Both formats, like alphaTab's model, put hammer-ons, pull-offs and slides
-- on the note the hand moves *from*, and a tie on the note that continues;
-- the document puts legato techniques on the note moved *to* (with `from`)
-- and ties on the continuing event. These helpers turn one into the other
-- once, for both encoders.

local floor = math.floor
local format = string.format
local ipairs = ipairs

local _M = {}


--- The written value of an event `ticks` long.
-- @param ticks the event's length
-- @param divisions ticks per quarter note
-- @return value (1 whole, 2 half, 4, 8, 16, 32), dots (0 or 1), tuplet
--   (3 for a 3:2 triplet, or nil) | nil, err when no single value fits
function _M.value(ticks, divisions)
    local whole = 4 * divisions
    -- Straight, dotted, then triplet: the first that divides evenly.
    for _, v in ipairs({ 1, 2, 4, 8, 16, 32 }) do
        if ticks * v == whole then
            return v, 0, nil
        end
        if ticks * v * 2 == whole * 3 then
            return v, 1, nil
        end
        if ticks * v * 3 == whole * 2 then
            return v, 0, 3
        end
    end
    return nil, ("an event of %s ticks (%s per quarter) is not one "
                 .. "notatable value"):format(ticks, divisions)
end


--- The events whose chord goes on sounding into the next event (the next
-- one, maybe across a bar line, is its tied continuation).
-- @param doc the tab document
-- @return set: event table -> true
function _M.tied_on(doc)
    -- Each event looks at the next one (no variable carried from one
    -- iteration to the next, which keeps LuaJIT's trace stable).
    local set = {}
    local ms = doc.measures
    for mi = 1, #ms do
        local evs = ms[mi].events
        for i = 1, #evs do
            local nxt = evs[i + 1]
            if not nxt then
                local nm = ms[mi + 1]
                nxt = nm and nm.events[1]
            end
            if nxt and nxt.tied then
                set[evs[i]] = true
            end
        end
    end
    return set
end


--- The legato technique each note starts, keyed by note index: "hopo"
-- (hammer-on or pull-off) or "slide", taken from the notes that name it
-- as their `from`.
-- @param doc the tab document
-- @return table note index -> "hopo" | "slide"
function _M.legato_origins(doc)
    local origins = {}
    for _, n in ipairs(doc.notes) do
        for _, t in ipairs(n.techniques or {}) do
            if t.from then
                if t.type == "hammer_on" or t.type == "pull_off" then
                    origins[t.from] = "hopo"
                elseif t.type == "slide" then
                    origins[t.from] = "slide"
                end
            end
        end
    end
    return origins
end


--- The first technique of `type` on a note, or nil.
function _M.technique(note, type)
    for _, t in ipairs(note.techniques or {}) do
        if t.type == type then
            return t
        end
    end
    return nil
end


--- Quarter tones of a bend of `semitones` (docs/tab.md: 0.5 steps), the
-- unit both formats count bends in.
function _M.quarter_tones(semitones)
    return floor(semitones * 2 + 0.5)
end


--- A number as both formats write it: an integer without a fraction,
-- anything else with at most three decimals ("117.25").
function _M.decimal(x)
    if x % 1 == 0 then
        return format("%d", x)
    end
    return (format("%.3f", x):gsub("0+$", ""))
end


return _M
