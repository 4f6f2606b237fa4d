-- Coordinate search of guitar mode's settings on the development set's tuning half, decoding
-- saved posteriorgrams (docs/engine.md, "Guitar mode"). Needs a build with
-- -DWTT_GUITAR_EXPERIMENT, run with WTT_GUITAR_TUNE=@FILE: the search writes each candidate's
-- settings to FILE, which that build reads at every decoding.
--
--   WTT_GUITAR_TUNE=@/tmp/tune build-exp/wtt run bench/accuracy/search.lua DEVSET POST \
--       [--passes N] [--start "a=1,b=2"] [--split tuning]
--
-- The objective is the mean onset F1 minus penalties for the clips below official: 20 times
-- the summed shortfall beyond 0.01 and 100 times that beyond 0.015, each divided by the clip
-- count, so that one clip far below official costs about as much as the mean gains from a
-- setting. Prints every improvement and the final settings.
local saved = assert(loadfile("bench/accuracy/saved.lua"))()

local tune_file = (os.getenv("WTT_GUITAR_TUNE") or ""):match("^@(.+)$")
if not tune_file then
    io.stderr:write("search: run with WTT_GUITAR_TUNE=@FILE on a -DWTT_GUITAR_EXPERIMENT build\n")
    os.exit(2)
end
local o = { passes = 2, split = "tuning", start = "" }
local devset, postdir = saved.args(arg, o, { passes = true, start = true, split = true }, {},
    "usage: wtt run bench/accuracy/search.lua DEVSET POST [--passes N] [--start LIST] [--split S]\n")

-- name -> candidate values, searched in this order
local SPACE = {
    { "attack_onset", { 0.65, 0.7, 0.75, 0.8, 0.85 } },
    { "attack_onset_min", { 0.4, 0.45, 0.5, 0.55, 0.6 } },
    { "attack_rise", { 0.05, 0.1, 0.15, 0.2 } },
    { "ghost_root_min", { 0.2, 0.25, 0.3, 0.35, 0.4 } },
    { "ghost_sync", { 2, 3, 4 } },
    { "ghost_ratio[0]", { 0.5, 0.55, 0.6, 0.65, 0.7 } },
    { "ghost_ratio[1]", { 0.3, 0.35, 0.4, 0.45, 0.5 } },
    { "ghost_ratio[2]", { 0.6, 0.7, 0.8 } },
    { "ghost_ratio[3]", { 0.6, 0.7, 0.8 } },
    { "weak_amp", { 0.34, 0.36, 0.38, 0.4, 0.42 } },
    { "weak_rise", { 0.15, 0.2, 0.25, 0.3 } },
    { "weak_low_scale", { 0.5, 0.6, 0.7 } },
    { "retrigger_gap", { 1, 2, 3 } },
    { "retrigger_peak", { 0.2, 0.25, 0.3, 0.35, 0.4 } },
    { "retrigger_ioi", { 0, 7, 9, 11 } },
    { "split_margin", { 6, 8, 10 } },
    { "bend_level", { 0.25, 0.3, 0.35 } },
    { "bend_onset", { 0.7, 0.75, 0.8, 0.85 } },
    { "bend_fall", { 0, 10, 15, 20 } },
    { "onset_low", { 0.4, 0.45, 0.5, 0.55 } },
    { "strum_ghost", { 4, 5, 6 } },
    { "strum_ghost_ratio", { 0.2, 0.3, 0.4 } },
    { "strum_weak", { 6, 7, 8, 9 } },
    { "strum_weak_onset", { 0.6, 0.7, 0.8 } },
    { "strum_retrigger", { 4, 5, 6 } },
    { "strum_retrigger_onset", { 0.5, 0.6, 0.7 } },
    { "keep_frames", { 11, 13, 15, 17, 20 } },
    { "keep_strum", { 1, 2, 3 } },
    { "chord_frames", { 15, 20, 25 } },
    { "chord_pitches", { 2, 3, 4 } },
    { "chord_strum", { 5, 6, 7 } },
    { "chord_memory", { 30, 43, 60 } },
}

local clips = saved.load(devset, postdir, function(r) return r.split == o.split end)

local function f1s(opts)
    local out = {}
    for i, r in ipairs(saved.score(clips, opts)) do out[i] = r.onset.f1 end
    return out
end

local official = f1s({})

-- settings: list of {name, value}; returns objective, mean, worst delta, its clip
local function evaluate(settings)
    local parts = {}
    for _, kv in ipairs(settings) do parts[#parts + 1] = kv[1] .. "=" .. tostring(kv[2]) end
    local f = assert(io.open(tune_file, "w"))
    f:write(table.concat(parts, ","))
    f:close()
    local g = f1s({ mode = "guitar" })
    local sum, pen, worst, at = 0, 0, math.huge, nil
    for i = 1, #clips do
        local d = g[i] - official[i]
        sum = sum + g[i]
        pen = pen + 20 * math.max(0, -0.01 - d) + 100 * math.max(0, -0.015 - d)
        if d < worst then worst, at = d, clips[i].row.clip end
    end
    local n = #clips
    return sum / n - pen / n, sum / n, worst, at
end

local current = {}
for kv in o.start:gmatch("[^,]+") do
    local k, v = kv:match("^(.-)=(.*)$")
    current[#current + 1] = { k, tonumber(v) }
end
local function with(name, value)
    local s, found = {}, false
    for _, kv in ipairs(current) do
        if kv[1] == name then
            s[#s + 1] = { name, value }
            found = true
        else
            s[#s + 1] = kv
        end
    end
    if not found then s[#s + 1] = { name, value } end
    return s
end
local function show(settings)
    local parts = {}
    for _, kv in ipairs(settings) do parts[#parts + 1] = kv[1] .. "=" .. tostring(kv[2]) end
    return table.concat(parts, ",")
end

local best, bmean, bworst, bat = evaluate(current)
print(string.format("start  objective %.4f  mean %.4f  worst %+.3f (%s)  [%s]", best, bmean, bworst,
                    tostring(bat), show(current)))
io.stdout:flush()
for pass = 1, tonumber(o.passes) do
    local changed = false
    for _, p in ipairs(SPACE) do
        local name, values = p[1], p[2]
        for _, v in ipairs(values) do
            local cand = with(name, v)
            local obj, mean, worst, at = evaluate(cand)
            if obj > best + 1e-5 then
                best, bmean, bworst, bat, current, changed = obj, mean, worst, at, cand, true
                print(string.format("pass %d %s=%s  objective %.4f  mean %.4f  worst %+.3f (%s)", pass,
                                    name, tostring(v), obj, mean, worst, tostring(at)))
                io.stdout:flush()
            end
        end
    end
    if not changed then break end
end
print(string.format("final  objective %.4f  mean %.4f  worst %+.3f (%s)", best, bmean, bworst, tostring(bat)))
print("settings " .. show(current))
