--- Tempo, beats and meter from note onsets (docs/tab.md, "Rhythm").
--
--     local r, err = require("wtt.tab.rhythm").estimate(notes, opts)
--
-- notes: sorted by start_s; { start_s, end_s, pitch, amplitude (0..1) or
-- velocity (1..127), onset (optional 0..1), chord (optional group id) }.
-- opts: tempo (quarter notes per minute, as tempo_bpm), time_signature
-- ({beats, beat_type}), pickup (beats before the first downbeat); each
-- overrides what would be estimated.
-- The tracked beat is the time signature's beat_type note (an 8th in
-- 6/8); tempo_bpm counts quarter notes, as MusicXML and Guitar Pro do.
-- Returns { tempo_bpm, beats (s), beats_per_measure, beat_type,
-- first_downbeat (index into beats), pickup_beats, pickup_ticks, chords
-- (_M.chords of these notes, for the grid) }; a given pickup may be a
-- fraction of a beat, in 16ths (0.5: an 8th).

local bit = require "bit"
local ffi = require "ffi"

local floor, ceil, abs = math.floor, math.ceil, math.abs
local exp, log, sqrt = math.exp, math.log, math.sqrt
local max, min = math.max, math.min
local sort = table.sort
local bor, lshift = bit.bor, bit.lshift

local _M = {}

local FPS = 50             -- onset-envelope frames per second
local COARSE = 2           -- candidate tempos are tracked at FPS / COARSE
local CHORD_S = 0.05       -- chordless notes starting this close sound as one
local SIGMA = 1.5          -- envelope smoothing (frames): timing tolerance
local MARGIN_S = 1.0       -- envelope before the first and after the last onset
local MIN_BPM, MAX_BPM = 40, 240       -- estimated tempo range
local PRIOR_BPM, PRIOR_OCT = 120, 1.0  -- log-Gaussian tempo prior
local TIGHTNESS = 30       -- DP weight of log(interval / period)^2
local SKIP = 0.75          -- see choose_period
local SKIP_FACTOR = 0.8
local TRIPLETS = 1.0
local PEAKS = 3            -- autocorrelation peaks tried as tempos
local DEFAULT_BPM = 120
local PICKUP_ACCENT = 0.5  -- see best_phase
local TRIPLET_S = 0.015    -- see complexity

_M.DEFAULT_BPM = DEFAULT_BPM


local function strength(n)
    local s = n.amplitude or (n.velocity and n.velocity / 127) or 1
    if n.onset then
        -- a note with no pluck (legato) is less of an accent
        s = s * (0.5 + 0.5 * n.onset)
    end
    return s
end


--- The note onsets as chords: each chord (a shared `chord` id, or
-- chordless notes starting within CHORD_S of the first) is one onset.
-- Flat arrays, one entry per chord in time order (a table per chord made
-- the garbage collector the slowest part of a long piece):
--     { n = count, t = first start, w = strongest note, low = lowest
--       pitch, pcs = pitch-class bit set, size = notes,
--       first = its first note, nxt = per note: the next note of its chord
--       (0 after the last), and per note its end_s and string (from the
--       fingering, or false) read in the same pass }
-- so a chord's notes, ascending, are first[c], nxt[first[c]], ...
function _M.chords(notes)
    local t, w, low, pcs, size, first, last = {}, {}, {}, {}, {}, {}, {}
    local nxt, ends, strings = {}, {}, {}
    local by_id = {}
    local n, open = 0, 0       -- open: the last chordless chord
    local sorted = true
    for i = 1, #notes do
        local note = notes[i]
        local id, s0, c = note.chord, note.start_s, 0
        ends[i], strings[i] = note.end_s, note.string or false
        if id ~= nil then
            c = by_id[id] or 0
        elseif open > 0 and s0 - t[open] <= CHORD_S then
            c = open
        end
        local st, p = strength(note), note.pitch
        if c == 0 then
            n = n + 1
            c = n
            t[c], w[c], low[c], pcs[c], size[c] = s0, st, p, 0, 0
            first[c] = i
            if id ~= nil then
                by_id[id] = c
            else
                open = c
            end
            if c > 1 and s0 < t[c - 1] then
                sorted = false
            end
        else
            nxt[last[c]] = i
            if s0 < t[c] then
                t[c] = s0
                sorted = false
            end
            if st > w[c] then
                w[c] = st
            end
            if p < low[c] then
                low[c] = p
            end
        end
        last[c], nxt[i] = i, 0
        size[c] = size[c] + 1
        pcs[c] = bor(pcs[c], lshift(1, p % 12))
    end
    local ch = { n = n, t = t, w = w, low = low, pcs = pcs, size = size,
                 first = first, nxt = nxt, end_s = ends, string = strings }
    if not sorted then
        -- a chord id joined notes far apart: put the chords in time order
        local idx = {}
        for c = 1, n do
            idx[c] = c
        end
        sort(idx, function(a, b)
            if t[a] ~= t[b] then
                return t[a] < t[b]
            end
            return a < b
        end)
        for _, k in ipairs({ "t", "w", "low", "pcs", "size", "first" }) do
            local src, dst = ch[k], {}
            for c = 1, n do
                dst[c] = src[idx[c]]
            end
            ch[k] = dst
        end
    end
    return ch
