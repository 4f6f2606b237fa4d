--- The service loop of wtt.worker: SUBSCRIBE to `task:new` with a poll
-- fallback, and on every wake reap expired claims and claim tasks (one,
-- or a batch) until the queue is empty, a stop signal comes, `--once` is
-- done, or device faults end the worker. `worker` holds the methods
-- wtt.worker puts on every worker (maybe_reap, drain, run).

local log = require "wtt.log"
local notify = require "wtt.notify"
local sys = require "wtt.sys"
local after_device_fault = require("wtt.worker.device").after_device_fault

local _M = {}

--- Worker methods; wtt.worker copies them onto its module table, which is
-- every worker's method table.
local worker = {}
_M.worker = worker


--- Reaps at most every reap_interval seconds.
function worker.maybe_reap(self)
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
function worker.drain(self)
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
        if self.poll_hup then
            self.poll_hup()
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


--- Runs until a stop signal (or one task with --once). @return exit status
function worker.run(self)
    local ok, err = self:start()
    if not ok then
        log.error("worker.start_failed", { error = err })
        self:stop()
        return 1
    end
    local cfg = self.cfg
    -- SIGHUP (systemctl reload) loads plugins/ now instead of at the next
    -- file check; it is looked at between tasks.
    self.poll_hup = notify.on_hup("worker", require("wtt.policy").reload)
    notify.ready("claiming")
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
                self.poll_hup()
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
            self.poll_hup()
            self:nap_idle(math.min(cfg.poll, 0.25 * 2 ^ (sub_failures - 1)))
        end
    end
    self:stopping()
    self:stop()
    return self.exit_status or 0
end


return _M
