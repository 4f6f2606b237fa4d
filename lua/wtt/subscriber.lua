--- The result subscriber: records what workers did into PostgreSQL.
--
-- Pub/sub is only a wake-up hint (it is at-most-once); the durable path is
-- the `task:results` list. The loop SUBSCRIBEs to task:claimed,
-- task:completed, task:failed and task:progress:* FIRST, and only once the
-- subscriptions are confirmed moves every id left in
-- `task:results:processing` back (results_recover) and drains
-- `task:results`: each id is moved to `task:results:processing`
-- (results_take), its row is updated, and only after that COMMIT is it
-- removed (results_ack). A subscriber killed at any point loses nothing; at
-- worst an id is recorded twice, which is a no-op.
--
-- Updates are idempotent and monotonic per task, ordered by run: the
-- row's `task_claim` (migration 003) holds the claim counter of the last
-- run it recorded, and every event or hash carries its own. An update for
-- claim c applies to a row with a lower task_claim (a newer run wins, even
-- over a terminal row: a requeued dead letter starts a new run, so its row
-- leaves `failed`), and to a row with the same task_claim only while that
-- row is pending or processing. So a late `claimed` or `progress` of an
-- older run, a duplicate `completed`, or a `failed` after `completed`
-- changes nothing. Events for a task id that is no longer the row's (the
-- row was re-generated) match no row.
--
-- Every tick (WTT_SUBSCRIBER_TICK_S) drains again (poll fallback), and
-- every WTT_RECONCILE_INTERVAL_S the reconciler runs (lua/wtt/reconciler.lua).

local failpoint = require "wtt.failpoint"
local json = require "wtt.json"
local log = require "wtt.log"
local metrics = require "wtt.metrics"
local pg = require "wtt.pg"
local sys = require "wtt.sys"
local redis = require "wtt.redis"
local config = require "wtt.service.config"
local media = require "wtt.service.media"
local tasks = require "wtt.service.tasks"

local _M = {}
local mt = { __index = _M }

local PROGRESS_EVERY_S = 0.5


