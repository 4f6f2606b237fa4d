--- The transcription worker (`wtt worker`, see docs/worker.md).
--
--     local worker = require "wtt.worker"
--     local w = assert(worker.new(cfg))     -- cfg: see DEFAULTS
--     os.exit(w:run())                      -- 0 on a clean stop (SIGTERM too)
--
-- One worker is one process: it loads the model once, SUBSCRIBEs to
-- `task:new` (with a poll fallback) and, on every wake, reaps expired claims
-- and claims tasks until the queue is empty. A task is downloaded from web
-- (`GET /media/...`, worker token), transcribed window by window (each
-- window publishes progress), and its MIDI, notes JSON (and posteriors)
-- are POSTed to `/transcribe/_result/{id}/` before `complete`. A thread
-- (lua/wtt/heartbeat.lua) keeps the claim and the `worker:{id}` hash alive
-- while inference blocks this state. SIGTERM/SIGINT stop claiming; a running
-- task gets `grace` seconds to finish, after which it is cancelled and
-- released (requeued, attempt not charged). With `batch_tasks` N > 1 it
-- claims up to N tasks in one call, downloads them one after another,
-- runs their windows through one model call (`m:transcribe_many`, shared
-- batches) and completes the good ones in one call; each task keeps its
-- own claim, progress and outcome. A device fault (the model answers kind
-- "device") releases every held task uncharged, marks the worker
-- unhealthy, stops claiming for a backoff, and after `max_device_faults`
-- in a row ends `run` with EXIT_DEVICE. The worker never touches
-- PostgreSQL and never reads DATABASE_URL.

local httpc = require "wtt.http_client"
local json = require "wtt.json"
local log = require "wtt.log"
local notes_io = require "wtt.notes_io"
local redis = require "wtt.redis"
local sys = require "wtt.sys"
local thread = require "wtt.thread"
local runtime = require "wtt.runtime"

local _M = {}
local mt = { __index = _M }

_M.DEFAULTS = {
    redis_url = "redis://127.0.0.1:6379",
    web_url = "http://127.0.0.1:8008",
    token = nil,
    prefix = "",
    device = "auto",
    threads = nil,               -- inference threads (engine default)
    id = nil,                    -- default host-pid
    max_download = 512 * 1024 * 1024,
    grace = 30,                  -- seconds a running task gets after SIGTERM
    poll = 5,                    -- seconds between polls without task:new
    heartbeat = 10,              -- seconds between heartbeats
    worker_ttl = 30,             -- TTL of worker:{id} (at least 3 beats)
    reap_interval = 1,           -- seconds between reaps (at most)
    retries = 5,                 -- download / upload attempts
    backoff = 0.5,               -- first retry delay, doubled each time
    backoff_max = 15,
    http_timeout = 120,          -- seconds per download or upload
    connect_timeout = 5,
    noop = false,
    once = false,
    tmp_dir = nil,               -- default TMPDIR or /tmp
    batch_tasks = 1,             -- tasks claimed and inferred together
    max_device_faults = 3,       -- device faults in a row before exiting
    device_fault_backoff = 5,    -- seconds without claiming after a device
                                 -- fault, doubled each fault in a row
    device_fault_backoff_max = 60,
    test_window_sleep = 0,       -- tests only: sleep per window
    test_device_fault_after = nil,  -- tests only: engine runs after this
                                    -- many fail as device faults
}

--- Exit status of `run` after `max_device_faults` device faults in a row
-- (a supervisor restarts the worker; docs/worker.md).
_M.EXIT_DEVICE = 3

-- payload.options the engine reads (the rest are MIDI options or ignored).
local ENGINE_OPTIONS = {
    "onset_threshold", "frame_threshold", "min_note_ms", "min_note_frames",
    "min_freq", "max_freq", "melodia", "infer_onsets", "full_tail",
    "numpy_ties", "nonfinite",
}


local function hostname()
    local h = sys.read_file("/proc/sys/kernel/hostname")
    h = h and h:gsub("%s+$", "") or os.getenv("HOSTNAME") or "localhost"
    return h ~= "" and h or "localhost"
end
_M.hostname = hostname


