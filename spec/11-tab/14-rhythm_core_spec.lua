-- wtt.core.rhythm: the C rhythm's Lua face (core/bind/wtt_tab_rhythm.c):
-- the onsets as the grid reads them, a click track end to end, expected
-- failures as nil, err, and misuse raising.

local core = require "wtt.core.rhythm"

--- A click every `period` s from t0, n of them, as notes.
local function clicks(t0, period, n)
    local notes = {}
    for k = 0, n - 1 do
        notes[#notes + 1] = { start_s = t0 + k * period,
                              end_s = t0 + k * period + 0.1, pitch = 60,
                              velocity = 100 }
    end
    return notes
end

describe("wtt.core.rhythm", function()
    it("groups notes into onsets with the arrays the grid reads", function()
        local ch, on, last_end = core.chords({
            { start_s = 1.0, end_s = 1.5, pitch = 40, chord = "a",
              string = 6 },
            { start_s = 1.02, end_s = 1.4, pitch = 64, amplitude = 0.5 },
            { start_s = 1.04, end_s = 3.0, pitch = 47, chord = "a",
              string = 5 },
            { start_s = 2.0, end_s = 2.5, pitch = 52, onset = 0 },
        })
        assert.equal(3, ch.n)
        assert.same({ 1.0, 1.02, 2.0 }, ch.t)
        assert.same({ 2, 1, 1 }, ch.size)
        assert.same({ 1, 2, 4 }, ch.first)
        assert.same({ 3, 0, 0, 0 }, ch.nxt)
        assert.same({ 1.5, 1.4, 3.0, 2.5 }, ch.end_s)
        assert.same({ 6, false, 5, false }, ch.string)
        assert.equal("userdata", type(on))
        assert.equal(3.0, last_end)
        local none = core.chords({})
        assert.equal(0, none.n)
        assert.same({}, none.t)
    end)

    it("tracks a click track from onsets to beats and accents", function()
        local ch, on, last_end = core.chords(clicks(0.5, 0.5, 40))
        local env = assert(core.envelope(on))
        local period = assert(core.period(on, env))
        assert.is_true(math.abs(period - 25) < 0.25)
        local beats, packed = assert(core.beats(env, period, last_end))
        -- on every click, and one more to cover the last note's end
        assert.equal(41, #beats)
        assert.is_true(math.abs(beats[1] - 0.5) < 1e-9)
        assert.is_true(math.abs(beats[40] - 20) < 1e-9)
        assert.is_true(beats[41] >= last_end)
        assert.equal(#beats * 8, #packed)
        local fitted = assert(core.fitted_period(on, packed, period / core.FPS))
        assert.is_true(math.abs(fitted - 0.5) < 1e-6)
        local acc, n = assert(core.accents(on, packed, 0.5))
        assert.equal(40, n)
        local c = { core.contrasts(acc, 4) }
        assert.equal(4, #c)
        for i = 1, 4 do
            assert.is_true(math.abs(c[i]) < 1e-9)   -- no accents at all
        end
        -- a beat of pickup from the first click: the downbeat is the
        -- second beat; from the second click, the first beat goes
        local moved, down = core.pickup(packed, 1, ch.t[1])
        assert.equal(2, down)
        assert.same(beats, moved)
        moved, down = core.pickup(packed, 1, ch.t[2])
        assert.equal(2, down)
        assert.equal(40, #moved)
        assert.equal(beats[2], moved[1])
        -- onsets farther apart than the slowest beat: no candidate
        local _, sparse = core.chords(clicks(1, 5, 3))
        assert.is_false(core.period(sparse, assert(core.envelope(sparse))))
    end)

    it("returns nil, err for what it cannot do", function()
        local _, on = core.chords({
            { start_s = 0, end_s = 1, pitch = 60 },
            { start_s = 1e8, end_s = 1e8 + 1, pitch = 60 } })
        local env, err = core.envelope(on)
        assert.is_nil(env)
        assert.matches("too long", err)
        local _, on2, last_end = core.chords(clicks(0.5, 0.5, 4))
        env = assert(core.envelope(on2))
        local beats
        beats, err = core.beats(env, 0, last_end)
        assert.is_nil(beats)
        assert.matches("period", err)
    end)

    it("raises on misuse", function()
        assert.has_error(function() core.chords("notes") end)
        assert.has_error(function() core.chords({ 1 }) end)
        assert.has_error(function()
            core.chords({ { start_s = "x", end_s = 1, pitch = 60 } })
        end)
        assert.has_error(function()
            core.chords({ { start_s = 0, end_s = 1, pitch = 60.5 } })
        end)
        assert.has_error(function()
            core.chords({ { start_s = 0, end_s = 1, pitch = 60,
                            amplitude = "loud" } })
        end)
        local _, none = core.chords({})
        assert.has_error(function() core.envelope(none) end)
        assert.has_error(function() core.contrasts("abc", 4) end)
        assert.has_error(function() core.contrasts(("\0"):rep(8), 0) end)
        assert.has_error(function() core.pickup(("\0"):rep(8), -1, 0) end)
    end)
end)
