--- ASCII tab in the conventions of the big tab sites: the highest string on
-- top, tuning labels, bar lines, technique letters (h p b r / \ ~), lines
-- wrapped at 80 columns on measure boundaries.
--
-- Each event takes one column as wide as its widest token, followed by
-- dashes in proportion to its length (a 16th gets one), so the spacing
-- reads as rhythm. A tied continuation shows only dashes.

local instrument = require "wtt.tab.instrument"
local buffer = require "string.buffer"
local held = require "wtt.tab.out.held"

local floor = math.floor
local max = math.max
local rep = string.rep
local format = string.format
local concat = table.concat
local ipairs = ipairs
local tostring = tostring

local _M = {}

local WIDTH = 80

-- Runs of dashes and of spaces by length (the encoder asks for the same
-- few often).
local DASHES = setmetatable({}, { __index = function(t, n)
    local s = rep("-", n)
    t[n] = s
    return s
end })
local SPACES = setmetatable({}, { __index = function(t, n)
    local s = rep(" ", n)
    t[n] = s
    return s
end })


-- Fret numbers as text, made once.
local FRETS = setmetatable({}, { __index = function(t, f)
    local s = tostring(f)
    t[f] = s
    return s
end })


-- The text is written into buffers that live as long as the module (the
-- whole tab, one per string for the system being filled and for the
-- measure being written): fresh ones cost a page fault per 4 KiB on first
-- touch (wtt.tab.out.held), and a table of pieces per measure and event
-- was most of the garbage.
local OUT = held.new()
local NUMBERS = buffer.new()
local ROWS, CELLS = {}, {}


-- The token of one note: its fret with the technique letters around it.
local function token(n)
    local ts = n.techniques
    if not ts or not ts[1] then
        return FRETS[n.fret]
    end
    local before, after = "", ""
    for _, t in ipairs(ts) do
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
    if before == "" and after == "" and n.fret then
        return FRETS[n.fret]
    end
    return before .. tostring(n.fret) .. after
end


-- One measure into CELLS[1..nstrings], per string (without bar lines).
-- `tokens` is scratch, empty between events.
local function measure_cells(m, notes, nstrings, tokens)
    for s = 1, nstrings do
        CELLS[s]:reset()
    end
    local events = m.events
    for j = 1, #events do
        local ev = events[j]
        local dashes = max(1, floor(ev.ticks / 3 + 0.5))
        local evn = ev.notes
        if evn and not ev.tied then
            local w = 1
            for _, i in ipairs(evn) do
                local n = notes[i]
                local tk = token(n)
                tokens[n.string] = tk
                w = max(w, #tk)
            end
            for s = 1, nstrings do
                local tk = tokens[s]
                if tk then
                    CELLS[s]:put(tk, DASHES[w - #tk + dashes])
                else
                    CELLS[s]:put(DASHES[w + dashes])
                end
            end
            for _, i in ipairs(evn) do
                tokens[notes[i].string] = nil
            end
        else
            local d = DASHES[1 + dashes]
            for s = 1, nstrings do
                CELLS[s]:put(d)
            end
        end
    end
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
    if nstrings == 0 and #doc.measures > 0 then
        error("ascii.encode: a tuning with no strings", 2)
    end
    for s = #ROWS + 1, nstrings do
        ROWS[s], CELLS[s] = buffer.new(), buffer.new()
    end
    local labels = instrument.labels(doc.tuning)
    local lw = 0
    for _, l in ipairs(labels) do
        lw = max(lw, #l)
    end
    local b = OUT
    b:reset()
    for _, line in ipairs(header(doc)) do
        b:put(line, "\n")
    end
    b:put("\n")

    -- Systems: as many whole measures as fit in WIDTH columns.
    local open, used = false, 0
    local function flush()
        if not open then
            return
        end
        b:put(NUMBERS, "\n")
        for s = 1, nstrings do
            b:put(ROWS[s], "|\n")
        end
        b:put("\n")
        open = false
    end
    local notes, tokens = doc.notes, {}
    local measures = doc.measures
    for mi = 1, #measures do
        local m = measures[mi]
        measure_cells(m, notes, nstrings, tokens)
        local w = #CELLS[1] + 1
        if open and used + w + 1 > WIDTH then
            flush()
        end
        if not open then
            NUMBERS:reset()
            NUMBERS:put(SPACES[lw + 1])
            for s = 1, nstrings do
                ROWS[s]:reset()
                ROWS[s]:put(labels[s], SPACES[lw - #labels[s]])
            end
            used, open = lw, true
        end
        local num = tostring(m.number)
        NUMBERS:put(num, SPACES[max(0, w - #num)])
        for s = 1, nstrings do
            ROWS[s]:put("|", CELLS[s])
        end
        used = used + w
    end
    flush()

    if #doc.unplayable > 0 then
        b:put("Not playable on this instrument:\n")
        for _, u in ipairs(doc.unplayable) do
            b:put(format("  %8.3f s  %-4s (MIDI %d)  %s%s",
                u.start_s, instrument.name_of(u.pitch_midi), u.pitch_midi,
                u.reason == "out_of_range" and "out of range"
                    or "more notes than strings can hold",
                u.folded_to and (", played as "
                                 .. instrument.name_of(u.folded_to)) or ""),
                "\n")
        end
        b:put("\n")
    end
    b:put("h hammer-on  p pull-off  b bend  r release  "
          .. "/ slide up  \\ slide down  ~ vibrato\n")
    return held.take(b)
end


return _M
