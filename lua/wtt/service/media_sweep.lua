--- The media retention sweep (docs/operations.md "Media retention"): the
-- media store must not grow without bound. One pass, bounded by `batch`
-- removals, does three things:
--
-- 1. Expired rows: a `completed` row not updated for `completed_s`, a
--    `failed` one for `failed_s`, an upload never sent to generate (status
--    `pending`, no task) for `unused_s` is deleted, then its files are
--    removed. The row goes first: no row ever names a missing file, and a
--    file whose removal failed is an orphan that step 2 finds later. The
--    DELETE names the row's `updated_at`, so a row that changed meanwhile
--    (a generate on an old upload, a requeue) is left for the next pass.
--    pending and processing rows with a task are never expired. 0 keeps
--    that state forever.
-- 2. Orphans: a media name no row names (its row was deleted, a retune
--    replaced it, a result whose run lost) older than `grace_s`, and the
--    dir store's temp files (`*.part*`, a crash's leftovers) as old. The
--    grace protects what is being written and what a row does not name
--    yet: an upload between its write and its INSERT, a result stored in
--    the task hash that the subscriber has not recorded (keep `grace_s`
--    well above the longest PostgreSQL outage you expect).
-- 3. pg store only: large objects of this database role that no
--    media_objects row names (the store writes both in one transaction,
--    so these come only from outside wtt or a hand edit).
--
-- Safe to run from several processes at once: every removal of a name is
-- idempotent, and a row is deleted by exactly one of them.

local pg = require "wtt.pg"
local sys = require "wtt.sys"

local _M = {}

local PATH_COLUMNS = { "audio_path", "midi_path", "notes_path",
                       "posteriors_path" }
local CHECK_CHUNK = 1000         -- names checked against the rows per query


local function nonnull(v)
    if v == nil or v == pg.null then
        return nil
    end
    return v
end


