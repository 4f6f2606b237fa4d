--- The task queue (docs/queue.md): every transition is one Redis script
-- from lua/queue/scripts/, run by EVALSHA.
--
--     local queue = require "wtt.queue"
--     local q = queue.new(r, { prefix = os.getenv("WTT_KEY_PREFIX") })
--     q:enqueue({ id = id, audio_midi_id = row_id, payload = {...} })
--     local task = q:claim(worker_id)
--     q:progress(task.id, task.claim, 3, 10)
--     q:complete(task.id, task.claim, result)
--
-- Runtime failures return `nil, err`; refusals return `nil, "stale"`,
-- `nil, "exists"`, `nil, "not processing"`, `nil, "not found"`. Policy
-- (attempts, backoff, timeout, lane, TTLs) comes from wtt.policy unless
-- `opts.policy` gives a table with the same functions.

local redis = require "wtt.redis"
local json = require "cjson.safe"
local sys = require "wtt.sys"
local runtime = require "wtt.runtime"
local errors = require "queue.errors"
local policy_mod = require "wtt.policy"
local random = require("wtt.jitter").random

local type = type
local error = error
local pairs = pairs
local ipairs = ipairs
local tostring = tostring
local tonumber = tonumber
local setmetatable = setmetatable
local floor = math.floor
local now = sys.now

local _M = {}

local SCRIPT_DIR = runtime.lua_dir .. "/queue/scripts"

-- Work bounds per script call.
local CLAIM_DEPTH = 64       -- entries claim looks at per lane
local REAP_BATCH = 200       -- expired claims per reap call (at most)
local REAP_SCAN = 1000000    -- processing-list entries one reap call may
                             -- compare (~10 ms): a long list, smaller batches
local REAP_CALLS = 50        -- reap calls per q:reap()
local ORPHAN_SCAN = 256      -- processing-list entries (from the tail) a reap
                             -- call looks at for ids with no deadline (Q3)
local PURGE_BATCH = 500
local CLOCK_REFRESH = 1      -- seconds between Redis TIME reads
_M.REAP_BATCH, _M.REAP_SCAN, _M.REAP_CALLS = REAP_BATCH, REAP_SCAN, REAP_CALLS
_M.ORPHAN_SCAN = ORPHAN_SCAN


-- ---------------------------------------------------------------------------
-- Scripts
-- ---------------------------------------------------------------------------

-- Reads a script and expands `--- @include "name"` lines with
-- includes/<name>.lua.
local function read_script(name)
    local src = sys.read_file(SCRIPT_DIR .. "/" .. name .. ".lua")
    if not src then
        error("queue script " .. name .. " missing under " .. SCRIPT_DIR)
    end
    return (src:gsub('%-%-%- @include "([%w_]+)"', function(inc)
        local body = sys.read_file(SCRIPT_DIR .. "/includes/" .. inc .. ".lua")
        if not body then
            error("queue script include " .. inc .. " missing")
        end
        return body
    end))
end

local S = {}
for _, name in ipairs({ "enqueue-5", "claim-10", "heartbeat-2",
                        "progress-2", "complete-4", "complete_many-4",
                        "fail-8", "release-6",
                        "reap-8", "requeue-6", "purge-2", "stats-8",
                        "store-1" }) do
    S[name:match("^[%a_]+")] = redis.script(read_script(name))
end
_M.scripts = S


-- ---------------------------------------------------------------------------
-- Queue objects
-- ---------------------------------------------------------------------------

local queue = {}
local queue_mt = { __index = queue }


--- Key names under `prefix` (docs/queue.md "Keys").
function _M.keys(prefix)
    prefix = prefix or ""
    return {
        queue = prefix .. "task:queue",
        priority = prefix .. "task:queue:priority",
        bulk = prefix .. "task:queue:bulk",
        clients = prefix .. "task:clients",
        processing = prefix .. "task:processing",
        time = prefix .. "task:processing:time",
        failed = prefix .. "task:failed",
        results = prefix .. "task:results",
        results_processing = prefix .. "task:results:processing",
        task_prefix = prefix .. "task:",
        worker_prefix = prefix .. "worker:",
        workers = prefix .. "workers",
        paused = prefix .. "queue:paused",
    }
