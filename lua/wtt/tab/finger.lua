--- String-and-fret fingering: a Viterbi search over chord fingerings
-- through the whole piece (docs/tab.md, "Fingering").
--
-- Notes that start together (within `chord_window_ms` of a chord's first
-- note) form a chord. Each chord gets candidate fingerings: distinct
-- strings, fretted notes within the span limit, on at most four distinct
-- frets (a finger holds all the notes of its fret). Each candidate has a
-- shape cost (stretch beyond two frets, open strings, skipped strings,
-- voices crossing, a fretted bass on an inner string) and each pair of
-- consecutive candidates a transition cost (hand movement, the hand's
-- distance from its home position, string changes between single notes,
-- cutting off a note that still rings). The search keeps, per candidate,
-- the cheapest path to it, so the work is (chords x candidates^2): linear
-- in the number of notes, as candidates per chord are capped.
--
-- Frets are counted from the capo, as tabs are written. The hand covers a
-- box of four frets from its position (the index finger's fret) and moves
-- only as far as a candidate's fretted notes need; an all-open chord
-- leaves it where it was. Where the hand is depends on the path, so it is
-- carried along the best path to each candidate.

local abs = math.abs
local floor = math.floor
local max = math.max
local min = math.min
local huge = math.huge
local sort = table.sort
local ipairs = ipairs

local _M = {}

local FORBIDDEN = 1e9           -- two notes on one string at once
local SAME_STRING_S = 0.03      -- what "at once" means for two starts
local RING_S = 0.05             -- a note still sounding this long after


-- Every (string, fret) that plays `pitch`, as a flat list s1, f1, s2, ...
local function positions(pitch, inst)
    local out = {}
    local top = inst.max_fret - inst.capo
    for s, open in ipairs(inst.tuning) do
        local f = pitch - open - inst.capo
        if f >= 0 and f <= top then
            out[#out + 1] = s
            out[#out + 1] = f
        end
    end
    return out
end


-- Shape cost of one assignment; nil when the hand cannot play it.
local function shape_cost(frets, strings, k, w, lim, ordered, nstrings)
    local lo, hi, nfret, nopen = huge, -huge, 0, 0
    local smin, smax = huge, -huge
    for i = 1, k do
        local f = frets[i]
        if f > 0 then
            nfret = nfret + 1
            if f < lo then lo = f end
            if f > hi then hi = f end
        else
            nopen = nopen + 1
        end
        local s = strings[i]
        if s < smin then smin = s end
        if s > smax then smax = s end
    end
    local span = nfret >= 2 and hi - lo or 0
    if span > (nopen > 0 and lim.span_open or lim.span) then
        return nil
    end
    if nfret > 4 then
        -- Four fingers, and one finger can hold every note on its fret
        -- (a barre or partial barre): more than four frets is too many.
        local seen, distinct = {}, 0
        for i = 1, k do
            local f = frets[i]
            if f > 0 and not seen[f] then
                seen[f], distinct = true, distinct + 1
            end
        end
        if distinct > 4 then
            return nil
        end
    end
    local pos = nfret > 0 and lo or nil
    -- Three fingers cover a two-fret span with no stretch.
    local c = w.stretch * (span > 2 and span - 2 or 0)
    if k >= 3 then
        -- Comping puts the bass on the low strings: a fretted lowest note
        -- on an inner string (a low string left unused) costs.
        local s1, f1 = strings[1], frets[1]
        if f1 > 0 and s1 < nstrings - 1 then
            c = c + w.bass
        end
    end
    if nopen > 0 then
        -- Open strings are natural low on the neck, less so up high.
        c = c - w.open * nopen * ((pos == nil or pos <= 5) and 1 or 0.3)
    end
    local skipped = (smax - smin + 1) - k
    c = c + w.skip * skipped
    if ordered then
        -- Notes come sorted by pitch: a higher note on a lower string
        -- crosses the voices, which hands avoid.
        for i = 2, k do
            if strings[i] > strings[i - 1] then
                c = c + w.cross
            end
        end
    end
    return c, pos, nfret > 0 and hi or nil
end


-- Candidate fingerings of one chord (notes sorted by pitch), cheapest
-- first, at most `cap`. Each: { strings = {...}, frets = {...}, cost,
-- lo, hi (lowest and highest fretted fret, nil when all open) }.
local function candidates(chord, opts_of, inst, w, lim, cap)
    local k = #chord
    local out = {}
    local strings, frets, used = {}, {}, {}
    local function walk(i)
        if i > k then
            local c, pos, hi = shape_cost(frets, strings, k, w, lim,
                                          inst.ordered, #inst.tuning)
            if c then
                local s, f = {}, {}
                for j = 1, k do
                    s[j], f[j] = strings[j], frets[j]
                end
                out[#out + 1] = { strings = s, frets = f, cost = c,
                                  lo = pos, hi = hi, order = #out + 1 }
            end
            return
        end
        local o = opts_of[i]
        for j = 1, #o, 2 do
            local s, f = o[j], o[j + 1]
            if not used[s] then
                -- Prune a fretted spread that can no longer fit.
                local ok = true
                if f > 0 then
                    for m = 1, i - 1 do
                        local g = frets[m]
                        if g > 0 and abs(g - f) > lim.span_open then
                            ok = false
                            break
                        end
                    end
                end
                if ok then
                    used[s] = true
                    strings[i], frets[i] = s, f
                    walk(i + 1)
                    used[s] = nil
                end
            end
        end
    end
    walk(1)
    if #out > cap then
        -- Equal costs keep their enumeration order, so the cut is
        -- deterministic (table.sort is not stable).
        sort(out, function(a, b)
            if a.cost ~= b.cost then return a.cost < b.cost end
            return a.order < b.order
        end)
        for i = #out, cap + 1, -1 do
            out[i] = nil
        end
    end
    return out
end


-- Where the hand is for candidate `b` when it was at `apos`: the hand
-- covers `box` frets from its position, so it moves only as far as `b`'s
-- fretted notes need (an all-open candidate leaves it where it was).
local function hand_at(apos, b, box)
    local lo, hi = b.lo, b.hi
    if not lo then
        return apos
    end
    if not apos then
        return lo
    end
    local need = hi - box + 1
    if need > lo then
        return lo
    end
    if apos < need then
        return need
    end
    if apos > lo then
        return lo
    end
    return apos
end


-- Transition cost from candidate `a` of chord `ca` (hand at `apos`) to
-- candidate `b` of chord `cb` (hand at `bpos`).
local function transition(a, ca, apos, b, cb, bpos, w)
    local cost = 0
    local dt = cb[1].start_s - ca[1].start_s
    local sa, sb = a.strings, b.strings
    local line = #sa == 1 and #sb == 1
    if apos and bpos then
        local move = abs(bpos - apos)
        if move > 0 then
            -- A hand slides along a single-note line more easily than it
            -- carries a chord shape; a long gap leaves time for either.
            cost = cost + (line and w.move_line or w.move) * move
                          * (dt > 1 and 0.5 or 1)
        end
    end
    if bpos then
        cost = cost + w.height * abs(bpos - w.home)
    end
    if line then
        cost = cost + w.string * abs(sa[1] - sb[1])
    end
    -- Notes of `a` still sounding when `b` starts: putting a note of `b`
    -- on the same string cuts them off (or, near-simultaneous, is
    -- impossible).
    local t = cb[1].start_s
    for i = 1, #sa do
        local n = ca[i]
        for j = 1, #sb do
            if sb[j] == sa[i] then
                if cb[j].start_s - n.start_s <= SAME_STRING_S then
                    return FORBIDDEN
                end
                if n.end_s > t + RING_S and b.frets[j] ~= a.frets[i] then
                    cost = cost + w.ring
                end
            end
        end
    end
    return cost
end


-- Removes notes from a chord until it can be fingered; the removed ones
-- are returned. Doubled pitch classes go first, then inner voices; the
-- lowest and highest notes (bass and melody) go last.
local function reduce(chord, opts_of, inst, w, lim, cap)
    local removed = {}
    local function drop(i)
        removed[#removed + 1] = table.remove(chord, i)
        table.remove(opts_of, i)
    end
    local function pick()
        local k = #chord
        local seen = {}
        for i = 1, k do
            local pc = chord[i].pitch % 12
            seen[pc] = (seen[pc] or 0) + 1
        end
        for i = 2, k - 1 do
            if seen[chord[i].pitch % 12] > 1 then
                return i
            end
        end
        return k > 2 and floor((k + 1) / 2) or k
    end
    while #chord > #inst.tuning do
        drop(pick())
    end
    local cands = candidates(chord, opts_of, inst, w, lim, cap)
    while #cands == 0 and #chord > 1 do
        drop(pick())
        cands = candidates(chord, opts_of, inst, w, lim, cap)
    end
    return cands, removed
end


--- Fingers `notes` (sorted by start_s, then pitch) on `inst`.
-- Sets note.string, note.fret and note.chord (chord index) on every note
-- it can place.
-- @param inst an instrument from wtt.tab.instrument.resolve
-- @param w weights { move, stretch, height, open, string, ring, skip }
-- @param lim { span, span_open, chord_window_ms, candidates }
-- @param fold move out-of-range notes by octaves instead of reporting them
-- @return placed notes (in order), unplayable list, stats { chords,
--   transitions (candidate pairs weighed: the search's work) }
function _M.run(notes, inst, w, lim, fold)
    local unplayable = {}
    local window = lim.chord_window_ms / 1000
    local gap = lim.chord_gap_ms / 1000
    local cap = lim.candidates
    local box = 4               -- frets the hand covers

    -- Range (and octave folding).
    local inrange = {}
    for _, n in ipairs(notes) do
        local o = positions(n.pitch, inst)
        if #o == 0 and fold then
            local lo = huge
            for _, open in ipairs(inst.tuning) do
                lo = min(lo, open + inst.capo)
            end
            local hi = -huge
            for _, open in ipairs(inst.tuning) do
                hi = max(hi, open + inst.max_fret)
            end
            local p = n.pitch
            while p < lo do p = p + 12 end
            while p > hi do p = p - 12 end
            o = positions(p, inst)
            if #o > 0 then
                unplayable[#unplayable + 1] = {
                    start_s = n.start_s, end_s = n.end_s,
                    pitch_midi = n.pitch, reason = "out_of_range",
                    folded_to = p }
                n.pitch = p
            end
        end
        if #o == 0 then
            unplayable[#unplayable + 1] = {
                start_s = n.start_s, end_s = n.end_s, pitch_midi = n.pitch,
                reason = "out_of_range" }
        else
            n._opts = o
            inrange[#inrange + 1] = n
        end
    end

    -- Chords.
    local chords = {}
    local i = 1
    while i <= #inrange do
        -- A note joins the chord when it starts within `gap` of the
        -- chord's previous note and `window` of its first: a strum's
        -- strings follow each other closely, and chords stay apart by more
        -- than `gap`, so notes of two chords never sound almost at once.
        local anchor = inrange[i].start_s
        local chord = { inrange[i] }
        i = i + 1
        while i <= #inrange and inrange[i].start_s - anchor <= window
              and inrange[i].start_s - inrange[i - 1].start_s <= gap do
            chord[#chord + 1] = inrange[i]
            i = i + 1
        end
        sort(chord, function(a, b)
            if a.pitch ~= b.pitch then return a.pitch < b.pitch end
            return a.start_s < b.start_s
        end)
        chords[#chords + 1] = chord
    end

    -- Candidates per chord (with reduction where needed).
    local cands = {}
    for c, chord in ipairs(chords) do
        local opts_of = {}
        for j, n in ipairs(chord) do
            opts_of[j] = n._opts
        end
        local list, removed = reduce(chord, opts_of, inst, w, lim, cap)
        for _, n in ipairs(removed) do
            unplayable[#unplayable + 1] = {
                start_s = n.start_s, end_s = n.end_s, pitch_midi = n.pitch,
                reason = "too_many_notes" }
        end
        cands[c] = list
    end

    -- Viterbi.
    local nc = #chords
    local cost, back, hpos = {}, {}, {}
    local steps = 0             -- transitions weighed (the work, for specs)
    if nc > 0 then
        local c0, p0 = {}, {}
        for j, cd in ipairs(cands[1]) do
            c0[j], p0[j] = cd.cost + w.height * abs((cd.lo or w.home) - w.home), cd.lo
        end
        cost[1], hpos[1], back[1] = c0, p0, {}
    end
    for c = 2, nc do
        local prev, cur = cands[c - 1], cands[c]
        local pc, pp = cost[c - 1], hpos[c - 1]
        local cc, cb, cp = {}, {}, {}
        local ca, cbn = chords[c - 1], chords[c]
        for j, b in ipairs(cur) do
            local best, arg, bestpos = huge, 1, b.lo
            for m, a in ipairs(prev) do
                local base = pc[m]
                if base < best then
                    local apos = pp[m]
                    local bpos = hand_at(apos, b, box)
                    steps = steps + 1
                    local t = base + transition(a, ca, apos, b, cbn, bpos, w)
                    if t < best then
                        best, arg, bestpos = t, m, bpos
                    end
                end
            end
            cc[j], cb[j], cp[j] = best + b.cost, arg, bestpos
        end
        cost[c], back[c], hpos[c] = cc, cb, cp
    end

    -- Back-trace and assign.
    if nc > 0 then
        local j, best = 1, huge
        for m, v in ipairs(cost[nc]) do
            if v < best then
                j, best = m, v
            end
        end
        for c = nc, 1, -1 do
            local cd = cands[c][j]
            for k, n in ipairs(chords[c]) do
                n.string, n.fret, n.chord = cd.strings[k], cd.frets[k], c
            end
            j = back[c][j]
        end
    end

    local placed = {}
    for _, chord in ipairs(chords) do
        for _, n in ipairs(chord) do
            n._opts = nil
            placed[#placed + 1] = n
        end
    end
    sort(placed, function(a, b)
        if a.start_s ~= b.start_s then return a.start_s < b.start_s end
        return a.pitch < b.pitch
    end)
    sort(unplayable, function(a, b) return a.start_s < b.start_s end)
    return placed, unplayable, { transitions = steps, chords = nc }
end


--- The naive baseline: every note on the string that gives it the lowest
-- fret (what a tool with no search does). Sets string and fret.
function _M.lowest(notes, inst)
    for _, n in ipairs(notes) do
        local o = positions(n.pitch, inst)
        local best
        for j = 1, #o, 2 do
            if not best or o[j + 1] < o[best + 1] then
                best = j
            end
        end
        if best then
            n.string, n.fret = o[best], o[best + 1]
        end
    end
    return notes
end


return _M
