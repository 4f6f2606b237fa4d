--- ASCII tab in the conventions of the big tab sites: the highest string on
-- top, tuning labels, bar lines, technique letters (h p b r / \ ~), lines
-- wrapped at 80 columns on measure boundaries.
--
-- Each event takes one column as wide as its widest token, followed by
-- dashes in proportion to its length (a 16th gets one), so the spacing
-- reads as rhythm. A tied continuation shows only dashes.

local instrument = require "wtt.tab.instrument"

local floor = math.floor
local max = math.max
local rep = string.rep
local format = string.format
local concat = table.concat
local ipairs = ipairs
local tostring = tostring

local _M = {}

local WIDTH = 80

-- Runs of dashes by length (the encoder asks for the same few often).
local DASHES = setmetatable({}, { __index = function(t, n)
    local s = rep("-", n)
    t[n] = s
    return s
end })


-- Fret numbers as text, made once.
local FRETS = setmetatable({}, { __index = function(t, f)
    local s = tostring(f)
    t[f] = s
    return s
end })


-- The token of one note: its fret with the technique letters around it.
local function token(n, notes)
    if not n.techniques or not n.techniques[1] then
        return FRETS[n.fret]
    end
    local before, after = "", ""
    for _, t in ipairs(n.techniques or {}) do
        local ty = t.type
        if ty == "hammer_on" then
            before = "h"
        elseif ty == "pull_off" then
            before = "p"
        elseif ty == "slide" then
            before = t.direction == "down" and "\\" or "/"
        elseif ty == "bend" then
            after = after .. "b" .. tostring(n.fret + floor(t.semitones + 0.5))
            if t.release then
                after = after .. "r" .. tostring(n.fret)
            end
        elseif ty == "vibrato" then
            after = after .. "~"
        end
    end
    return before .. tostring(n.fret) .. after
end


-- One measure as per-string column strings (without bar lines).
local function measure_cells(m, doc, nstrings)
    local rows = {}
    for s = 1, nstrings do
        rows[s] = {}
    end
    for _, ev in ipairs(m.events) do
        local dashes = max(1, floor(ev.ticks / 3 + 0.5))
        if ev.notes and not ev.tied then
            local tokens, w = {}, 1
            for _, i in ipairs(ev.notes) do
                local n = doc.notes[i]
                local tk = token(n, doc.notes)
                tokens[n.string] = tk
                w = max(w, #tk)
            end
            for s = 1, nstrings do
                local tk = tokens[s]
                local r = rows[s]
                if tk then
                    r[#r + 1] = tk
                    r[#r + 1] = DASHES[w - #tk + dashes]
                else
                    r[#r + 1] = DASHES[w + dashes]
                end
            end
        else
            local d = DASHES[1 + dashes]
            for s = 1, nstrings do
                local r = rows[s]
                r[#r + 1] = d
            end
        end
    end
    local out = {}
    for s = 1, nstrings do
        out[s] = concat(rows[s])
    end
    return out
end


local function header(doc)
    local low_first = {}
    for i = #doc.tuning, 1, -1 do
        low_first[#low_first + 1] = instrument.name_of(doc.tuning[i])
    end
    local ts = doc.time_signature
    local lines = {}
    if doc.title then
        lines[#lines + 1] = doc.title
    end
    lines[#lines + 1] = format("Instrument: %s   Tuning: %s (%s)",
                               doc.instrument, concat(low_first, " "),
                               doc.tuning_name or "custom")
    lines[#lines + 1] = format("Capo: %s   Tempo: %d bpm   Time: %d/%d",
                               doc.capo > 0 and tostring(doc.capo) or "none",
                               floor(doc.tempo_bpm + 0.5), ts[1], ts[2])
    return lines
end


--- @return the tab as text
function _M.encode(doc)
    local nstrings = #doc.tuning
    local labels = instrument.labels(doc.tuning)
    local lw = 0
    for _, l in ipairs(labels) do
        lw = max(lw, #l)
    end
    local lines = header(doc)
    lines[#lines + 1] = ""

    -- Systems: as many whole measures as fit in WIDTH columns.
    local sys_rows, sys_numbers, used = nil, nil, 0
    local function flush()
        if not sys_rows then
            return
        end
        lines[#lines + 1] = concat(sys_numbers)
        for s = 1, nstrings do
            lines[#lines + 1] = concat(sys_rows[s]) .. "|"
        end
        lines[#lines + 1] = ""
        sys_rows = nil
    end
    for _, m in ipairs(doc.measures) do
        local cells = measure_cells(m, doc, nstrings)
        local w = #cells[1] + 1
        if sys_rows and used + w + 1 > WIDTH then
            flush()
        end
        if not sys_rows then
            sys_rows, sys_numbers = {}, { rep(" ", lw + 1) }
            for s = 1, nstrings do
                sys_rows[s] = { labels[s] .. rep(" ", lw - #labels[s]) }
            end
            used = lw
        end
        local num = tostring(m.number)
        sys_numbers[#sys_numbers + 1] = num .. rep(" ", max(0, w - #num))
        for s = 1, nstrings do
            local r = sys_rows[s]
            r[#r + 1] = "|" .. cells[s]
        end
        used = used + w
    end
    flush()

    if #doc.unplayable > 0 then
        lines[#lines + 1] = "Not playable on this instrument:"
        for _, u in ipairs(doc.unplayable) do
            lines[#lines + 1] = format("  %8.3f s  %-4s (MIDI %d)  %s%s",
                u.start_s, instrument.name_of(u.pitch_midi), u.pitch_midi,
                u.reason == "out_of_range" and "out of range"
                    or "more notes than strings can hold",
                u.folded_to and (", played as "
                                 .. instrument.name_of(u.folded_to)) or "")
        end
        lines[#lines + 1] = ""
    end
    lines[#lines + 1] = "h hammer-on  p pull-off  b bend  r release  "
                        .. "/ slide up  \\ slide down  ~ vibrato"
    return concat(lines, "\n") .. "\n"
end


return _M