end


local function prior(period_s)
    local o = log(period_s * PRIOR_BPM / 60) / log(2) / PRIOR_OCT
    return exp(-0.5 * o * o)
end


--- The onset-strength envelope: each chord a Gaussian bump of its weight
-- (normalised so the mean chord weighs 1). Frame 0 is at `origin` s.
local function envelope(chords, origin, nf)
    local env = ffi.new("double[?]", nf)
    local ct, cw, n = chords.t, chords.w, chords.n
    local sum = 0
    for i = 1, n do
        sum = sum + cw[i]
    end
    local scale = sum > 0 and n / sum or 1
    local reach = 3 * SIGMA
    local k2 = -0.5 / (SIGMA * SIGMA)
    for i = 1, n do
        local f = (ct[i] - origin) * FPS
        local w = cw[i] * scale
        for j = max(0, ceil(f - reach)), min(nf - 1, floor(f + reach)) do
            local d = j - f
            env[j] = env[j] + w * exp(k2 * d * d)
        end
    end
    return env
end


--- Autocorrelation of the onsets as a function of lag (frames), from the
-- pairs of chords at most `maxlag` apart (an impulse train's correlation:
-- cheap when notes are sparse), smoothed and normalised per unit of
-- overlapping time so long lags are not penalised by the clip's ends.
local function autocorrelation(chords, maxlag, span_s)
    local ct, cw, n = chords.t, chords.w, chords.n
    local acf = ffi.new("double[?]", maxlag + 2)
    for i = 1, n - 1 do
        local ti, wi = ct[i], cw[i]
        for j = i + 1, n do
            local d = (ct[j] - ti) * FPS
            if d > maxlag then
                break
            end
            local l = floor(d)
            local a = d - l
            local w = wi * cw[j]
            acf[l] = acf[l] + w * (1 - a)
            acf[l + 1] = acf[l + 1] + w * a
        end
    end
    -- smooth with a Gaussian of SIGMA frames: the timing tolerance
    local out = ffi.new("double[?]", maxlag + 1)
    local k2 = -0.5 / (SIGMA * SIGMA)
    for l = 1, maxlag do
        local s, ws = 0, 0
        for d = -2 * SIGMA, 2 * SIGMA do
            local m = l + d
            if m >= 1 and m <= maxlag then
                local g = exp(k2 * d * d)
                s, ws = s + acf[m] * g, ws + g
            end
        end
        out[l] = s / ws / max(span_s - l / FPS, 0.5 * span_s)
    end
    return out
end