end


--- Checks that Redis will not evict queue keys under memory pressure.
-- A queue under any `maxmemory-policy` but noeviction can lose tasks
-- silently (BullMQ says the same; docs/reliability.md R5). Managed services may
-- refuse CONFIG; that is not an error.
-- @return a warning text, or nil when the policy is noeviction or unknown
function _M.eviction_warning(r)
    local res = r:call("CONFIG", "GET", "maxmemory-policy")
    if type(res) ~= "table" or type(res[2]) ~= "string" then
        return nil
    end
    if res[2] ~= "noeviction" then
        return "Redis maxmemory-policy is " .. res[2] .. ": queue keys can "
               .. "be evicted and tasks lost; set it to noeviction"
    end
    return nil
end


--- Makes a queue over a wtt.redis client.
-- @param r client from redis.connect
-- @param opts { prefix = string (default ""), policy = table (default
--   wtt.policy.current() at each call) }
-- @return queue
function _M.new(r, opts)
    if type(r) ~= "table" or type(r.eval) ~= "function" then
        error("bad argument #1 to 'new' (redis client expected)", 2)
    end
    opts = opts or {}
    local prefix = opts.prefix or ""
    if type(prefix) ~= "string" then
        error("bad option 'prefix' (string expected)", 2)
    end
    local self = setmetatable({
        r = r,
        prefix = prefix,
        k = _M.keys(prefix),
        fixed_policy = opts.policy,
        clock_offset = nil,     -- Redis ms minus local monotonic ms
        clock_at = nil,
        attempts = {},          -- id -> attempts of claims made here
    }, queue_mt)
    self.ch = {
        new = prefix .. "task:new",
        claimed = prefix .. "task:claimed",
        completed = prefix .. "task:completed",
        failed = prefix .. "task:failed",
    }
    return self
end


--- The policy in force for this queue.
function queue.policy(self)
    return self.fixed_policy or policy_mod.current()
end


--- Prefixed channel name: q:channel("task:new"),
-- q:channel("task:progress:" .. id).
function queue.channel(self, name)
    return self.prefix .. name
end


--- Redis TIME in ms: the one clock of the queue.
-- @return ms | nil, err
function queue.now_ms(self)
    local t, err = self.r:call("TIME")
    if not t then
        return nil, "could not read the time: " .. tostring(err)
    end
    local ms = tonumber(t[1]) * 1000 + floor(tonumber(t[2]) / 1000)
    local mono = now()
    self.clock_offset = ms - mono * 1000
    self.clock_at = mono
    return ms
end


-- Redis time for a script: Redis TIME read at most once a second, carried
-- forward on the local monotonic clock in between.
local function clock(self)
    local mono = now()
    if self.clock_at and mono - self.clock_at < CLOCK_REFRESH then
        return floor(mono * 1000 + self.clock_offset)
    end
    return self:now_ms()
end


-- The error in one script reply, if any: a Redis error reply ({err =
-- msg} in a pipeline) or a script's negative code.
local function reply_error(op, res)
    if type(res) ~= "table" then
        return nil
    end
    if res.err then
        return "could not " .. op .. ": " .. res.err
    end
    local code = res[1]
    if code == errors.WRONGTYPE then
        return errors.text[code] .. " " .. tostring(res[2])
    end
    if type(code) == "number" and code < 0 then
        return errors.text[code] or ("error " .. code)
    end
end


-- Runs script `s`; maps negative codes to errors.
-- @return reply | nil, err
local function run(self, op, s, keys, args)
    local res, err = self.r:eval(s, keys, args)
    if not res then
        return nil, "could not " .. op .. ": " .. tostring(err)
    end
    err = reply_error(op, res)
    if err then
        return nil, err
    end
    return res
end


-- Ids become key names and are written into the scripts' JSON events
-- without escaping, so they are plain tokens. `level` as error()'s, for
-- the public function's caller (3 when called from that function).
local function check_id(id, fn, level)
    if type(id) ~= "string" or #id > 128 or not id:match("^[%w_.:-]+$") then
        error("bad argument #1 to '" .. fn .. "' (task id expected: 1-128 "
              .. "letters, digits, _ . : -)", level or 3)
    end
end