--- A new worker (nothing connected yet). cfg fields: see _M.DEFAULTS.
function _M.new(cfg)
    local self = setmetatable({ cfg = {} }, mt)
    for k, v in pairs(_M.DEFAULTS) do
        self.cfg[k] = v
    end
    for k, v in pairs(cfg or {}) do
        self.cfg[k] = v
    end
    cfg = self.cfg
    if not cfg.noop and (not cfg.token or cfg.token == "") then
        return nil, "no worker token (WTT_WORKER_TOKEN or --token)"
    end
    cfg.id = cfg.id or (hostname() .. "-" .. sys.getpid())
    cfg.web_url = cfg.web_url:gsub("/+$", "")
    self.key = "wtt.worker." .. cfg.id
    self.done = 0
    self.device_faults = 0       -- in a row; a good model run resets it
    self.last_reap = -math.huge
    self.last_drain = sys.now()
    return self
end


-- Stop handling --------------------------------------------------------------

--- True once SIGTERM or SIGINT arrived (stop claiming).
function _M.stopping(self)
    if self.stop_at then
        return true
    end
    if sys.signaled("TERM") or sys.signaled("INT") then
        self.stop_at = sys.now()
        log.info("worker.stopping", { grace_s = self.cfg.grace,
                                      task = self.task and self.task.id })
        return true
    end
    return false
end


--- True when a running task must give up: the grace period after a stop
-- signal has run out, or a second SIGTERM/SIGINT came (impatient operator).
function _M.past_grace(self)
    if not self:stopping() then
        return false
    end
    if sys.now() - self.stop_at >= self.cfg.grace then
        return true
    end
    local _, n_term = sys.signaled("TERM")
    local _, n_int = sys.signaled("INT")
    return n_term + n_int >= 2
end


--- Sleeps `d` seconds in small steps; false if the grace ran out meanwhile.
function _M.nap(self, d)
    local deadline = sys.now() + d
    while sys.now() < deadline do
        if self:past_grace() then
            return false
        end
        sys.sleep(math.min(0.05, deadline - sys.now()))
    end
    return not self:past_grace()
end


--- Backoff before attempt n+1: min(max, base * 2^(n-1)), drawn in [d/2, d].
function _M.backoff_delay(self, n)
    local d = math.min(self.cfg.backoff_max, self.cfg.backoff * 2 ^ (n - 1))
    return d / 2 + math.random() * d / 2
end


-- HTTP -------------------------------------------------------------------------

local function auth(self)
    return { Authorization = "Bearer " .. (self.cfg.token or "") }
end


-- A status worth retrying: server errors, timeouts, rate limits.
local function transient(status)
    return status >= 500 or status == 408 or status == 429
end


-- Waits out the backoff after failed attempt `attempt` of a transfer,
-- logged as `event` with the attempt's error.
-- @return false when the grace ran out meanwhile (the task is cancelled)
local function wait_retry(self, event, attempt, err)
    local d = self:backoff_delay(attempt)
    log.warn(event, { attempt = attempt, error = err,
                      retry_in_s = string.format("%.3f", d) })
    return self:nap(d)
end


--- Downloads the task's audio into `dir`.
-- @return path | nil, err, retryable | nil, "cancelled"
function _M.download(self, task, dir)
    local url = task.payload.audio_url
    if type(url) ~= "string" or url == "" then
        return nil, "payload has no audio_url", false
    end
    if not url:match("^https?://") then
        url = self.cfg.web_url .. (url:sub(1, 1) == "/" and "" or "/") .. url
    end
    local ext = (task.payload.audio_url:match("%.([%w]+)$") or "audio")
    local path = dir .. "/input." .. ext:lower()
    local last
    for attempt = 1, self.cfg.retries do
        local res, err = httpc.request({
            url = url, headers = auth(self), output = path,
            max_size = self.cfg.max_download,
            timeout = self.cfg.http_timeout,
            connect_timeout = self.cfg.connect_timeout,
        })
        if res and res.status == 200 then
            log.info("task.downloaded", { bytes = res.size,
                                          time_s = string.format("%.3f",
                                                                 res.time) })
            return path
        end
        if res then
            os.remove(path)
            last = "download failed: HTTP " .. res.status .. " for " .. url
            if not transient(res.status) then
                return nil, last, false
            end
        else
            last = "download failed: " .. tostring(err)
            if err and err:find("larger than", 1, true) then
                return nil, last, false
            end
        end
        if attempt < self.cfg.retries
           and not wait_retry(self, "task.download_retry", attempt, last)
        then
            return nil, "cancelled"
        end
    end
    return nil, last, true
end


