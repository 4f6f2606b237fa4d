-- The development set's clips with their saved posteriorgrams, for the decoding experiments that
-- need no inference (redecode.lua, search.lua):
--
--   local saved = assert(loadfile("bench/accuracy/saved.lua"))()
--   local clips = saved.load(DEVSET, POST, function(row) return row.split == "tuning" end)
--   local results = saved.score(clips, { mode = "guitar" })   -- tools/score_notes.lua results
local json = require "wtt.json"
local model = require "wtt.model"
local score = assert(loadfile("tools/score_notes.lua"))("--as-module")

local M = {}

local function read(path)
    local f = assert(io.open(path, "rb"))
    local s = f:read("*a")
    f:close()
    return s
end

-- The clips of DEVSET/manifest.tsv that `keep(row)` accepts, each as { row, truth, post }.
function M.load(devset, postdir, keep)
    local clips = {}
    for _, r in ipairs(score.read_manifest(devset .. "/manifest.tsv")) do
        if keep(r) then
            clips[#clips + 1] = {
                row = r,
                truth = json.decode(read(devset .. "/clips/" .. r.clip .. ".truth.json")),
                post = assert(model.load_posteriors(postdir .. "/" .. r.clip .. ".posteriors.npy")),
            }
        end
    end
    return clips
end

-- Parses `argv` into `o`: "--NAME VALUE" for each NAME in `valued`, "--NAME" (true) for each in
-- `flags`, and the words DEVSET and POST. Anything else, or a missing word, prints `usage` and
-- exits 2. Returns DEVSET, POST.
function M.args(argv, o, valued, flags, usage)
    local pos, i = {}, 1
    local function fail()
        io.stderr:write(usage)
        os.exit(2)
    end
    while i <= #argv do
        local a = argv[i]
        local name = a:match("^%-%-(.+)$")
        if name and valued[name] and argv[i + 1] then
            o[name] = argv[i + 1]
            i = i + 1
        elseif name and flags[name] then
            o[name] = true
        elseif a:sub(1, 1) == "-" then
            fail()
        else
            pos[#pos + 1] = a
        end
        i = i + 1
    end
    if #pos ~= 2 then fail() end
    return pos[1], pos[2]
end

-- Each clip decoded with note options `opts` and scored against its truth.
function M.score(clips, opts)
    local out = {}
    for i, c in ipairs(clips) do
        local notes = assert(c.post:notes(model.note_options(opts)))
        local est = {}
        for k, n in ipairs(notes) do
            est[k] = { start_s = n.start_s, end_s = n.end_s, pitch_midi = n.pitch,
                       pitch_bends = n.bends }
        end
        out[i] = score.score(c.truth, est)
    end
    return out
end

return M
