--- Recovery of expired claims for wtt.queue: requeued or dead-lettered in
-- short script calls, so no call holds Redis for long and every process
-- may reap at once. `queue` holds the methods wtt.queue puts on every
-- queue (reap_batch, reap); the bounds are re-exported as
-- `wtt.queue.REAP_BATCH`, `REAP_SCAN`, `REAP_CALLS` and `ORPHAN_SCAN`.

local internal = require "wtt.queue.internal"
local metrics = require "wtt.metrics"
local S = require("wtt.queue.scripts").scripts

local clock = internal.clock
local run = internal.run

local _M = {}

--- Queue methods; wtt.queue copies them onto its queue method table.
local queue = {}
_M.queue = queue

-- Work bounds per script call.
local REAP_BATCH = 200       -- expired claims per reap call (at most)
local REAP_SCAN = 1000000    -- processing-list entries one reap call may
                             -- compare (~10 ms): a long list, smaller batches
local REAP_CALLS = 50        -- reap calls per q:reap()
local ORPHAN_SCAN = 256      -- processing-list entries (from the tail) a reap
                             -- call looks at for ids with no deadline (Q3)
_M.REAP_BATCH, _M.REAP_SCAN, _M.REAP_CALLS = REAP_BATCH, REAP_SCAN, REAP_CALLS
_M.ORPHAN_SCAN = ORPHAN_SCAN


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
        metrics.inc("wtt_tasks_retried_total", n, "timeout")
        metrics.inc("wtt_tasks_dead_lettered_total", d, "timeout")
        requeued, dead, adopted = requeued + n, dead + d, adopted + a
        if not more then
            break
        end
    end
    return requeued, dead, adopted
end


return _M
