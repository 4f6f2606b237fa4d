--- A client load against a running web, in a process of its own so that
-- the load goes on while a spec or a bench restarts, kills and reloads the
-- services: one wtt.thread per client, each with its own Lua state and
-- keep-alive connection. Used by the rolling-restart spec
-- (spec/09-e2e/06-rolling_spec.lua) and the soak (bench/soak/soak.lua).
--
--   wtt run load_client.lua JOB.json
--
-- JOB.json: { url, wavs = { WAV files to upload, in turn } (or wav = one),
--   stop (a path: once it exists, no more uploads), threads = { out1,
--   out2, ... }, modes = { "poll" | "sse", ... } (per thread; default
--   poll), tab (true: fetch each completed task's tablature too),
--   tolerate (a path: while it exists, a 503 is an injected fault, counted
--   as "<kind> 503 injected", not a failure), upload_every_s, max_uploads
--   (per thread), finish_s (how long after the stop to wait for the
--   uploads' tasks), deadline_s (a bound on the whole run) }
--
-- Each client loops: GET /healthz; an upload (POST /transcribe/upload/,
-- then POST /transcribe/generate/) every upload_every_s; then it follows
-- its unfinished uploads, by status polls (GET /transcribe/status/{id}/)
-- or, in "sse" mode, by the event stream of each (GET
-- /transcribe/events/{id}/, reopened with Last-Event-ID when it ends
-- before the task does, as a browser's EventSource would); once one is
-- completed, its MIDI (GET /transcribe/midi/{id}/) and its tab. Every
-- answer must have the one status docs/api.md gives for that request
-- (201, 202, 200); any other status, and any transport error, is a
-- failure. Each thread writes its out file as JSON: { counts = {
-- ["upload 201"] = n, ... }, failures = { "..." }, tasks = { { id,
-- task_id, status }, ... } }.

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
        job.mode = job.modes and job.modes[i] or "poll"
        job.first_wav = i
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
local sse = require "spec.support.sse"
local job = json.decode(arg1)
local wavs = job.wavs or { job.wav }
local counts, failures, tasks = {}, {}, {}
local unfinished = {}         -- tasks not yet completed, in upload order
local port = tonumber(job.url:match(":(%d+)$"))

local function count(key)
    counts[key] = (counts[key] or 0) + 1
end


local function injected(status)
    return status == 503 and job.tolerate and sys.exists(job.tolerate)
end


-- One request; the response when it has status `want`, else nil after
-- recording the failure (or, for an injected fault, only counting it).
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
    if res.status ~= want and injected(res.status) then
        count(kind .. " 503 injected")
        return nil, res
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
    local ok, doc = pcall(json.decode, res and res.body or "")
    return ok and type(doc) == "table" and doc or {}
end


local uploads = 0

local function upload()
    uploads = uploads + 1
    local wav = wavs[(job.first_wav + uploads) % #wavs + 1]
    local res = call("upload", 201, { path = "/transcribe/upload/",
        method = "POST",
        multipart = { { name = "file", file = wav,
                        filename = wav:match("[^/]+$"),
                        content_type = "audio/wav" } } })
    if not res then
        return
    end
    local id = decoded(res).audio_midi_id
    local refused
    res, refused = call("generate", 202, { path = "/transcribe/generate/",
        method = "POST",
        headers = { ["Content-Type"] = "application/json" },
        body = json.encode({ audio_midi_id = id, options = {} }) })
    -- A 503 while Redis is away still names the task: its row is committed
    -- and the reconciler enqueues it later (docs/api.md), so it is followed
    -- like any other.
    local task_id = decoded(res or refused).task_id
    if not task_id then
        if refused then
            failures[#failures + 1] = "generate 503 without a task_id"
        end
        return
    end
    local t = { id = id, task_id = task_id, status = "pending" }
    tasks[#tasks + 1] = t
    unfinished[#unfinished + 1] = t
end


local function finished(t, res)
    local doc = decoded(res)
    if doc.status then
        t.status = doc.status
    end
    if t.status == "completed" then
        call("midi", 200, { path = "/transcribe/midi/" .. t.id .. "/" })
        if job.tab then
            call("tab", 200, { path = "/transcribe/tab/" .. t.id .. "/" })
        end
        return true
    elseif t.status == "failed" then
        failures[#failures + 1] = "task " .. t.id .. " failed: "
            .. tostring(doc.error)
        return true
    end
    return false
end


-- Follows one task by its event stream until it ends or `wait_s` pass.
local function follow(t, wait_s)
    local c, err = sse.open(port, "/transcribe/events/" .. t.id .. "/",
                            { last_event_id = t.last_event_id })
    if not c then
        count("events error")
        failures[#failures + 1] = "events " .. t.id .. ": " .. tostring(err)
        return false
    end
    sse.wait({ c }, function() return c.ended end, wait_s)
    c.conn:close()
    t.last_event_id = c.last_id or t.last_event_id
    if c.status ~= 200 and c.status ~= 204 then
        if injected(c.status) then
            count("events 503 injected")
        else
            count("events " .. tostring(c.status))
            failures[#failures + 1] = ("events %s: status %s"):format(
                t.id, tostring(c.status))
        end
        return false
    end
    count("events " .. c.status)
    local last = c.events[#c.events]
    if last and (last.event == "completed" or last.event == "failed") then
        return finished(t, { body = last.data })
    end
    -- Ended before the task: the next round reopens where it stopped.
    count("events reopen")
    return false
end


-- Follows the unfinished tasks (a few per round).
local function step(n)
    local keep = {}
    for i, t in ipairs(unfinished) do
        local done = false
        if i <= n then
            if job.mode == "sse" then
                done = follow(t, 5)
            else
                local res = call("status", 200, {
                    path = "/transcribe/status/" .. t.id .. "/" })
                done = res and finished(t, res)
            end
        end
        if not done then
            keep[#keep + 1] = t
        end
    end
    unfinished = keep
end


local started = sys.now()
local hard_stop = started + job.deadline_s
local next_upload = started
while sys.now() < hard_stop and not sys.exists(job.stop) do
    call("health", 200, { path = "/healthz" })
    if uploads < job.max_uploads and sys.now() >= next_upload then
        next_upload = sys.now() + job.upload_every_s
        upload()
    end
    step(job.mode == "sse" and 1 or 3)
    sys.sleep(0.05)
end
-- No more uploads: wait for the tasks already in.
local finish_by = math.min(hard_stop, sys.now() + job.finish_s)
while #unfinished > 0 and sys.now() < finish_by do
    step(#unfinished)
    sys.sleep(0.2)
end
for _, t in ipairs(unfinished) do
    failures[#failures + 1] = ("task %s still %s at the end"):format(
        t.id, t.status)
end

assert(sys.write_file(job.out, json.encode({
    counts = counts, failures = failures, tasks = tasks })))
