-- Decoding experiments on the development set without inference: decodes
-- saved posteriorgrams in a mode, scores the notes and compares them with
-- the official decoding of the same posteriorgrams (docs/engine.md, "Guitar
-- mode", was measured with it).
--
--   wtt transcribe DEVSET/clips/*.wav --save-posteriors -o POST --quiet
--   wtt run bench/accuracy/redecode.lua DEVSET POST [--split tuning|test|all]
--       [--mode guitar|bass|official] [--rules LIST] [--kind KIND] [--clips]
--       [--ablation]
--
-- Prints the mean onset F1 over the split's clips for the mode and for
-- official, the lowest per-clip difference, the means per kind, the error
-- kinds and the bend accuracy (tools/score_notes.lua). --clips adds a line
-- per clip; --ablation instead prints the mean with all the mode's rules,
-- with each one switched off in turn, and with none.
local model = require "wtt.model"
local saved = assert(loadfile("bench/accuracy/saved.lua"))()

local USAGE = "usage: wtt run bench/accuracy/redecode.lua DEVSET POST [--split S] "
    .. "[--mode M] [--rules LIST] [--kind KIND] [--clips] [--ablation]\n"

local o = { split = "tuning", mode = "guitar" }
local devset, postdir = saved.args(arg, o, { split = true, mode = true, rules = true, kind = true },
                                   { clips = true, ablation = true }, USAGE)
local defaults, derr = model.check_mode(o.mode, o.rules)
if not defaults then
    io.stderr:write("redecode: ", derr, "\n")
    os.exit(2)
end

-- The clips of the split (and kind), each with its truth and posteriorgram.
local clips = saved.load(devset, postdir, function(r)
    return (o.split == "all" or r.split == o.split) and (not o.kind or r.kind == o.kind)
end)
if #clips == 0 then
    io.stderr:write("redecode: no clips in split ", o.split, "\n")
    os.exit(1)
end

local function run(opts)
    return saved.score(clips, opts)
end

local function mean(res)
    local s = 0
    for _, r in ipairs(res) do s = s + r.onset.f1 end
    return s / #res
end

local function worst(res, base)
    local w, at = math.huge, nil
    for i, r in ipairs(res) do
        local d = r.onset.f1 - base[i].onset.f1
        if d < w then w, at = d, clips[i].row.clip end
    end
    return w, at
end

local function bends(res)
    local ok, n = 0, 0
    for _, r in ipairs(res) do
        ok, n = ok + r.bends.ok, n + r.bends.n
    end
    return ok .. "/" .. n
end

local official = run({})
local fmt = string.format

if o.ablation then
    local names = {}
    for r in defaults.rules:gmatch("[^,]+") do names[#names + 1] = r end
    print(fmt("%s half, %d clips, mode %s: mean onset F1 (official %.4f)", o.split,
              #clips, o.mode, mean(official)))
    local function line(label, rules)
        local res = run({ mode = o.mode, rules = rules })
        local w, at = worst(res, official)
        print(fmt("  %-22s %.4f  worst clip %+.3f (%s)  bends %s", label, mean(res), w,
                  tostring(at), bends(res)))
    end
    line("all rules", defaults.rules)
    for i, name in ipairs(names) do
        local rest = {}
        for j, other in ipairs(names) do
            if j ~= i then rest[#rest + 1] = other end
        end
        line("without " .. name, table.concat(rest, ","))
    end
    line("no rules", "none")
    os.exit(0)
end

local res = run({ mode = o.mode, rules = o.rules })
local w, at = worst(res, official)
print(fmt("%s half, %d clips, mode %s, rules %s", o.split, #clips, o.mode,
          o.rules or defaults.rules))
print(fmt("  mean onset F1 %.4f (official %.4f, %+.4f); worst clip %+.3f (%s)", mean(res),
          mean(official), mean(res) - mean(official), w, tostring(at)))
local kinds, order = {}, {}
for i, r in ipairs(res) do
    local k = clips[i].row.kind
    if not kinds[k] then
        kinds[k] = { n = 0, f = 0, base = 0 }
        order[#order + 1] = k
    end
    kinds[k].n = kinds[k].n + 1
    kinds[k].f = kinds[k].f + r.onset.f1
    kinds[k].base = kinds[k].base + official[i].onset.f1
end
table.sort(order)
for _, k in ipairs(order) do
    local v = kinds[k]
    print(fmt("  %-10s %2d clips  %.3f (official %.3f)", k, v.n, v.f / v.n, v.base / v.n))
end
local ex, mi = {}, {}
for _, r in ipairs(res) do
    for k, v in pairs(r.extras) do ex[k] = (ex[k] or 0) + v end
    for k, v in pairs(r.misses) do mi[k] = (mi[k] or 0) + v end
end
local function kv(t)
    local keys, parts = {}, {}
    for k in pairs(t) do keys[#keys + 1] = k end
    table.sort(keys)
    for _, k in ipairs(keys) do parts[#parts + 1] = k .. "=" .. t[k] end
    return table.concat(parts, " ")
end
print("  extra notes: " .. kv(ex))
print("  missed notes: " .. kv(mi))
print(fmt("  bends correct %s (official %s)", bends(res), bends(official)))
if o.clips then
    for i, r in ipairs(res) do
        print(fmt("  %-32s %.3f  official %.3f  %+.3f", clips[i].row.clip, r.onset.f1,
                  official[i].onset.f1, r.onset.f1 - official[i].onset.f1))
    end
end
