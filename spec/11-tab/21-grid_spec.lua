-- wtt.tab.grid: quantisation to 16ths and triplets, one voice of events
-- per measure whose lengths are notatable and sum to the measure.

local grid = require "wtt.tab.grid"
local rhythm = require "wtt.tab.rhythm"

local NOTATABLE = { [48] = true, [36] = true, [24] = true, [18] = true,
                    [16] = true, [12] = true, [9] = true, [8] = true,
                    [6] = true, [4] = true, [3] = true, [2] = true }


local function lcg(seed)
    local s = seed
    return function()
        s = (s * 1103515245 + 12345) % 2147483648
        return s / 2147483648
    end
end


--- A rhythm estimate with beats every 60/bpm s from `t0` (optionally
-- drifting), enough for `n` beats.
local function steady(bpm, n, opts)
    opts = opts or {}
    local p = opts.pickup or 0
    local beats, t = {}, opts.t0 or 0
    for k = 1, n do
        beats[k] = t
        t = t + 60 / bpm * (1 + (opts.drift or 0) * k)
    end
    local ts = opts.ts or { 4, 4 }
    return { tempo_bpm = bpm, beats = beats, beats_per_measure = ts[1],
             beat_type = ts[2], first_downbeat = math.ceil(p) + 1,
             pickup_beats = p }
end


--- Notes at beat positions (in beats from beats[1], at 120 bpm unless
-- `bpm`): entries { start beat, length in beats, pitch or {pitches} }.
local function at_beats(list, bpm)
    local p = 60 / (bpm or 120)
    local notes = {}
    for i, e in ipairs(list) do
        local pitches = type(e[3]) == "table" and e[3] or { e[3] or 60 }
        for _, pitch in ipairs(pitches) do
            notes[#notes + 1] = { start_s = e[1] * p, end_s = (e[1] + e[2]) * p,
                                  pitch = pitch, amplitude = 0.7, chord = i }
        end
    end
    return notes
end


