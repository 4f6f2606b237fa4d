-- The report of bench/accuracy.sh: modes side by side on the development set.
-- usage: wtt run bench/accuracy/compare.lua DEVSET OUT MODE...
--   OUT/<mode>.json: tools/score_notes.lua --set output; OUT/<mode>.time: "wall user sys" seconds
--   of that mode's transcription; OUT/decode_cost.txt: "MODE SECONDS" lines, each mode's decoding
--   time (bench/accuracy/decode_cost.lua). A mode without its json did not run: its columns read na.
local json = require "wtt.json"
local score = assert(loadfile("tools/score_notes.lua"))("--as-module")

local devset, out = arg[1], arg[2]
local modes = {}
for i = 3, #arg do modes[#modes + 1] = arg[i] end
if not devset or not out or #modes == 0 then
    io.stderr:write("usage: wtt run bench/accuracy/compare.lua DEVSET OUT MODE...\n")
    os.exit(2)
end

local function read(path)
    local f = io.open(path, "rb")
    if not f then return nil end
    local s = f:read("*a")
    f:close()
    return s
end

local res, times = {}, {}
for _, m in ipairs(modes) do
    local s = read(out .. "/" .. m .. ".json")
    if s then
        res[m] = json.decode(s)
        local t = read(out .. "/" .. m .. ".time") or ""
        local wall, user, sys = t:match("([%d.]+)%s+([%d.]+)%s+([%d.]+)")
        if wall then times[m] = { wall = tonumber(wall), cpu = tonumber(user) + tonumber(sys) } end
    end
