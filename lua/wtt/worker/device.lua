--- Device faults for wtt.worker (docs/worker.md "Device faults"): a
-- model run that fails on the device sends every held task back
-- uncharged, marks the worker unhealthy and stops claiming for a backoff;
-- `max_device_faults` in a row end the worker with EXIT_DEVICE. `worker`
-- holds the methods wtt.worker puts on every worker (device_fault,
-- device_ok); `report_health` and `after_device_fault` serve its start
-- and its loop.

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


-- Tells the heartbeat thread the worker's health and asks it to beat now.
function _M.report_health(self, err)
    thread.set(self.key .. ".healthy", self.device_faults == 0 and "1" or "0")
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


-- After a device fault: false when the worker must exit (too many in a
-- row, or a stop signal during the backoff), else true once the backoff
-- (doubled for each fault in a row) has passed.
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
    local d = math.min(cfg.device_fault_backoff_max,
                       cfg.device_fault_backoff
                       * 2 ^ (self.device_faults - 1))
    log.warn("worker.device_backoff", { wait_s = string.format("%.3f", d) })
    self:nap_idle(d)
    return not self:stopping()
end


return _M
