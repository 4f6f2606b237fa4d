-- The worker path of bench/infer.sh --device cuda: the short clips as
-- separate tasks through one running `wtt worker --batch-tasks N`.
-- usage: wtt run worker_run.lua REDIS_URL PREFIX SHORT_DIR [TIMEOUT_S]
--   The worker already runs on PREFIX and fetches /media/<name> from a web
--   that serves SHORT_DIR (bench/infer/fake_web.lua).
--
-- Waits until the worker is subscribed to task:new, runs one warm-up task
-- (cuDNN's algorithm search and the first allocations happen once per
-- worker, as cuda_run.lua's warm-up file), then enqueues every clip at
-- once, one q:enqueue each, and waits until all are finished (bounded).
-- From the task hashes (ms, Redis TIME: the queue's one clock):
--   worker_rtf_batch = sum of the results' duration_s
--                      / (last finished_at - first enqueued_at)
--   worker_claims    = distinct claimed_at (one claim_many each, as a
--                      rule), worker_max_claim = most tasks sharing one.
-- Prints one line of key=value fields; exits 1 when a task failed or the
-- wait ran out.
local redis = require "wtt.redis"
local queue = require "wtt.queue"
local json = require "wtt.json"
local sys = require "wtt.sys"

local url, prefix, short_dir, timeout = arg[1], arg[2], arg[3],
                                        tonumber(arg[4]) or 600
if not (url and prefix and short_dir) then
    io.stderr:write("usage: wtt run worker_run.lua REDIS_URL PREFIX"
                    .. " SHORT_DIR [TIMEOUT_S]\n")
    os.exit(2)
end

local function die(msg)
    io.stderr:write("worker_run: ", msg, "\n")
    os.exit(1)
end

local r = assert(redis.connect(url))
local q = queue.new(r, { prefix = prefix })

local clips = {}
for _, name in ipairs(sys.listdir(short_dir) or {}) do
    if name:match("%.wav$") then
        clips[#clips + 1] = name
    end
end
table.sort(clips)
if #clips == 0 then
    die("no clips in " .. short_dir)
end

-- Tasks published before the worker subscribes would wait for its poll.
local channel = q:channel("task:new")
local deadline = sys.now() + 60
while true do
    local res = assert(r:call("PUBSUB", "NUMSUB", channel))
    if tonumber(res[2]) and tonumber(res[2]) > 0 then
        break
    end
    if sys.now() > deadline then
        die("no worker subscribed to " .. channel .. " within 60 s")
    end
    sys.sleep(0.02)
end

local function id_of(tag, i)
    return ("%08x%024x"):format(tag, i)
end

local function enqueue(id, name)
    local ok, err = q:enqueue({
        id = id, audio_midi_id = id,
        payload = { audio_url = "/media/" .. name, options = {},
                    outputs = { "midi", "notes" } },
    })
    if not ok then
        die("enqueue " .. id .. ": " .. tostring(err))
    end
end

-- The hashes of `ids`: { status, enqueued_at, claimed_at, finished_at,
-- result, error } each.
local FIELDS = { "status", "enqueued_at", "claimed_at", "finished_at",
                 "result", "error" }
local function hashes(ids)
    local res = assert(r:pipeline(function(p)
        for _, id in ipairs(ids) do
            p:call("HMGET", q.k.task_prefix .. id, unpack(FIELDS))
        end
    end))
    local out = {}
    for i, h in ipairs(res) do
        local t = {}
        for j, f in ipairs(FIELDS) do
            t[f] = h[j] ~= redis.null and h[j] or nil
        end
        out[i] = t
    end
    return out
end

-- Waits until every task of `ids` is completed or failed.
local function wait_all(ids, limit)
    local stop = sys.now() + limit
    while true do
        local hs = hashes(ids)
        local done, failed = 0, nil
        for i, h in ipairs(hs) do
            if h.status == "completed" then
                done = done + 1
            elseif h.status == "failed" then
                failed = failed or (ids[i] .. ": " .. tostring(h.error))
            end
        end
        if failed then
            die("task failed: " .. failed)
        end
        if done == #ids then
            return hs
        end
        if sys.now() > stop then
            die(("timed out after %d s: %d of %d tasks completed")
                :format(limit, done, #ids))
        end
        sys.sleep(0.02)
    end
end

local tag = math.floor(sys.time()) % 0x7fffffff
enqueue(id_of(tag, 0), clips[1])
wait_all({ id_of(tag, 0) }, timeout)

local ids = {}
for i, name in ipairs(clips) do
    ids[i] = id_of(tag, i)
    enqueue(ids[i], name)
end
local hs = wait_all(ids, timeout)

local first, last, audio = math.huge, 0, 0
local claims, n_claims, max_claim = {}, 0, 0
for i, h in ipairs(hs) do
    local e, f = tonumber(h.enqueued_at), tonumber(h.finished_at)
    local res = h.result and json.decode(h.result)
    local d = type(res) == "table" and tonumber(res.duration_s)
    if not (e and f and d) then
        die("task " .. ids[i] .. " has no enqueued_at, finished_at or"
            .. " result duration_s")
    end
    first, last, audio = math.min(first, e), math.max(last, f), audio + d
    local c = h.claimed_at or "?"
    if not claims[c] then
        n_claims = n_claims + 1
    end
    claims[c] = (claims[c] or 0) + 1
    max_claim = math.max(max_claim, claims[c])
end
-- Redis TIME in ms: a span under 1 ms reads as 1 ms.
local span = math.max(1, last - first) / 1000

io.write(("worker_tasks=%d worker_audio_s=%.1f worker_span_s=%.3f"
          .. " worker_rtf_batch=%.1f worker_claims=%d worker_max_claim=%d\n")
         :format(#ids, audio, span, audio / span, n_claims, max_claim))
