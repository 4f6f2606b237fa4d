--- Claims for wtt.queue: one task or up to `n` in one call of the claim
-- script, each with its own claim token and deadline. `queue` holds the
-- methods wtt.queue puts on every queue (claim, claim_many); `call` and
-- `claimed` build the script's call and read its reply, for the
-- completions that claim in the same round trip (lua/wtt/queue/complete.lua).

local json = require "cjson.safe"
local internal = require "wtt.queue.internal"
local S = require("wtt.queue.scripts").scripts

local type = type
local clock = internal.clock
local run = internal.run
local check_worker = internal.check_worker
local check_count = internal.check_count

local _M = {}

--- Queue methods; wtt.queue copies them onto its queue method table.
local queue = {}
_M.queue = queue

local CLAIM_DEPTH = 64       -- entries claim looks at per lane


-- The claim script's keys and arguments at time `t`, for up to `n` tasks.
function _M.call(self, t, worker_id, n)
    local k = self.k
    return {
        k.priority, k.queue, k.bulk, k.processing, k.time, k.task_prefix,
        k.paused, k.failed, k.results, k.clients,
    }, {
        t, worker_id, self.ch.claimed, self.ch.failed,
        self:policy().dead_ttl_s(), CLAIM_DEPTH, n or 1,
    }
end
local claim_call = _M.call


-- The task tables of a claim reply (six fields per task), in claim order.
function _M.claimed(self, res)
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
local claimed = _M.claimed


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


return _M
