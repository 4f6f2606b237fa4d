--- The reconciler: PostgreSQL is the system of record, Redis can be rebuilt.
--
-- A sweep reads every row PostgreSQL says is pending or processing with a
-- task id (older than `grace_s`, so a request still between its COMMIT and
-- its enqueue is left alone) and looks the task up in Redis:
--
-- - no task hash (Redis restarted without AOF, failed over, or was down
--   when the route enqueued): the task is enqueued again under the same id
--   with the same payload (tasks.enqueue; "exists" counts as done), its
--   claim tokens starting above Redis' clock in ms, so that no token of
--   the lost state is ever handed out again (reliability R2);
-- - a terminal hash (completed/failed) whose `task:results` entry was lost:
--   recorded through `record(id, hash)` (the subscriber's monotonic update);
-- - otherwise the queue has it: nothing to do.
--
-- It runs in the subscriber, at start and every WTT_RECONCILE_INTERVAL_S.
-- Running it twice, or from two processes, is safe.

local log = require "wtt.log"
local tasks = require "wtt.service.tasks"

local _M = {}

local PAGE = 500


--- One sweep. @return { checked, enqueued, recorded } | nil, err
function _M.run(db, q, opts)
    opts = opts or {}
    local grace = opts.grace_s or 5
    local stats = { checked = 0, enqueued = 0, recorded = 0 }
    local after = "00000000-0000-0000-0000-000000000000"
    while true do
        local rows, err = db:read(
            "SELECT id, task_id, status, audio_path, options, duration_s "
            .. "FROM audio_midi WHERE status IN ('pending', 'processing') "
            .. "AND task_id IS NOT NULL AND audio_path IS NOT NULL "
            .. "AND updated_at <= now() - make_interval(secs => $1::double precision) "
            .. "AND id > $2::uuid ORDER BY id LIMIT $3", grace, after, PAGE)
        if not rows then
            return nil, "database: " .. tostring(err)
        end
        for _, row in ipairs(rows) do
            after = row.id
            stats.checked = stats.checked + 1
            local t, gerr = q:get(row.task_id)
            if not t and gerr then
                return nil, "queue: " .. tostring(gerr)
            end
            if not t then
                -- Redis' clock as the claim floor: claims handed out before
                -- the loss were counted up from 0 (or from an earlier
                -- floor), so they are all below it.
                local floor, ferr = q:now_ms()
                if not floor then
                    return nil, "queue: " .. tostring(ferr)
                end
                local ok, eerr = tasks.enqueue(q, row, floor)
                if not ok then
                    return nil, "queue: " .. tostring(eerr)
                end
                stats.enqueued = stats.enqueued + 1
                log.warn("reconciler.reenqueued", { task = row.task_id,
                                                    audio_midi_id = row.id })
            elseif (t.status == "completed" or t.status == "failed")
                and opts.record then
                local ok, rerr = opts.record(row.task_id, t)
                if not ok then
                    return nil, rerr
                end
                stats.recorded = stats.recorded + 1
            end
        end
        if #rows < PAGE then
            break
        end
    end
    if stats.enqueued > 0 or stats.recorded > 0 then
        log.info("reconciler.sweep", stats)
    end
    return stats
end

return _M