--- Every invariant of the measures and the notes' fields; returns the
-- events flattened as { abs tick, ticks, event } for further checks.
local function check(measures, notes, r)
    local tpb = 48 / r.beat_type
    local per = r.beats_per_measure * tpb
    -- beats fall at pickup_ticks + k * tpb: a pickup may be half a beat
    local shift = (r.pickup_beats * tpb) % tpb
    local flat = {}
    local start = 0
    for i, m in ipairs(measures) do
        local want = (m.number == 0) and r.pickup_beats * tpb or per
        if m.number == 0 then
            assert.equal(1, i)
            assert.is_true(r.pickup_beats > 0)
        else
            assert.equal(i - (r.pickup_beats > 0 and 1 or 0), m.number)
        end
        assert.equal(start, m.start_tick)
        assert.equal(want, m.ticks)
        assert.is_number(m.start_s)
        local sum = 0
        for _, e in ipairs(m.events) do
            assert.equal(sum, e.tick)
            assert.is_true(NOTATABLE[e.ticks], "not notatable: " .. e.ticks)
            assert.is_truthy(grid.notation(e.ticks))
            assert.is_true((e.rest == true) ~= (e.notes ~= nil))
            local a = m.start_tick + e.tick - shift
            -- an event not starting on a beat stays within its beat
            if a % tpb ~= 0 then
                assert.equal(math.floor(a / tpb),
                             math.floor((a + e.ticks - 1) / tpb))
            end
            flat[#flat + 1] = { a, e.ticks, e }
            sum = sum + e.ticks
        end
        assert.equal(m.ticks, sum)
        start = start + m.ticks
    end
    -- beats are straight or triplet, never both, and triplets fill them
    local by_beat = {}
    for _, f in ipairs(flat) do
        local a, n = f[1], f[2]
        local b = math.floor(a / tpb)
        if n < tpb or a % tpb ~= 0 or n % tpb ~= 0 then
            -- a piece of a beat, or reaching into one
            by_beat[b] = by_beat[b] or {}
            table.insert(by_beat[b], f)
            local eb = math.floor((a + n - 1) / tpb)
            if eb ~= b then
                by_beat[eb] = by_beat[eb] or {}
                table.insert(by_beat[eb], f)
            end
        end
    end
    for b, list in pairs(by_beat) do
        local triplet = false
        for _, f in ipairs(list) do
            if f[2] % 3 ~= 0 then
                triplet = true
            end
        end
        if triplet then
            local sum = 0
            for _, f in ipairs(list) do
                assert.is_true(f[2] % 3 ~= 0, "straight value in a triplet beat")
                assert.is_true(f[1] >= b * tpb and f[1] + f[2] <= (b + 1) * tpb)
                sum = sum + f[2]
            end
            assert.equal(tpb, sum)
        end
    end
    -- every note placed; its events add up to its length
    local first_event = {}
    for _, f in ipairs(flat) do
        if f[3].notes and not f[3].tied then
            for _, ni in ipairs(f[3].notes) do
                assert.is_nil(first_event[ni], "note in two events")
                first_event[ni] = f
            end
        end
    end
    for i, n in ipairs(notes) do
        local f = first_event[i]
        assert.is_truthy(f, "note " .. i .. " in no event")
        assert.equal(f[1] + shift, n.tick)
        local len, k = 0, nil
        for j, g in ipairs(flat) do
            if g == f then
                k = j
            end
        end
        repeat
            len = len + flat[k][2]
            k = k + 1
        until not flat[k] or not flat[k][3].tied or flat[k][3].notes ~= f[3].notes
        assert.equal(n.ticks, len)
        assert.equal(grid.fraction(n.ticks), n.duration)
        local m = measures[1]
        for _, mm in ipairs(measures) do
            if mm.start_tick <= n.tick then
                m = mm
            end
        end
        assert.equal(m.number, n.measure)
        local beat = (n.tick - m.start_tick) / tpb + 1
        if m.number == 0 then
            beat = beat + r.beats_per_measure - r.pickup_beats
        end
        assert.near(beat, n.beat, 1e-9)
    end
    return flat
end


--- The events of measure `m` as "n0:12 r12:6 n18:6~" for short asserts.
local function show(m)
    local parts = {}
    for _, e in ipairs(m.events) do
        parts[#parts + 1] = (e.rest and "r" or "n") .. e.tick .. ":" .. e.ticks
                            .. (e.tied and "~" or "")
    end
    return table.concat(parts, " ")
end


describe("grid.build", function()
    it("writes 16ths, 8ths and rests straight", function()
        local notes = at_beats({ { 0, 0.25 }, { 0.25, 0.25 }, { 0.5, 0.5 },
                                 { 1, 0.5 }, { 3, 1 } })
        local r = steady(120, 12)
        local ms = assert(grid.build(notes, r))
        check(ms, notes, r)
        assert.equal(1, #ms)
        assert.equal("n0:3 n3:3 n6:6 n12:6 r18:6 r24:12 n36:12", show(ms[1]))
        assert.same({ "1/16", "1/16", "1/8", "1/8", "1/4" },
                    { notes[1].duration, notes[2].duration, notes[3].duration,
                      notes[4].duration, notes[5].duration })
        assert.same({ 1, 1.25, 1.5, 2, 4 },
                    { notes[1].beat, notes[2].beat, notes[3].beat,
                      notes[4].beat, notes[5].beat })
    end)

    it("writes a beat of 8th triplets as three 4-tick events", function()
        local list = {}
        for b = 0, 3 do
            for k = 0, 2 do
                list[#list + 1] = { b + k / 3, 1 / 3 }
            end
        end
        local notes = at_beats(list)
        local r = steady(120, 12)
        local ms = assert(grid.build(notes, r))
        check(ms, notes, r)
        assert.equal("n0:4 n4:4 n8:4 n12:4 n16:4 n20:4 n24:4 n28:4 n32:4 "
                     .. "n36:4 n40:4 n44:4", show(ms[1]))
        assert.equal("1/12", notes[2].duration)
    end)

    it("mixes straight and triplet beats by timing, one type per beat", function()
        local notes = at_beats({ { 0, 0.25 }, { 0.25, 0.25 }, { 0.5, 0.25 },
                                 { 0.75, 0.25 }, { 1, 1 / 3 }, { 4 / 3, 1 / 3 },
                                 { 5 / 3, 1 / 3 }, { 2, 2 } })
        local r = steady(120, 12)
        local ms = assert(grid.build(notes, r))
        check(ms, notes, r)
        assert.equal("n0:3 n3:3 n6:3 n9:3 n12:4 n16:4 n20:4 n24:24", show(ms[1]))
    end)

    it("absorbs timing jitter without inventing triplets", function()
        local rnd = lcg(3)
        local list = {}
        for k = 0, 31 do
            list[#list + 1] = { k / 2 + (rnd() - 0.5) * 0.08, 0.5 }
        end
        local notes = at_beats(list)
        local r = steady(120, 20)
        local ms = assert(grid.build(notes, r))
        check(ms, notes, r)
        for _, m in ipairs(ms) do
            assert.equal("n0:6 n6:6 n12:6 n18:6 n24:6 n30:6 n36:6 n42:6",
                         show(m))
        end
    end)

    it("gives the notes of a chord one tick, however strummed", function()
        local notes = {
            { start_s = 0.00, end_s = 0.5, pitch = 40, chord = 1 },
            { start_s = 0.02, end_s = 0.5, pitch = 47, chord = 1 },
            { start_s = 0.06, end_s = 0.5, pitch = 52, chord = 1 },
            { start_s = 0.5, end_s = 1.0, pitch = 55 },
            { start_s = 0.52, end_s = 1.0, pitch = 59 },
        }
        local r = steady(120, 8)
        local ms = assert(grid.build(notes, r))
        check(ms, notes, r)
        assert.same({ 0, 0, 0, 12, 12 }, { notes[1].tick, notes[2].tick,
                     notes[3].tick, notes[4].tick, notes[5].tick })
        assert.same({ 1, 2, 3 }, ms[1].events[1].notes)
        assert.same({ 4, 5 }, ms[1].events[2].notes)
    end)

    it("joins chords rounded to one position, unless a string clashes",
       function()
        -- a slow strum the fingering saw as two chords: one event
        local strum = {
            { start_s = 0.00, end_s = 0.5, pitch = 40, chord = 1, string = 6 },
            { start_s = 0.02, end_s = 0.5, pitch = 47, chord = 1, string = 5 },
            { start_s = 0.06, end_s = 0.5, pitch = 52, chord = 2, string = 4 },
            { start_s = 0.5, end_s = 1.0, pitch = 45, chord = 3, string = 5 },
        }
        local r0 = steady(120, 8)
        local m0 = assert(grid.build(strum, r0, { grid_weights = { collide = 0 } }))
        check(m0, strum, r0)
        assert.equal("n0:12 n12:12 r24:24", show(m0[1]))
        assert.same({ 1, 2, 3 }, m0[1].events[1].notes)
        -- two notes on string 6, 60 ms apart: two events
        local notes = {
            { start_s = 0.00, end_s = 0.5, pitch = 47, chord = 1, string = 6 },
            { start_s = 0.06, end_s = 0.5, pitch = 43, chord = 2, string = 6 },
            { start_s = 0.5, end_s = 1.0, pitch = 45, chord = 3, string = 5 },
        }
        local r = steady(120, 8)
        local ms = assert(grid.build(notes, r))
        check(ms, notes, r)
        assert.equal(0, notes[1].tick)
        assert.is_true(notes[2].tick > 0 and notes[2].tick < 12)
        assert.equal(12, notes[3].tick)
        assert.same({ 1 }, ms[1].events[1].notes)
        assert.same({ 2 }, ms[1].events[2].notes)
        -- with the collision cost gone the beat stays straight and the
        -- second chord still moves on, to the next 16th
        ms = assert(grid.build(notes, r, { grid_weights = { collide = 0 } }))
        check(ms, notes, r)
        assert.equal("n0:3 n3:9 n12:12 r24:24", show(ms[1]))
    end)

    it("splits an off-beat note at the beat and ties it", function()
        -- an 8th on the "and" of 1 held to beat 3
        local notes = at_beats({ { 0, 0.5 }, { 0.5, 1.5 }, { 2, 2 } })
        local r = steady(120, 8)
        local ms = assert(grid.build(notes, r))
        check(ms, notes, r)
        assert.equal("n0:6 n6:6 n12:12~ n24:24", show(ms[1]))
        assert.equal(18, notes[2].ticks)
        assert.equal("3/8", notes[2].duration)
    end)

    it("keeps a dotted quarter on the beat whole, splits 30 ticks", function()
        local notes = at_beats({ { 0, 1.5 }, { 1.5, 0.5 }, { 2, 2.5 / 1 } })
        local r = steady(120, 12)
        local ms = assert(grid.build(notes, r))
        check(ms, notes, r)
        assert.equal("n0:18 n18:6 n24:24", show(ms[1]))
        assert.equal("n0:6~ r6:6 r12:12 r24:24", show(ms[2]))
        assert.equal(30, notes[3].ticks)
        assert.equal("5/8", notes[3].duration)
    end)

    it("ties a note across the bar line", function()
        local notes = at_beats({ { 3, 2 } })
        local r = steady(120, 8)
        local ms = assert(grid.build(notes, r))
        check(ms, notes, r)
        assert.equal("r0:36 n36:12", show(ms[1]))
        assert.equal("n0:12~ r12:12 r24:24", show(ms[2]))
    end)

    it("puts a pickup in measure 0 and counts its beats from the end", function()
        local notes = at_beats({ { 0, 1 }, { 1, 4 }, { 5, 0.5 } })
        local r = steady(120, 12, { pickup = 1 })
        local ms = assert(grid.build(notes, r))
        check(ms, notes, r)
        assert.equal(0, ms[1].number)
        assert.equal(12, ms[1].ticks)
        assert.equal("n0:12", show(ms[1]))
        assert.same({ 0, 4 }, { notes[1].measure, notes[1].beat })
        assert.same({ 1, 1 }, { notes[2].measure, notes[2].beat })
        assert.equal(12, ms[2].start_tick)
        assert.equal("n0:48", show(ms[2]))
        assert.equal("n0:6 r6:6 r12:12 r24:24", show(ms[3]))
    end)

    it("starts a pickup of an 8th inside a beat", function()
        -- beats[1] at 0 s; the pickup's 8th at 0.25 s, the downbeat at 0.5 s
        local notes = at_beats({ { 0.5, 0.5 }, { 1, 1 }, { 2, 1 } })
        local r = steady(120, 12)
        r.pickup_beats, r.first_downbeat = 0.5, 2
        local ms = assert(grid.build(notes, r))
        check(ms, notes, r)
        assert.equal(0, ms[1].number)
        assert.equal(6, ms[1].ticks)
        assert.equal("n0:6", show(ms[1]))
        assert.same({ 0, 0, 4.5 }, { notes[1].tick, notes[1].measure,
                                     notes[1].beat })
        assert.equal(6, ms[2].start_tick)
        assert.near(0.5, ms[2].start_s, 1e-9)
        assert.near(0.25, ms[1].start_s, 1e-9)
        assert.equal("n0:12 n12:12 r24:24", show(ms[2]))
        assert.same({ 6, 1, 1 }, { notes[2].tick, notes[2].measure,
                                   notes[2].beat })
    end)

    it("writes 3/4 and 6/8 measures", function()
        local notes = at_beats({ { 0, 1 }, { 1, 1 }, { 2, 1 }, { 3, 3 } })
        local r = steady(120, 8, { ts = { 3, 4 } })
        local ms = assert(grid.build(notes, r))
        check(ms, notes, r)
        assert.equal("n0:12 n12:12 n24:12", show(ms[1]))
        assert.equal("n0:36", show(ms[2]))
        -- in 6/8 the beat is an 8th: six of them to a measure of 36 ticks
        notes = at_beats({ { 0, 1 }, { 1, 1 }, { 2, 1 }, { 3, 3 } }, 240)
        r = steady(240, 12, { ts = { 6, 8 } })
        ms = assert(grid.build(notes, r))
        check(ms, notes, r)
        assert.equal(36, ms[1].ticks)
        assert.equal("n0:6 n6:6 n12:6 n18:18", show(ms[1]))
    end)

    it("gives one measure of rest for no notes", function()
        local ms = assert(grid.build({}, steady(120, 4)))
        assert.equal(1, #ms)
        assert.equal("r0:48", show(ms[1]))
        local r = assert(rhythm.estimate({}))
        ms = assert(grid.build({}, r))
        assert.equal("r0:48", show(ms[1]))
    end)

    it("refuses a malformed rhythm", function()
        for _, r in ipairs({
            {}, { beats = {}, beats_per_measure = 0, beat_type = 4, tempo_bpm = 1 },
            { beats = {}, beats_per_measure = 4, beat_type = 3, tempo_bpm = 1 },
            { beats = {}, beats_per_measure = 4, beat_type = 4, tempo_bpm = 1,
              pickup_beats = 4 },
            { beats = {}, beats_per_measure = 4, beat_type = 4, tempo_bpm = -1 },
        }) do
            local ms, err = grid.build({}, r)
            assert.is_nil(ms)
            assert.is_string(err)
        end
    end)

    it("sums every measure over random pieces (seeded)", function()
        local rnd = lcg(20240611)
        local sigs = { { 4, 4 }, { 3, 4 }, { 2, 4 }, { 5, 4 }, { 6, 8 },
                       { 2, 2 }, { 7, 8 } }
        for case = 1, 150 do
            local ts = sigs[1 + math.floor(rnd() * #sigs)]
            local bpm = 60 + rnd() * 120
            local pickup = rnd() < 0.3 and math.floor(rnd() * ts[1]) or 0
            if pickup > 0 and ts[2] == 4 and rnd() < 0.5 then
                pickup = pickup - 0.25 * (1 + math.floor(rnd() * 3))
            end
            local list, b = {}, rnd() * 0.5
            local n = 1 + math.floor(rnd() * 60)
            for _ = 1, n do
                local chord = {}
                for c = 1, 1 + math.floor(rnd() * 3) do
                    chord[c] = 40 + math.floor(rnd() * 40)
                end
                list[#list + 1] = { b + (rnd() - 0.5) * 0.1, 0.1 + rnd() * 3,
                                    chord }
                local step = ({ 0.25, 0.5, 1, 1 / 3, 2 / 3, 1 / 6, 1.5, 3,
                                0.75, 0.02 })[1 + math.floor(rnd() * 10)]
                b = b + step
            end
            local notes = at_beats(list, bpm)
            table.sort(notes, function(x, y) return x.start_s < y.start_s end)
            local r = steady(bpm, math.ceil(b) + 8,
                             { ts = ts, pickup = pickup,
                               drift = (rnd() - 0.5) * 0.002 })
            local ms = assert(grid.build(notes, r))
            local ok, err = pcall(check, ms, notes, r)
            assert(ok, "case " .. case .. ": " .. tostring(err))
            -- notes keep their order
            for i = 2, #notes do
                assert.is_true(notes[i].tick >= notes[i - 1].tick)
            end
        end
    end)

    it("also sums measures on the estimated rhythm of random notes", function()
        local rnd = lcg(77)
        for _ = 1, 30 do
            local notes, t = {}, rnd()
            for _ = 1, 1 + math.floor(rnd() * 80) do
                notes[#notes + 1] = { start_s = t, end_s = t + rnd() * 2,
                                      pitch = 40 + math.floor(rnd() * 40),
                                      amplitude = rnd() }
                t = t + rnd() * rnd() * 1.5
            end
            local r = assert(rhythm.estimate(notes))
            local ms = assert(grid.build(notes, r))
            check(ms, notes, r)
        end
    end)

    it("quantises 10,000 notes over 10 minutes quickly", function()
        local notes, p = {}, 60 / 100
        local k = 0
        while #notes < 10000 do
            local t = 0.3 + k * p / 4
            if k % 2 == 0 then
                for c = 1, 4 do
                    notes[#notes + 1] = { start_s = t + c * 0.005,
                                          end_s = t + p / 2, pitch = 44 + c * 4,
                                          amplitude = 0.7 }
                end
            else
                notes[#notes + 1] = { start_s = t, end_s = t + p / 4,
                                      pitch = 64 + k % 12, amplitude = 0.5 }
            end
            k = k + 1
        end
        local best = math.huge
        for _ = 1, 3 do
            local t0 = os.clock()
            local r = assert(rhythm.estimate(notes))
            assert(grid.build(notes, r))
            best = math.min(best, os.clock() - t0)
        end
        -- bench/tab.sh measures it; this only catches a gross slowdown
        assert.is_true(best < 0.4, ("%.0f ms"):format(best * 1e3))
    end)
end)


describe("grid.notation", function()
    it("names every notatable length", function()
        assert.same({ type = "quarter", dots = 0 }, grid.notation(12))
        assert.same({ type = "half", dots = 1 }, grid.notation(36))
        assert.same({ type = "eighth", dots = 1 }, grid.notation(9))
        assert.same({ type = "eighth", dots = 0, tuplet = { 3, 2 } },
                    grid.notation(4))
        assert.same({ type = "16th", dots = 0, tuplet = { 3, 2 } },
                    grid.notation(2))
        assert.same({ type = "half", dots = 0, tuplet = { 3, 2 } },
                    grid.notation(16))
        for n in pairs(NOTATABLE) do
            assert.is_truthy(grid.notation(n))
        end
        local v, err = grid.notation(5)
        assert.is_nil(v)
        assert.matches("not a notatable", err)
    end)

    it("reduces durations", function()
        assert.equal("1/4", grid.fraction(12))
        assert.equal("3/16", grid.fraction(9))
        assert.equal("1/12", grid.fraction(4))
        assert.equal("5/8", grid.fraction(30))
        assert.equal("1/1", grid.fraction(48))
    end)
end)