end
local base = modes[1]
local ran = {}
for _, m in ipairs(modes) do if res[m] then ran[#ran + 1] = m end end

local fmt = score.fmt
local by_clip = {}
for _, m in ipairs(ran) do
    by_clip[m] = {}
    for _, c in ipairs(res[m].clips) do by_clip[m][c.clip] = c end
end
local rows = score.read_manifest(devset .. "/manifest.tsv")

local function cell(m, clip, f)
    local c = by_clip[m] and by_clip[m][clip]
    return c and f(c) or nil
end
local function onset(c) return c.onset.f1 end
local function onoff(c) return c.onset_offset.f1 end

local function header(title)
    local h = { string.format("%-30s %-9s %5s", title, "kind", "true") }
    for _, m in ipairs(modes) do h[#h + 1] = string.format(" %9s", m:sub(1, 9)) end
    for i = 2, #modes do h[#h + 1] = string.format(" %9s", "d." .. modes[i]:sub(1, 7)) end
    h[#h + 1] = "   onset-offset F1:"
    for _, m in ipairs(modes) do h[#h + 1] = string.format(" %9s", m:sub(1, 9)) end
    return table.concat(h)
end

local function mean(list)
    if #list == 0 then return nil end
    local s = 0
    for _, v in ipairs(list) do s = s + v end
    return s / #list
end

-- Mean onset F1 per value of a manifest column (kind, program, reverb, noise), per mode.
local function group_means(split, field)
    local groups, order = {}, {}
    for _, row in ipairs(rows) do
        if row.split == split then
            local k = row[field]
            if not groups[k] then
                groups[k] = { n = 0 }
                for _, m in ipairs(modes) do groups[k][m] = {} end
                order[#order + 1] = k
            end
            groups[k].n = groups[k].n + 1
            for _, m in ipairs(modes) do
                local v = cell(m, row.clip, onset)
                if v then table.insert(groups[k][m], v) end
            end
        end
    end
    table.sort(order)
    local h = { string.format("%-30s %-9s %5s", "mean per " .. field:gsub("_name", ""), "", "clips") }
    for _, m in ipairs(modes) do h[#h + 1] = string.format(" %9s", m:sub(1, 9)) end
    for i = 2, #modes do h[#h + 1] = string.format(" %9s", "d." .. modes[i]:sub(1, 7)) end
    print(table.concat(h))
    for _, k in ipairs(order) do
        local line = { string.format("%-30s %-9s %5d", k, "", groups[k].n) }
        for _, m in ipairs(modes) do line[#line + 1] = " " .. fmt(mean(groups[k][m]), 9) end
        local b = mean(groups[k][base])
        for i = 2, #modes do
            local v = mean(groups[k][modes[i]])
            line[#line + 1] = " " .. ((v and b) and string.format("%+9.3f", v - b) or fmt(nil, 9))
        end
        print(table.concat(line))
    end
    print()
end

local worst = {}
local function half(split)
    print(string.format("== %s half: onset F1 per clip (delta: mode - %s) ==", split, base))
    print(header("clip"))
    local all = { onset = {}, onoff = {} }
    for _, m in ipairs(modes) do all.onset[m], all.onoff[m] = {}, {} end
    for _, row in ipairs(rows) do
        if row.split == split then
            local line = { string.format("%-30s %-9s %5s", row.clip, row.kind, row.notes) }
            for _, m in ipairs(modes) do
                local v = cell(m, row.clip, onset)
                line[#line + 1] = " " .. fmt(v, 9)
                if v then table.insert(all.onset[m], v) end
            end
            local b = cell(base, row.clip, onset)
            for i = 2, #modes do
                local v = cell(modes[i], row.clip, onset)
                local d = (v and b) and v - b or nil
                line[#line + 1] = " " .. (d and string.format("%+9.3f", d) or fmt(nil, 9))
                if d and split == "test" and (worst[modes[i]] == nil or d < worst[modes[i]]) then
                    worst[modes[i]] = d
                end
            end
            line[#line + 1] = "                   "
            for _, m in ipairs(modes) do
                local v = cell(m, row.clip, onoff)
                line[#line + 1] = " " .. fmt(v, 9)
                if v then table.insert(all.onoff[m], v) end
            end
            print(table.concat(line))
        end
    end
    print()
    for _, field in ipairs({ "kind", "program_name", "reverb", "noise" }) do
        group_means(split, field)
    end
    local line = { string.format("%-30s %-9s %5s", "MEAN (" .. split .. ")", "", "") }
    for _, m in ipairs(modes) do line[#line + 1] = " " .. fmt(mean(all.onset[m]), 9) end
    local b = mean(all.onset[base])
    for i = 2, #modes do
        local v = mean(all.onset[modes[i]])
        line[#line + 1] = " " .. ((v and b) and string.format("%+9.3f", v - b) or fmt(nil, 9))
    end
    line[#line + 1] = "                   "
    for _, m in ipairs(modes) do line[#line + 1] = " " .. fmt(mean(all.onoff[m]), 9) end
    print(table.concat(line))
    local bl = { string.format("%-46s", "bend accuracy (correct / bent true notes)") }
    for _, m in ipairs(modes) do
        local s = res[m] and res[m].summaries[split]
        bl[#bl + 1] = string.format(" %9s", s and s.bends_n > 0 and string.format("%d/%d", s.bends_ok, s.bends_n)
                                                or "na")
    end
    print(table.concat(bl))
    print()
    return mean(all.onset[base]), all
end

local means = {}
for _, split in ipairs({ "test", "tuning" }) do
    local _, all = half(split)
    for _, m in ipairs(modes) do
        means[m] = means[m] or {}
        means[m][split] = mean(all.onset[m])
    end
end

for _, m in ipairs(ran) do
    print(string.format("== errors of mode %s ==", m))
    score.print_errors(res[m], "test", io.stdout)
    print()
    score.print_errors(res[m], "tuning", io.stdout)
    print()
end

print("transcription time, all clips:")
for _, m in ipairs(modes) do
    local t = times[m]
    print(string.format("  %-10s %s", m, t and string.format("wall %.2f s, cpu %.2f s", t.wall, t.cpu) or "did not run"))
end

local function val(x, f) return x and string.format(f or "%.4f", x) or "na" end
-- The mode's cost: its extra decoding time (decode_cost.txt, from bench/accuracy/decode_cost.lua)
-- over official's whole transcription time. The difference of the two transcriptions' times is
-- printed above, but on a shared machine it is noise of the same size as the cost.
local decode = {}
for line in (read(out .. "/decode_cost.txt") or ""):gmatch("[^\n]+") do
    local m, s = line:match("^(%S+) ([%d.]+)$")
    if m then decode[m] = tonumber(s) end
end
local cost
if times.official and decode.official and decode.guitar and times.official.cpu > 0 then
    print(string.format("decoding, all clips: official %.3f s, guitar %.3f s CPU", decode.official, decode.guitar))
    cost = 100 * (decode.guitar - decode.official) / times.official.cpu
end
print(string.format("RESULT accuracy official_f1=%s guitar_f1=%s worst_clip_delta=%s cost_pct=%s",
                    val(means.official and means.official.test), val(means.guitar and means.guitar.test),
                    val(worst.guitar), val(cost, "%.2f")))