-- The names of `candidates` that no row names (one query per chunk; each
-- NOT IN is a hashed subplan, so the cost is linear in rows + names).
local function unreferenced(db, candidates)
    local out = {}
    local conds = {}
    for _, c in ipairs(PATH_COLUMNS) do
        conds[#conds + 1] = "n NOT IN (SELECT " .. c .. " FROM audio_midi "
                            .. "WHERE " .. c .. " IS NOT NULL)"
    end
    local sql = "SELECT n FROM jsonb_array_elements_text($1::jsonb) AS n WHERE "
                .. table.concat(conds, " AND ")
    for i = 1, #candidates, CHECK_CHUNK do
        local chunk = {}
        for j = i, math.min(i + CHECK_CHUNK - 1, #candidates) do
            chunk[#chunk + 1] = candidates[j]
        end
        local rows, err = db:query(sql, pg.json(chunk))
        if not rows then
            return nil, "database: " .. tostring(err)
        end
        for _, r in ipairs(rows) do
            out[#out + 1] = r.n
        end
    end
    return out
end


-- Step 1. @return removed rows, removed files | nil, err
local function expire_rows(db, store, opts, budget)
    local conds = {}
    if opts.completed_s > 0 then
        conds[#conds + 1] = ("(status = 'completed' AND updated_at < now() "
            .. "- make_interval(secs => %.3f))"):format(opts.completed_s)
    end
    if opts.failed_s > 0 then
        conds[#conds + 1] = ("(status = 'failed' AND updated_at < now() "
            .. "- make_interval(secs => %.3f))"):format(opts.failed_s)
    end
    if opts.unused_s > 0 then
        conds[#conds + 1] = ("(status = 'pending' AND task_id IS NULL AND "
            .. "updated_at < now() - make_interval(secs => %.3f))")
            :format(opts.unused_s)
    end
    if #conds == 0 or budget <= 0 then
        return 0, 0
    end
    local rows, err = db:query("SELECT id, updated_at FROM audio_midi WHERE "
        .. table.concat(conds, " OR ") .. " ORDER BY updated_at LIMIT $1",
        budget)
    if not rows then
        return nil, "database: " .. tostring(err)
    end
    local n_rows, n_files = 0, 0
    for _, row in ipairs(rows) do
        local gone
        gone, err = db:query("DELETE FROM audio_midi WHERE id = $1 AND "
            .. "updated_at = $2::timestamptz RETURNING "
            .. table.concat(PATH_COLUMNS, ", "), row.id, row.updated_at)
        if not gone then
            return nil, "database: " .. tostring(err)
        end
        if gone[1] then
            n_rows = n_rows + 1
            for _, c in ipairs(PATH_COLUMNS) do
                local name = nonnull(gone[1][c])
                -- Another row never names the same file: names are
                -- random or derived from the task id.
                if name and store.valid(name) and store:remove(name) then
                    n_files = n_files + 1
                end
            end
        end
    end
    return n_rows, n_files
end


-- Step 2 for the dir store. @return removed | nil, err
local function dir_orphans(db, store, opts, budget)
    local old, parts = {}, {}
    for _, name in ipairs(sys.listdir(store.root) or {}) do
        local path = store.root .. "/" .. name
        local age = sys.file_age(path)
        if age and age >= opts.grace_s then
            if store.valid(name) then
                old[#old + 1] = name
            elseif name:match("^[0-9a-f]+%.%l+%d?%.part%x+$")
                   and sys.exists(path) == "file"
            then
                parts[#parts + 1] = path
            end
        end
    end
    local n = 0
    for _, path in ipairs(parts) do
        if n >= budget then
            return n
        end
        if os.remove(path) then
            n = n + 1
        end
    end
    local orphans, err = unreferenced(db, old)
    if not orphans then
        return nil, err
    end
    for _, name in ipairs(orphans) do
        if n >= budget then
            break
        end
        if store:remove(name) then
            n = n + 1
        end
    end
    return n
end


-- Step 2 for the pg store. @return removed | nil, err
local function pg_orphans(db, store, opts, budget)
    local conds = {}
    for _, c in ipairs(PATH_COLUMNS) do
        conds[#conds + 1] = "m.name NOT IN (SELECT " .. c .. " FROM "
                            .. "audio_midi WHERE " .. c .. " IS NOT NULL)"
    end
    local rows, err = db:query(("SELECT m.name FROM media_objects m WHERE "
        .. "m.created_at < now() - make_interval(secs => %.3f) AND ")
        :format(opts.grace_s) .. table.concat(conds, " AND ")
        .. " ORDER BY m.created_at LIMIT $1", budget)
    if not rows then
        return nil, "database: " .. tostring(err)
    end
    local n = 0
    for _, r in ipairs(rows) do
        if store:remove(r.name) then
            n = n + 1
        end
    end
    return n
end


-- Step 3. @return removed | nil, err
local function stray_objects(db, budget)
    local rows, err = db:query("SELECT lo_unlink(l.oid) FROM "
        .. "(SELECT oid FROM pg_largeobject_metadata l WHERE lomowner = "
        .. "(SELECT oid FROM pg_roles WHERE rolname = current_user) AND "
        .. "NOT EXISTS (SELECT 1 FROM media_objects m WHERE m.oid = l.oid) "
        .. "LIMIT $1) AS l", budget)
    if not rows then
        return nil, "database: " .. tostring(err)
    end
    return #rows
end


--- The sweep's settings from the service configuration (cfg of
-- wtt.service.config).
function _M.options(cfg)
    return {
        completed_s = cfg.retain_completed_s,
        failed_s = cfg.retain_failed_s,
        unused_s = cfg.retain_unused_s,
        grace_s = cfg.media_grace_s,
        batch = cfg.media_sweep_batch,
    }
end


--- One pass over `store` (wtt.service.media's store or new_store) with the
-- rows of `db`.
-- @param opts { completed_s, failed_s, unused_s, grace_s, batch }
-- @return { rows, files, orphans, objects } (removed counts) | nil, err
function _M.run(db, store, opts)
    local batch = opts.batch or 500
    local stats = { rows = 0, files = 0, orphans = 0, objects = 0 }
    local rows, files = expire_rows(db, store, opts, batch)
    if not rows then
        return nil, files
    end
    stats.rows, stats.files = rows, files
    local budget = batch - files
    local n, err
    if budget > 0 then
        if store.kind == "pg" then
            n, err = pg_orphans(db, store, opts, budget)
        else
            n, err = dir_orphans(db, store, opts, budget)
        end
        if not n then
            return nil, err
        end
        stats.orphans = n
        budget = budget - n
    end
    if store.kind == "pg" and budget > 0 then
        n, err = stray_objects(db, budget)
        if not n then
            return nil, err
        end
        stats.objects = n
    end
    return stats
end


return _M
