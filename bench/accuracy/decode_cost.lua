-- The CPU time of each decoding mode on the same posteriorgrams, for the
-- `cost_pct` of bench/accuracy.sh. Two runs of `wtt transcribe` differ by
-- more than the whole decoding costs on a shared machine (a few percent of
-- the run), so the cost is measured here: every clip's saved posteriorgram
-- is decoded in each mode, the best of REPS passes counted, with nothing
-- else in the timed loop.
--
--   wtt run bench/accuracy/decode_cost.lua POSTDIR OUT.txt MODE... [--reps N]
--
-- Writes "MODE SECONDS" per line to OUT.txt (CPU seconds for all clips).
local model = require "wtt.model"

local postdir, outpath = arg[1], arg[2]
local modes, reps = {}, 5
local i = 3
while i <= #arg do
    if arg[i] == "--reps" then
        reps = tonumber(arg[i + 1]) or reps
        i = i + 1
    else
        modes[#modes + 1] = arg[i]
    end
    i = i + 1
end
if not postdir or not outpath or #modes == 0 then
    io.stderr:write("usage: wtt run bench/accuracy/decode_cost.lua POSTDIR OUT.txt MODE... [--reps N]\n")
    os.exit(2)
end

local posts = {}
local ls = assert(io.popen("ls '" .. postdir:gsub("'", "'\\''") .. "'"))
for name in ls:lines() do
    if name:match("%.posteriors%.npy$") then
        posts[#posts + 1] = assert(model.load_posteriors(postdir .. "/" .. name))
    end
end
ls:close()
if #posts == 0 then
    io.stderr:write("decode_cost: no posteriorgrams in ", postdir, "\n")
    os.exit(1)
end

local out = assert(io.open(outpath, "w"))
for _, mode in ipairs(modes) do
    local opts = model.note_options(mode == "official" and {} or { mode = mode })
    local best = math.huge
    for _ = 1, reps do
        local t0 = os.clock()
        for _, p in ipairs(posts) do
            assert(p:notes(opts))
        end
        best = math.min(best, os.clock() - t0)
    end
    out:write(string.format("%s %.4f\n", mode, best))
    print(string.format("decoding, %d clips, mode %-9s %.3f s CPU (best of %d)", #posts, mode, best, reps))
end
out:close()
