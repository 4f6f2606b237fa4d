-- Note-level scoring of transcriptions against exact ground truth (docs/accuracy.md, "Scoring").
--
--   wtt run tools/score_notes.lua --self-test
--   wtt run tools/score_notes.lua TRUTH.json PRED.json
--   wtt run tools/score_notes.lua --set DEVSET PRED_DIR [--json OUT.json] [--tsv OUT.tsv] [--quiet]
--
-- TRUTH.json: [{start_s, end_s, pitch_midi, bends?: [{t, semitones}]}] (tools/devset/make.sh).
-- PRED.json: wtt's notes JSON ({notes: [{start_s, end_s, pitch_midi, pitch_bends}]}, pitch_bends
-- one contour bin (1/3 semitone) per model frame) or a truth-style list.
-- --set scores every clip of DEVSET/manifest.tsv (truth DEVSET/clips/<clip>.truth.json) against
-- PRED_DIR/<clip>.notes.json; a missing prediction scores as no notes.
--
-- Definitions (after mir_eval.transcription's):
--   * a true note and a predicted note can match when their onsets are within 50 ms, their pitches
--     within 50 cents and (onset-offset only) their offsets within max(50 ms, 20% of the true
--     note's duration); distances are rounded to 0.1 ms before the comparison, as mir_eval rounds
--     them, so that exactly 50 ms counts;
--   * the matching is a maximum one-to-one matching of that bipartite graph (augmenting paths, so
--     never fewer pairs than the best assignment; a greedy nearest-first pairing can be short);
--   * precision = pairs / predicted notes, recall = pairs / true notes, F1 their harmonic mean
--     (0 when either is 0).
-- Bends: a true note is bent when its curve reaches 0.5 semitone. It is correct when (1) it is
-- matched (onset-only), (2) the matched note's bend, read where the true curve is at least half its
-- peak, reaches the true peak within 0.5 semitone in the same direction (so, with 1/3-semitone bins,
-- at most one bin off) and (3) it was kept as one note: no unmatched predicted note starts inside it
-- (50 ms after its onset to its end) at a pitch between its own and the bent one. The model's bins
-- read +1 for an in-tune note (wtt's notes JSON, measured on the unbent notes of the set: see
-- `bend_baseline` in the output), so predicted bends are taken relative to BEND_BASELINE_BINS.
--
-- Missed true notes and unmatched predicted notes are also sorted into error kinds (first that
-- applies): see classify_misses / classify_extras below and docs/accuracy.md.

local M = {}

M.ONSET_TOL = 0.05
M.PITCH_TOL_CENTS = 50
M.OFFSET_RATIO = 0.2
M.OFFSET_MIN = 0.05
M.BEND_MIN = 0.5          -- semitones: a true note whose curve reaches this is "bent"
M.BEND_TOL = 0.5          -- semitones
M.BEND_BASELINE_BINS = 1  -- what the model's contour reads for an in-tune note
M.FRAME_S = 256 / 22050   -- the model's hop
M.MIN_NOTE_S = 11 * 256 / 22050   -- the official minimum note length (11 frames)

local abs, floor, log = math.abs, math.floor, math.log

local function round4(x) return floor(x * 1e4 + 0.5) / 1e4 end

local function cents(a, b)
    -- MIDI numbers to cents (1200 * log2 of the frequency ratio)
    return abs(a - b) * 100
end

--- Normalised note: {start_s, end_s, pitch, bends_bins?, curve?}
local function norm_note(n)
    local out = { start_s = assert(tonumber(n.start_s), "start_s"), end_s = assert(tonumber(n.end_s), "end_s"),
                  pitch = assert(tonumber(n.pitch_midi or n.pitch), "pitch_midi") }
    if type(n.pitch_bends) == "table" and #n.pitch_bends > 0 then out.bins = n.pitch_bends end
    if type(n.bends) == "table" and #n.bends > 0 then
        if type(n.bends[1]) == "table" then
            out.curve = n.bends                 -- truth: [{t, semitones}]
        else
            out.bins = n.bends                  -- a prediction in bins
        end
    end
    return out
end

function M.notes(list)
    local out = {}
    for i, n in ipairs(list) do out[i] = norm_note(n) end
    return out
end

--- Candidate pairs: cand[i] = list of est indices that may match ref i (nearest onset first).
local function candidates(ref, est, with_offsets)
    local cand = {}
    for i, r in ipairs(ref) do
        local list = {}
        local tol_off = math.max(M.OFFSET_MIN, M.OFFSET_RATIO * (r.end_s - r.start_s))
        for j, e in ipairs(est) do
            local d = round4(abs(r.start_s - e.start_s))
            if d <= M.ONSET_TOL and round4(cents(r.pitch, e.pitch)) <= M.PITCH_TOL_CENTS then
                if not with_offsets or round4(abs(r.end_s - e.end_s)) <= round4(tol_off) then
                    list[#list + 1] = { j = j, d = d }
                end
            end
        end
        table.sort(list, function(a, b) if a.d ~= b.d then return a.d < b.d end return a.j < b.j end)
        for k, c in ipairs(list) do list[k] = c.j end
        cand[i] = list
    end
    return cand
end

--- Maximum bipartite matching (Kuhn's augmenting paths: each ref in turn, re-routing earlier pairs
-- when that frees an est). Returns ref_to_est, est_to_ref, count.
function M.max_matching(cand, n_ref)
    local est_to_ref, ref_to_est = {}, {}
    local visited
    local function try(i)
        for _, j in ipairs(cand[i]) do
            if not visited[j] then
                visited[j] = true
                local other = est_to_ref[j]
                if other == nil or try(other) then
                    est_to_ref[j] = i
                    ref_to_est[i] = j
                    return true
                end
            end
        end
        return false
    end
    local count = 0
    for i = 1, n_ref do
        if #cand[i] > 0 then
            visited = {}
            if try(i) then count = count + 1 end
        end
    end
    return ref_to_est, est_to_ref, count
end

--- A greedy pairing (each ref, in order, takes its nearest free est). Not used for scores: it is
-- here so that the self-test can show a case where it falls short of the maximum.
function M.greedy_matching(cand, n_ref)
    local taken, count = {}, 0
    for i = 1, n_ref do
        for _, j in ipairs(cand[i]) do
            if not taken[j] then taken[j] = true; count = count + 1; break end
        end
    end
    return count
end

local function prf(m, n_ref, n_est)
    local p = n_est > 0 and m / n_est or 0
    local r = n_ref > 0 and m / n_ref or 0
    local f = (p + r) > 0 and 2 * p * r / (p + r) or 0
    return { precision = p, recall = r, f1 = f, matched = m }
end

--- The true curve's value at time t (the wheel holds between points).
local function curve_at(curve, t)
    local v = 0
    for _, pt in ipairs(curve) do
        if pt.t <= t + 1e-9 then v = pt.semitones else break end
    end
    return v
end

local function curve_peak(curve)
    local peak = 0
    for _, pt in ipairs(curve) do
        if abs(pt.semitones) > abs(peak) then peak = pt.semitones end
    end
    return peak
end

--- A predicted note's bends as (time, semitones relative to its pitch) pairs; times spread over the
-- note as the official MIDI writer spreads them (linspace from start to end).
local function pred_curve(e, baseline)
    local out = {}
    local bins = e.bins
    if not bins then return out end
    local n = #bins
    for k = 1, n do
        local t = n > 1 and e.start_s + (e.end_s - e.start_s) * (k - 1) / (n - 1) or e.start_s
        out[k] = { t = t, s = (bins[k] - baseline) / 3 }
    end
    return out
end

local function median(list)
    if #list == 0 then return nil end
    local s = {}
    for i, v in ipairs(list) do s[i] = v end
    table.sort(s)
    local m = #s
    return m % 2 == 1 and s[(m + 1) / 2] or (s[m / 2] + s[m / 2 + 1]) / 2
end

local OCTAVES = { [12] = true, [24] = true }
local HARMONICS = { [19] = true, [28] = true, [31] = true, [34] = true, [36] = true }

local function sounding(r, t)
    return t >= r.start_s - M.ONSET_TOL and t <= r.end_s + 0.1
end

--- Scores one clip. ref, est: lists as in the files (or already normalised). Returns a table.
function M.score(ref_in, est_in, opts)
    opts = opts or {}
    local baseline = opts.baseline_bins or M.BEND_BASELINE_BINS
    local ref, est = M.notes(ref_in), M.notes(est_in)
    local nr, ne = #ref, #est
    local r2e, e2r, m_on = M.max_matching(candidates(ref, est, false), nr)
    local _, _, m_off = M.max_matching(candidates(ref, est, true), nr)
    local res = { n_ref = nr, n_est = ne, onset = prf(m_on, nr, ne), onset_offset = prf(m_off, nr, ne) }

    -- timing of the matched pairs
    local devs, offs = {}, {}
    for i, j in pairs(r2e) do
        devs[#devs + 1] = (est[j].start_s - ref[i].start_s) * 1000
        offs[#offs + 1] = (est[j].end_s - ref[i].end_s) * 1000
    end
    res.onset_dev_ms = median(devs)
    res.offset_dev_ms = median(offs)

    -- bends
    local b = { n = 0, matched = 0, amount_ok = 0, one_note = 0, ok = 0, split_notes = 0, false_bends = 0 }
    local split_fp = {}
    local base_bins = {}
    for i, r in ipairs(ref) do
        local peak = r.curve and curve_peak(r.curve) or 0
        local j = r2e[i]
        if abs(peak) >= M.BEND_MIN then
            b.n = b.n + 1
            local dir = peak > 0 and 1 or -1
            local lo, hi = r.pitch, r.pitch + dir * floor(abs(peak) + 0.5)
            if lo > hi then lo, hi = hi, lo end
            local splits = 0
            for k, e in ipairs(est) do
                if not e2r[k] and e.start_s > r.start_s + M.ONSET_TOL and e.start_s <= r.end_s
                   and e.pitch >= lo and e.pitch <= hi then
                    splits = splits + 1
                    split_fp[k] = true
                end
            end
            b.split_notes = b.split_notes + splits
            if splits == 0 then b.one_note = b.one_note + 1 end
            local amount_ok = false
            if j then
                b.matched = b.matched + 1
                local e = est[j]
                local best
                for _, pt in ipairs(pred_curve(e, baseline)) do
                    if pt.t >= r.start_s and pt.t <= r.end_s
                       and abs(curve_at(r.curve, pt.t)) >= abs(peak) / 2 then
                        local v = pt.s + (e.pitch - r.pitch)
                        if best == nil or v * dir > best * dir then best = v end
                    end
                end
                amount_ok = best ~= nil and best * dir > 0 and abs(best - peak) <= M.BEND_TOL + 1e-9
                if amount_ok then b.amount_ok = b.amount_ok + 1 end
            end
            if j and amount_ok and splits == 0 then b.ok = b.ok + 1 end
        elseif j then
            -- an unbent true note: what its match's contour reads (the baseline), and false bends
            -- (3 frames or more at a semitone or more from the baseline)
            local e = est[j]
            if e.bins then
                local run, worst = 0, 0
                for _, v in ipairs(e.bins) do
                    base_bins[#base_bins + 1] = v
                    if abs(v - baseline) >= 3 then run = run + 1 else run = 0 end
                    if run > worst then worst = run end
                end
                if worst >= 3 then b.false_bends = b.false_bends + 1 end
            end
        end
    end
    b.accuracy = b.n > 0 and b.ok / b.n or nil
    res.bends = b
    res.bend_baseline = median(base_bins)

    res.misses = M.classify_misses(ref, est, r2e, e2r)
    res.extras = M.classify_extras(ref, est, e2r, split_fp)
    return res
end

--- Missed true notes by kind: octave_high / octave_low (an unmatched note an octave or two away
-- starts within 50 ms), merged_repeat (the note re-plucks a pitch that was sounding and a predicted
-- note of that pitch runs across its onset), semitone (an unmatched note 1 or 2 semitones away
-- starts within 50 ms), late_early (an unmatched note of its pitch starts 50-150 ms away), covered
-- (a predicted note of its pitch runs across its onset), short_missed (nothing, and the note is
-- shorter than the official minimum note length, 11 frames), missed (nothing). low_octave_high
-- counts the octave_high misses of notes below E2 (MIDI 40).
function M.classify_misses(ref, est, r2e, e2r)
    local c = { octave_high = 0, octave_low = 0, merged_repeat = 0, semitone = 0, late_early = 0,
                covered = 0, short_missed = 0, missed = 0, low_octave_high = 0 }
    for i, r in ipairs(ref) do
        if not r2e[i] then
            local kind
            for k, e in ipairs(est) do
                local dp = e.pitch - r.pitch
                if not e2r[k] and abs(e.start_s - r.start_s) <= M.ONSET_TOL and OCTAVES[abs(dp)] then
                    kind = dp > 0 and "octave_high" or "octave_low"
                    break
                end
            end
            if not kind then
                local prev = false
                for i2, q in ipairs(ref) do
                    if i2 ~= i and q.pitch == r.pitch and q.start_s < r.start_s
                       and q.end_s >= r.start_s - 0.15 then prev = true; break end
                end
                if prev then
                    for _, e in ipairs(est) do
                        if e.pitch == r.pitch and e.start_s < r.start_s - M.ONSET_TOL
                           and e.end_s > r.start_s + 0.02 then kind = "merged_repeat"; break end
                    end
                end
            end
            if not kind then
                for k, e in ipairs(est) do
                    local dp = abs(e.pitch - r.pitch)
                    if not e2r[k] and (dp == 1 or dp == 2) and abs(e.start_s - r.start_s) <= M.ONSET_TOL then
                        kind = "semitone"; break
                    end
                end
            end
            if not kind then
                for k, e in ipairs(est) do
                    local d = abs(e.start_s - r.start_s)
                    if not e2r[k] and e.pitch == r.pitch and d > M.ONSET_TOL and d <= 0.15 then
                        kind = "late_early"; break
                    end
                end
            end
            if not kind then
                for _, e in ipairs(est) do
                    if e.pitch == r.pitch and e.start_s < r.start_s and e.end_s > r.start_s then
                        kind = "covered"; break
                    end
                end
            end
            if not kind then
                kind = (r.end_s - r.start_s) < M.MIN_NOTE_S and "short_missed" or "missed"
            end
            c[kind] = c[kind] + 1
            if kind == "octave_high" and r.pitch < 40 then c.low_octave_high = c.low_octave_high + 1 end
        end
    end
    return c
end

--- Unmatched predicted notes by kind: bend_split (inside a bent true note, between its pitch and
-- the bent one), retrigger (the pitch of a sounding true note, from 50 ms before its onset to 100 ms
-- after its end: a second onset inside it; or of a true note starting within 150 ms), octave_up /
-- octave_down (an octave or two from a sounding true note), harmonic (19, 28, 31, 34 or 36
-- semitones above one), semitone (1 or 2 semitones from a true note whose onset is within 50 ms),
-- other.
function M.classify_extras(ref, est, e2r, split_fp)
    local c = { bend_split = 0, retrigger = 0, octave_up = 0, octave_down = 0, harmonic = 0, semitone = 0,
                other = 0 }
    for k, e in ipairs(est) do
        if not e2r[k] then
            local kind
            if split_fp[k] then kind = "bend_split" end
            if not kind then
                for _, r in ipairs(ref) do
                    if e.pitch == r.pitch and (sounding(r, e.start_s) or abs(e.start_s - r.start_s) <= 0.15) then
                        kind = "retrigger"; break
                    end
                end
            end
            if not kind then
                for _, r in ipairs(ref) do
                    local dp = e.pitch - r.pitch
                    if OCTAVES[abs(dp)] and sounding(r, e.start_s) then
                        kind = dp > 0 and "octave_up" or "octave_down"; break
                    end
                end
            end
            if not kind then
                for _, r in ipairs(ref) do
                    if HARMONICS[e.pitch - r.pitch] and sounding(r, e.start_s) then kind = "harmonic"; break end
                end
            end
            if not kind then
                for _, r in ipairs(ref) do
                    local dp = abs(e.pitch - r.pitch)
                    if (dp == 1 or dp == 2) and abs(e.start_s - r.start_s) <= M.ONSET_TOL then
                        kind = "semitone"; break
                    end
                end
            end
            kind = kind or "other"
            c[kind] = c[kind] + 1
        end
    end
    return c
end

-- ---------------------------------------------------------------------------------------------
-- Self-test: hand-made lists with known scores.

local function N(s, e, p, extra)
    local n = { start_s = s, end_s = e, pitch_midi = p }
    for k, v in pairs(extra or {}) do n[k] = v end
    return n
end

local BEND_UP2 = { { t = 1.0, semitones = 0 }, { t = 1.2, semitones = 1 }, { t = 1.3, semitones = 2 } }

M.CASES = {
    { name = "identical lists",
      ref = { N(0.5, 1.0, 60), N(1.0, 1.5, 64), N(1.0, 1.5, 67) },
      est = { N(0.5, 1.0, 60), N(1.0, 1.5, 64), N(1.0, 1.5, 67) },
      onset_f1 = 1, offset_f1 = 1 },
    { name = "greedy nearest-first pairing falls short (maximum matching: 2 pairs, greedy: 1)",
      -- ref A 1.000 and B 1.080; est X 1.035 (35 ms from A, 45 ms from B) and Y 0.955 (45 ms from
      -- A only). A's nearest is X, which leaves B nothing; the maximum is A-Y, B-X.
      ref = { N(1.000, 1.5, 60), N(1.080, 1.5, 60) },
      est = { N(1.035, 1.5, 60), N(0.955, 1.5, 60) },
      onset_f1 = 1, greedy_pairs = 1, max_pairs = 2 },
    { name = "wrong pitch and an extra note: P 2/4, R 2/3",
      ref = { N(0.5, 1.0, 60), N(1.0, 1.5, 62), N(1.5, 2.0, 64) },
      est = { N(0.51, 1.0, 60), N(1.0, 1.5, 63), N(1.49, 2.0, 64), N(3.0, 3.5, 70) },
      onset_f1 = 2 * (0.5 * 2 / 3) / (0.5 + 2 / 3), offset_f1 = 2 * (0.5 * 2 / 3) / (0.5 + 2 / 3) },
    { name = "onset exactly 50 ms away matches, 50.2 ms does not",
      ref = { N(1.0, 2.0, 60), N(3.0, 4.0, 60) },
      est = { N(1.05, 2.0, 60), N(3.0502, 4.0, 60) },
      onset_f1 = 0.5, offset_f1 = 0.5 },
    { name = "offsets: 20% of a long note, 50 ms for a short one",
      -- 1.0-2.0 s: tolerance 200 ms (2.19 in, 2.21 out); 5.0-5.1 s: tolerance 50 ms (5.14 in,
      -- 7.0-7.1: 7.16 out)
      ref = { N(1.0, 2.0, 60), N(3.0, 4.0, 62), N(5.0, 5.1, 64), N(7.0, 7.1, 65) },
      est = { N(1.0, 2.19, 60), N(3.0, 4.21, 62), N(5.0, 5.14, 64), N(7.0, 7.16, 65) },
      onset_f1 = 1, offset_f1 = 0.5 },
    { name = "two true notes, one predicted: one pair",
      ref = { N(1.0, 2.0, 60), N(1.01, 2.0, 60) },
      est = { N(1.0, 2.0, 60) },
      onset_f1 = 2 * (1 * 0.5) / 1.5, offset_f1 = 2 * (1 * 0.5) / 1.5 },
    { name = "bend: right amount, one note",
      ref = { N(1.0, 1.8, 57, { bends = BEND_UP2 }) },
      est = { N(1.0, 1.8, 57, { pitch_bends = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
                                                 1, 1, 1, 4, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
                                                 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
                                                 7, 7, 7, 7, 7, 7, 7, 7, 7, 7 } }) },
      onset_f1 = 1, bend_ok = 1, bend_n = 1 },
    { name = "bend: a semitone short",
      ref = { N(1.0, 1.8, 57, { bends = BEND_UP2 }) },
      est = { N(1.0, 1.8, 57, { pitch_bends = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
                                                 1, 1, 1, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
                                                 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
                                                 4, 4, 4, 4, 4, 4, 4, 4, 4, 4 } }) },
      onset_f1 = 1, bend_ok = 0, bend_n = 1, bend_amount_ok = 0 },
    { name = "bend: split into a second note",
      ref = { N(1.0, 1.8, 57, { bends = BEND_UP2 }) },
      est = { N(1.0, 1.25, 57, { pitch_bends = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1 } }),
              N(1.3, 1.8, 59, { pitch_bends = { 1, 1, 1, 1, 1, 1, 1, 1 } }) },
      onset_f1 = 2 * (0.5 * 1) / 1.5, bend_ok = 0, bend_n = 1, bend_split_notes = 1 },
}

local function close(a, b) return abs(a - b) < 1e-9 end

--- Runs the cases; returns a list of failure messages (empty when all pass).
function M.self_test(out)
    local fails = {}
    local function check(case, what, got, want)
        if want ~= nil and not close(got or -1, want) then
            fails[#fails + 1] = string.format("%s: %s = %s, expected %s", case.name, what, tostring(got), tostring(want))
        end
    end
    for _, case in ipairs(M.CASES) do
        local r = M.score(case.ref, case.est)
        check(case, "onset F1", r.onset.f1, case.onset_f1)
        check(case, "onset-offset F1", r.onset_offset.f1, case.offset_f1)
        check(case, "bent notes", r.bends.n, case.bend_n)
        check(case, "correct bends", r.bends.ok, case.bend_ok)
        check(case, "bend amounts", r.bends.amount_ok, case.bend_amount_ok)
        check(case, "bend split notes", r.bends.split_notes, case.bend_split_notes)
        if case.greedy_pairs then
            local ref, est = M.notes(case.ref), M.notes(case.est)
            local cand = candidates(ref, est, false)
            check(case, "greedy pairs", M.greedy_matching(cand, #ref), case.greedy_pairs)
            local _, _, m = M.max_matching(cand, #ref)
            check(case, "maximum pairs", m, case.max_pairs)
        end
        if out then out:write(string.format("%-80s onset F1 %.4f  onset-offset F1 %.4f\n", case.name,
                                            r.onset.f1, r.onset_offset.f1)) end
    end
    return fails
end

--- The largest matching by trying every assignment (small inputs only): for checking max_matching.
function M.brute_force_matching(cand, n_ref)
    local used = {}
    local function best(i)
        if i > n_ref then return 0 end
        local b = best(i + 1)
        for _, j in ipairs(cand[i]) do
            if not used[j] then
                used[j] = true
                local v = 1 + best(i + 1)
                used[j] = nil
                if v > b then b = v end
            end
        end
        return b
    end
    return best(1)
end

M.candidates = candidates

-- ---------------------------------------------------------------------------------------------
-- Set scoring

local function read_json(path)
    local json = require "wtt.json"
    local f = io.open(path, "rb")
    if not f then return nil end
    local s = f:read("*a")
    f:close()
    return json.decode(s)
end

function M.read_manifest(path)
    local rows, cols = {}, nil
    for line in io.lines(path) do
        local fields = {}
        for v in (line .. "\t"):gmatch("([^\t]*)\t") do fields[#fields + 1] = v end
        if not cols then
            cols = fields
        elseif #line > 0 then
            local r = {}
            for i, c in ipairs(cols) do r[c] = fields[i] end
            rows[#rows + 1] = r
        end
    end
    return rows
end

function M.read_pred(path)
    local doc = read_json(path)
    if doc == nil then return nil end
    return doc.notes or doc
end

local MISS_KEYS = { "octave_high", "octave_low", "merged_repeat", "semitone", "late_early", "covered",
                    "short_missed", "missed", "low_octave_high" }
local EXTRA_KEYS = { "bend_split", "retrigger", "octave_up", "octave_down", "harmonic", "semitone", "other" }
M.MISS_KEYS, M.EXTRA_KEYS = MISS_KEYS, EXTRA_KEYS

--- Sums and means over a list of clip results.
function M.summarise(results)
    local s = { clips = #results, onset_f1 = 0, onset_offset_f1 = 0, n_ref = 0, n_est = 0,
                matched = 0, bends_n = 0, bends_ok = 0, bends_matched = 0, bends_amount_ok = 0,
                bends_one_note = 0, bend_split_notes = 0, false_bends = 0, misses = {}, extras = {} }
    for _, k in ipairs(MISS_KEYS) do s.misses[k] = 0 end
    for _, k in ipairs(EXTRA_KEYS) do s.extras[k] = 0 end
    for _, r in ipairs(results) do
        s.onset_f1 = s.onset_f1 + r.onset.f1
        s.onset_offset_f1 = s.onset_offset_f1 + r.onset_offset.f1
        s.n_ref, s.n_est, s.matched = s.n_ref + r.n_ref, s.n_est + r.n_est, s.matched + r.onset.matched
        s.bends_n, s.bends_ok = s.bends_n + r.bends.n, s.bends_ok + r.bends.ok
        s.bends_matched = s.bends_matched + r.bends.matched
        s.bends_amount_ok = s.bends_amount_ok + r.bends.amount_ok
        s.bends_one_note = s.bends_one_note + r.bends.one_note
        s.bend_split_notes = s.bend_split_notes + r.bends.split_notes
        s.false_bends = s.false_bends + r.bends.false_bends
        for _, k in ipairs(MISS_KEYS) do s.misses[k] = s.misses[k] + r.misses[k] end
        for _, k in ipairs(EXTRA_KEYS) do s.extras[k] = s.extras[k] + r.extras[k] end
    end
    if #results > 0 then
        s.onset_f1 = s.onset_f1 / #results
        s.onset_offset_f1 = s.onset_offset_f1 / #results
    end
    local pooled = prf(s.matched, s.n_ref, s.n_est)
    s.pooled_onset_f1 = pooled.f1
    s.bend_accuracy = s.bends_n > 0 and s.bends_ok / s.bends_n or nil
    return s
end

local function fmt(x, w)
    if x == nil then return string.format("%" .. (w or 6) .. "s", "na") end
    return string.format("%" .. (w or 6) .. ".3f", x)
end
M.fmt = fmt

--- Scores every clip of a development set. Returns {clips = [...], groups = {...}}.
function M.score_set(devset, pred_dir)
    local rows = M.read_manifest(devset .. "/manifest.tsv")
    local clips = {}
    for _, row in ipairs(rows) do
        local truth = assert(read_json(devset .. "/clips/" .. row.clip .. ".truth.json"),
                             "no truth for " .. row.clip)
        local pred = M.read_pred(pred_dir .. "/" .. row.clip .. ".notes.json")
        local r = M.score(truth, pred or {})
        r.clip, r.kind, r.split, r.program_name = row.clip, row.kind, row.split, row.program_name
        r.reverb, r.noise, r.missing = row.reverb, row.noise, pred == nil
        clips[#clips + 1] = r
    end
    local groups = {}
    local function add(key, r)
        groups[key] = groups[key] or {}
        table.insert(groups[key], r)
    end
    for _, r in ipairs(clips) do
        add("all", r); add(r.split, r); add(r.split .. "/" .. r.kind, r); add("all/" .. r.kind, r)
    end
    local summaries = {}
    for k, list in pairs(groups) do summaries[k] = M.summarise(list) end
    return { clips = clips, summaries = summaries }
end

local function sorted_keys(t)
    local ks = {}
    for k in pairs(t) do ks[#ks + 1] = k end
    table.sort(ks)
    return ks
end

function M.print_set(res, out)
    out:write(string.format("%-30s %-9s %-6s %5s %5s %7s %7s %7s\n", "clip", "kind", "split", "true",
                            "pred", "onsetF1", "onoffF1", "bends"))
    for _, r in ipairs(res.clips) do
        out:write(string.format("%-30s %-9s %-6s %5d %5d %7.3f %7.3f %7s%s\n", r.clip, r.kind, r.split,
                                r.n_ref, r.n_est, r.onset.f1, r.onset_offset.f1,
                                r.bends.n > 0 and (r.bends.ok .. "/" .. r.bends.n) or "-",
                                r.missing and "  (no prediction)" or ""))
    end
    out:write("\n")
    out:write(string.format("%-20s %5s %7s %7s %7s %9s\n", "group", "clips", "onsetF1", "onoffF1",
                            "pooledF1", "bends"))
    for _, k in ipairs(sorted_keys(res.summaries)) do
        local s = res.summaries[k]
        out:write(string.format("%-20s %5d %7.3f %7.3f %7.3f %9s\n", k, s.clips, s.onset_f1,
                                s.onset_offset_f1, s.pooled_onset_f1,
                                s.bends_n > 0 and string.format("%d/%d", s.bends_ok, s.bends_n) or "-"))
    end
    out:write("\n")
    M.print_errors(res, "all", out)
end

local SHORT = { octave_high = "oct_hi", octave_low = "oct_lo", merged_repeat = "merged", semitone = "semi",
                late_early = "timing", covered = "covered", short_missed = "short", missed = "missed",
                low_octave_high = "low_hi", bend_split = "bsplit", octave_up = "oct_up",
                octave_down = "oct_dn", harmonic = "harm", retrigger = "retrig", other = "other" }
M.SHORT = SHORT

--- The error kinds per kind of clip, for the clips of one split ("all", "test" or "tuning").
function M.print_errors(res, split, out)
    local kinds = {}
    for k in pairs(res.summaries) do
        local sp, kind = k:match("^([^/]+)/(.+)$")
        if sp == split then kinds[#kinds + 1] = kind end
    end
    table.sort(kinds)
    kinds[#kinds + 1] = false
    out:write(string.format("errors (%s clips): missed true notes | unmatched predicted notes\n", split))
    local head = { string.format("%-10s %5s %5s", "kind", "true", "pred") }
    for _, k in ipairs(MISS_KEYS) do head[#head + 1] = string.format("%8s", SHORT[k]) end
    head[#head + 1] = " |"
    for _, k in ipairs(EXTRA_KEYS) do head[#head + 1] = string.format("%8s", SHORT[k]) end
    out:write(table.concat(head), "\n")
    for _, kind in ipairs(kinds) do
        local s = res.summaries[kind and (split .. "/" .. kind) or split]
        local row = { string.format("%-10s %5d %5d", kind or "total", s.n_ref, s.n_est) }
        for _, k in ipairs(MISS_KEYS) do row[#row + 1] = string.format("%8d", s.misses[k]) end
        row[#row + 1] = " |"
        for _, k in ipairs(EXTRA_KEYS) do row[#row + 1] = string.format("%8d", s.extras[k]) end
        out:write(table.concat(row), "\n")
    end
    local s = res.summaries[split]
    out:write(string.format("bends (%s clips): %d bent true notes, %d matched, %d with the right amount, "
                            .. "%d kept as one note, %d correct; %d split notes; %d false bends on unbent notes\n",
                            split, s.bends_n, s.bends_matched, s.bends_amount_ok, s.bends_one_note, s.bends_ok,
                            s.bend_split_notes, s.false_bends))
end

function M.write_tsv(res, path)
    local f = assert(io.open(path, "w"))
    local cols = { "clip", "kind", "split", "program", "n_ref", "n_est", "onset_p", "onset_r", "onset_f1",
                   "onoff_f1", "bends_n", "bends_ok", "onset_dev_ms", "offset_dev_ms" }
    for _, k in ipairs(MISS_KEYS) do cols[#cols + 1] = "miss_" .. k end
    for _, k in ipairs(EXTRA_KEYS) do cols[#cols + 1] = "extra_" .. k end
    f:write(table.concat(cols, "\t"), "\n")
    for _, r in ipairs(res.clips) do
        local row = { r.clip, r.kind, r.split, r.program_name, r.n_ref, r.n_est,
                      string.format("%.4f", r.onset.precision), string.format("%.4f", r.onset.recall),
                      string.format("%.4f", r.onset.f1), string.format("%.4f", r.onset_offset.f1),
                      r.bends.n, r.bends.ok,
                      r.onset_dev_ms and string.format("%.1f", r.onset_dev_ms) or "na",
                      r.offset_dev_ms and string.format("%.1f", r.offset_dev_ms) or "na" }
        for _, k in ipairs(MISS_KEYS) do row[#row + 1] = r.misses[k] end
        for _, k in ipairs(EXTRA_KEYS) do row[#row + 1] = r.extras[k] end
        for i, v in ipairs(row) do row[i] = tostring(v) end
        f:write(table.concat(row, "\t"), "\n")
    end
    f:close()
end

-- ---------------------------------------------------------------------------------------------
-- Command line

local USAGE = [[usage: wtt run tools/score_notes.lua --self-test
       wtt run tools/score_notes.lua TRUTH.json PRED.json
       wtt run tools/score_notes.lua --set DEVSET PRED_DIR [--json OUT.json] [--tsv OUT.tsv] [--quiet]
]]

local function main(args)
    if args[1] == "--self-test" then
        local fails = M.self_test(io.stdout)
        -- and max_matching against exhaustive search on random small cases
        math.randomseed(12)
        for _ = 1, 300 do
            local nr, ne = math.random(0, 6), math.random(0, 6)
            local cand = {}
            for i = 1, nr do
                cand[i] = {}
                for j = 1, ne do if math.random() < 0.4 then cand[i][#cand[i] + 1] = j end end
            end
            local _, _, m = M.max_matching(cand, nr)
            if m ~= M.brute_force_matching(cand, nr) then
                fails[#fails + 1] = "max_matching is not maximum on a random case"
                break
            end
        end
        for _, f in ipairs(fails) do io.stderr:write("FAIL ", f, "\n") end
        print(#fails == 0 and "self-test: all cases pass" or ("self-test: " .. #fails .. " failures"))
        return #fails == 0 and 0 or 1
    elseif args[1] == "--set" and args[2] and args[3] then
        local json_out, tsv_out, quiet
        local i = 4
        while args[i] do
            if args[i] == "--json" then json_out = args[i + 1]; i = i + 2
            elseif args[i] == "--tsv" then tsv_out = args[i + 1]; i = i + 2
            elseif args[i] == "--quiet" then quiet = true; i = i + 1
            else io.stderr:write(USAGE); return 2 end
        end
        local res = M.score_set(args[2], args[3])
        if not quiet then M.print_set(res, io.stdout) end
        if json_out then
            local f = assert(io.open(json_out, "w"))
            f:write(require("wtt.json").encode(res), "\n")
            f:close()
        end
        if tsv_out then M.write_tsv(res, tsv_out) end
        return 0
    elseif #args == 2 and args[1]:sub(1, 1) ~= "-" then
        local truth = assert(read_json(args[1]), "cannot read " .. args[1])
        local pred = assert(M.read_pred(args[2]), "cannot read " .. args[2])
        local r = M.score(truth, pred)
        print(string.format("true %d, predicted %d; onset P %.3f R %.3f F1 %.3f; onset-offset F1 %.3f; "
                            .. "bends %s", r.n_ref, r.n_est, r.onset.precision, r.onset.recall, r.onset.f1,
                            r.onset_offset.f1, r.bends.n > 0 and (r.bends.ok .. "/" .. r.bends.n) or "-"))
        print(require("wtt.json").encode(r))
        return 0
    end
    io.stderr:write(USAGE)
    return 2
end

local args = { ... }
if args[1] == "--as-module" then return M end
os.exit(main(args))
