-- wtt.tab.rhythm: tempo, beats and meter from synthetic note onsets whose
-- true beats are known.

local rhythm = require "wtt.tab.rhythm"

--- Deterministic pseudo-random numbers in [0, 1).
local function lcg(seed)
    local s = seed
    return function()
        s = (s * 1103515245 + 12345) % 2147483648
        return s / 2147483648
    end
end


--- Roughly Gaussian timing jitter with standard deviation `sd` seconds.
local function jitter(rnd, sd)
    return (rnd() + rnd() + rnd() + rnd() - 2) * sd * math.sqrt(3)
end


--- Notes from a one-measure pattern repeated `measures` times: entries
-- { beat offset, amplitude, { pitches }, length in beats }. Chord notes
-- are strummed 6 ms apart. Returns the notes sorted by start and the true
-- beat times.
local function play(bpm, measures, per, pattern, opts)
    opts = opts or {}
    local rnd = lcg(opts.seed or 1)
    local period = 60 / bpm
    local t0 = opts.t0 or 0.5
    local notes, beats = {}, {}
    for k = 0, measures - 1 do
        for b = 0, per - 1 do
            beats[#beats + 1] = t0 + (k * per + b) * period
        end
        for _, e in ipairs(pattern) do
            local t = t0 + (k * per + e[1]) * period
                      + jitter(rnd, opts.jitter or 0.01)
            for i, p in ipairs(e[3]) do
                notes[#notes + 1] = {
                    start_s = t + (i - 1) * 0.006,
                    end_s = t + (e[4] or 0.5) * period, pitch = p,
                    amplitude = e[2] }
            end
        end
    end
    table.sort(notes, function(a, b) return a.start_s < b.start_s end)
    return notes, beats
end


-- A plucked melody with a bass on 1 and 3 and some 8ths.
local MELODY = {
    { 0, 0.9, { 40, 64 }, 1 }, { 1, 0.7, { 62 } }, { 1.5, 0.6, { 60 } },
    { 2, 0.85, { 45, 64 }, 1 }, { 3, 0.7, { 67 } }, { 3.5, 0.6, { 65 } },
}

-- Swing-free 16ths: an arpeggio with the bass on each beat.
local SIXTEENTHS = {}
for b = 0, 3 do
    local bass = b % 2 == 0 and 40 or 47
    SIXTEENTHS[#SIXTEENTHS + 1] = { b, b == 0 and 0.95 or 0.85,
                                    { bass, 59 }, 0.25 }
    SIXTEENTHS[#SIXTEENTHS + 1] = { b + 0.25, 0.5, { 64 }, 0.25 }
    SIXTEENTHS[#SIXTEENTHS + 1] = { b + 0.5, 0.65, { 67 }, 0.25 }
    SIXTEENTHS[#SIXTEENTHS + 1] = { b + 0.75, 0.5, { 64 }, 0.25 }
end

-- A waltz: an accented bass on 1, the chord on 2 and 3.
local WALTZ = {
    { 0, 0.9, { 43 }, 1 }, { 1, 0.6, { 59, 62, 67 } },
    { 2, 0.6, { 59, 62, 67 } },
}


--- Largest distance (s) from a true beat to the nearest estimated beat,
-- over the true beats from index `from`.
local function beat_error(r, truth, from)
    local worst = 0
    for i = from or 1, #truth do
        local best = math.huge
        for _, b in ipairs(r.beats) do
            best = math.min(best, math.abs(b - truth[i]))
        end
        worst = math.max(worst, best)
    end
    return worst
end


local function assert_tempo(bpm, r)
    assert.is_true(math.abs(r.tempo_bpm / bpm - 1) <= 0.02,
                   ("tempo %.2f for %d bpm"):format(r.tempo_bpm, bpm))
end


describe("rhythm.estimate", function()
    for _, bpm in ipairs({ 90, 120, 160 }) do
        it(bpm .. " bpm melody with 15 ms jitter: tempo, beats, 4/4", function()
            local notes, truth = play(bpm, 12, 4, MELODY,
                                      { jitter = 0.015, seed = bpm })
            local r = assert(rhythm.estimate(notes))
            assert_tempo(bpm, r)
            assert.is_true(beat_error(r, truth) < 0.05)
            assert.equal(4, r.beats_per_measure)
            assert.equal(4, r.beat_type)
            assert.equal(0, r.pickup_beats)
            assert.equal(1, r.first_downbeat)
            -- the beats cover every note
            assert.is_true(r.beats[1] <= notes[1].start_s + 0.05)
            assert.is_true(r.beats[#r.beats] >= notes[#notes].end_s)
        end)

        it(bpm .. " bpm swing-free 16ths: the beat, not the 16th", function()
            local notes, truth = play(bpm, 12, 4, SIXTEENTHS,
                                      { jitter = 0.008, seed = bpm + 1 })
            local r = assert(rhythm.estimate(notes))
            assert_tempo(bpm, r)
            assert.is_true(beat_error(r, truth) < 0.04)
            assert.equal(4, r.beats_per_measure)
        end)

        it(bpm .. " bpm waltz with accented downbeats: 3/4", function()
            local notes, truth = play(bpm, 16, 3, WALTZ,
                                      { seed = bpm + 2 })
            local r = assert(rhythm.estimate(notes))
            assert_tempo(bpm, r)
            assert.is_true(beat_error(r, truth) < 0.05)
            assert.equal(3, r.beats_per_measure)
            assert.equal(0, r.pickup_beats)
        end)
    end

    it("finds the downbeat after a one-beat pickup in a waltz", function()
        local notes = play(120, 16, 3, WALTZ, { seed = 5 })
        -- one chord on beat 3 before the first downbeat
        table.insert(notes, 1, { start_s = 0.0, end_s = 0.4, pitch = 59,
                                 amplitude = 0.6 })
        table.insert(notes, 2, { start_s = 0.006, end_s = 0.4, pitch = 62,
                                 amplitude = 0.6 })
        local r = assert(rhythm.estimate(notes))
        assert.equal(3, r.beats_per_measure)
        assert.equal(1, r.pickup_beats)
        assert.equal(2, r.first_downbeat)
        assert.is_true(math.abs(r.beats[2] - 0.5) < 0.03)
    end)

    it("counts a strummed chord once", function()
        local single = play(100, 10, 4, { { 0, 0.8, { 52 } }, { 1, 0.8, { 52 } },
                                          { 2, 0.8, { 52 } }, { 3, 0.8, { 52 } },
                                          { 3.5, 0.8, { 52 } } }, { seed = 9 })
        local strum = play(100, 10, 4, {
            { 0, 0.8, { 40, 47, 52, 56, 59, 64 } }, { 1, 0.8, { 52 } },
            { 2, 0.8, { 52 } }, { 3, 0.8, { 52 } }, { 3.5, 0.8, { 52 } } },
            { seed = 9 })
        local a = assert(rhythm.estimate(single))
        local b = assert(rhythm.estimate(strum))
        assert.equal(a.tempo_bpm, b.tempo_bpm)
        assert.equal(#rhythm.chords(single).t, #rhythm.chords(strum).t)
    end)

    it("groups notes by chord id, even when their starts are apart", function()
        local notes = {
            { start_s = 1.0, end_s = 2, pitch = 40, chord = 7 },
            { start_s = 1.08, end_s = 2, pitch = 47, chord = 7 },
            { start_s = 1.5, end_s = 2, pitch = 64 },
            { start_s = 1.51, end_s = 2, pitch = 67 },
        }
        local ch = rhythm.chords(notes)
        assert.equal(2, ch.n)
        assert.same({ 1.0, 1.5 }, ch.t)
        assert.equal(2, ch.size[1])
        assert.equal(2, ch.nxt[ch.first[1]])
    end)

    it("keeps the beat through a silence gap and re-locks after it", function()
        local a = play(120, 5, 4, MELODY, { seed = 11 })
        -- 20.25 s of silence: the music comes back half a beat late
        local b, truth_b = play(120, 5, 4, MELODY, { seed = 12,
                                                     t0 = 0.5 + 10 + 20.25 })
        for _, n in ipairs(b) do
            a[#a + 1] = n
        end
        local r = assert(rhythm.estimate(a))
        assert_tempo(120, r)
        -- after two measures the beats sit on the notes again
        assert.is_true(beat_error(r, truth_b, 9) < 0.05)
        for i = 2, #r.beats do
            local d = r.beats[i] - r.beats[i - 1]
            assert.is_true(d > 0.25 and d < 1.0)
        end
        assert.is_true(r.beats[#r.beats] >= a[#a].end_s)
    end)

    describe("overrides", function()
        it("tracks beats at a given tempo", function()
            local notes = play(120, 8, 4, MELODY, { seed = 3 })
            local r = assert(rhythm.estimate(notes, { tempo = 60 }))
            assert.equal(60, r.tempo_bpm)
            for i = 2, #r.beats do
                assert.is_true(math.abs(r.beats[i] - r.beats[i - 1] - 1) < 0.15)
            end
        end)

        it("takes the time signature and the pickup as given", function()
            local notes = play(120, 8, 4, MELODY, { seed = 4 })
            local r = assert(rhythm.estimate(notes,
                { time_signature = { 3, 4 }, pickup = 2 }))
            assert.equal(3, r.beats_per_measure)
            assert.equal(4, r.beat_type)
            assert.equal(2, r.pickup_beats)
            assert.equal(3, r.first_downbeat)
            r = assert(rhythm.estimate(notes, { time_signature = { 6, 8 } }))
            assert.equal(6, r.beats_per_measure)
            assert.equal(8, r.beat_type)
            -- the tracked beat is then an 8th; tempo_bpm counts quarters
            assert_tempo(60, r)
            r = assert(rhythm.estimate(notes, { time_signature = { 6, 8 },
                                                tempo = 90 }))
            assert.equal(90, r.tempo_bpm)
            assert.is_true(math.abs(r.beats[3] - r.beats[2] - 1 / 3) < 0.05)
            r = assert(rhythm.estimate(notes, { pickup = 1 }))
            assert.equal(1, r.pickup_beats)
            assert.equal(12, r.pickup_ticks)
            assert.equal(2, r.first_downbeat)
        end)

        it("takes a pickup of a fraction of a beat", function()
            -- an 8th before the first downbeat at 0.5 s + 0.25 s
            local notes = play(120, 8, 4, MELODY, { seed = 6, t0 = 0.75 })
            table.insert(notes, 1, { start_s = 0.5, end_s = 0.75, pitch = 59,
                                     amplitude = 0.6 })
            local r = assert(rhythm.estimate(notes, { pickup = 0.5 }))
            assert.equal(0.5, r.pickup_beats)
            assert.equal(6, r.pickup_ticks)
            assert.equal(2, r.first_downbeat)
            assert.is_true(math.abs(r.beats[2] - 0.75) < 0.03)
            assert.is_true(r.beats[1] < 0.5)
        end)

        it("refuses bad overrides", function()
            local notes = play(120, 2, 4, MELODY)
            for _, o in ipairs({
                { tempo = 0 }, { tempo = "fast" }, { tempo = 0 / 0 },
                { time_signature = { 4, 3 } }, { time_signature = { 0, 4 } },
                { time_signature = "4/4" }, { pickup = -1 }, { pickup = 1.1 },
                { pickup = 4 }, { time_signature = { 3, 4 }, pickup = 3 },
                { time_signature = { 6, 8 }, pickup = 0.25 },
            }) do
                local r, err = rhythm.estimate(notes, o)
                assert.is_nil(r)
                assert.is_string(err)
            end
        end)
    end)

    describe("degenerate input", function()
        it("gives one measure of beats for no notes", function()
            local r = assert(rhythm.estimate({}))
            assert.equal(120, r.tempo_bpm)
            assert.equal(4, r.beats_per_measure)
            assert.equal(4, #r.beats)
            assert.equal(1, r.first_downbeat)
            r = assert(rhythm.estimate({}, { tempo = 90,
                                             time_signature = { 3, 4 } }))
            assert.equal(90, r.tempo_bpm)
            assert.equal(3, #r.beats)
        end)

        it("covers one note with beats at the default tempo", function()
            local r = assert(rhythm.estimate({
                { start_s = 2.0, end_s = 3.7, pitch = 60, velocity = 90 } }))
            assert.equal(120, r.tempo_bpm)
            assert.is_true(math.abs(r.beats[1] - 2.0) < 0.03)
            assert.is_true(r.beats[#r.beats] >= 3.7)
            assert.equal(0, r.pickup_beats)
        end)

        it("copes with notes farther apart than the slowest beat", function()
            local r = assert(rhythm.estimate({
                { start_s = 0, end_s = 1, pitch = 60 },
                { start_s = 5, end_s = 6, pitch = 62 },
                { start_s = 10, end_s = 11, pitch = 64 } }))
            assert.is_true(r.tempo_bpm >= 40 and r.tempo_bpm <= 240)
            assert.is_true(r.beats[#r.beats] >= 11)
        end)
    end)
end)
