--- A batch of tasks for wtt.worker (`--batch-tasks` N > 1): downloads
-- one after another, every task's windows through one model call, then
-- delivery task by task and one complete for all; each task keeps its own
-- claim, progress and outcome. `worker` holds the methods wtt.worker puts
-- on every worker (handle_batch, process_batch).

local log = require "wtt.log"
local metrics = require "wtt.metrics"
local sys = require "wtt.sys"
local thread = require "wtt.thread"
local steps = require "wtt.worker.steps"

local held_text = steps.held_text

local _M = {}

--- Worker methods; wtt.worker copies them onto its module table, which is
-- every worker's method table.
local worker = {}
_M.worker = worker


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
function worker.handle_batch(self, jobs)
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
            -- This machine's fault, not the task's (docs/reliability.md
            -- W9): every task of the batch goes back, this one included.
            local held = {}
            for _, k in ipairs(jobs) do
                if not k.outcome then
                    held[#held + 1] = k.task
                end
            end
            local outcome = self:local_failure("cannot make a temp dir: "
                                               .. tostring(derr), held)
            for _, k in ipairs(jobs) do
                k.outcome = k.outcome or outcome
            end
            hold(self, jobs)
            return
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
                j.opts = self:task_opts(j.task)
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
            self:local_ok()
            self:log_completed(j)
        end
    end
end


--- Runs a batch of claimed tasks. @return the jobs ({ task, outcome })
function worker.process_batch(self, tasks)
    self.task_started = sys.now()
    local jobs = {}
    for i, task in ipairs(tasks) do
        jobs[i] = { task = task }
    end
    thread.set(self.key .. ".task", held_text(tasks))
    self:arm_task()
    local ok, err = pcall(self.handle_batch, self, jobs)
    self:disarm_task()
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
    metrics.observe("wtt_worker_batch_tasks", #tasks)
    local spent = sys.now() - self.task_started
    for _, j in ipairs(jobs) do
        metrics.inc("wtt_worker_tasks_total", 1, tostring(j.outcome))
        metrics.observe("wtt_worker_task_run_seconds", spent)
    end
    thread.set(self.key .. ".task", nil)
    thread.set(self.key .. ".wps", nil)
    self.done = self.done + #tasks
    log.set_id(nil)
    return jobs
end


return _M
