--- The enqueue-flood client of Q6 (spec/10-faults/07-enqueue_flood_spec.lua
-- and bench/flood.sh): many concurrent keep-alive connections from one
-- process, one wtt.thread (own Lua state, own HTTP connection) each.
--
--   wtt run flood_client.lua JOB.json     -- the process: starts the threads
--
-- JOB.json: { url, client = path of this file, mode = "spec" | "bench",
--             threads = { { list = path, out = path }, ... } }
-- Each list line is "row_id key flags": POST /transcribe/generate/ for the
-- row with `Idempotency-Key: key`; flags ask for more requests after a 202:
--   r  the same request again (a client retry): 202, same task_id, replayed
--   n  the same row without a key: 409 conflict
--   u  the key again with other options: 422 idempotency_key_reused
-- Each thread writes to its out file one line per row, "ok row task_id
-- replays" or "rej row status" (429/503 in bench mode), "bad ..." for an
-- answer docs/api.md does not allow, and last "posts N rejected N"; in
-- bench mode also OUT.lat, the milliseconds of each POST.
-- In spec mode a 429/503 is retried with the same key (what a client
-- does); in bench mode it is counted once and the row skipped, so every
-- POST is counted once. A 409 idempotency_in_progress (the same key still
-- running on another connection) is retried in both.

local thread = require "wtt.thread"
local json = require "wtt.json"
local sys = require "wtt.sys"

local arg1 = ...

-- The process: one thread per list, all at once, then wait for them.
if not arg1:find("^{") then
    local job = json.decode(assert(sys.read_file(arg1)))
    local me = job.client or debug.getinfo(1, "S").source:sub(2)
    local running = {}
    for i, t in ipairs(job.threads) do
        running[i] = assert(thread.start(me, json.encode({
            url = job.url, mode = job.mode, list = t.list, out = t.out })))
    end
    local failed = 0
    for i, t in ipairs(running) do
        local ok, err = t:join(600)
        if not ok then
            io.stderr:write("flood thread ", i, ": ", tostring(err), "\n")
            failed = failed + 1
        end
    end
    os.exit(failed == 0 and 0 or 1)
end

-- A thread: its own keep-alive connection (the state's default client).
local httpc = require "wtt.http_client"
local a = json.decode(arg1)
local out = assert(io.open(a.out, "w"))
local posts, rejected = 0, 0
local lat = {}                -- ms per POST (bench mode)

local function bad(...)
    out:write("bad ", table.concat({ ... }, " "), "\n")
end

-- One logical request: retried while the key is in progress elsewhere
-- (and on 429/503 in spec mode). Returns res, doc | nil, err.
local function post(id, key, options)
    local headers = { ["Content-Type"] = "application/json" }
    if key then
        headers["Idempotency-Key"] = key
    end
    local body = json.encode({ audio_midi_id = id, options = options or {} })
    for _ = 1, 500 do
        posts = posts + 1
        local t0 = sys.now()
        local res, err = httpc.request({
            url = a.url .. "/transcribe/generate/", method = "POST",
            headers = headers, timeout = 30, body = body })
        lat[#lat + 1] = (sys.now() - t0) * 1000
        if not res then
            return nil, err
        end
        local ok, doc = pcall(json.decode, res.body)
        doc = ok and type(doc) == "table" and doc or {}
        if res.status == 429 or res.status == 503 then
            rejected = rejected + 1
            if a.mode == "bench" then
                return res, doc
            end
            sys.sleep(0.05)
        elseif not (res.status == 409
                    and doc.error == "idempotency_in_progress") then
            return res, doc
        else
            sys.sleep(0.01)
        end
    end
    return nil, "still rejected or in progress after 500 tries"
end

for line in io.lines(a.list) do
    local id, key, flags = line:match("^(%S+) (%S+) ?(%a*)$")
    local res, doc = post(id, key)
    if res and (res.status == 429 or res.status == 503) then
        out:write("rej ", id, " ", res.status, "\n")
    elseif not res or res.status ~= 202 or type(doc.task_id) ~= "string"
    then
        bad(id, "first", res and res.status or tostring(doc),
            res and res.body or "")
    else
        local tid = doc.task_id
        local replays = res.headers["idempotency-replayed"] and 1 or 0
        if flags:find("r", 1, true) then
            local r2, d2 = post(id, key)
            if r2 and (r2.status == 429 or r2.status == 503) then
                out:write("rej ", id, " ", r2.status, "\n")
            elseif not r2 or r2.status ~= 202 or d2.task_id ~= tid
               or r2.headers["idempotency-replayed"] ~= "true" then
                bad(id, "retry", r2 and r2.status or tostring(d2),
                    r2 and r2.body or "")
            else
                replays = replays + 1
            end
        end
        if flags:find("n", 1, true) then
            local r3, d3 = post(id, nil)
            if not r3 or r3.status ~= 409 or d3.error ~= "conflict" then
                bad(id, "nokey", r3 and r3.status or tostring(d3),
                    r3 and r3.body or "")
            end
        end
        if flags:find("u", 1, true) then
            local r4, d4 = post(id, key, { onset_threshold = 0.7 })
            if not r4 or r4.status ~= 422
               or d4.error ~= "idempotency_key_reused" then
                bad(id, "reuse", r4 and r4.status or tostring(d4),
                    r4 and r4.body or "")
            end
        end
        out:write("ok ", id, " ", tid, " ", replays, "\n")
    end
end
out:write("posts ", posts, " rejected ", rejected, "\n")
out:close()
if a.mode == "bench" then
    local f = assert(io.open(a.out .. ".lat", "w"))
    for _, ms in ipairs(lat) do
        f:write(string.format("%.3f\n", ms))
    end
    f:close()
end
