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

-- The loops over notes, envelope frames, candidate periods and beats run
-- in C (core/tab/wtt_rhythm.c, through wtt.core.rhythm); this module takes
-- the overrides, rounds the tempo and picks the meter and the downbeat.

local core = require "wtt.core.rhythm"

local floor, ceil, max = math.floor, math.ceil, math.max

local _M = {}

local FPS = core.FPS       -- onset-envelope frames per second
local DEFAULT_BPM = 120
local PICKUP_ACCENT = 0.5  -- see best_phase

_M.DEFAULT_BPM = DEFAULT_BPM


--- The note onsets as chords: each chord (a shared `chord` id, or
-- chordless notes starting within 50 ms of the first) is one onset.
-- Flat arrays, one entry per chord in time order (a table per chord made
-- the garbage collector the slowest part of a long piece):
--     { n = count, t = first start, size = notes, first = its first note,
--       nxt = per note: the next note of its chord (0 after the last),
--       and per note its end_s and string (from the fingering, or false)
--       read in the same pass }
-- so a chord's notes, ascending, are first[c], nxt[first[c]], ...
-- The onsets' weights (the strongest note's amplitude, or velocity / 127,
-- or 1, times 0.5 + 0.5 x onset where the onset is known), lowest pitches
-- and pitch classes stay in C for the estimate. Notes are read raw (plain
-- tables); start_s, end_s and an integer pitch are required.
function _M.chords(notes)
    return (core.chords(notes))
end


--- Contrast of the accents at beats k = phase (mod m) against the rest,
-- for every phase: the downbeat is the exception to phase 0.
local function best_phase(acc, m)
    local c = { core.contrasts(acc, m) }
    local c0 = c[1]
    local best, arg = c0, 0
    -- a pickup is the exception: its downbeats must be clearly accented
    -- (by PICKUP_ACCENT of the mean accent) and beat phase 0 clearly
    for ph = 1, m - 1 do
        if c[ph + 1] > best and c[ph + 1] > PICKUP_ACCENT
           and c[ph + 1] > c0 + 0.15 then
            best, arg = c[ph + 1], ph
        end
    end
    return arg, max(best, c0)
end


--- Meter (3 or 4 beats) and downbeat phase by accent periodicity; 3/4
-- needs clearly stronger accents every third beat than every fourth.
-- acc, n: wtt.core.rhythm's accents of the beats.
local function meter(acc, n, fixed_m)
    if fixed_m then
        if n < 2 * fixed_m then
            return fixed_m, 0
        end
        return fixed_m, (best_phase(acc, fixed_m))
    end
    if n < 8 then
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


function _M.estimate(notes, opts)
    opts = opts or {}
    local ok, err = check_opts(opts)
    if not ok then
        return nil, err
    end
    local ts = opts.time_signature
    local beat_type = ts and ts[2] or 4
    local chords, on, last_end = core.chords(notes)
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

    local env
    env, err = core.envelope(on)
    if not env then
        return nil, err
    end
    local period        -- frames
    if opts.tempo then
        period = 60 * FPS / opts.tempo * 4 / beat_type
    else
        period, err = core.period(on, env)
        if period == nil then
            return nil, err
        end
        -- false: one chord, or none closer than the slowest beat
        period = period or 60 * FPS / DEFAULT_BPM
    end
    local period_s = period / FPS
    local beats, packed = core.beats(env, period, last_end)
    if not beats then
        return nil, packed
    end

    local tempo = opts.tempo
    if not tempo then
        local fitted
        fitted, err = core.fitted_period(on, packed, period_s)
        if err then
            return nil, err
        end
        if fitted and fitted > 0.5 * period_s and fitted < 2 * period_s then
            period_s = fitted
        end
        tempo = floor(6000 / period_s * 4 / beat_type + 0.5) / 100
    end

    local m, phase, down
    local acc, n
    if not (opts.pickup and ts) then
        acc, n = core.accents(on, packed, period_s)
        if not acc then
            return nil, n
        end
    end
    if opts.pickup then
        phase = opts.pickup
        m = ts and ts[1] or (meter(acc, n))
        if phase >= m then
            m = 4
        end
        beats, down = core.pickup(packed, phase, chords.t[1])
    else
        m, phase = meter(acc, n, ts and ts[1])
        down = phase + 1
    end
    return { tempo_bpm = tempo, beats = beats, beats_per_measure = m,
             beat_type = beat_type, first_downbeat = down,
             pickup_beats = phase, pickup_ticks = phase * 48 / beat_type,
             chords = chords, chords_of = notes }
end


return _M
