--- Completions for wtt.queue beyond the single `complete`: several held
-- tasks completed in one script call (each fenced on its own claim), and
-- a completion pipelined with the next claim so a fast worker keeps up in
-- one round trip. `queue` holds the methods wtt.queue puts on every queue
-- (complete_and_claim, complete_many, complete_many_and_claim).

local json = require "cjson.safe"
local errors = require "queue.errors"
local internal = require "wtt.queue.internal"
local claims = require "wtt.queue.claim"
local HELD = require("wtt.queue.held").HELD
local S = require("wtt.queue.scripts").scripts

local type = type
local error = error
local ipairs = ipairs
local tostring = tostring
local clock = internal.clock
local run = internal.run
local begin = internal.begin
local reply_error = internal.reply_error
local check_id = internal.check_id
local check_claim = internal.check_claim
local check_worker = internal.check_worker
local check_count = internal.check_count
local claim_call = claims.call
local claimed = claims.claimed

local _M = {}

--- Queue methods; wtt.queue copies them onto its queue method table.
local queue = {}
_M.queue = queue


--- Completes a task and claims the next one in one round trip (two
-- scripts, one pipeline): how a worker that finishes quickly keeps up,
-- as BullMQ's moveToFinished fetches the next job.
-- @return true | nil, err (the completion); then the next task or nil
function queue.complete_and_claim(self, id, claim, result, worker_id)
    local t, err
    claim, t, err = begin(self, "complete_and_claim", id, claim)
    if not claim then
        return nil, err
    end
    local keys = HELD.complete.keys(self, id)
    local args = HELD.complete.args(self, "complete_and_claim", id, claim, t,
                                    result)
    local ckeys, cargs = claim_call(self, t, worker_id, 1)
    local res
    res, err = self.r:pipeline(function(p)
        p:eval(S.complete, keys, args)
        p:eval(S.claim, ckeys, cargs)
    end)
    self.attempts[id] = nil
    if not res then
        return nil, "could not complete: " .. tostring(err)
    end
    local cerr = reply_error("complete", res[1])
    local task
    if type(res[2]) == "table" and not reply_error("claim", res[2]) then
        task = claimed(self, res[2])[1]
    end
    return not cerr or nil, cerr, task
end


-- The complete_many script's keys and arguments at time `t` for `entries`
-- ({ id, claim, result } each); checks every entry first.
local function complete_many_call(self, fn, entries, t)
    if type(entries) ~= "table" then
        error("bad argument #1 to '" .. fn .. "' (list of entries "
              .. "expected)", 3)
    end
    local k = self.k
    local args = { t, self:policy().final_ttl_s(), self.ch.completed }
    for i, e in ipairs(entries) do
        if type(e) ~= "table" then
            error("bad argument #1 to '" .. fn .. "' (entry " .. i
                  .. ": table expected)", 3)
        end
        check_id(e.id, fn, 4)
        local text, jerr = json.encode(e.result or {})
        if not text then
            error("bad argument #1 to '" .. fn .. "' (entry " .. i .. ": "
                  .. jerr .. ")", 3)
        end
        args[#args + 1] = e.id
        args[#args + 1] = check_claim(e.claim, fn, 4)
        args[#args + 1] = text
    end
    return { k.processing, k.time, k.task_prefix, k.results }, args
end


-- The outcome of a complete_many reply for `entries`: the number
-- completed and the refusal text of each refused entry (by index).
local function completed_many(self, entries, res)
    local errs = {}
    for i, e in ipairs(entries) do
        self.attempts[e.id] = nil
        local code = res[i + 1]
        if code ~= 1 then
            errs[i] = errors.text[code] or ("error " .. tostring(code))
        end
    end
    return res[1], errs
end


-- Forgets the remembered attempts of `entries` (a completion that failed
-- as a whole).
local function forget(self, entries)
    for _, e in ipairs(entries) do
        self.attempts[e.id] = nil
    end
end


--- Completes several held tasks in one script call, each checked on its
-- own: a stale claim refuses that entry only, the others complete.
-- @param entries list of { id, claim, result = table (stored as JSON) }
-- @return n_completed, errs (errs[i]: "stale", "not processing" or
--   "bad task" for a refused entry i, nil for a completed one)
--   | nil, err (nothing completed)
function queue.complete_many(self, entries)
    if type(entries) == "table" and #entries == 0 then
        return 0, {}
    end
    local t, err = clock(self)
    if not t then
        return nil, err
    end
    local keys, args = complete_many_call(self, "complete_many", entries, t)
    local res
    res, err = run(self, "complete", S.complete_many, keys, args)
    if not res then
        forget(self, entries)
        return nil, err
    end
    return completed_many(self, entries, res)
end


--- Completes several held tasks and claims up to `n` more in one round
-- trip (two scripts, one pipeline): complete_and_claim for a worker that
-- holds a batch (`--batch-tasks`).
-- @return n_completed, errs (as complete_many), tasks (list, as
--   claim_many) | nil, err (the completion), tasks
function queue.complete_many_and_claim(self, entries, worker_id, n)
    check_worker(worker_id, "complete_many_and_claim")
    check_count(n, "complete_many_and_claim", 3)
    local t, err = clock(self)
    if not t then
        return nil, err, {}
    end
    local keys, args = complete_many_call(self, "complete_many_and_claim",
                                          entries, t)
    local ckeys, cargs = claim_call(self, t, worker_id, n)
    local res
    res, err = self.r:pipeline(function(p)
        if #entries > 0 then
            p:eval(S.complete_many, keys, args)
        end
        p:eval(S.claim, ckeys, cargs)
    end)
    if not res then
        forget(self, entries)
        return nil, "could not complete: " .. tostring(err), {}
    end
    local cres = #entries > 0 and res[1] or { 0 }
    local done, errs = nil, reply_error("complete", cres)
    if errs then
        forget(self, entries)
    else
        done, errs = completed_many(self, entries, cres)
    end
    local tasks = {}
    local last = res[#res]
    if type(last) == "table" and not reply_error("claim", last) then
        tasks = claimed(self, last)
    end
    return done, errs, tasks
end


return _M
