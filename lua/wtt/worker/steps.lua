--- The steps of one task for wtt.worker, run alike whether the task runs
-- alone or in a batch: its audio fetched, its progress published window by
-- window (and the inference cancelled when the claim goes stale or the
-- grace runs out), and how it ends (released, failed, lost, completed).
-- `worker` holds the methods wtt.worker puts on every worker; `held_text`,
-- `engine_opts` and `options_of` serve the other parts.

local log = require "wtt.log"
local metrics = require "wtt.metrics"
local sys = require "wtt.sys"
local thread = require "wtt.thread"
local over_limit = require("wtt.worker.limits").over_limit

local _M = {}

--- Worker methods; wtt.worker copies them onto its module table, which is
-- every worker's method table.
local worker = {}
_M.worker = worker

-- payload.options the engine reads (the rest are MIDI options or ignored).
local ENGINE_OPTIONS = {
    "onset_threshold", "frame_threshold", "min_note_ms", "min_note_frames",
    "min_freq", "max_freq", "melodia", "infer_onsets", "full_tail",
    "numpy_ties", "nonfinite", "mode", "rules",
}


-- Errors that no retry will fix: the audio's (see core/bind/wtt_audio.c)
-- and a decoding mode or rule the engine does not know (options that did
-- not come through the API's checks; core/bind/wtt_model.c).
local function bad_audio(err)
    return ((err:match("^open failed") or err:match("^decode failed")
             or err:match("^probe failed") or err:match("unsupported format"))
            and not err:find("out of memory", 1, true))
           or err:match("^notes failed: unknown mode")
           or err:match("^notes failed: unknown rule")
           or err:match("^notes failed: rules need")
           or over_limit(err)
end


-- "<id> <claim>" of each task, separated by spaces: what the heartbeat
-- thread keeps alive (`.task`) and reports stale (`.stale`).
function _M.held_text(tasks)
    local parts = {}
    for _, t in ipairs(tasks) do
        parts[#parts + 1] = t.id .. " " .. tostring(t.claim)
    end
    return table.concat(parts, " ")
end


--- The engine options of `task` under this worker's limits.
function worker.task_opts(self, task)
    local opts = _M.engine_opts(_M.options_of(task))
    if (self.cfg.max_audio_s or 0) > 0 then
        opts.max_duration = self.cfg.max_audio_s
    end
    return opts
end


--- True when the heartbeat thread found `task`'s claim stale (reaped).
function worker.stale(self, task)
    local s = thread.get(self.key .. ".stale")
    return s ~= nil and (" " .. s .. " "):find(
        " " .. task.id .. " " .. tostring(task.claim) .. " ", 1, true) ~= nil
end


function worker.release(self, task, why)
    local ok, err = self.q:release(task.id, task.claim)
    if ok then
        log.info("task.released", { reason = why })
        return "released"
    end
    log.warn("task.release_failed", { reason = why, error = err })
    return err == "stale" and "lost" or "release_failed"
end


function worker.fail(self, task, err, retryable)
    local how, ferr = self.q:fail(task.id, task.claim, err, retryable)
    if how then
        if how == "dead" then
            metrics.inc("wtt_tasks_dead_lettered_total", 1, "error")
        else
            metrics.inc("wtt_tasks_retried_total", 1, "error")
        end
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


function worker.lost(self, why)
    log.warn("task.lost", { reason = why })
    return "lost"
end


-- The engine options of a task's payload.options.
function _M.engine_opts(options)
    local opts = {}
    for _, k in ipairs(ENGINE_OPTIONS) do
        if options[k] ~= nil then
            opts[k] = options[k]
        end
    end
    return opts
end


-- The task's payload.options, or an empty table.
function _M.options_of(task)
    local options = task.payload.options
    return type(options) == "table" and options or {}
end


-- The on_window callback of `job` (one task under inference), in a batch
-- `jobs` whose inference started at `started`: publishes the task's
-- progress, reports the batch's windows per second to the heartbeat, and
-- cancels the task (returns false, `job.cancel` says why) when its claim
-- went stale or the shutdown grace ran out.
function worker.on_window(self, job, jobs, started)
    local cfg = self.cfg
    local task = job.task
    return function(done, total)
        if cfg.test_window_sleep > 0 then
            sys.sleep(cfg.test_window_sleep)
        end
        metrics.inc("wtt_worker_windows_total", done - (job.windows or 0))
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
        local over = self:over_limits(started)
        if over then
            job.cancel, job.limit = "limit", over
            return false
        end
        return true
    end
end


-- The outcome of a task whose inference failed with `err`.
function worker.not_inferred(self, job, err)
    if job.cancel == "lost" then
        return self:lost("claim reaped during inference")
    elseif job.cancel == "shutdown" then
        return self:release(job.task, "shutdown during inference")
    elseif job.cancel == "limit" then
        return self:fail(job.task, job.limit, false)
    end
    return self:fail(job.task, err, not bad_audio(err))
end


--- Downloads `job.task`'s audio into `job.dir`; sets `job.audio`, or
-- `job.outcome` when the task ends here.
function worker.fetch(self, job)
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
    local poison = self.cfg.test_crash_on
    if poison and job.task.payload.audio_url:sub(-#poison) == poison then
        -- Tests only (WTT_WORKER_TEST_CRASH_ON): a file that crashes its
        -- decoder, killing the process with the task in hand.
        sys.kill(sys.getpid(), "KILL")
    end
    local spin = self.cfg.test_spin_on
    if spin and job.task.payload.audio_url:sub(-#spin) == spin then
        -- Tests only (WTT_WORKER_TEST_SPIN_ON): a decoder stuck in a loop,
        -- burning CPU between windows, until the kernel's RLIMIT_CPU ends
        -- the process.
        local n = 0
        while true do
            n = n + 1
        end
    end
end


function worker.log_completed(self, job)
    log.info("task.completed", { n_notes = job.result.n_notes,
                                 total_s = string.format(
                                     "%.3f", sys.now() - self.task_started) })
end


return _M
