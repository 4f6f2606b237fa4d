--- Faults of the worker's own for wtt.worker (docs/worker.md "Device
-- faults" and "Local failures", docs/reliability.md W9): a model run that
-- fails on the device, or a task that fails on this machine's disk (no
-- temp dir, result files that cannot be written), sends every held task
-- back uncharged, marks the worker unhealthy and stops claiming for a
-- backoff; `max_device_faults` device faults in a row end the worker with
-- EXIT_DEVICE, `max_local_failures` local failures in a row with
-- EXIT_LOCAL, so a broken worker hands the queue back instead of draining
-- it into dead letters. `worker` holds the methods wtt.worker puts on every
-- worker (device_fault, device_ok, local_failure, local_ok);
-- `report_health`, `after_device_fault` and `local_error` serve its start,
-- its loop and its steps.

local log = require "wtt.log"
local metrics = require "wtt.metrics"
local thread = require "wtt.thread"

local _M = {}

--- Worker methods; wtt.worker copies them onto its module table, which is
-- every worker's method table.
local worker = {}
_M.worker = worker

--- Exit status of `run` after `max_device_faults` device faults in a row
-- (re-exported as wtt.worker.EXIT_DEVICE).
_M.EXIT_DEVICE = 3

--- Exit status of `run` after `max_local_failures` local failures in a
-- row (re-exported as wtt.worker.EXIT_LOCAL).
_M.EXIT_LOCAL = 4

-- OS errors of this machine's disk: whatever task runs here meets them.
-- A task's own bad input never produces these from a write into the
-- worker's own temp dir.
local LOCAL_ERRORS = {
    "No space left on device", "Read-only file system", "Permission denied",
    "Input/output error", "Disk quota exceeded", "No such file or directory",
    "Too many open files", "Stale file handle",
}


--- True when `err` (a write into the task's temp dir failing) is the
-- machine's fault, not the task's.
function _M.local_error(err)
    err = tostring(err)
    for _, e in ipairs(LOCAL_ERRORS) do
        if err:find(e, 1, true) then
            return true
        end
    end
    return false
end


-- Tells the heartbeat thread the worker's health and asks it to beat now.
function _M.report_health(self, err)
    thread.set(self.key .. ".healthy", (self.device_faults == 0
        and (self.local_failures or 0) == 0) and "1" or "0")
    thread.set(self.key .. ".device_faults", tostring(self.device_faults))
    if err then
        thread.set(self.key .. ".last_device_error", err)
    end
    thread.set(self.key .. ".beat", "1")
end
local report_health = _M.report_health


--- The model failed on the device (out of memory after halving the batch,
-- a lost device, a kernel fault): no task is to blame. Every held task
-- goes back uncharged, the worker reports itself unhealthy and stops
-- claiming (`drain` waits out the backoff, or exits after
-- max_device_faults in a row). @return "device_fault"
function worker.device_fault(self, err, tasks)
    self.device_faults = self.device_faults + 1
    self.fault_pending = true
    err = tostring(err)
    log.set_id(nil)
    metrics.inc("wtt_worker_device_faults_total")
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
function worker.device_ok(self)
    if self.device_faults > 0 then
        self.device_faults = 0
        log.info("worker.device_recovered", {})
        report_health(self)
    end
end


--- A task failed on this machine (its temp dir or result files could not
-- be made, `err` says why): the task is not to blame, so it and every
-- other held task go back uncharged, the worker reports itself unhealthy
-- and stops claiming for a backoff (`drain`), or exits after
-- max_local_failures in a row. @return "local_failure"
function worker.local_failure(self, err, tasks)
    self.local_failures = (self.local_failures or 0) + 1
    self.fault_pending = true
    err = tostring(err)
    log.set_id(nil)
    metrics.inc("wtt_worker_local_failures_total")
    log.error("worker.local_failure", { error = err,
                                        failures = self.local_failures,
                                        max = self.cfg.max_local_failures,
                                        tasks = #tasks })
    report_health(self, err)
    for _, task in ipairs(tasks) do
        log.set_id(task.id)
        self:release(task, "local failure")
    end
    log.set_id(nil)
    return "local_failure"
end


--- A task was completed: this machine's disk works, the count restarts.
function worker.local_ok(self)
    if (self.local_failures or 0) > 0 then
        self.local_failures = 0
        log.info("worker.local_recovered", {})
        report_health(self)
    end
end


-- After a device fault or a local failure: false when the worker must
-- exit (too many in a row, or a stop signal during the backoff), else
-- true once the backoff (doubled for each fault in a row) has passed.
function _M.after_device_fault(self)
    self.fault_pending = nil
    local cfg = self.cfg
    if self.device_faults >= cfg.max_device_faults then
        log.error("worker.device_faults_exhausted", {
            faults = self.device_faults, exit_status = _M.EXIT_DEVICE })
        self.exit_status = _M.EXIT_DEVICE
        self.finished = true
        return false
    end
    local n_local = self.local_failures or 0
    if n_local >= cfg.max_local_failures then
        log.error("worker.local_failures_exhausted", {
            failures = n_local, exit_status = _M.EXIT_LOCAL })
        self.exit_status = _M.EXIT_LOCAL
        self.finished = true
        return false
    end
    local d = math.min(cfg.device_fault_backoff_max,
                       cfg.device_fault_backoff
                       * 2 ^ (math.max(self.device_faults, n_local) - 1))
    log.warn("worker.device_backoff", { wait_s = string.format("%.3f", d) })
    self:nap_idle(d)
    return not self:stopping()
end


return _M