--- Tempo candidates from the autocorrelation: the peaks of prior x
-- (acf(L) + acf(2L) / 2) (counting the doubled lag, Ellis 2007's TPS2,
-- favours a lag whose multiples are strong), the best PEAKS of them, plus
-- half, double and 3/2 the best one. Steady 16ths correlate at every
-- multiple of a 16th, so the beat is often the second or third peak.
-- Returns periods in frames (parabolically interpolated), best first.
local function candidates(acf, lo, hi)
    local score = {}
    for l = lo - 1, hi + 1 do
        score[l] = (acf[l] + 0.5 * acf[2 * l]) * prior(l / FPS)
    end
    local peaks = {}
    for l = lo, hi do
        local a, b, c = score[l - 1], score[l], score[l + 1]
        if b > 0 and b >= a and b > c then
            local off = 0
            if a - 2 * b + c < 0 then
                off = max(-0.5, min(0.5, 0.5 * (a - c) / (a - 2 * b + c)))
            end
            peaks[#peaks + 1] = { l + off, b }
        end
    end
    if #peaks == 0 then
        return nil
    end
    sort(peaks, function(x, y) return x[2] > y[2] end)
    local t0, list = peaks[1][1], {}
    local function add(p)
        local bpm = 60 * FPS / p
        if bpm < MIN_BPM or bpm > MAX_BPM then
            return
        end
        for _, q in ipairs(list) do
            if abs(q / p - 1) < 0.04 then
                return
            end
        end
        list[#list + 1] = p
    end
    for i = 1, min(PEAKS, #peaks) do
        if peaks[i][2] >= 0.3 * peaks[1][2] then
            add(peaks[i][1])
        end
    end
    add(t0 / 2)
    add(t0 * 2)
    add(t0 * 1.5)
    return list
end


--- Dynamic-programming beat tracking (Ellis 2007): the beat sequence
-- maximising the sum of envelope values at the beats minus TIGHTNESS x
-- (log(interval / period))^2 per interval. Returns a list of frames.
local function track(env, nf, period)
    local lo, hi = max(1, floor(period * 0.75)), ceil(period * 1.34)
    local pen = ffi.new("double[?]", hi + 1)
    for d = lo, hi do
        local x = log(d / period)
        pen[d] = TIGHTNESS * x * x
    end
    local score = ffi.new("double[?]", nf)
    local back = ffi.new("int32_t[?]", nf)
    for t = 0, nf - 1 do
        local best, arg = -1e300, -1
        for d = lo, min(hi, t) do
            local v = score[t - d] - pen[d]
            if v > best then
                best, arg = v, t - d
            end
        end
        if arg < 0 then
            score[t], back[t] = env[t], -1
        else
            score[t], back[t] = env[t] + best, arg
        end
    end
    -- the chain ends at the best score within the last period
    local last, best = nf - 1, -1e300
    for t = max(0, nf - hi), nf - 1 do
        if score[t] > best then
            best, last = score[t], t
        end
    end
    local rev, t = {}, last
    while t >= 0 do
        rev[#rev + 1] = t
        t = back[t]
    end
    local frames = {}
    for i = #rev, 1, -1 do
        frames[#frames + 1] = rev[i]
    end
    return frames
end


--- Onset strength at the beats and at the midpoints between them, over
-- the beats between frames `from` and `to` (the notes), each the peak
-- within a frame either side (the tracker bends beats toward onsets, the
-- midpoints must get the same tolerance). Returns the mean square root
-- at the beats (compressed, so a candidate wins by hitting notes more
-- than by hitting accents) and the plain means at beats and midpoints.
local function peak(env, nf, f)
    local v = env[f]
    if f > 0 and env[f - 1] > v then
        v = env[f - 1]
    end
    if f < nf - 1 and env[f + 1] > v then
        v = env[f + 1]
    end
    return v
end

local function salience(env, nf, frames, from, to)
    local root, on, n_on, off, n_off = 0, 0, 0, 0, 0
    for i = 1, #frames do
        local f = frames[i]
        if f >= from and f <= to then
            local v = peak(env, nf, f)
            root, on, n_on = root + sqrt(v), on + v, n_on + 1
            local g = frames[i + 1]
            if g then
                off = off + peak(env, nf, floor((f + g) / 2 + 0.5))
                n_off = n_off + 1
            end
        end
    end
    if n_on == 0 then
        return 0, 0, 0
    end
    return root / n_on, on / n_on, n_off > 0 and off / n_off or 0
end


--- The share of onsets that would need triplets against beats at
-- `frames` (frame length `dt` s): those nearer, by TRIPLET_S or more, to
-- an 8th-triplet position than to a 16th. Errors are in seconds, so a
-- tempo and its double score alike; a beat at 2/3 or 3/2 of the true one
-- turns straight 8ths into triplets and scores high.
local function complexity(frames, dt, origin, chords)
    local ct, nc = chords.t, chords.n
    local nb = #frames
    if nb < 2 then
        return 0
    end
    -- beats on an onset (within a frame) move onto it: the coarse frames
    -- alone would add their own rounding to every fraction
    local bt, j = {}, 1
    for k = 1, nb do
        local t = origin + frames[k] * dt
        while j < nc and ct[j + 1] <= t do
            j = j + 1
        end
        local best = t
        if abs(ct[j] - t) <= dt then
            best = ct[j]
        end
        local d = j < nc and abs(ct[j + 1] - t) or dt + 1
        if d <= dt and d < abs(best - t) then
            best = ct[j + 1]
        end
        bt[k] = best
    end
    local total, k = 0, 1
    for i = 1, nc do
        local t = ct[i]
        while k < nb - 1 and bt[k + 1] <= t do
            k = k + 1
        end
        local a, b = bt[k], bt[k + 1]
        local x = (t - a) / (b - a)
        local f = x - floor(x)
        local span = b - a
        local d4 = abs(f - floor(f * 4 + 0.5) / 4) * span
        local d3 = abs(f - floor(f * 3 + 0.5) / 3) * span
        if d4 - d3 > TRIPLET_S then
            total = total + 1
        end
    end
    return total / nc
end


--- The half/double decision. The beat tracker runs, at FPS / COARSE, at
-- every candidate period P (the autocorrelation's best peaks, and half,
-- double and 3/2 the best one), and each P is scored
--     prior(P) x B(P) x exp(-TRIPLETS x X(P)) x (SKIP_FACTOR if skipping)
--   prior: log-Gaussian around PRIOR_BPM, PRIOR_OCT octaves wide;
--   B: mean square root of the onset strength at P's tracked beats, so a
--      faster candidate loses when its extra beats fall on silence or
--      weak subdivisions, and a slower one wins only when the accents it
--      keeps outweigh the prior;
--   X: the share of onsets that would need triplets against P's beats
--      (see complexity): it rejects the 2/3 and 3/2 relatives;
--   skipping: P/2 is a candidate too and P's off-beats (the midpoints
--      between its beats) carry SKIP x P's strength or more, so P skips
--      beats nearly as strong as its own (a metronome's unaccented clicks
--      between its downbeats).
-- The highest score wins. A genuinely ambiguous piece (steady 8ths with
-- no accents) goes to the level nearest 120 bpm; --tempo overrides.
local function choose_period(env, nf, periods, from, to, origin, chords)
    local coarse, nc = ffi.new("double[?]", floor(nf / COARSE) + 1), 0
    for i = 0, nf - 1, COARSE do
        local v = env[i]
        for j = i + 1, min(nf - 1, i + COARSE - 1) do
            v = max(v, env[j])
        end
        coarse[nc], nc = v, nc + 1
    end
    local res = {}
    for i, p in ipairs(periods) do
        local frames = track(coarse, nc, p / COARSE)
        local root, on, off = salience(coarse, nc, frames, floor(from / COARSE),
                                       ceil(to / COARSE))
        res[i] = { p = p, root = root, on = on, off = off,
                   cx = complexity(frames, COARSE / FPS, origin, chords) }
    end
    local best, pick = -1, periods[1]
    for _, c in ipairs(res) do
        local skips = false
        if c.off >= SKIP * c.on then
            for _, h in ipairs(res) do
                if abs(2 * h.p / c.p - 1) < 0.04 then
                    skips = true
                end
            end
        end
        local s = prior(c.p / FPS) * c.root
        s = s * exp(-TRIPLETS * c.cx)
        if skips then
            s = s * SKIP_FACTOR
        end
        if s > best then
            best, pick = s, c.p
        end
    end
    return pick
end


--- Beat frames moved to the envelope's peak within a frame (parabolic
-- interpolation), so beats on notes sit on the notes; beats in silence
-- stay. Returns fractional frames.
local function refine(env, nf, frames)
    local out = {}
    for i = 1, #frames do
        local f = frames[i]
        local best = f
        for j = max(0, f - 1), min(nf - 1, f + 1) do
            if env[j] > env[best] then
                best = j
            end
        end
        local x = best
        if best > 0 and best < nf - 1 then
            local a, b, c = env[best - 1], env[best], env[best + 1]
            local den = a - 2 * b + c
            if den < 0 then
                x = best + max(-0.5, min(0.5, 0.5 * (a - c) / den))
            end
        end
        out[i] = x
    end
    return out
end


--- Per-beat accents for the meter: the strongest chord on the beat (a strum
-- split in two is not an accent), plus the bass
-- (the lowest note starting on the beat, against the piece's mean; only
-- where a fifth of the onsets or more are chords) and
-- harmony changes (a chord whose pitch classes differ from the previous
-- chord's; single notes say nothing about harmony).
local function accents(beats, chords, period_s)
    local acc = {}
    local tol = 0.2 * period_s
    -- only the beats the onsets span: trailing beats under a last long
    -- note would read as unaccented
    local n = #beats
    local ct, cw, clow, cpcs, csize = chords.t, chords.w, chords.low,
                                      chords.pcs, chords.size
    local nc = chords.n
    while n > 1 and beats[n] > ct[nc] + tol do
        n = n - 1
    end
    local low, pcs = {}, {}
    local j = 1
    for k = 1, n do
        local b = beats[k]
        while j <= nc and ct[j] < b - tol do
            j = j + 1
        end
        local i = j
        local e, l, set = 0, nil, nil
        while i <= nc and ct[i] <= b + tol do
            e = max(e, cw[i])
            l = l and min(l, clow[i]) or clow[i]
            if csize[i] > 1 then
                set = cpcs[i]
            end
            i = i + 1
        end
        acc[k], low[k], pcs[k] = e, l, set
    end
    local sum_e, sum_l, n_l = 0, 0, 0
    for k = 1, n do
        sum_e = sum_e + acc[k]
        if low[k] then
            sum_l, n_l = sum_l + low[k], n_l + 1
        end
    end
    local mean_e = sum_e > 0 and sum_e / n or 1
    local mean_l = n_l > 0 and sum_l / n_l or 0
    -- the bass only means something where there is harmony: in a single
    -- line (or a metronome's high downbeat click) low is just low
    local poly = 0
    for i = 1, nc do
        if csize[i] > 1 then
            poly = poly + 1
        end
    end
    if poly < 0.2 * nc then
        n_l = 0
    end
    local prev = nil
    for k = 1, n do
        local s = acc[k] / mean_e
        if low[k] and n_l > 0 then
            s = s + 0.5 * max(-1, min(1, (mean_l - low[k]) / 12))
        end
        if pcs[k] then
            -- the first chord is a change too: it follows silence
            if prev ~= pcs[k] then
                s = s + 0.5
            end
            prev = pcs[k]
        end
        acc[k] = s
    end
    return acc
end


--- Contrast of the accents at beats k = phase (mod m) against the rest.
local function contrast(acc, m, phase)
    local a, na, b, nb = 0, 0, 0, 0
    for k = 1, #acc do
        if (k - 1) % m == phase then
            a, na = a + acc[k], na + 1
        else
            b, nb = b + acc[k], nb + 1
        end
    end
    if na == 0 or nb == 0 then
        return 0
    end
    return a / na - b / nb
end


local function best_phase(acc, m)
    local c0 = contrast(acc, m, 0)
    local best, arg = c0, 0
    -- a pickup is the exception: its downbeats must be clearly accented
    -- (by PICKUP_ACCENT of the mean accent) and beat phase 0 clearly
    for ph = 1, m - 1 do
        local c = contrast(acc, m, ph)
        if c > best and c > PICKUP_ACCENT and c > c0 + 0.15 then
            best, arg = c, ph
        end
    end
    return arg, max(best, c0)
end


--- Meter (3 or 4 beats) and downbeat phase by accent periodicity; 3/4
-- needs clearly stronger accents every third beat than every fourth.
local function meter(acc, fixed_m)
    if fixed_m then
        if #acc < 2 * fixed_m then
            return fixed_m, 0
        end
        return fixed_m, (best_phase(acc, fixed_m))
    end
    if #acc < 8 then
        return 4, 0
    end
    local p4, c4 = best_phase(acc, 4)
    local p3, c3 = best_phase(acc, 3)
    if c3 > 0.2 and c3 > c4 + 0.1 then
        return 3, p3
    end
    return 4, p4
end


local function check_opts(opts)
    local tempo, ts, pickup = opts.tempo, opts.time_signature, opts.pickup
    if tempo ~= nil and (type(tempo) ~= "number" or tempo ~= tempo
                         or tempo < 20 or tempo > 400) then
        return nil, "tempo must be a number in [20, 400] bpm"
    end
    if ts ~= nil then
        if type(ts) ~= "table" or type(ts[1]) ~= "number"
           or ts[1] ~= floor(ts[1]) or ts[1] < 1 or ts[1] > 32 then
            return nil, "time_signature must be {beats (1..32), beat_type}"
        end
        local bt = ts[2]
        if bt ~= 2 and bt ~= 4 and bt ~= 8 then
            return nil, "time_signature beat_type must be 2, 4 or 8"
        end
    end
    if pickup ~= nil then
        local m = ts and ts[1] or 4
        local ticks = type(pickup) == "number"
                      and pickup * 48 / (ts and ts[2] or 4)
        if not ticks or pickup < 0 or (pickup >= m and pickup > 0)
           or ticks ~= floor(ticks) or ticks % 3 ~= 0 then
            return nil, "pickup must be a number of beats below " .. m
                        .. ", in 16ths"
        end
    end
    return true
end


--- Beats at `period_s` from `t0` covering until `t_end`.
local function regular(t0, period_s, t_end)
    local beats, k = {}, 0
    repeat
        beats[k + 1] = t0 + k * period_s
        k = k + 1
    until beats[k] >= t_end
    return beats
end


--- The beats the grid uses: the tracked frames as seconds, from the last
-- beat at or before the first onset (within a quarter period, so an early
-- first note still counts as on the beat) to the first beat at or after
-- the last note's end, extrapolating at the final interval.
local function cover(frames, origin, period_s, first_t, last_end)
    local times = {}
    for i = 1, #frames do
        times[i] = origin + frames[i] / FPS
    end
    local limit = first_t + 0.25 * period_s
    local start = 1
    for i = 1, #times do
        if times[i] <= limit then
            start = i
        end
    end
    while times[start] > limit do
        -- the chain starts after the first note: extend it backwards
        table.insert(times, start, times[start] - period_s)
    end
    local beats = {}
    for i = start, #times do
        beats[#beats + 1] = times[i]
        if times[i] >= last_end then
            return beats
        end
    end
    local n = #beats
    local step = n > 1 and beats[n] - beats[n - 1] or period_s
    if step < 0.5 * period_s or step > 2 * period_s then
        step = period_s
    end
    while beats[#beats] < last_end do
        beats[#beats + 1] = beats[#beats] + step
    end
    return beats
end


--- A given pickup of `p` beats (possibly a fraction: an 8th is 0.5):
-- the downbeat is the tracked beat nearest p beats after the first note,
-- and beats[1] the beat ceil(p) before it (beats are added in front or
-- dropped as needed). Returns the beats and the downbeat's index.
local function given_pickup(beats, p, first_t)
    local n = #beats
    local step = n > 1 and beats[2] - beats[1] or 0.5
    local target = first_t + p * step
    local down, best = 1, math.huge
    for k = 1, n do
        local d = abs(beats[k] - target)
        if d < best then
            down, best = k, d
        end
    end
    local want = ceil(p) + 1
    if down > want then
        local out = {}
        for k = down - want + 1, n do
            out[#out + 1] = beats[k]
        end
        return out, want
    end
    for _ = 1, want - down do
        table.insert(beats, 1, beats[1] - step)
    end
    return beats, want
end


--- The tempo's period (s): a least-squares line through the beats that
-- sit on an onset (beats in silence say nothing), fitted again without
-- the beats more than a tenth of a period off the first line (a stray
-- note the tracker bent towards). nil when under two beats are on notes.
local function fitted_period(beats, chords, period_s)
    local ct, nc = chords.t, chords.n
    local tol = 0.1 * period_s
    local idx, at = {}, {}
    local j = 1
    for k = 1, #beats do
        local b = beats[k]
        while j < nc and ct[j] < b - tol do
            j = j + 1
        end
        if abs(ct[j] - b) <= tol then
            idx[#idx + 1], at[#at + 1] = k, b
        end
    end
    local slope
    local keep = {}
    for pass = 1, 2 do
        local n, mi, mt = 0, 0, 0
        for i = 1, #idx do
            if pass == 1 or keep[i] then
                n, mi, mt = n + 1, mi + idx[i], mt + at[i]
            end
        end
        if n < 2 then
            return slope
        end
        mi, mt = mi / n, mt / n
        local num, den = 0, 0
        for i = 1, #idx do
            if pass == 1 or keep[i] then
                num = num + (idx[i] - mi) * (at[i] - mt)
                den = den + (idx[i] - mi) * (idx[i] - mi)
            end
        end
        if den == 0 then
            return slope
        end
        slope = num / den
        for i = 1, #idx do
            keep[i] = abs(mt + (idx[i] - mi) * slope - at[i]) <= tol
        end
    end
    return slope
end


function _M.estimate(notes, opts)
    opts = opts or {}
    local ok, err = check_opts(opts)
    if not ok then
        return nil, err
    end
    local ts = opts.time_signature
    local beat_type = ts and ts[2] or 4
    local chords = _M.chords(notes)
    if chords.n == 0 then
        local period = 60 / (opts.tempo or DEFAULT_BPM) * 4 / beat_type
        local m = ts and ts[1] or 4
        local p = opts.pickup or 0
        return { tempo_bpm = opts.tempo or DEFAULT_BPM,
                 beats = regular(0, period, (m - 1 + ceil(p)) * period),
                 beats_per_measure = m, beat_type = beat_type,
                 first_downbeat = ceil(p) + 1, pickup_beats = p,
                 pickup_ticks = p * 48 / beat_type,
                 chords = chords, chords_of = notes }
    end

    local first_t, last_t, last_end = chords.t[1], chords.t[chords.n], 0
    for i = 1, #notes do
        last_end = max(last_end, notes[i].end_s, notes[i].start_s)
    end
    local origin = first_t - MARGIN_S
    local nf = floor((last_t - origin + MARGIN_S) * FPS) + 1
    local env = envelope(chords, origin, nf)
    local from, to = floor((first_t - origin) * FPS),
                     ceil((last_t - origin) * FPS)

    local period        -- frames
    if opts.tempo then
        period = 60 * FPS / opts.tempo * 4 / beat_type
    else
        local lo = floor(60 * FPS / MAX_BPM)
        local hi = ceil(60 * FPS / MIN_BPM)
        local span = last_t - first_t + 2 * SIGMA / FPS
        local acf = autocorrelation(chords, 2 * hi + 3, max(span, 1e-3))
        local periods = candidates(acf, lo, hi)
        if periods then
            period = choose_period(env, nf, periods, from, to, origin, chords)
        else
            -- one chord, or none closer than the slowest beat
            period = 60 * FPS / DEFAULT_BPM
        end
    end
    local frames = refine(env, nf, track(env, nf, period))
    local period_s = period / FPS
    local beats = cover(frames, origin, period_s, first_t, last_end)

    local tempo = opts.tempo
    if not tempo then
        local fitted = fitted_period(beats, chords, period_s)
        if fitted and fitted > 0.5 * period_s and fitted < 2 * period_s then
            period_s = fitted
        end
        tempo = floor(6000 / period_s * 4 / beat_type + 0.5) / 100
    end

    local m, phase, down
    if opts.pickup then
        phase = opts.pickup
        m = ts and ts[1] or (meter(accents(beats, chords, period_s)))
        if phase >= m then
            m = 4
        end
        beats, down = given_pickup(beats, phase, first_t)
    else
        m, phase = meter(accents(beats, chords, period_s), ts and ts[1])
        down = phase + 1
    end
    return { tempo_bpm = tempo, beats = beats, beats_per_measure = m,
             beat_type = beat_type, first_downbeat = down,
             pickup_beats = phase, pickup_ticks = phase * 48 / beat_type,
             chords = chords, chords_of = notes }
end


return _M
