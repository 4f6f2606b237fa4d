--- Stop handling for wtt.worker: SIGTERM/SIGINT stop claiming, a running
-- task gets `grace` seconds (or until a second signal) before it is
-- cancelled, and the worker's sleeps end early when either happens.
-- `worker` holds the methods wtt.worker puts on every worker (stopping,
-- past_grace, nap, nap_idle).

local log = require "wtt.log"
local notify = require "wtt.notify"
local sys = require "wtt.sys"

local _M = {}

--- Worker methods; wtt.worker copies them onto its module table, which is
-- every worker's method table.
local worker = {}
_M.worker = worker


--- True once SIGTERM or SIGINT arrived (stop claiming).
function worker.stopping(self)
    if self.stop_at then
        return true
    end
    if sys.signaled("TERM") or sys.signaled("INT") then
        self.stop_at = sys.now()
        notify.stopping()
        log.info("worker.stopping", { grace_s = self.cfg.grace,
                                      task = self.task and self.task.id })
        return true
    end
    return false
end


--- True when a running task must give up: the grace period after a stop
-- signal has run out, or a second SIGTERM/SIGINT came (impatient operator).
function worker.past_grace(self)
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
function worker.nap(self, d)
    local deadline = sys.now() + d
    while sys.now() < deadline do
        if self:past_grace() then
            return false
        end
        sys.sleep(math.min(0.05, deadline - sys.now()))
    end
    return not self:past_grace()
end


--- Sleeps `d` seconds in small steps, or until a stop signal.
function worker.nap_idle(self, d)
    local deadline = sys.now() + d
    while sys.now() < deadline and not self:stopping() do
        sys.sleep(0.05)
    end
end


return _M
