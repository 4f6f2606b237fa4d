--- Playing techniques from what the transcription knows (docs/tab.md,
-- "Techniques"):
-- - bends and vibrato from a note's pitch-bend contour (1/3-semitone bins
--   per frame, relative to the note's pitch);
-- - hammer-ons, pull-offs and slides where a note follows another on the
--   same string with no new pluck: its onset posterior stayed low. Notes
--   read from a CSV or MIDI file carry no onset strength, so they get none;
-- - let-ring where a note is still sounding when a later one starts on
--   another string.

local abs = math.abs
local floor = math.floor
local ipairs = ipairs

local _M = {}

local BINS = 3                 -- contour bins per semitone
local MIN_BINS = 2             -- the least a bend rises
local LEGATO_ONSET = 0.5       -- below this, no new pluck
local LEGATO_GAP_S = 0.05      -- the new note starts within this of the end
local HAMMER_REACH = 4         -- frets a hammer-on or pull-off spans at most
local RING_S = 0.1             -- overlap that counts as letting ring


-- Bend or vibrato from a contour, as a technique entry or nil.
local function from_bends(bends)
    if not bends or #bends < 3 then
        return nil
    end
    local peak, at = 0, 1
    local turns, dir, prev = 0, 0, bends[1]
    for i, b in ipairs(bends) do
        if abs(b) > abs(peak) then
            peak, at = b, i
        end
        local d = b - prev
        if d ~= 0 then
            local s = d > 0 and 1 or -1
            if dir ~= 0 and s ~= dir then
                turns = turns + 1
            end
            dir = s
        end
        prev = b
    end
    local semis = floor(abs(peak) / BINS * 2 + 0.5) / 2
    if turns >= 4 and semis <= 1 then
        return { type = "vibrato" }
    end
    -- A bin (a third of a semitone) is within the contour's noise: a bend
    -- holds two bins or more for two frames or more.
    local held = 0
    for _, b in ipairs(bends) do
        if b >= MIN_BINS then
            held = held + 1
        end
    end
    if held < 2 or peak < 0 then
        return nil
    end
    local last = bends[#bends]
    return { type = "bend", semitones = semis,
             release = at < #bends and last * 2 < peak }
end


-- Most notes have no technique, and many only let ring: they share these
-- two read-only lists rather than each making its own (a ten-minute piece
-- has 10,000 notes).
local function frozen(t)
    return setmetatable(t, { __newindex = function()
        error("a shared technique list is read-only", 2)
    end })
end
local NONE = frozen({})
local LET_RING = frozen({ frozen({ type = "let_ring" }) })


--- Adds `techniques` to every placed note (sorted by start). Notes with
-- none, or only let-ring, share one read-only list.
function _M.annotate(notes)
    local last_on = {}         -- string -> index of its latest note
    for i, n in ipairs(notes) do
        local t = NONE
        local b = from_bends(n.bends)
        if b then
            t = { b }
        end
        local j = last_on[n.string]
        if j and n.onset ~= nil and n.onset < LEGATO_ONSET then
            local p = notes[j]
            local single = (notes[i - 1] == nil
                            or notes[i - 1].chord ~= n.chord or i - 1 == j)
                           and (notes[i + 1] == nil
                                or notes[i + 1].chord ~= n.chord)
            if single and p.fret ~= n.fret
               and n.start_s - p.end_s <= LEGATO_GAP_S then
                local d = n.fret - p.fret
                local kind
                if abs(d) > HAMMER_REACH or p.fret == 0 and d < 0 then
                    kind = "slide"
                elseif d > 0 then
                    kind = "hammer_on"
                else
                    kind = "pull_off"
                end
                local e = { type = kind, from = j }
                if kind == "slide" then
                    e.direction = d > 0 and "up" or "down"
                end
                if t == NONE then
                    t = {}
                end
                t[#t + 1] = e
            end
        end
        last_on[n.string] = i
        n.techniques = t
    end
    -- Let ring: still sounding when a later chord starts on other strings.
    for i, n in ipairs(notes) do
        local k = i + 1
        while notes[k] and notes[k].chord == n.chord do
            k = k + 1
        end
        local m = notes[k]
        if m and n.end_s > m.start_s + RING_S and m.string ~= n.string then
            local t = n.techniques
            if t == NONE then
                n.techniques = LET_RING
            else
                t[#t + 1] = LET_RING[1]
            end
        end
    end
    return notes
end


return _M
