--- The client load of the rolling-restart spec
-- (spec/09-e2e/06-rolling_spec.lua): a separate process, so the load runs
-- while the spec restarts replicas; one wtt.thread per client, each with
-- its own Lua state and keep-alive connection to the load balancer.
--
--   wtt run rolling_load.lua JOB.json
--
-- JOB.json: { url, wav (a WAV file to upload), stop (a path: once it
--   exists, no more uploads), threads = { out1, out2, ... },
--   upload_every_s, max_uploads (per thread), finish_s (how long after
--   the stop to wait for the uploads' tasks), deadline_s (a bound on the
--   whole run) }
--
-- Each client loops: GET /healthz; an upload (POST /transcribe/upload/,
-- then POST /transcribe/generate/) every upload_every_s; status polls of
-- its unfinished uploads (GET /transcribe/status/{id}/) and, once one is
-- completed, its MIDI (GET /transcribe/midi/{id}/). Every answer must have
-- the one status docs/api.md gives for that request (201, 202, 200); any
-- other status, and any transport error, is a failure. Each thread writes
-- its out file as JSON: { counts = { ["upload 201"] = n, ... },
-- failures = { "..." }, tasks = { { id, task_id, status }, ... } }.

local thread = require "wtt.thread"
local json = require "wtt.json"
local sys = require "wtt.sys"

local arg1 = ...

-- The process: one thread per client, all at once, then wait for them.
if not arg1:find("^{") then
    local job = json.decode(assert(sys.read_file(arg1)))
    local me = debug.getinfo(1, "S").source:sub(2)
    local running = {}
    for i, out in ipairs(job.threads) do
        job.out = out
        running[i] = assert(thread.start(me, json.encode(job)))
    end
    local failed = 0
    for i, t in ipairs(running) do
        local ok, err = t:join(job.deadline_s + 30)
        if not ok then
            io.stderr:write("load thread ", i, ": ", tostring(err), "\n")
            failed = failed + 1
        end
    end
    os.exit(failed == 0 and 0 or 1)
end

local httpc = require "wtt.http_client"
local job = json.decode(arg1)
local counts, failures, tasks = {}, {}, {}
local unfinished = {}         -- tasks not yet completed, in upload order

local function count(key)
    counts[key] = (counts[key] or 0) + 1
end


-- One request; the response when it has status `want`, else nil after
-- recording the failure.
local function call(kind, want, opts)
    opts.timeout = opts.timeout or 60
    opts.url = job.url .. opts.path
    local res, err = httpc.request(opts)
    if not res then
        count(kind .. " error")
        failures[#failures + 1] = ("%s %s: %s"):format(kind, opts.path,
                                                        tostring(err))
        return nil
    end
    count(kind .. " " .. res.status)
    if res.status ~= want then
        failures[#failures + 1] = ("%s %s: status %d, want %d: %s"):format(
            kind, opts.path, res.status, want, (res.body or ""):sub(1, 200))
        return nil
    end
    return res
end


local function decoded(res)
    local ok, doc = pcall(json.decode, res.body or "")
    return ok and type(doc) == "table" and doc or {}
end


local function upload()
    local res = call("upload", 201, { path = "/transcribe/upload/",
        method = "POST",
        multipart = { { name = "file", file = job.wav,
                        filename = "rolling.wav",
                        content_type = "audio/wav" } } })
    if not res then
        return
    end
    local id = decoded(res).audio_midi_id
    res = call("generate", 202, { path = "/transcribe/generate/",
        method = "POST",
        headers = { ["Content-Type"] = "application/json" },
        body = json.encode({ audio_midi_id = id, options = {} }) })
    if not res then
        return
    end
    local t = { id = id, task_id = decoded(res).task_id, status = "pending" }
    tasks[#tasks + 1] = t
    unfinished[#unfinished + 1] = t
end


-- Polls the unfinished tasks (a few per round); fetches the MIDI of those
-- that completed.
local function poll(n)
    local keep = {}
    for i, t in ipairs(unfinished) do
        if i <= n then
            local res = call("status", 200, {
                path = "/transcribe/status/" .. t.id .. "/" })
            local st = res and decoded(res).status
            if st then
                t.status = st
            end
            if st == "completed" then
                call("midi", 200, { path = "/transcribe/midi/" .. t.id .. "/" })
            elseif st == "failed" then
                failures[#failures + 1] = "task " .. t.id .. " failed: "
                    .. tostring(decoded(res).error)
            else
                keep[#keep + 1] = t
            end
        else
            keep[#keep + 1] = t
        end
    end
    unfinished = keep
end


local started = sys.now()
local hard_stop = started + job.deadline_s
local next_upload, uploads = started, 0
while sys.now() < hard_stop and not sys.exists(job.stop) do
    call("health", 200, { path = "/healthz" })
    if uploads < job.max_uploads and sys.now() >= next_upload then
        uploads = uploads + 1
        next_upload = sys.now() + job.upload_every_s
        upload()
    end
    poll(3)
    sys.sleep(0.05)
end
-- No more uploads: wait for the tasks already in.
local finish_by = math.min(hard_stop, sys.now() + job.finish_s)
while #unfinished > 0 and sys.now() < finish_by do
    poll(#unfinished)
    sys.sleep(0.2)
end

assert(sys.write_file(job.out, json.encode({
    counts = counts, failures = failures, tasks = tasks })))
