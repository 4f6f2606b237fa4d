--- One task at a time for wtt.worker (`batch_tasks` 1): the task's
-- steps in order (fetch, inference with progress, delivery, complete),
-- or the no-op worker's complete-and-claim, inside its own temp dir and
-- log id. `worker` holds the methods wtt.worker puts on every worker
-- (handle, process).

local log = require "wtt.log"
local metrics = require "wtt.metrics"
local sys = require "wtt.sys"
local thread = require "wtt.thread"
local steps = require "wtt.worker.steps"

local _M = {}

--- Worker methods; wtt.worker copies them onto its module table, which is
-- every worker's method table.
local worker = {}
_M.worker = worker


-- The task body; @return outcome string.
function worker.handle(self, task, dir)
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
    job.opts = self:task_opts(task)
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
    self:local_ok()
    self:log_completed(job)
    return "completed"
end


function worker.process(self, task)
    self.task = task
    self.task_started = sys.now()
    log.set_id(task.id)
    if not self.cfg.noop then
        log.info("task.claimed", { claim = task.claim,
                                   attempts = task.attempts })
    end
    thread.set(self.key .. ".task", steps.held_text({ task }))
    local dir, derr
    if not self.cfg.noop then
        dir, derr = sys.mkdtemp("wtt-task-")
    end
    local ok, outcome
    if self.cfg.noop or dir then
        if dir then
            self:arm_task()
        end
        ok, outcome = pcall(self.handle, self, task, dir)
        if dir then
            self:disarm_task()
        end
    else
        -- This machine's fault, not the task's (docs/reliability.md W9).
        ok, outcome = true, self:local_failure("cannot make a temp dir: "
                                               .. tostring(derr), { task })
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
    metrics.inc("wtt_worker_tasks_total", 1, tostring(outcome))
    metrics.observe("wtt_worker_task_run_seconds",
                    sys.now() - self.task_started)
    self.done = self.done + 1
    self.task = nil
    log.set_id(nil)
    return outcome
end


return _M