--- POSTs the result files. @return "ok", doc | "lost" | "cancelled" |
-- nil, err, retryable
function _M.upload(self, task, files)
    local url = self.cfg.web_url .. "/transcribe/_result/" .. task.id .. "/"
    local parts = { { name = "claim", value = tostring(task.claim) } }
    for _, f in ipairs(files) do
        parts[#parts + 1] = { name = f.name, file = f.path,
                              filename = f.filename,
                              content_type = f.content_type }
    end
    local headers = auth(self)
    headers["Idempotency-Key"] = task.id .. ":" .. tostring(task.claim)
    local last
    for attempt = 1, self.cfg.retries do
        local res, err = httpc.request({
            url = url, method = "POST", headers = headers,
            multipart = parts, timeout = self.cfg.http_timeout,
            connect_timeout = self.cfg.connect_timeout,
            max_size = 1024 * 1024,
        })
        if res then
            if res.status >= 200 and res.status < 300 then
                local ok, doc = pcall(json.decode, res.body or "")
                return "ok", ok and type(doc) == "table" and doc or {}
            elseif res.status == 409 then
                -- A result from an earlier run of this task (one that died
                -- before completing) is already stored: the task ends
                -- with that first result (reliability W6). Any other 409
                -- means this claim is stale.
                local ok, doc = pcall(json.decode, res.body or "")
                if ok and type(doc) == "table"
                   and doc.error == "result_exists"
                   and type(doc.result) == "table"
                then
                    log.info("task.result_exists", {})
                    return "ok", doc.result
                end
                return "lost"
            end
            last = "result upload failed: HTTP " .. res.status .. " "
                   .. tostring(res.body or ""):sub(1, 200)
            if not transient(res.status) then
                return nil, last, true
            end
        else
            last = "result upload failed: " .. tostring(err)
        end
        if attempt < self.cfg.retries
           and not wait_retry(self, "task.upload_retry", attempt, last)
        then
            return "cancelled"
        end
    end
    return nil, last, true
end


-- One task -------------------------------------------------------------------

local function wants(outputs, name)
    if type(outputs) ~= "table" then
        return false
    end
    if outputs[name] then
        return true
    end
    for _, v in ipairs(outputs) do
        if v == name then
            return true
        end
    end
    return false
end


-- Audio errors that no retry will fix (see core/bind/wtt_audio.c).
local function bad_audio(err)
    return (err:match("^open failed") or err:match("^decode failed")
            or err:match("^probe failed") or err:match("unsupported format"))
           and not err:find("out of memory", 1, true)
end


