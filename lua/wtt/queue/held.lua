--- The transitions of a held claim for wtt.queue (heartbeat, progress,
-- complete, fail, release): each fenced on its claim token. `queue` holds
-- the methods wtt.queue puts on every queue; `HELD` the entries they are
-- made from, for complete_and_claim (lua/wtt/queue/complete.lua).

local json = require "cjson.safe"
local internal = require "wtt.queue.internal"
local S = require("wtt.queue.scripts").scripts
local random = require("wtt.jitter").random

local error = error
local pairs = pairs
local tostring = tostring
local tonumber = tonumber
local begin = internal.begin
local run = internal.run

local _M = {}

--- Queue methods; wtt.queue copies them onto its queue method table.
local queue = {}
_M.queue = queue


-- One entry per transition, and one function below makes the public
-- method of every entry, so they share the preamble (id and claim token
-- checked, the clock read unless `no_clock`) and the reply handling
-- (refusal codes to `nil, err`). An entry gives its script's keys and
-- arguments (`fn` names the public function for argument errors, `t` is
-- the time, `...` the method's own arguments), whether the task's
-- remembered attempts end with the call (`forget`), and its result from
-- the reply (`result`; default true).
local HELD = {}
_M.HELD = HELD

--- Extends the claim's deadline.
-- @return true | nil, "stale" | nil, err
HELD.heartbeat = {
    keys = function(self, id)
        return { self.k.time, self.k.task_prefix .. id }
    end,
    args = function(_, _, id, claim, t)
        return { id, claim, t }
    end,
}

--- Records progress (done/total windows) and extends the deadline.
-- q:progress(id, claim, done, total)
-- @return true | nil, "stale" | nil, err
HELD.progress = {
    keys = function(self, id)
        return { self.k.task_prefix .. id, self.k.time }
    end,
    args = function(self, _, id, claim, t, done, total)
        return { id, claim, t, tonumber(done) or 0, tonumber(total) or 0,
                 self.prefix .. "task:progress:" .. id }
    end,
}

--- Completes a task with `result` (a table, stored as JSON).
-- q:complete(id, claim, result)
-- @return true | nil, "stale" | nil, "not processing" | nil, err
HELD.complete = {
    keys = function(self, id)
        local k = self.k
        return { k.processing, k.time, k.task_prefix .. id, k.results }
    end,
    args = function(self, fn, id, claim, t, result)
        local text, jerr = json.encode(result or {})
        if not text then
            error("bad argument #3 to '" .. fn .. "' (" .. jerr .. ")", 3)
        end
        return { id, claim, t, text, self:policy().final_ttl_s(),
                 self.ch.completed }
    end,
    forget = true,
}

--- Fails a run: retried later (policy) or dead-lettered.
-- q:fail(id, claim, err_text, retryable); retryable false: never retry
-- @return "retry" | "dead" | nil, "stale" | nil, err
HELD.fail = {
    keys = function(self, id)
        local k = self.k
        return { k.processing, k.time, k.task_prefix .. id, k.queue,
                 k.priority, k.failed, k.results, k.bulk }
    end,
    args = function(self, _, id, claim, t, err_text, retryable)
        err_text = tostring(err_text or "failed")
        local p = self:policy()
        local attempts = self.attempts[id]
        if not attempts then
            attempts = tonumber(self.r:call("HGET", self.k.task_prefix .. id,
                                            "attempts")) or 1
        end
        local retry = p.retryable(err_text, retryable) and "1" or "0"
        return { id, claim, t, err_text, retry,
                 p.backoff_ms(attempts, random()), p.dead_ttl_s(),
                 self.ch.failed }
    end,
    forget = true,
    result = function(res)
        return res[2]
    end,
}

--- Hands a claimed task back to the front of the queue (shutdown); the
-- attempt is not charged and the claim is invalidated.
-- q:release(id, claim)
-- @return true | nil, "stale" | nil, err
HELD.release = {
    no_clock = true,
    keys = function(self, id)
        local k = self.k
        return { k.processing, k.time, k.task_prefix .. id, k.queue,
                 k.priority, k.bulk }
    end,
    args = function(self, _, id, claim)
        return { id, claim, self.ch.new }
    end,
    forget = true,
}

for name, op in pairs(HELD) do
    local script = S[name]
    queue[name] = function(self, id, claim, ...)
        local t, err
        claim, t, err = begin(self, name, id, claim, op.no_clock)
        if not claim then
            return nil, err
        end
        local keys = op.keys(self, id)
        local args = op.args(self, name, id, claim, t, ...)
        local res
        res, err = run(self, name, script, keys, args)
        if op.forget then
            self.attempts[id] = nil
        end
        if not res then
            return nil, err
        end
        if op.result then
            return op.result(res)
        end
        return true
    end
end


return _M