local function check_claim(claim, fn, level)
    if type(claim) == "number" then
        return tostring(floor(claim))
    end
    if type(claim) ~= "string" then
        error("bad argument #2 to '" .. fn .. "' (claim token expected)",
              level or 3)
    end
    return claim
end


-- How every transition of a held claim starts: its id and claim token
-- checked (errors name the public function's caller) and, unless
-- `no_clock`, the clock read.
-- @return claim token, now (ms) | nil, nil, err
local function begin(self, fn, id, claim, no_clock)
    check_id(id, fn, 4)
    claim = check_claim(claim, fn, 4)
    if no_clock then
        return claim, nil
    end
    local t, err = clock(self)
    if not t then
        return nil, nil, err
    end
    return claim, t
end


--- Adds a task.
-- @param task { id, audio_midi_id, payload = { audio_url, options,
--   outputs, duration_s }, claim_floor = ms (optional: a task rebuilt
--   after Redis lost it starts its claim tokens there, see enqueue-5) }
--   The policy's `fair_share(payload)` (priority plugin) names the client
--   and its limit of waiting tasks; over it the task waits in the bulk lane.
-- @return true, lane ("default" | "priority" | "bulk") | nil, "exists"
--   | nil, err
function queue.enqueue(self, task)
    if type(task) ~= "table" then
        error("bad argument #1 to 'enqueue' (table expected)", 2)
    end
    check_id(task.id, "enqueue")
    local payload = task.payload or {}
    local text, jerr = json.encode(payload)
    if not text then
        error("bad argument #1 to 'enqueue' (payload: " .. jerr .. ")", 2)
    end
    local p = self:policy()
    local lane = p.lane(payload) == "priority" and "priority" or "default"
    local client, max_waiting
    if p.fair_share then
        client, max_waiting = p.fair_share(payload)
    end
    if type(client) ~= "string" then
        client, max_waiting = "", 0
    end
    local t, err = clock(self)
    if not t then
        return nil, err
    end
    local res
    res, err = run(self, "enqueue", S.enqueue, {
        lane == "priority" and self.k.priority or self.k.queue,
        self.k.bulk, self.k.task_prefix .. task.id, self.k.failed,
        self.k.clients,
    }, {
        task.id, tostring(task.audio_midi_id or ""), text,
        p.max_attempts(payload), p.timeout_ms(payload), t, self.ch.new,
        lane, json.encode(p.versions),
        task.claim_floor and tostring(floor(task.claim_floor)) or "",
        client, tonumber(max_waiting) or 0,
    })
    if not res then
        return nil, err
    end
    return true, res[2]
end


-- The claim script's keys and arguments at time `t`, for up to `n` tasks.
local function claim_call(self, t, worker_id, n)
    local k = self.k
    return {
        k.priority, k.queue, k.bulk, k.processing, k.time, k.task_prefix,
        k.paused, k.failed, k.results, k.clients,
    }, {
        t, worker_id, self.ch.claimed, self.ch.failed,
        self:policy().dead_ttl_s(), CLAIM_DEPTH, n or 1,
    }
end


-- The task tables of a claim reply (six fields per task), in claim order.
local function claimed(self, res)
    local tasks = {}
    for i = 1, #res - 5, 6 do
        local payload = json.decode(res[i + 3])
        if type(payload) ~= "table" then
            payload = {}
        end
        self.attempts[res[i]] = res[i + 2]
        tasks[#tasks + 1] = {
            id = res[i],
            claim = res[i + 1],
            attempts = res[i + 2],
            payload = payload,
            audio_midi_id = res[i + 4],
            timeout_ms = res[i + 5],
        }
    end
    return tasks
end


local function check_worker(worker_id, fn)
    if type(worker_id) ~= "string" then
        error("bad argument #1 to '" .. fn .. "' (worker id expected)", 3)
    end
end


local function check_count(n, fn, arg)
    if type(n) ~= "number" or n < 1 or n ~= floor(n) then
        error("bad argument #" .. arg .. " to '" .. fn .. "' (count >= 1 "
              .. "expected)", 3)
    end
end


--- Claims up to `n` tasks in one script call: what `n` claims in a row
-- would take (priority lane first, FIFO in each lane), each task with its
-- own claim token and deadline.
-- @return list of tasks { id, claim, attempts, payload, audio_midi_id,
--   timeout_ms } (empty when there is nothing to claim, or paused)
--   | nil, err
function queue.claim_many(self, worker_id, n)
    check_worker(worker_id, "claim_many")
    check_count(n, "claim_many", 2)
    local t, err = clock(self)
    if not t then
        return nil, err
    end
    local keys, args = claim_call(self, t, worker_id, n)
    local res
    res, err = run(self, "claim", S.claim, keys, args)
    if not res then
        return nil, err
    end
    return claimed(self, res)
end


--- Claims the next task.
-- @return task { id, claim, attempts, payload, audio_midi_id, timeout_ms }
--   | nil (nothing to claim, or paused) | nil, err
function queue.claim(self, worker_id)
    check_worker(worker_id, "claim")
    local t, err = clock(self)
    if not t then
        return nil, err
    end
    local keys, args = claim_call(self, t, worker_id, 1)
    local res
    res, err = run(self, "claim", S.claim, keys, args)
    if not res then
        return nil, err
    end
    return claimed(self, res)[1]
end


-- The transitions of a held claim (heartbeat, progress, complete, fail,
-- release): one entry each, and one function below makes the public
-- method of every entry, so they share the preamble (id and claim token
-- checked, the clock read unless `no_clock`) and the reply handling
-- (refusal codes to `nil, err`). An entry gives its script's keys and
-- arguments (`fn` names the public function for argument errors, `t` is
-- the time, `...` the method's own arguments), whether the task's
-- remembered attempts end with the call (`forget`), and its result from
-- the reply (`result`; default true).
local HELD = {}

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
        for _, e in ipairs(entries) do
            self.attempts[e.id] = nil
        end
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
        for _, e in ipairs(entries) do
            self.attempts[e.id] = nil
        end
        return nil, "could not complete: " .. tostring(err), {}
    end
    local cres = #entries > 0 and res[1] or { 0 }
    local done, errs = nil, reply_error("complete", cres)
    if errs then
        for _, e in ipairs(entries) do
            self.attempts[e.id] = nil
        end
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


--- One reap call: recovers at most REAP_BATCH claims past their deadline,
-- fewer when the processing list is long (the script keeps its list scans
-- under REAP_SCAN entries, so no call holds Redis for long). Ids in the
-- processing list with no deadline (an older version's crash between move
-- and claim record, a hand edit: reliability Q3) get one of now + their
-- timeout and are recovered when it passes (reap-8).
-- @return n_requeued, n_dead, more (true when the batch was full),
--   n_adopted (orphans given a deadline) | nil, err
function queue.reap_batch(self)
    local k = self.k
    local t, err = clock(self)
    if not t then
        return nil, err
    end
    local p = self:policy()
    local res
    res, err = run(self, "reap", S.reap, {
        k.processing, k.time, k.queue, k.priority, k.failed,
        k.task_prefix, k.results, k.bulk,
    }, { t, REAP_BATCH, p.dead_ttl_s(), self.ch.failed,
         self.ch.new, REAP_SCAN, p.timeout_ms({}),
         ORPHAN_SCAN })
    if not res then
        return nil, err
    end
    return res[1], res[2], res[3] == 1, res[4] or 0
end


--- Recovers claims past their deadline (requeue or dead letter), in up to
-- REAP_CALLS short script calls; a larger backlog is left for the next
-- reap. Safe to run from every process at once.
-- @return n_requeued, n_dead, n_adopted | nil, err
function queue.reap(self)
    local requeued, dead, adopted = 0, 0, 0
    for _ = 1, REAP_CALLS do
        local n, d, more, a = self:reap_batch()
        if not n then
            return nil, d
        end
        requeued, dead, adopted = requeued + n, dead + d, adopted + a
        if not more then
            break
        end
    end
    return requeued, dead, adopted
end


-- An HGETALL reply (field, value, field, value...) as a table.
local function hash_table(list)
    local h = {}
    for i = 1, #list, 2 do
        h[list[i]] = list[i + 1]
    end
    return h
end


--- The task hash as a table of strings, or nil.
function queue.get(self, id)
    check_id(id, "get")
    local list, err = self.r:call("HGETALL", self.k.task_prefix .. id)
    if not list then
        return nil, err
    end
    if #list == 0 then
        return nil
    end
    return hash_table(list)
end


--- Whether the task hash exists (for the reconciler).
-- @return bool | nil, err
function queue.has_task(self, id)
    check_id(id, "has_task")
    local n, err = self.r:call("EXISTS", self.k.task_prefix .. id)
    if not n then
        return nil, err
    end
    return n == 1
end


--- Depths: { pending, processing, failed, results, paused, workers }.
-- @return table | nil, err
function queue.stats(self)
    local t, err = clock(self)
    if not t then
        return nil, err
    end
    local k = self.k
    local res
    res, err = run(self, "stats", S.stats, {
        k.queue, k.priority, k.processing, k.failed, k.results, k.paused,
        k.workers, k.bulk,
    }, { t })
    if not res then
        return nil, err
    end
    return {
        pending = res[1], processing = res[2], failed = res[3],
        results = res[4], paused = res[5] == 1, workers = res[6],
    }
end


--- Ids of dead letters, oldest first.
-- @return list | nil, err
function queue.dead(self, offset, count)
    offset = offset or 0
    count = count or 100
    return self.r:call("LRANGE", self.k.failed, offset, offset + count - 1)
end


--- Requeues one dead letter (attempts reset).
-- @return true | nil, "not found" | nil, err
function queue.requeue_dead(self, id)
    check_id(id, "requeue_dead")
    local t, err = clock(self)
    if not t then
        return nil, err
    end
    local k = self.k
    local res
    res, err = run(self, "requeue", S.requeue, {
        k.failed, k.queue, k.priority, k.task_prefix .. id, k.bulk,
        k.results,
    }, { id, t, self.ch.new })
    if not res then
        return nil, err
    end
    return true
end


--- Requeues every dead letter present when called.
-- @return n requeued | nil, err
function queue.requeue_all_dead(self)
    local ids, err = self.r:call("LRANGE", self.k.failed, 0, -1)
    if not ids then
        return nil, err
    end
    local n = 0
    for _, id in ipairs(ids) do
        local ok, rerr = self:requeue_dead(id)
        if ok then
            n = n + 1
        elseif rerr ~= "not found" then
            return nil, rerr
        end
    end
    return n
end


--- Deletes every dead letter and its hash.
-- @return n | nil, err
function queue.purge_dead(self)
    local total = 0
    while true do
        local res, err = run(self, "purge", S.purge, {
            self.k.failed, self.k.task_prefix }, { PURGE_BATCH })
        if not res then
            return nil, err
        end
        total = total + res[1]
        if res[1] < PURGE_BATCH then
            return total
        end
    end
end


--- Stops claiming (claim returns nil until resume).
function queue.pause(self)
    return self.r:call("SET", self.k.paused, "1")
end


function queue.resume(self)
    return self.r:call("DEL", self.k.paused)
end


--- Moves the oldest id of the results backlog to results:processing.
-- @return id | nil | nil, err
function queue.results_take(self)
    return self.r:call("LMOVE", self.k.results, self.k.results_processing,
                       "LEFT", "RIGHT")
end


--- Drops `id` from results:processing (after the DB COMMIT).
-- @return true | nil, err
function queue.results_ack(self, id)
    check_id(id, "results_ack")
    local n, err = self.r:call("LREM", self.k.results_processing, 1, id)
    if not n then
        return nil, err
    end
    return true
end


--- Moves everything in results:processing back to the front of the
-- backlog, in order (subscriber start).
-- @return n | nil, err
function queue.results_recover(self)
    local n = 0
    while true do
        local id, err = self.r:call("LMOVE", self.k.results_processing,
                                    self.k.results, "RIGHT", "LEFT")
        if err then
            return nil, err
        end
        if not id then
            return n
        end
        n = n + 1
    end
end


local WORKER_FIELDS = { "host", "pid", "device", "task", "started",
                        "windows_per_s", "healthy", "device_faults",
                        "last_device_error" }


--- Records a worker heartbeat: hash `worker:{id}` with TTL `ttl_s` and an
-- entry in the `workers` zset (id -> expiry).
-- @return true | nil, err
function queue.worker_beat(self, worker_id, info, ttl_s)
    check_id(worker_id, "worker_beat")
    info = info or {}
    ttl_s = ttl_s or 30
    local t, err = clock(self)
    if not t then
        return nil, err
    end
    local key = self.k.worker_prefix .. worker_id
    local args = { "HSET", key, "id", worker_id, "beat_at", t }
    for _, f in ipairs(WORKER_FIELDS) do
        args[#args + 1] = f
        args[#args + 1] = info[f] ~= nil and tostring(info[f]) or ""
    end
    local res
    res, err = self.r:pipeline(function(p)
        p:call(unpack(args))
        p:call("EXPIRE", key, ttl_s)
        p:call("ZADD", self.k.workers, t + ttl_s * 1000, worker_id)
        p:call("ZREMRANGEBYSCORE", self.k.workers, "-inf", t)
    end)
    if not res then
        return nil, err
    end
    for _, v in ipairs(res) do
        if type(v) == "table" and v.err then
            return nil, v.err
        end
    end
    return true
end


--- Removes a worker's heartbeat at once (clean shutdown).
function queue.worker_gone(self, worker_id)
    check_id(worker_id, "worker_gone")
    return self.r:pipeline(function(p)
        p:call("DEL", self.k.worker_prefix .. worker_id)
        p:call("ZREM", self.k.workers, worker_id)
    end)
end


--- Live workers: list of { id, host, pid, device, task, started,
-- windows_per_s, healthy, device_faults, last_device_error } (strings;
-- pid, started, windows_per_s, healthy and device_faults as numbers).
-- `task` is the id of the task the worker runs, or the ids of its batch
-- separated by spaces (`--batch-tasks`); `healthy` 0 after a device fault
-- (docs/worker.md "Device faults").
-- @return list | nil, err
function queue.workers(self)
    local t, err = clock(self)
    if not t then
        return nil, err
    end
    local ids
    ids, err = self.r:call("ZRANGEBYSCORE", self.k.workers, "(" .. t, "+inf")
    if not ids then
        return nil, err
    end
    if #ids == 0 then
        return {}
    end
    local res
    res, err = self.r:pipeline(function(p)
        for _, id in ipairs(ids) do
            p:call("HGETALL", self.k.worker_prefix .. id)
        end
    end)
    if not res then
        return nil, err
    end
    local list = {}
    for i, id in ipairs(ids) do
        local h = res[i]
        if type(h) == "table" and #h > 0 then
            local w = hash_table(h)
            w.id = id
            w.pid = tonumber(w.pid) or w.pid
            w.started = tonumber(w.started) or w.started
            w.windows_per_s = tonumber(w.windows_per_s) or w.windows_per_s
            -- Absent (nil) when the worker reports no health (--noop, an
            -- older version).
            w.healthy = tonumber(w.healthy)
            w.device_faults = tonumber(w.device_faults)
            if w.last_device_error == "" then
                w.last_device_error = nil
            end
            if w.task == "" then
                w.task = nil
            end
            list[#list + 1] = w
        end
    end
    return list
end


--- Records the result files a worker uploaded for task `id` under its
-- claim (POST /transcribe/_result/, script store-1): once per task; a
-- replay of the same upload gets the stored names back.
-- @param fingerprint text naming the upload (same files, same text)
-- @param uploads table of the stored names (kept as JSON)
-- @return "stored" | "replay", uploads JSON
--   | nil, "result exists", the stored uploads JSON
--   | nil, "stale" | "not processing" | "not found" | nil, "WRONGTYPE..."
--   | nil, err
function queue.store_result(self, id, claim, fingerprint, uploads)
    check_id(id, "store_result")
    claim = check_claim(claim, "store_result")
    local text, jerr = json.encode(uploads or {})
    if not text then
        error("bad argument #4 to 'store_result' (" .. jerr .. ")", 2)
    end
    local res, err = self.r:eval(S.store, { self.k.task_prefix .. id },
                                 { claim, tostring(fingerprint), text })
    if not res then
        return nil, "could not store the result: " .. tostring(err)
    end
    err = reply_error("store the result", res)
    if err then
        return nil, err, res[2]
    end
    return res[1] == 2 and "replay" or "stored", res[2]
end


return _M
