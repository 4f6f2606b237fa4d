-- The side-by-side part of bench/tab.sh: wtt's fingering against the naive
-- baseline (every note at its lowest fret).
-- usage: wtt run compare.lua NOTES_JSON PASSAGES_LUA [GUITARSET_OUT_DIR GT_DIR]
--
-- 1. On NOTES_JSON (a real transcription): chords each makes unplayable,
--    by the rules of the GuitarSet scorer: two notes on one string within
--    30 ms, or a chord (notes within 30 ms of its first) whose fretted
--    notes span more than 5 frets.
-- 2. On the annotated passages (spec/support/tab_passages.lua): the share
--    of notes on the annotated string and fret, for both.
-- 3. With GT_DIR (GuitarSet-style CSVs: start_s,end_s,pitch_midi,string,
--    fret), writes <name>.tab.json of both into GUITARSET_OUT_DIR/{wtt,naive}
--    for an external scorer.
local tab = require "wtt.tab"
local finger = require "wtt.tab.finger"
local notes_in = require "wtt.tab.notes_in"
local sys = require "wtt.sys"

local notes_path, passages_path, out_dir, gt_dir = arg[1], arg[2], arg[3], arg[4]

local function copy(notes)
    local out = {}
    for i, n in ipairs(notes) do
        out[i] = { start_s = n.start_s, end_s = n.end_s, pitch = n.pitch or n.pitch_midi,
                   amplitude = n.amplitude, velocity = n.velocity }
    end
    table.sort(out, function(a, b)
        if a.start_s ~= b.start_s then return a.start_s < b.start_s end
        return a.pitch < b.pitch
    end)
    return out
end

-- Unplayable chords by the scorer's rules (each chord counted once).
local function unplayable_chords(placed)
    local list = {}
    for _, n in ipairs(placed) do
        if n.string then list[#list + 1] = n end
    end
    table.sort(list, function(a, b) return a.start_s < b.start_s end)
    local bad, k = 0, 1
    while k <= #list do
        local anchor, chord = list[k].start_s, {}
        while k <= #list and list[k].start_s - anchor <= 0.03 + 1e-9 do
            chord[#chord + 1] = list[k]
            k = k + 1
        end
        local used, lo, hi, clash = {}, math.huge, -math.huge, false
        for _, n in ipairs(chord) do
            if used[n.string] then clash = true end
            used[n.string] = true
            if n.fret > 0 then
                lo, hi = math.min(lo, n.fret), math.max(hi, n.fret)
            end
        end
        if clash or (hi > lo and hi - lo > 5) then
            bad = bad + 1
        end
    end
    return bad
end

local opts = assert(tab.options{})
local notes = assert(notes_in.read(notes_path))
local placed = assert(tab.finger(notes, opts))
local naive = finger.lowest(copy(notes), opts.instrument)
local chords = 0
for i, n in ipairs(placed) do
    if i == 1 or n.chord ~= placed[i - 1].chord then
        chords = chords + 1
    end
end
local line = { ("notes=%d chords=%d unplayable_naive=%d unplayable_wtt=%d")
    :format(#notes, chords, unplayable_chords(naive), unplayable_chords(placed)) }

-- Annotated passages.
local passages = dofile(passages_path)
local agree = { wtt = 0, naive = 0, n = 0 }
for _, p in ipairs(passages.list) do
    local o = assert(tab.options(p.options))
    local pn, expect = passages.notes(p)
    local w = assert(tab.finger(pn, o))
    local nv = finger.lowest(copy(pn), o.instrument)
    local function score(list, key)
        for _, n in ipairs(list) do
            for i, src in ipairs(pn) do
                if src.start_s == n.start_s and src.pitch == n.pitch and expect[i] then
                    if expect[i].string == n.string and expect[i].fret == n.fret then
                        agree[key] = agree[key] + 1
                    end
                end
            end
        end
    end
    for i in pairs(expect) do
        if expect[i] then agree.n = agree.n + 1 end
    end
    score(w, "wtt")
    score(nv, "naive")
end
line[#line + 1] = ("passages_notes=%d agreement_wtt=%.4f agreement_naive=%.4f")
    :format(agree.n, agree.wtt / agree.n, agree.naive / agree.n)

-- GuitarSet-style ground truth, for the external scorer.
if out_dir and gt_dir then
    for _, kind in ipairs({ "wtt", "naive" }) do
        os.execute("mkdir -p '" .. out_dir .. "/" .. kind .. "'")
    end
    for _, fn in ipairs(sys.listdir(gt_dir) or {}) do
        if fn:match("%.csv$") and not fn:match("%.notes%.csv$") then
            local gt = {}
            local first = true
            for l in io.lines(gt_dir .. "/" .. fn) do
                if not first then
                    local s, e, p = l:match("^([^,]+),([^,]+),([^,]+)")
                    gt[#gt + 1] = { start_s = tonumber(s), end_s = tonumber(e),
                                    pitch = tonumber(p), amplitude = 0.8 }
                end
                first = false
            end
            local results = { wtt = assert(tab.finger(gt, opts)),
                              naive = finger.lowest(copy(gt), opts.instrument) }
            for kind, list in pairs(results) do
                local parts = {}
                for _, n in ipairs(list) do
                    if n.string then
                        parts[#parts + 1] = ('{"start_s":%.6f,"pitch_midi":%d,"string":%d,"fret":%d}')
                            :format(n.start_s, n.pitch, n.string, n.fret)
                    end
                end
                assert(sys.write_file(out_dir .. "/" .. kind .. "/" .. fn:gsub("%.csv$", ".tab.json"),
                                      '{"notes":[' .. table.concat(parts, ",") .. "]}\n"))
            end
        end
    end
end
print(table.concat(line, " "))
