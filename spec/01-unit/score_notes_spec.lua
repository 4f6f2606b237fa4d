-- tools/score_notes.lua, the accuracy scorer (docs/accuracy.md, "Scoring"): its hand-made cases
-- with known F1 values, a case where greedy pairing falls short of the maximum matching, the
-- matching against exhaustive search, and the error kinds on small lists.

local runtime = require "wtt.runtime"
local score = assert(loadfile(runtime.source_dir .. "/tools/score_notes.lua"))("--as-module")

local function N(s, e, p, extra)
    local n = { start_s = s, end_s = e, pitch_midi = p }
    for k, v in pairs(extra or {}) do n[k] = v end
    return n
end

describe("score_notes", function()
    it("passes its own hand-made cases", function()
        assert.same({}, score.self_test())
    end)

    for _, case in ipairs(score.CASES) do
        if case.onset_f1 then
            it("scores '" .. case.name .. "'", function()
                local r = score.score(case.ref, case.est)
                assert.near(case.onset_f1, r.onset.f1, 1e-9)
                if case.offset_f1 then assert.near(case.offset_f1, r.onset_offset.f1, 1e-9) end
            end)
        end
    end

    it("finds the maximum matching where greedy pairing does not", function()
        local ref = score.notes({ N(1.000, 1.5, 60), N(1.080, 1.5, 60) })
        local est = score.notes({ N(1.035, 1.5, 60), N(0.955, 1.5, 60) })
        local cand = score.candidates(ref, est, false)
        assert.equal(1, score.greedy_matching(cand, #ref))
        local r2e, _, m = score.max_matching(cand, #ref)
        assert.equal(2, m)
        assert.same({ 2, 1 }, { r2e[1], r2e[2] })
    end)

    it("matches as many pairs as exhaustive search on random graphs", function()
        math.randomseed(7)
        for _ = 1, 500 do
            local nr, ne = math.random(0, 7), math.random(0, 7)
            local cand = {}
            for i = 1, nr do
                cand[i] = {}
                for j = 1, ne do
                    if math.random() < 0.35 then cand[i][#cand[i] + 1] = j end
                end
            end
            local _, _, m = score.max_matching(cand, nr)
            assert.equal(score.brute_force_matching(cand, nr), m)
        end
    end)

    it("scores empty lists as 0, not as an error", function()
        local r = score.score({}, {})
        assert.equal(0, r.onset.f1)
        r = score.score({ N(1, 2, 60) }, {})
        assert.equal(0, r.onset.f1)
        assert.equal(1, r.misses.missed)
    end)

    it("sorts errors: an octave-high low note, a merged repeat, a retrigger", function()
        local ref = { N(1.0, 1.5, 33),                     -- A1 heard an octave high
                      N(2.0, 2.25, 60), N(2.25, 2.5, 60),  -- re-plucked C4, merged into one note
                      N(3.0, 4.0, 64) }                     -- E4 retriggered at 3.5
        local est = { N(1.01, 1.5, 45),
                      N(2.0, 2.5, 60),
                      N(3.0, 3.5, 64), N(3.5, 4.0, 64) }
        local r = score.score(ref, est)
        assert.equal(2, r.onset.matched)
        assert.equal(1, r.misses.octave_high)
        assert.equal(1, r.misses.low_octave_high)
        assert.equal(1, r.misses.merged_repeat)
        assert.equal(1, r.extras.octave_up)
        assert.equal(1, r.extras.retrigger)
    end)

    it("reads the bend baseline from unbent notes and flags false bends", function()
        local ref = { N(1.0, 1.5, 60), N(2.0, 2.5, 62) }
        local est = { N(1.0, 1.5, 60, { pitch_bends = { 1, 1, 1, 1, 1, 1, 1 } }),
                      N(2.0, 2.5, 62, { pitch_bends = { 1, 1, 4, 4, 4, 4, 1 } }) }
        local r = score.score(ref, est)
        assert.equal(1, r.bend_baseline)
        assert.equal(1, r.bends.false_bends)
        assert.equal(0, r.bends.n)
        assert.is_nil(r.bends.accuracy)
    end)
end)
