--- The measure grid: note onsets and lengths quantised to 16ths and
-- triplets, one voice of events per measure (docs/tab.md, "Rhythm").
--
--     local measures, err = grid.build(notes, r, opts)
--
-- r is wtt.tab.rhythm's estimate. Sets note.tick, .ticks, .measure, .beat
-- and .duration on every note, and returns the measures of the tab
-- document. opts.grid_weights (optional) overrides the cost weights below.

local rhythm = require "wtt.tab.rhythm"

local floor, ceil, max, min = math.floor, math.ceil, math.max, math.min

local _M = {}

-- This file runs in LuaJIT's interpreter. Its loops are short and full of
-- branches: on a 10-minute transcription one call compiled some 200 traces,
-- which cost more (45 ms on the first call) than they ever saved (the
-- interpreter's warm call takes as long, about 8 ms; its first, 20 ms).
jit.off(true, true)

local DIVISIONS = 12       -- ticks per quarter note
local WHOLE = 4 * DIVISIONS
_M.DIVISIONS = DIVISIONS

-- Notatable lengths (docs/tab.md), longest first. Straight ones are the
-- multiples of 3 ticks, triplet (3:2) ones the others.
local VALUES = { 48, 36, 24, 18, 16, 12, 9, 8, 6, 4, 3, 2 }
local NOTATION = {
    [48] = { "whole", 0 }, [36] = { "half", 1 }, [24] = { "half", 0 },
    [18] = { "quarter", 1 }, [12] = { "quarter", 0 }, [9] = { "eighth", 1 },
    [6] = { "eighth", 0 }, [3] = { "16th", 0 },
    [16] = { "half", 0, true }, [8] = { "quarter", 0, true },
    [4] = { "eighth", 0, true }, [2] = { "16th", 0, true },
}

-- Beat types: straight (16th grid), 8th triplets, 16th triplets.
local S, T3, T6 = 1, 2, 3

-- Quantisation costs, in units of one squared ERR of timing error.
local DEFAULTS = {
    err = 0.06,        -- timing error (beats) that costs 1
    c8 = 0.2,          -- an onset on an 8th that is not the beat's half
    c16 = 0.4,         -- an onset on a 16th (or a 16th triplet)
    t3 = 1.2,          -- a beat of 8th triplets
    t6 = 2.5,          -- a beat of 16th triplets
    switch = 0.5,      -- a beat whose type differs from the previous one's
    collide = 4.0,     -- two chords quantised to one position
}


--- The notation of a length in ticks: { type = "quarter", dots = 0,
-- tuplet = nil | {3, 2} }, or nil, err when it is not a notatable value.
function _M.notation(ticks)
    local n = NOTATION[ticks]
    if not n then
        return nil, "not a notatable length: " .. tostring(ticks) .. " ticks"
    end
    return { type = n[1], dots = n[2], tuplet = n[3] and { 3, 2 } or nil }
end


--- Ticks per beat for a time signature's beat_type (4 -> 12).
function _M.beat_ticks(beat_type)
    return WHOLE / beat_type
end


local function gcd(a, b)
    while b ~= 0 do
        a, b = b, a % b
    end
    return a
end


--- A length in ticks as a reduced fraction of a whole note ("3/16").
local function fraction(ticks)
    local g = gcd(ticks, WHOLE)
    return (ticks / g) .. "/" .. (WHOLE / g)
end
_M.fraction = fraction


--- The grid steps of each beat type for `tpb` ticks per beat (nil where
-- the type cannot be written with notatable values).
local function steps(tpb)
    local st = { [S] = 3 }
    local function triplet(s)
        if s >= 2 and s == floor(s) and s % 3 ~= 0 then
            return s
        end
    end
    st[T3], st[T6] = triplet(tpb / 3), triplet(tpb / 6)
    return st
end


--- Beat coordinates: the position of time `t` (s) in beats from
-- beats[1] (fractional), walking from beat index `k` (a hint: the answer
-- for a nearby time), with the first and last intervals extended outside
-- the tracked beats. Returns the position and the new hint. (A walk from
-- a hint, not a bisection: queries come in order, and LuaJIT compiles the
-- short walk well where it gives up on the bisection's loop.)
local function locate(beats, nb, t, k)
    if t < beats[1] then
        local iv = nb > 1 and beats[2] - beats[1] or 0
        return iv > 0 and (t - beats[1]) / iv or 0, 1
    elseif t >= beats[nb] then
        local iv = nb > 1 and beats[nb] - beats[nb - 1] or 0
        return nb - 1 + (iv > 0 and (t - beats[nb]) / iv or 0), nb
    end
    if k >= nb then
        k = nb - 1
    end
    while beats[k] > t do
        k = k - 1
    end
    while beats[k + 1] <= t do
        k = k + 1
    end
    return k - 1 + (t - beats[k]) / (beats[k + 1] - beats[k]), k
end


--- The time of beat position k (0-based, fractional), extrapolated
-- outside the beats.
local function beat_time(beats, nb, k, period)
    if nb < 2 then
        return beats[1] + k * period
    elseif k < 0 then
        return beats[1] + k * (beats[2] - beats[1])
    elseif k >= nb - 1 then
        return beats[nb] + (k - nb + 1) * (beats[nb] - beats[nb - 1])
    end
    local i = floor(k)
    return beats[i + 1] + (k - i) * (beats[i + 2] - beats[i + 1])
end


--- Cost and quantised offsets (ticks) of the onsets at fractional beat
-- positions fr[i..j] under a beat type with grid step `step`.
local function beat_cost(fr, i, j, tpb, step, kind, w, out)
    local cost, prev = 0, -1
    local half = tpb / 2
    for k = i, j do
        local q = floor(fr[k] * tpb / step + 0.5) * step
        local e = (fr[k] - q / tpb) / w.err
        cost = cost + e * e
        if q % tpb ~= 0 then
            if kind == S then
                if q % half ~= 0 then
                    cost = cost + (q % 6 == 0 and w.c8 or w.c16)
                end
            elseif q % (tpb / 3) ~= 0 then
                cost = cost + w.c16
            end
        end
        if q == prev then
            cost = cost + w.collide
        end
        prev = q
        if out then
            out[k] = q
        end
    end
    return cost
end


--- The type of every beat 0 .. nbeats - 1 by dynamic programming:
-- timing error against complexity per beat, plus a cost for switching.
local function beat_types(bi, fr, nbeats, tpb, st, w)
    local kinds = { S }
    if st[T3] then
        kinds[#kinds + 1] = T3
    end
    if st[T6] then
        kinds[#kinds + 1] = T6
    end
    local base = { [S] = 0, [T3] = w.t3, [T6] = w.t6 }
    local nk = #kinds
    local back = {}                -- back[b * 3 + a]: best previous kind
    local prev, cur = { 0, 0, 0 }, { 0, 0, 0 }
    local c, nc = 1, #bi           -- c: first chord of the current beat
    for b = 0, nbeats - 1 do
        local d = c
        while d <= nc and bi[d] == b do
            d = d + 1
        end
        for a = 1, nk do
            local kind = kinds[a]
            local own = base[kind]
            if d > c then
                own = own + beat_cost(fr, c, d - 1, tpb, st[kind], kind, w)
            end
            local best, arg = 1e300, 1
            for p = 1, nk do
                local v = prev[p]
                if p ~= a and b > 0 then
                    v = v + w.switch
                end
                if v < best then
                    best, arg = v, p
                end
            end
            cur[a], back[b * 3 + a] = best + own, arg
        end
        prev, cur = cur, prev
        c = d
    end
    local types = {}
    local best, arg = 1e300, 1
    for a = 1, nk do
        if prev[a] < best then
            best, arg = prev[a], a
        end
    end
    for b = nbeats - 1, 0, -1 do
        types[b] = kinds[arg]
        arg = back[b * 3 + arg]
    end
    return types
end


local function check(r)
    if type(r) ~= "table" or type(r.beats) ~= "table" then
        return nil, "rhythm estimate missing"
    end
    local m, bt = r.beats_per_measure, r.beat_type
    if type(m) ~= "number" or m < 1 or m ~= floor(m) then
        return nil, "beats_per_measure must be a positive integer"
    end
    if bt ~= 2 and bt ~= 4 and bt ~= 8 then
        return nil, "beat_type must be 2, 4 or 8"
    end
    local p = r.pickup_beats or 0
    local pt = p * WHOLE / bt
    if type(p) ~= "number" or p < 0 or (p >= m and p > 0)
       or pt ~= floor(pt) or pt % 3 ~= 0 then
        return nil, "pickup_beats must be below the measure, in 16ths"
    end
    local fd = r.first_downbeat or ceil(p) + 1
    if fd ~= floor(fd) or fd - 1 < p then
        return nil, "first_downbeat must leave room for the pickup"
    end
    if not (type(r.tempo_bpm) == "number" and r.tempo_bpm > 0) then
        return nil, "tempo_bpm must be a positive number"
    end
    return true
end


--- The length of the next notatable piece at tick `at` ending by `stop`
-- (both within the measure starting at `m0`, `mlen` ticks long): within
-- a beat, values of the beat's type; from a beat's start, the longest
-- value that ends on a beat or inside a straight beat (a dotted quarter
-- on the beat), except that
--   * a value of two beats or more does not cross the middle of an even
--     measure unless it starts there or at the bar (no half note on beat
--     2 of 4/4: it is written as two tied quarters);
--   * a rest longer than a beat ends on a beat (no dotted-quarter rests).
local function piece(at, stop, tpb, types, m0, mlen, rest)
    local b = floor(at / tpb)
    local off = at - b * tpb
    local straight = (types[b] or S) == S
    if off ~= 0 then
        local room = min(stop, (b + 1) * tpb) - at
        for i = 1, #VALUES do
            local v = VALUES[i]
            if v <= room and (v % 3 == 0) == straight then
                return v
            end
        end
    else
        local room = stop - at
        local mid = (mlen / tpb) % 2 == 0 and m0 + mlen / 2 or nil
        for i = 1, #VALUES do
            local v = VALUES[i]
            if v <= room then
                if v < tpb then
                    if (v % 3 == 0) == straight then
                        return v
                    end
                elseif v == tpb then
                    return v
                elseif v % 3 == 0 and not (v >= 2 * tpb and mid
                        and at ~= m0 and at ~= mid and at < mid
                        and at + v > mid) then
                    if v % tpb == 0 then
                        return v
                    elseif not rest
                           and (types[floor((at + v) / tpb)] or S) == S then
                        -- ends inside a later beat: only a straight one
                        return v
                    end
                end
            end
        end
    end
    error("grid: no notatable piece at tick " .. at .. " to " .. stop)
end


--- See the module's head. Internally positions are in "beat ticks": tpb
-- per beat from beats[1], so beat boundaries are multiples of tpb; the
-- document's ticks count from u0, the pickup's start (or the first
-- downbeat), which sits inside a beat when the pickup is a fraction of
-- one.
function _M.build(notes, r, opts)
    local ok, err = check(r)
    if not ok then
        return nil, err
    end
    local w = DEFAULTS
    local over = opts and opts.grid_weights
    if over then
        w = setmetatable({}, { __index = DEFAULTS })
        for k in pairs(DEFAULTS) do
            if over[k] ~= nil then
                w[k] = over[k]
            end
        end
    end
    local tpb = WHOLE / r.beat_type
    local st = steps(tpb)
    local per = r.beats_per_measure
    local pickup = r.pickup_beats or 0
    local beats = r.beats
    if #beats == 0 then
        beats = { 0 }
    end
    -- (tempo_bpm counts quarter notes; the beat is a beat_type note)
    local nb, period = #beats, 60 / r.tempo_bpm * 4 / r.beat_type
    local mticks, ptick = per * tpb, pickup * tpb
    local udown = ((r.first_downbeat or ceil(pickup) + 1) - 1) * tpb
    local u0 = udown - ptick
    local umin = u0 / tpb            -- nothing is placed before the start

    -- onsets: one per chord, at a fractional position within a beat (the
    -- estimate's own chords when it was made from these notes)
    local ch = r.chords_of == notes and r.chords or rhythm.chords(notes)
    local nc, ct, first, nxt = ch.n, ch.t, ch.first, ch.nxt
    local ends, strings = ch.end_s, ch.string
    local bi, fr = {}, {}
    local nbeats, hint = 1, 1
    for i = 1, nc do
        local x
        x, hint = locate(beats, nb, ct[i], hint)
        x = max(umin, x)
        local b = floor(x)
        bi[i], fr[i] = b, x - b
        if b >= nbeats then
            nbeats = b + 1
        end
    end
    local types = beat_types(bi, fr, nbeats, tpb, st, w)
    if u0 % tpb ~= 0 then
        -- a pickup starting inside a beat: that beat is written straight
        types[floor(u0 / tpb)] = S
    end

    -- chord positions (chords on one position become one event)
    local q = {}
    local c = 1
    while c <= nc do
        local d = c
        while d < nc and bi[d + 1] == bi[c] do
            d = d + 1
        end
        local kind = types[bi[c]] or S
        beat_cost(fr, c, d, tpb, st[kind], kind, w, q)
        for k = c, d do
            if bi[k] * tpb + q[k] < u0 then
                q[k] = u0 - bi[k] * tpb
            end
        end
        c = d + 1
    end
    -- Chords rounded to one position become one event (a strum the
    -- fingering saw as two chords), unless a string would sound twice in
    -- it (notes placed by the fingering carry `string`): then the later
    -- chord moves a grid step on, if that is still before the next chord.
    local pos, used = {}, {}
    for k = 1, nc do
        local u = bi[k] * tpb + q[k]
        local prev = pos[k - 1]
        local clash = false
        if prev and u <= prev then
            local ni = first[k]
            while ni > 0 do
                local sn = strings[ni]
                if sn and used[sn] then
                    clash = true
                end
                ni = nxt[ni]
            end
            if clash then
                local moved = prev + st[types[floor(prev / tpb)] or S]
                local later = k < nc and bi[k + 1] * tpb + q[k + 1]
                              or math.huge
                u = moved < later and moved or prev
            else
                u = prev
            end
        end
        if u ~= prev then
            used = {}
        end
        local ni = first[k]
        while ni > 0 do
            local sn = strings[ni]
            if sn then
                used[sn] = true
            end
            ni = nxt[ni]
        end
        pos[k] = u
    end

    -- measures (in beat ticks until the end), enough for every chord
    local total = udown + mticks
    local measures = {}
    local function add_measure()
        local m = #measures
        local start = m == 0 and u0
                      or measures[m].start_tick + measures[m].ticks
        local num = (m == 0 and ptick > 0) and 0 or
                    (m == 0 and 1 or measures[m].number + 1)
        measures[m + 1] = { number = num, start_tick = start,
                            ticks = num == 0 and ptick or mticks,
                            start_s = beat_time(beats, nb, start / tpb, period),
                            events = {} }
    end

    -- emit [a, b) as pieces: a rest (evnotes nil) or a chord's notes
    local mi = 1
    local function emit(a, b, evnotes)
        local first_piece = true
        while a < b do
            while not measures[mi]
                  or measures[mi].start_tick + measures[mi].ticks <= a do
                if not measures[mi] then
                    add_measure()
                else
                    mi = mi + 1
                end
            end
            local m = measures[mi]
            local stop = min(b, m.start_tick + m.ticks)
            local v = piece(a, stop, tpb, types, m.start_tick, m.ticks,
                            not evnotes)
            local ev
            if evnotes then
                ev = { tick = a - m.start_tick, ticks = v, notes = evnotes,
                       tied = not first_piece or nil }
            else
                ev = { tick = a - m.start_tick, ticks = v, rest = true }
            end
            local list = m.events
            list[#list + 1] = ev
            a, first_piece = a + v, false
        end
    end

    -- one voice: a chord lasts to the next chord or its own quantised end
    local cur = u0
    c = 1
    local fractions = {}
    while c <= nc do
        local tick = pos[c]
        local d = c                   -- chords c .. d share the position
        while d < nc and pos[d + 1] == tick do
            d = d + 1
        end
        -- (a chord rounded up to the next beat takes that beat's grid)
        local step = st[types[floor(tick / tpb)] or S]
        local stop = tick
        local evnotes = {}
        for k = c, d do
            local ni = first[k]
            while ni > 0 do
                evnotes[#evnotes + 1] = ni
                local xe = locate(beats, nb, ends[ni], bi[c] + 1)
                xe = max(umin, xe)
                local be = floor(xe)
                local se = st[types[be] or S]
                local e = be * tpb + floor((xe - be) * tpb / se + 0.5) * se
                if e <= tick then
                    e = tick + step
                end
                if e > stop then
                    stop = e
                end
                ni = nxt[ni]
            end
        end
        if d > c then
            table.sort(evnotes)
        end
        if d < nc then
            stop = min(stop, pos[d + 1])
        end
        if tick > cur then
            emit(cur, tick, nil)
        end
        emit(tick, stop, evnotes)
        -- the notes' own fields: where the event starts, its whole length
        local len = stop - tick
        local frac = fractions[len]
        if not frac then
            frac = fraction(len)
            fractions[len] = frac
        end
        local mnum, ms = 0, u0
        if tick >= udown then
            mnum = floor((tick - udown) / mticks) + 1
            ms = udown + (mnum - 1) * mticks
        end
        local beat = (tick - ms) / tpb + 1
        if mnum == 0 then
            beat = beat + per - pickup
        end
        for i = 1, #evnotes do
            local n = notes[evnotes[i]]
            n.tick, n.ticks, n.duration = tick - u0, len, frac
            n.measure, n.beat = mnum, beat
        end
        cur = stop
        c = d + 1
    end
    while total < cur do
        total = total + mticks
    end
    if cur < total then
        emit(cur, total, nil)
    end
    if #measures == 0 then
        add_measure()
    end
    while measures[#measures].start_tick + measures[#measures].ticks
          < total do
        add_measure()
    end
    for i = 1, #measures do
        local m = measures[i]
        m.start_tick = m.start_tick - u0
    end
    return measures
end


return _M