-- The WHERE clause of an update for the run whose claim is parameter $n
-- (NULL: an event of a version that sent none, taken as the row's run).
local function newer_run(n)
    local c = "COALESCE($" .. n .. "::bigint, task_claim)"
    return "(task_claim < " .. c .. " OR (task_claim = " .. c
           .. " AND status IN ('pending', 'processing')))"
end

-- A completed row stays completed for its task id: only a dead letter is
-- ever requeued, so a newer run of a completed task exists only when a
-- Redis failover lost the completion (docs/reliability.md R4). Its
-- claims, progress and failure leave the row as it is; its completion
-- (the same result, recorded again) may still replace the row's.
local NOT_COMPLETED = " AND status <> 'completed'"


-- The claim counter as a query parameter (digits only), or NULL.
local function claim_param(v)
    v = tostring(v or "")
    if v:match("^%d+$") and #v <= 18 then
        return v
    end
    return pg.null
end


local function decode(s)
    if type(s) ~= "string" or s == "" then
        return {}
    end
    local ok, v = pcall(json.decode, s)
    return ok and type(v) == "table" and v or {}
end


local function name_or_null(...)
    for i = 1, select("#", ...) do
        local v = select(i, ...)
        if media.valid_name(v) then
            return v
        end
    end
    return pg.null
end


--- A task id carried by a message payload: the id itself or JSON {id}.
function _M.id_of(payload)
    if tasks.is_task_id(payload) then
        return payload
    end
    local doc = decode(payload)
    local id = doc.id or doc.task_id
    return tasks.is_task_id(id) and id or nil
end


--- A subscriber on a PostgreSQL handle and a queue.
-- @param opts { db = handle | nil (connects lazily), q = queue, cfg }
function _M.new(opts)
    return setmetatable({
        cfg = opts.cfg or config.get(),
        _db = opts.db, q = opts.q,
        last_progress = {}, n_progress = 0,
        pending_recover = false,
        recorded = 0,
    }, mt)
end


function _M.db(self)
    if self._db then
        return self._db
    end
    local db, err = pg.connect(self.cfg.database_url, {
        connect_timeout = 3, statement_timeout_ms = 10000,
        application_name = "wtt subscriber",
    })
    if not db then
        return nil, err
    end
    self._db = db
    return db
end


--- Records the terminal state of task `id` (read from its hash).
-- @return true (recorded, or nothing to record) | nil, err (retry later)
function _M.record(self, id)
    local t, err = self.q:get(id)
    if not t then
        if err then
            return nil, "queue: " .. tostring(err)
        end
        log.warn("subscriber.task_gone", { task = id })
        return true
    end
    return self:record_hash(id, t)
end


function _M.record_hash(self, id, t)
    local db, err = self:db()
    if not db then
        return nil, err
    end
    local n, state
    if t.status == "completed" then
        local res, up = decode(t.result), decode(t.uploads)
        local n_notes = tonumber(res.n_notes) or tonumber(up.n_notes)
        if not n_notes or n_notes < 0 or n_notes % 1 ~= 0 then
            n_notes = pg.null
        end
        local duration = tonumber(res.duration_s)
        if not duration or duration < 0 or duration ~= duration then
            duration = pg.null
        end
        local prov = type(res.provenance) == "table" and pg.json(res.provenance)
                     or pg.null
        n, err, state = db:exec(
            "UPDATE audio_midi SET status = 'completed', midi_path = $2, "
            .. "notes_path = $3, posteriors_path = $4, note_count = $5, "
            .. "duration_s = COALESCE($6, duration_s), provenance = $7::jsonb, "
            .. "error_message = NULL, "
            .. "task_claim = COALESCE($8::bigint, task_claim) "
            .. "WHERE task_id = $1 AND " .. newer_run(8),
            id, name_or_null(up.midi, res.midi), name_or_null(up.notes, res.notes),
            name_or_null(up.posteriors, res.posteriors), n_notes, duration, prov,
            claim_param(t.claim))
    elseif t.status == "failed" then
        local msg = t.error
        if type(msg) ~= "string" or msg == "" then
            msg = "failed"
        end
        n, err, state = db:exec(
            "UPDATE audio_midi SET status = 'failed', error_message = $2, "
            .. "task_claim = COALESCE($3::bigint, task_claim) "
            .. "WHERE task_id = $1 AND " .. newer_run(3) .. NOT_COMPLETED,
            id, msg:sub(1, 2000), claim_param(t.claim))
    elseif t.status == "pending" or t.status == "processing" then
        -- A requeued dead letter (its id joins task:results): a new run,
        -- so only a row of an older run moves. The hash may be further on
        -- by now (claimed): then the row says so.
        local c = claim_param(t.claim)
        if c == pg.null then
            return true
        end
        n, err, state = db:exec(
            "UPDATE audio_midi SET status = $2, error_message = NULL, "
            .. "progress = NULL, task_claim = $3::bigint "
            .. "WHERE task_id = $1 AND task_claim < $3::bigint"
            .. NOT_COMPLETED,
            id, t.status, c)
    else
        return true
    end
    if not n then
        return nil, "database: " .. tostring(err) .. " (" .. tostring(state) .. ")"
    end
    if n > 0 then
        -- Counted once per recorded transition: a duplicate event updates
        -- no row (n == 0), so the counter matches the rows.
        if t.status == "completed" then
            metrics.task_completed(t)
            local res = decode(t.result)
            local d, s = tonumber(res.duration_s), tonumber(res.infer_s)
            if d and s and s > 0 then
                metrics.observe("wtt_inference_realtime_factor", d / s)
            end
        elseif t.status == "failed" then
            metrics.inc("wtt_tasks_failed_total")
        end
        self.recorded = self.recorded + 1
        log.info("subscriber.recorded", { task = id, status = t.status })
    end
    return true
end


--- Drains task:results. @return number recorded | nil, err
function _M.drain(self)
    local q, n = self.q, 0
    if self.pending_recover then
        local moved, err = q:results_recover()
        if not moved and err then
            return nil, err
        end
        self.pending_recover = false
    end
    while true do
        local id, err = q:results_take()
        if not id then
            if err then
                return nil, err
            end
            return n
        end
        local ok, rerr = self:record(id)
        if not ok then
            -- Stays in task:results:processing; moved back on the next drain.
            self.pending_recover = true
            return nil, rerr
        end
        -- Test program only (lua/wtt/failpoint.lua): a crash with the row
        -- committed and the id not yet acknowledged (docs/reliability.md
        -- W6, S5).
        failpoint.hit("subscriber.committed")
        q:results_ack(id)   -- after the COMMIT; a failure here only means
        n = n + 1           -- the id is recorded once more later (no-op)
    end
end


function _M.on_claimed(self, id, claim)
    local db = self:db()
    if db then
        db:exec("UPDATE audio_midi SET status = 'processing', "
                .. "task_claim = COALESCE($2::bigint, task_claim) "
                .. "WHERE task_id = $1 AND (task_claim < "
                .. "COALESCE($2::bigint, task_claim) OR (task_claim = "
                .. "COALESCE($2::bigint, task_claim) AND status = 'pending'))"
                .. NOT_COMPLETED,
                id, claim_param(claim))
    end
end


function _M.on_progress(self, id, payload)
    local done, total = tostring(payload):match("^(%d+)/(%d+)$")
    if not done then
        -- the queue publishes {id, status, progress = {done, total}}
        local doc = decode(payload)
        local p = type(doc.progress) == "table" and doc.progress or doc
        done, total = tonumber(p.done), tonumber(p.total)
    end
    done, total = tonumber(done), tonumber(total)
    if not done or not total then
        return
    end
    local claim = claim_param(decode(payload).claim)
    local now = sys.now()
    local last = self.last_progress[id]
    if last and now - last < PROGRESS_EVERY_S and done < total then
        return
    end
    if self.n_progress > 10000 then
        self.last_progress, self.n_progress = {}, 0
    end
    if not last then
        self.n_progress = self.n_progress + 1
    end
    self.last_progress[id] = now
    local db = self:db()
    if db then
        db:exec("UPDATE audio_midi SET status = 'processing', progress = $2, "
                .. "task_claim = COALESCE($3::bigint, task_claim) "
                .. "WHERE task_id = $1 AND " .. newer_run(3) .. NOT_COMPLETED,
                id, string.format("%d/%d", done, total), claim)
    end
end


--- Handles one pub/sub message.
function _M.on_message(self, channel, payload)
    local q = self.q
    if channel == q:channel("task:claimed") then
        local id = _M.id_of(payload)
        if id then
            self:on_claimed(id, decode(payload).claim)
        end
    elseif channel == q:channel("task:completed")
        or channel == q:channel("task:failed") then
        local ok, err = self:drain()
        if not ok then
            log.warn("subscriber.drain_failed", { error = err })
        end
    else
        local prefix = q:channel("task:progress:")
        if channel:sub(1, #prefix) == prefix then
            local id = channel:sub(#prefix + 1)
            if tasks.is_task_id(id) then
                self:on_progress(id, payload)
            end
        end
    end
end


function _M.reconcile(self)
    local db, err = self:db()
    if not db then
        return nil, err
    end
    local reconciler = require "wtt.reconciler"
    return reconciler.run(db, self.q, {
        grace_s = self.cfg.reconcile_grace_s,
        record = function(id, t) return self:record_hash(id, t) end,
    })
end


--- One media retention sweep (wtt.service.media_sweep), logged.
-- @return its stats | nil, err
function _M.sweep_media(self)
    local db, err = self:db()
    if not db then
        log.warn("media.sweep_failed", { error = err })
        return nil, err
    end
    local sweep = require "wtt.service.media_sweep"
    local store = require("wtt.service.media").store()
    local stats
    stats, err = sweep.run(db, store, sweep.options(self.cfg))
    if not stats then
        log.warn("media.sweep_failed", { error = err })
        return nil, err
    end
    if stats.rows + stats.files + stats.orphans + stats.objects > 0 then
        log.info("media.swept", stats)
    end
    return stats
end


local function guarded(what, fn, ...)
    local ok, err = pcall(fn, ...)
    if not ok then
        log.error("subscriber.error", { where = what, error = tostring(err) })
    end
end


--- Runs forever (or until opts.stop() returns true).
-- @param opts { stop = function, on_ready = function (called once, after
--   the first subscription and sweep), r, q }
function _M.run(opts)
    opts = opts or {}
    local cfg = config.get()
    if not cfg.database_url then
        return nil, "DATABASE_URL is not set"
    end
    if not opts.r then
        -- Said once at start, in words an operator can act on; the loop
        -- then retries whatever the cause (web never exits for Redis).
        local ok, perr, kind = redis.probe(cfg.redis_url,
                                           { connect_timeout = 3 })
        if not ok then
            log.error(kind == "config" and "redis.misconfigured"
                      or "redis.unreachable", { error = perr })
        end
    end
    local r = opts.r or assert(redis.connect(cfg.redis_url, {
        lazy = true, connect_timeout = 3, timeout = 10, backoff_max = 2,
    }))
    local q = opts.q or require("wtt.queue").new(r, { prefix = cfg.key_prefix })
    local self = _M.new({ q = q, cfg = cfg })
    local stop = opts.stop or function() return false end
    local next_reconcile, next_reap = 0, 0
    -- The first retention sweep waits one interval: a restart loop does
    -- not turn into a sweep loop.
    local next_media_sweep = sys.now() + cfg.media_sweep_interval_s
    local warning = require("wtt.queue").eviction_warning(r)
    if warning then
        log.warn("redis.eviction_policy", { warning = warning })
    end
    local started = false

    local function sweep()
        local n, err = self:drain()
        if not n and err then
            log.warn("subscriber.drain_failed", { error = err })
        end
        -- Web reaps too (every process may: docs/system-design.md §5),
        -- so expired claims are recovered even with every worker gone.
        if sys.now() >= next_reap then
            next_reap = sys.now() + 1
            local requeued, rerr, adopted = q:reap()
            if requeued == nil then
                log.warn("subscriber.reap_failed", { error = rerr })
            elseif (adopted or 0) > 0 then
                -- ids claimed with no deadline: an older version or a
                -- hand edit (reliability Q3); they now expire normally
                log.warn("subscriber.orphan_claims", { n = adopted })
            end
        end
        if sys.now() >= next_reconcile then
            next_reconcile = sys.now() + cfg.reconcile_interval_s
            local res, rerr = self:reconcile()
            if not res and rerr then
                log.warn("subscriber.reconcile_failed", { error = rerr })
            end
        end
        if cfg.media_sweep_interval_s > 0 and sys.now() >= next_media_sweep
        then
            next_media_sweep = sys.now() + cfg.media_sweep_interval_s
            self:sweep_media()
        end
    end

    local channels = { q:channel("task:claimed"), q:channel("task:completed"),
                       q:channel("task:failed") }
    local patterns = { q:channel("task:progress:") .. "*" }
    log.info("subscriber.starting", { prefix = cfg.key_prefix })
    while not stop() do
        local ok, err = r:subscribe(channels, patterns,
            function(_, channel, payload)
                guarded("message", self.on_message, self, channel, payload)
                return not stop()
            end, {
                tick = cfg.tick_s,
                on_ready = function()
                    -- Subscribed: now recover what a killed predecessor held
                    -- and drain the backlog, then reconcile.
                    local first = not started
                    if first then
                        started = true
                        self.pending_recover = true
                    end
                    log.info("subscriber.ready", {})
                    guarded("ready", sweep)
                    if first and opts.on_ready then
                        opts.on_ready()
                    end
                    return not stop()
                end,
                on_reconnect = function()
                    log.info("subscriber.resubscribed", {})
                    guarded("reconnect", sweep)
                    return not stop()
                end,
                on_tick = function()
                    guarded("tick", sweep)
                    return not stop()
                end,
            })
        if stop() then
            break
        end
        log.warn("subscriber.disconnected", { error = tostring(err) })
        sys.sleep(1)
    end
    return true
end

return _M
