--- Posteriorgrams kept in memory between re-tunes of the same recording.
--
-- The page's sliders re-tune one recording many times in a row, and each
-- `POST /transcribe/retune/{id}/` used to open the stored .npy afresh: for a
-- 3-minute recording that is 28 MB read and faulted into fresh pages
-- (about 75 ms on the development machine) and a decoding from the file
-- (about 110 ms) instead of from memory (about 45 ms once warm). So each
-- serving thread's Lua state keeps the posteriorgrams it opened, in memory,
-- least recently used first out, within WTT_RETUNE_CACHE_MB (default 128,
-- per serving thread: docs/api.md). A posteriorgram larger than that is
-- decoded from its file, as before, and not kept.
--
-- Media names are never reused (media.new_name), so a name is a safe key:
-- the file behind it never changes.

local model = require "wtt.model"

local _M = {}

local ROW_BYTES = 440 * 4           -- one frame: frames, onsets, contours

local entries = {}                  -- name -> { post =, bytes =, used = }
local held, clock = 0, 0
local stats = { hits = 0, misses = 0, evictions = 0 }


local function budget_bytes()
    local mb = tonumber(os.getenv("WTT_RETUNE_CACHE_MB") or "")
    if mb == nil or mb < 0 then
        mb = 128
    end
    return mb * 1048576
end


local function evict_one()
    local oldest, at
    for name, e in pairs(entries) do
        if not at or e.used < at then
            oldest, at = name, e.used
        end
    end
    if not oldest then
        return false
    end
    local e = entries[oldest]
    entries[oldest] = nil
    held = held - e.bytes
    stats.evictions = stats.evictions + 1
    e.post:close()
    return true
end


--- The posteriorgram of media name `name` stored at `path`, from memory when
-- this state has it. A posteriorgram it returns from the cache must not be
-- closed by the caller; the cache closes it when it lets it go.
-- @return post | nil, err (model.load_posteriors's error)
function _M.open(name, path)
    clock = clock + 1
    local e = entries[name]
    if e then
        e.used = clock
        stats.hits = stats.hits + 1
        return e.post
    end
    stats.misses = stats.misses + 1
    local budget = budget_bytes()
    local post, err = model.load_posteriors(path, { memory_mb = budget / 1048576 })
    if not post then
        return nil, err
    end
    local bytes = post:n_frames() * ROW_BYTES
    if post:storage() ~= "memory" or bytes > budget then
        return post                 -- too large to keep: read from its file
    end
    while held + bytes > budget and evict_one() do end
    entries[name] = { post = post, bytes = bytes, used = clock }
    held = held + bytes
    return post
end


--- True when this state holds the posteriorgram of `name` in memory (open
-- needs no file for it then).
function _M.held(name)
    return entries[name] ~= nil
end


--- What the cache holds and has done: { entries, bytes, budget, hits,
-- misses, evictions }.
function _M.stats()
    local n = 0
    for _ in pairs(entries) do n = n + 1 end
    return { entries = n, bytes = held, budget = budget_bytes(), hits = stats.hits,
             misses = stats.misses, evictions = stats.evictions }
end


--- Lets everything go (specs; a state that closes frees them anyway).
function _M.clear()
    while evict_one() do end
    stats.hits, stats.misses, stats.evictions = 0, 0, 0
end

return _M