-- "<id> <claim>" of each task, separated by spaces: what the heartbeat
-- thread keeps alive (`.task`) and reports stale (`.stale`).
local function held_text(tasks)
    local parts = {}
    for _, t in ipairs(tasks) do
        parts[#parts + 1] = t.id .. " " .. tostring(t.claim)
    end
    return table.concat(parts, " ")
end


--- True when the heartbeat thread found `task`'s claim stale (reaped).
function _M.stale(self, task)
    local s = thread.get(self.key .. ".stale")
    return s ~= nil and (" " .. s .. " "):find(
        " " .. task.id .. " " .. tostring(task.claim) .. " ", 1, true) ~= nil
end


function _M.release(self, task, why)
    local ok, err = self.q:release(task.id, task.claim)
    if ok then
        log.info("task.released", { reason = why })
        return "released"
    end
    log.warn("task.release_failed", { reason = why, error = err })
    return err == "stale" and "lost" or "release_failed"
end


function _M.fail(self, task, err, retryable)
    local how, ferr = self.q:fail(task.id, task.claim, err, retryable)
    if how then
        log.warn("task.failed", { error = err, retryable = retryable,
                                  outcome = how, attempts = task.attempts })
        return how == "dead" and "dead" or "retry"
    end
    if ferr == "stale" then
        log.warn("task.lost", { reason = "stale claim at fail", error = err })
        return "lost"
    end
    log.error("task.fail_failed", { error = err, fail_error = ferr })
    return "fail_failed"
end


function _M.lost(self, why)
    log.warn("task.lost", { reason = why })
    return "lost"
end


-- The engine options of a task's payload.options.
local function engine_opts(options)
    local opts = {}
    for _, k in ipairs(ENGINE_OPTIONS) do
        if options[k] ~= nil then
            opts[k] = options[k]
        end
    end
    return opts
end


local function options_of(task)
    local options = task.payload.options
    return type(options) == "table" and options or {}
end


-- The on_window callback of `job` (one task under inference), in a batch
-- `jobs` whose inference started at `started`: publishes the task's
-- progress, reports the batch's windows per second to the heartbeat, and
-- cancels the task (returns false, `job.cancel` says why) when its claim
-- went stale or the shutdown grace ran out.
function _M.on_window(self, job, jobs, started)
    local cfg = self.cfg
    local task = job.task
    return function(done, total)
        if cfg.test_window_sleep > 0 then
            sys.sleep(cfg.test_window_sleep)
        end
        job.windows = done
        local elapsed = sys.now() - started
        if elapsed > 0 then
            local all = 0
            for _, j in ipairs(jobs) do
                all = all + (j.windows or 0)
            end
            thread.set(self.key .. ".wps", string.format("%.2f",
                                                         all / elapsed))
        end
        local ok, perr = self.q:progress(task.id, task.claim, done, total)
        if not ok then
            if perr == "stale" then
                job.cancel = "lost"
                return false
            end
            log.warn("task.progress_failed", { error = perr })
        end
        if self:stale(task) then
            job.cancel = "lost"
            return false
        end
        if self:past_grace() then
            job.cancel = "shutdown"
            return false
        end
        return true
    end
end


-- The outcome of a task whose inference failed with `err`.
function _M.not_inferred(self, job, err)
    if job.cancel == "lost" then
        return self:lost("claim reaped during inference")
    elseif job.cancel == "shutdown" then
        return self:release(job.task, "shutdown during inference")
    end
    return self:fail(job.task, err, not bad_audio(err))
end


--- Downloads `job.task`'s audio into `job.dir`; sets `job.audio`, or
-- `job.outcome` when the task ends here.
function _M.fetch(self, job)
    local audio, err, retryable = self:download(job.task, job.dir)
    if not audio then
        if err == "cancelled" then
            job.outcome = self:release(job.task, "shutdown during download")
        else
            job.outcome = self:fail(job.task, err, retryable)
        end
        return
    end
    job.audio = audio
end


--- Files and upload of a transcribed task: the result table for
-- `complete`, or nil and the task's outcome.
function _M.deliver(self, job, notes, post, infer_s)
    local task, dir = job.task, job.dir
    local payload = task.payload
    local options = options_of(task)
    local duration_s = tonumber(payload.duration_s)
                       or post:n_frames() / 86
    log.info("task.transcribed", { n_notes = #notes,
                                   infer_s = string.format("%.3f", infer_s),
                                   duration_s = duration_s })

    -- Files.
    local provenance = self.model:provenance(job.opts)
    local files = {}
    local midi_path = dir .. "/" .. task.id .. ".mid"
    local ok, werr = notes_io.write_midi(midi_path, notes, {
        instrument = options.instrument or (options.program == nil
                                            and "guitar" or nil),
        program = options.program,
        tempo = options.tempo,
        multiple_pitch_bends = options.multiple_pitch_bends,
    })
    if not ok then
        post:close()
        return nil, self:fail(task, "midi: " .. tostring(werr), false)
    end
    files[#files + 1] = { name = "midi", path = midi_path,
                          filename = task.id .. ".mid",
                          content_type = "audio/midi" }
    local notes_path = dir .. "/" .. task.id .. ".notes.json"
    ok, werr = notes_io.write(notes_path, notes_io.to_json(notes, {
        task_id = task.id, duration_s = duration_s, provenance = provenance,
    }))
    if not ok then
        post:close()
        return nil, self:fail(task, werr, true)
    end
    files[#files + 1] = { name = "notes", path = notes_path,
                          filename = task.id .. ".notes.json",
                          content_type = "application/json" }
    if wants(payload.outputs, "posteriors") then
        local npy = dir .. "/" .. task.id .. ".posteriors.npy"
        ok, werr = post:save(npy)
        if not ok then
            post:close()
            return nil, self:fail(task, "posteriors: " .. tostring(werr),
                                  true)
        end
        files[#files + 1] = { name = "posteriors", path = npy,
                              filename = task.id .. ".posteriors.npy",
                              content_type = "application/octet-stream" }
    end
    post:close()

    -- Upload.
    local how, doc, retry = self:upload(task, files)
    if how == "lost" then
        return nil, self:lost("result refused (409): the claim is stale")
    elseif how == "cancelled" then
        return nil, self:release(task, "shutdown during upload")
    elseif how ~= "ok" then
        return nil, self:fail(task, doc, retry)
    end
    local result = {
        midi = doc.midi or (task.id .. ".mid"),
        notes = doc.notes or (task.id .. ".notes.json"),
        n_notes = tonumber(doc.n_notes) or #notes, duration_s = duration_s,
        provenance = provenance,
    }
    if wants(payload.outputs, "posteriors") then
        result.posteriors = doc.posteriors or (task.id .. ".posteriors.npy")
    end
    return result
end


function _M.log_completed(self, job)
    log.info("task.completed", { n_notes = job.result.n_notes,
                                 total_s = string.format(
                                     "%.3f", sys.now() - self.task_started) })
end


-- The task body; @return outcome string.
function _M.handle(self, task, dir)
    local cfg = self.cfg

    if cfg.noop then
        -- Complete and claim the next task in one round trip (unless this
        -- worker is about to stop: then nothing new is claimed).
        local ok, err, nxt
        if cfg.once or self:stopping() then
            ok, err = self.q:complete(task.id, task.claim,
                                      { noop = true, n_notes = 0 })
        else
            ok, err, nxt = self.q:complete_and_claim(task.id, task.claim,
                { noop = true, n_notes = 0 }, cfg.id)
            self.next_tasks = nxt and { nxt } or nil
        end
        if not ok then
            return self:lost("complete: " .. tostring(err))
        end
        return "completed"
    end

    -- 1. Audio.
    local job = { task = task, dir = dir }
    self:fetch(job)
    if job.outcome then
        return job.outcome
    end
    if self:past_grace() then
        return self:release(task, "shutdown before inference")
    end

    -- 2. Inference, progress after every window.
    job.opts = engine_opts(options_of(task))
    local started = sys.now()
    local notes, post, kind = self.model:transcribe(
        job.audio, job.opts, self:on_window(job, { job }, started))
    if not notes then
        if kind == "device" and not job.cancel then
            return self:device_fault(post, { task })
        end
        return self:not_inferred(job, post)
    end
    self:device_ok()

    -- 3. Files and upload, then complete.
    local result, outcome = self:deliver(job, notes, post,
                                         sys.now() - started)
    if not result then
        return outcome
    end
    job.result = result
    local cok, cerr = self.q:complete(task.id, task.claim, result)
    if not cok then
        return self:lost("complete: " .. tostring(cerr))
    end
    self:log_completed(job)
    return "completed"
end


function _M.process(self, task)
    self.task = task
    self.task_started = sys.now()
    log.set_id(task.id)
    if not self.cfg.noop then
        log.info("task.claimed", { claim = task.claim,
                                   attempts = task.attempts })
    end
    thread.set(self.key .. ".task", held_text({ task }))
    local dir, derr
    if not self.cfg.noop then
        dir, derr = sys.mkdtemp("wtt-task-")
    end
    local ok, outcome
    if self.cfg.noop or dir then
        ok, outcome = pcall(self.handle, self, task, dir)
    else
        ok, outcome = true, self:fail(task, "cannot make a temp dir: "
                                            .. tostring(derr), true)
    end
    if not ok then
        log.error("task.error", { error = outcome })
        outcome = self:fail(task, "worker error: " .. tostring(outcome), true)
    end
    thread.set(self.key .. ".task", nil)
    thread.set(self.key .. ".wps", nil)
    if dir then
        sys.rmtree(dir)
    end
    self.done = self.done + 1
    self.task = nil
    log.set_id(nil)
    return outcome
end


-- A batch of tasks (--batch-tasks) ---------------------------------------------

-- Tells the heartbeat thread the tasks of `jobs` still held (no outcome).
local function hold(self, jobs)
    local held = {}
    for _, j in ipairs(jobs) do
        if not j.outcome then
            held[#held + 1] = j.task
        end
    end
    thread.set(self.key .. ".task", #held > 0 and held_text(held) or nil)
end


-- The no-op batch: completes every task and claims the next batch in one
-- round trip (unless this worker is about to stop).
local function noop_batch(self, jobs)
    local cfg = self.cfg
    local entries = {}
    for i, j in ipairs(jobs) do
        entries[i] = { id = j.task.id, claim = j.task.claim,
                       result = { noop = true, n_notes = 0 } }
    end
    local n, errs, nxt
    if cfg.once or self:stopping() then
        n, errs = self.q:complete_many(entries)
    else
        n, errs, nxt = self.q:complete_many_and_claim(entries, cfg.id,
                                                      cfg.batch_tasks)
        self.next_tasks = nxt
    end
    for i, j in ipairs(jobs) do
        local err = not n and errs or errs[i]
        if err then
            log.set_id(j.task.id)
            j.outcome = self:lost("complete: " .. tostring(err))
        else
            j.outcome = "completed"
        end
    end
end


--- The body of a batch: downloads, one model call, files and uploads, one
-- complete. Sets each job's `outcome`.
function _M.handle_batch(self, jobs)
    if self.cfg.noop then
        return noop_batch(self, jobs)
    end

    -- 1. Audio, one task after another.
    for _, j in ipairs(jobs) do
        log.set_id(j.task.id)
        log.info("task.claimed", { claim = j.task.claim,
                                   attempts = j.task.attempts,
                                   batch = #jobs })
        local derr
        j.dir, derr = sys.mkdtemp("wtt-task-")
        if not j.dir then
            j.outcome = self:fail(j.task, "cannot make a temp dir: "
                                          .. tostring(derr), true)
        elseif self:past_grace() then
            j.outcome = self:release(j.task, "shutdown before download")
        else
            self:fetch(j)
        end
        hold(self, jobs)
    end

    -- 2. Inference: every task's windows in shared batches, one call.
    local running, items = {}, {}
    local started = sys.now()
    for _, j in ipairs(jobs) do
        if not j.outcome then
            log.set_id(j.task.id)
            if self:past_grace() then
                j.outcome = self:release(j.task, "shutdown before inference")
            else
                j.opts = engine_opts(options_of(j.task))
                running[#running + 1] = j
                items[#items + 1] = {
                    audio = j.audio, opts = j.opts,
                    on_window = self:on_window(j, running, started),
                }
            end
        end
    end
    hold(self, jobs)
    if #items == 0 then
        return
    end
    log.set_id(nil)
    local results, err, kind = self.model:transcribe_many(items)
    local infer_s = sys.now() - started
    if not results then
        if kind == "device" then
            local tasks = {}
            for _, j in ipairs(running) do
                tasks[#tasks + 1] = j.task
            end
            local outcome = self:device_fault(err, tasks)
            for _, j in ipairs(running) do
                j.outcome = outcome
            end
            return
        end
        for _, j in ipairs(running) do
            log.set_id(j.task.id)
            j.outcome = self:not_inferred(j, err)
        end
        return
    end
    self:device_ok()

    -- 3. Files and upload, task by task.
    local done = {}
    for i, j in ipairs(running) do
        log.set_id(j.task.id)
        local res = results[i] or { err = "no result from the model" }
        if res.err then
            j.outcome = self:not_inferred(j, res.err)
        else
            j.result, j.outcome = self:deliver(j, res.notes, res.post,
                                               infer_s)
            if j.result then
                done[#done + 1] = j
            end
        end
        hold(self, jobs)
    end

    -- 4. One complete for every delivered task, each fenced on its own.
    if #done == 0 then
        return
    end
    local entries = {}
    for i, j in ipairs(done) do
        entries[i] = { id = j.task.id, claim = j.task.claim,
                       result = j.result }
    end
    local n, errs = self.q:complete_many(entries)
    for i, j in ipairs(done) do
        log.set_id(j.task.id)
        local cerr = not n and errs or errs[i]
        if cerr then
            j.outcome = self:lost("complete: " .. tostring(cerr))
        else
            j.outcome = "completed"
            self:log_completed(j)
        end
    end
end


--- Runs a batch of claimed tasks. @return the jobs ({ task, outcome })
function _M.process_batch(self, tasks)
    self.task_started = sys.now()
    local jobs = {}
    for i, task in ipairs(tasks) do
        jobs[i] = { task = task }
    end
    thread.set(self.key .. ".task", held_text(tasks))
    local ok, err = pcall(self.handle_batch, self, jobs)
    if not ok then
        log.set_id(nil)
        log.error("task.error", { error = err })
    end
    for _, j in ipairs(jobs) do
        if not j.outcome then
            -- A Lua error left it unfinished (or a task outside a step).
            log.set_id(j.task.id)
            j.outcome = self:fail(j.task, "worker error: " .. tostring(
                ok and "task left without an outcome" or err), true)
        end
        if j.dir then
            sys.rmtree(j.dir)
        end
    end
    thread.set(self.key .. ".task", nil)
    thread.set(self.key .. ".wps", nil)
    self.done = self.done + #tasks
    log.set_id(nil)
    return jobs
end


-- Device faults ----------------------------------------------------------------

-- Tells the heartbeat thread the worker's health and asks it to beat now.
local function report_health(self, err)
    thread.set(self.key .. ".healthy", self.device_faults == 0 and "1" or "0")
    thread.set(self.key .. ".device_faults", tostring(self.device_faults))
    if err then
        thread.set(self.key .. ".last_device_error", err)
    end
    thread.set(self.key .. ".beat", "1")
end


--- The model failed on the device (out of memory after halving the batch,
-- a lost device, a kernel fault): no task is to blame. Every held task
-- goes back uncharged, the worker reports itself unhealthy and stops
-- claiming (`drain` waits out the backoff, or exits after
-- max_device_faults in a row). @return "device_fault"
function _M.device_fault(self, err, tasks)
    self.device_faults = self.device_faults + 1
    self.fault_pending = true
    err = tostring(err)
    log.set_id(nil)
    log.error("worker.device_fault", { error = err,
                                       faults = self.device_faults,
                                       max = self.cfg.max_device_faults,
                                       tasks = #tasks })
    report_health(self, err)
    for _, task in ipairs(tasks) do
        log.set_id(task.id)
        self:release(task, "device fault")
    end
    log.set_id(nil)
    return "device_fault"
end


--- A model run succeeded: the device works, the fault count restarts.
function _M.device_ok(self)
    if self.device_faults > 0 then
        self.device_faults = 0
        log.info("worker.device_recovered", {})
        report_health(self)
    end
end


-- After a device fault: false when the worker must exit (too many in a
-- row, or a stop signal during the backoff), else true once the backoff
-- (doubled for each fault in a row) has passed.
local function after_device_fault(self)
    self.fault_pending = nil
    local cfg = self.cfg
    if self.device_faults >= cfg.max_device_faults then
        log.error("worker.device_faults_exhausted", {
            faults = self.device_faults, exit_status = _M.EXIT_DEVICE })
        self.exit_status = _M.EXIT_DEVICE
        self.finished = true
        return false
    end
    local d = math.min(cfg.device_fault_backoff_max,
                       cfg.device_fault_backoff
                       * 2 ^ (self.device_faults - 1))
    log.warn("worker.device_backoff", { wait_s = string.format("%.3f", d) })
    self:nap_idle(d)
    return not self:stopping()
end


-- The loop -------------------------------------------------------------------

--- Reaps at most every reap_interval seconds.
function _M.maybe_reap(self)
    local now = sys.now()
    if now - self.last_reap < self.cfg.reap_interval then
        return
    end
    self.last_reap = now
    local ok, n_requeued, n_dead = pcall(self.q.reap, self.q)
    if not ok or n_requeued == nil then
        log.warn("worker.reap_failed", { error = ok and n_dead or n_requeued })
    elseif (tonumber(n_requeued) or 0) + (tonumber(n_dead) or 0) > 0 then
        log.info("worker.reaped", { requeued = n_requeued, dead = n_dead })
    end
end


-- The next tasks: those claimed along with the last completion (no-op
-- worker), else up to batch_tasks from the queue.
-- @return list (empty: nothing to claim) | nil, err
local function claim_next(self)
    local tasks = self.next_tasks
    self.next_tasks = nil
    if tasks and #tasks > 0 then
        return tasks
    end
    if self.cfg.batch_tasks > 1 then
        return self.q:claim_many(self.cfg.id, self.cfg.batch_tasks)
    end
    local task, err = self.q:claim(self.cfg.id)
    if err then
        return nil, err
    end
    return { task }
end


--- Claims and processes until the queue is empty. Returns false when the
-- loop must end (stop signal, --once after one task or batch, or too many
-- device faults: then `exit_status` is set).
function _M.drain(self)
    self.last_drain = sys.now()
    while true do
        if self:stopping() then
            -- Claimed along with the last completion: hand them back.
            for _, t in ipairs(self.next_tasks or {}) do
                self.q:release(t.id, t.claim)
            end
            self.next_tasks = nil
            return false
        end
        self:maybe_reap()
        local tasks, err = claim_next(self)
        if not tasks or #tasks == 0 then
            if err then
                log.warn("worker.claim_failed", { error = err })
            end
            return true
        end
        if self.cfg.batch_tasks > 1 then
            self:process_batch(tasks)
        else
            self:process(tasks[1])
        end
        self.last_drain = sys.now()
        if self.fault_pending and not after_device_fault(self) then
            return false
        end
        if self.cfg.once then
            self.finished = true
            return false
        end
    end
end


--- Connects, loads the model, starts the heartbeat thread.
-- @return true | nil, err
function _M.start(self)
    local cfg = self.cfg
    sys.trap({ "TERM", "INT" })
    math.randomseed(sys.getpid() * 1000 + math.floor(sys.time() * 1000)
                    % 1000003)
    -- A URL that cannot match the server (TLS against a plain port, a CA
    -- that does not sign its certificate) stops the start; an outage does
    -- not: the loop below retries until Redis comes back.
    local ok, perr, kind = redis.probe(cfg.redis_url)
    if not ok and kind == "config" then
        return nil, "redis: " .. perr
    elseif not ok then
        log.warn("worker.redis_unreachable", { error = perr })
    end
    -- The plugins first: a worker must not run tasks under a policy it
    -- could not load (the same loader and checks as serve's reloads).
    local policy = require "wtt.policy"
    local pok, plerr = policy.reload()
    if not pok then
        return nil, "plugins: " .. tostring(plerr)
    end
    log.info("worker.plugins", { versions = json.encode(
        policy.current().versions) })
    local r, err = redis.connect(cfg.redis_url, { lazy = true })
    if not r then
        return nil, err
    end
    self.r = r
    self.q = require("wtt.queue").new(r, { prefix = cfg.prefix })
    local warning = require("wtt.queue").eviction_warning(r)
    if warning then
        log.warn("redis.eviction_policy", { warning = warning })
    end
    local device = "none"
    if not cfg.noop then
        local model = require "wtt.model"
        local t0 = sys.now()
        local m
        m, err = model.load(nil, {
            device = cfg.device, threads = cfg.threads,
            fault_after = cfg.test_device_fault_after })
        if not m then
            return nil, "model: " .. tostring(err)
        end
        self.model = m
        device = m.device
        log.info("worker.model_loaded", { device = device,
                                          load_s = string.format(
                                              "%.3f", sys.now() - t0),
                                          batch_items = m.batch_items
                                                        and m:batch_items() })
    end
    self.device = device
    for _, k in ipairs({ ".task", ".wps", ".stale", ".stop", ".beat",
                         ".last_device_error" }) do
        thread.set(self.key .. k, nil)
    end
    report_health(self)
    local hb
    hb, err = thread.start(runtime.lua_dir .. "/wtt/heartbeat.lua",
                           json.encode({
        redis_url = cfg.redis_url, prefix = cfg.prefix,
        worker_id = cfg.id, key = self.key, interval = cfg.heartbeat,
        ttl = math.max(cfg.worker_ttl, 3 * cfg.heartbeat),
        info = { host = hostname(), pid = sys.getpid(), device = device,
                 started = math.floor(sys.time() * 1000) },   -- ms
    }))
    if not hb then
        return nil, err
    end
    self.hb = hb
    local shown = cfg.redis_url:gsub("//[^@/]*@", "//***@")
    log.info("worker.started", { worker = cfg.id, redis = shown,
                                 web = cfg.web_url,
                                 device = device, noop = cfg.noop,
                                 once = cfg.once,
                                 batch_tasks = cfg.batch_tasks })
    return true
end


function _M.stop(self)
    thread.set(self.key .. ".stop", "1")
    if self.hb then
        local ok, err = self.hb:join(math.max(2, 2 * self.cfg.heartbeat))
        if not ok then
            log.warn("worker.heartbeat_join", { error = err })
        end
    end
    if self.model and self.model.core and self.model.core.close then
        self.model.core:close()
    end
    if self.r then
        self.r:close()
    end
    log.info("worker.stopped", { tasks = self.done })
end


--- Runs until a stop signal (or one task with --once). @return exit status
function _M.run(self)
    local ok, err = self:start()
    if not ok then
        log.error("worker.start_failed", { error = err })
        self:stop()
        return 1
    end
    local cfg = self.cfg
    local tick = math.max(0.01, math.min(0.25, cfg.poll))
    local channel = self.q:channel("task:new")
    local function wake()
        if not self:drain() then
            return false
        end
    end
    local sub_failures = 0
    local function ready()
        sub_failures = 0
        return wake()
    end
    while not self:stopping() and not self.finished do
        local sok, serr = self.r:subscribe({ channel }, {}, function()
            return wake()
        end, {
            tick = tick,
            on_ready = ready,
            on_reconnect = ready,
            on_tick = function()
                if self:stopping() then
                    return false
                end
                if sys.now() - self.last_drain >= cfg.poll then
                    return wake()
                end
            end,
        })
        if not sok then
            sub_failures = sub_failures + 1
            log.warn("worker.subscribe_failed", { error = serr,
                                                  failures = sub_failures })
            -- The poll fallback while Redis pub/sub is unavailable, backing
            -- off to one try per poll interval.
            if wake() == false then
                break
            end
            self:nap_idle(math.min(cfg.poll, 0.25 * 2 ^ (sub_failures - 1)))
        end
    end
    self:stopping()
    self:stop()
    return self.exit_status or 0
end


function _M.nap_idle(self, d)
    local deadline = sys.now() + d
    while sys.now() < deadline and not self:stopping() do
        sys.sleep(0.05)
    end
end


return _M
