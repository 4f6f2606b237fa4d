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
--
-- This file makes queues (keys, channels, policy, the clock); each group
-- of calls is a module in lua/wtt/queue/ (scripts; enqueue for producers;
-- claim, held, complete for workers; reap; results; workers for
-- presence; admin; and internal for the helpers they share), and this
-- module is the one public surface over them all.

local sys = require "wtt.sys"
local policy_mod = require "wtt.policy"
local reap = require "wtt.queue.reap"

local type = type
local assert = assert
local error = error
local pairs = pairs
local ipairs = ipairs
local tostring = tostring
local tonumber = tonumber
local setmetatable = setmetatable
local floor = math.floor
local now = sys.now

local _M = {}

--- The script values by name (lua/wtt/queue/scripts.lua).
_M.scripts = require("wtt.queue.scripts").scripts
-- Whether `id` can name a task (the methods raise on one that cannot):
-- for callers that take ids from outside, such as the admin routes.
_M.valid_id = require("wtt.queue.internal").valid_id

--- Bounds of one reap (lua/wtt/queue/reap.lua).
_M.REAP_BATCH, _M.REAP_SCAN, _M.REAP_CALLS = reap.REAP_BATCH, reap.REAP_SCAN,
                                             reap.REAP_CALLS
_M.ORPHAN_SCAN = reap.ORPHAN_SCAN

local queue = {}
local queue_mt = { __index = queue }

-- The methods of the other parts (enqueue, claim, complete, reap...) join
-- the ones below on the one method table every queue uses.
for _, part in ipairs {
    require "wtt.queue.enqueue", require "wtt.queue.claim",
    require "wtt.queue.held", require "wtt.queue.complete", reap,
    require "wtt.queue.results", require "wtt.queue.workers",
    require "wtt.queue.admin",
} do
    for name, fn in pairs(part.queue) do
        assert(queue[name] == nil, "two parts of wtt.queue define " .. name)
        queue[name] = fn
    end
end


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


--- Redis TIME in ms: the one clock of the queue (lua/wtt/queue/internal.lua
-- carries it forward between reads).
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


return _M
