--- The invariant checker ("INV") of docs/reliability.md §1, stated in
-- wtt's keys (docs/queue.md) and tables (audio_midi). Run it after every
-- fault scenario:
--
--     local inv = require "spec.support.invariants"
--     inv.check(env)          -- raises with every violation found
--
-- `env` fields:
--   r        a wtt.redis client (required)
--   prefix   the queue key prefix (WTT_KEY_PREFIX; default "")
--   db       a wtt.pg connection: the audio_midi rows are checked (optional)
--   url      web's base URL: GET /healthz must answer 200 (optional)
--   media    WTT_MEDIA_DIR: result files are checked against the rows
--            (optional)
--   media_store  "pg": the result files are checked in the shared store
--            (table media_objects, needs db) instead of a directory, and
--            every large object must belong to a row of it (optional)
--   task_ids ids to check from their task hashes alone (tasks enqueued
--            through the queue API, with no row) (optional)
--   timeout  seconds to wait for the state to settle (default 5): a task
--            between two steps (a result in the subscriber's backlog, a
--            row the reconciler is about to re-enqueue, a POST writing its
--            files) passes once it got there
--
-- What must hold:
--   1. no id twice in the lanes (task:queue:priority, task:queue,
--      task:queue:bulk),
--      task:processing and task:failed together;
--   2. task:processing is a subset of task:processing:time, and every id
--      in either has a hash whose status is "processing";
--   3. every non-terminal row's task is in exactly one of the lanes and
--      task:processing (or on its way to the row: terminal hash and id in
--      task:results / task:results:processing);
--   4. every terminal row's task is in no lane, not in task:processing nor
--      task:processing:time; its hash (when still there) has the row's
--      status; a failed one is in task:failed;
--   5. a completed row names the files the last accepted claim posted
--      (the hash's `uploads`: same names, same claim as the hash's current
--      claim), they exist and are not empty, and the media dir holds no
--      other result file (no duplicate or orphaned results);
--   6. every id of task_ids: a completed hash is in no list; a pending
--      one in exactly one lane; a processing one in task:processing;
--   7. every `worker:*` key has a TTL > 0;
--   8. /healthz answers 200.

local httpc = require "wtt.http_client"
local json = require "wtt.json"
local pg = require "wtt.pg"
local sys = require "wtt.sys"

local _M = {}

local function nonnull(v)
    if v == nil or v == pg.null or v == json.null then
        return nil
    end
    return v
end


local function list(r, key)
    local v, err = r:call("LRANGE", key, 0, -1)
    assert(type(v) == "table", "LRANGE " .. key .. ": " .. tostring(err))
    return v
end


local function hash(r, key)
    local flat, err = r:call("HGETALL", key)
    assert(type(flat) == "table", "HGETALL " .. key .. ": " .. tostring(err))
    local h = {}
    for i = 1, #flat, 2 do
        h[flat[i]] = flat[i + 1]
    end
    return h
end


-- Every key matching `pattern` (SCAN, not KEYS).
local function scan(r, pattern)
    local out, cursor = {}, "0"
    repeat
        local res, err = r:call("SCAN", cursor, "MATCH", pattern,
                                "COUNT", 1000)
        assert(type(res) == "table", "SCAN: " .. tostring(err))
        cursor = res[1]
        for _, k in ipairs(res[2]) do
            out[#out + 1] = k
        end
    until cursor == "0"
    return out
end


-- Result files are `<32 hex>.<mid|json|npy>`; uploads are audio.
local RESULT_EXT = { mid = true, json = true, npy = true }


--- One pass. @return list of violation texts (empty when all hold)
function _M.violations(env)
    local r = assert(env.r, "invariants: env.r (redis client) is required")
    local p = env.prefix or ""
    local bad = {}
    local function fail(fmt, ...)
        bad[#bad + 1] = fmt:format(...)
    end

    -- Where every id is.
    local lanes = {
        priority = list(r, p .. "task:queue:priority"),
        queue = list(r, p .. "task:queue"),
        bulk = list(r, p .. "task:queue:bulk"),
        processing = list(r, p .. "task:processing"),
        failed = list(r, p .. "task:failed"),
        results = list(r, p .. "task:results"),
        results_processing = list(r, p .. "task:results:processing"),
    }
    local where = {}          -- id -> { lane = count }
    local function note(id, lane)
        where[id] = where[id] or {}
        where[id][lane] = (where[id][lane] or 0) + 1
    end
    for lane, ids in pairs(lanes) do
        for _, id in ipairs(ids) do
            note(id, lane)
        end
    end
    local times = {}
    local zs = r:call("ZRANGE", p .. "task:processing:time", 0, -1)
    assert(type(zs) == "table", "ZRANGE task:processing:time")
    for _, id in ipairs(zs) do
        times[id] = true
    end
    local function count(id, ...)
        local n, w = 0, where[id] or {}
        for _, lane in ipairs({ ... }) do
            n = n + (w[lane] or 0)
        end
        return n
    end
    local function placed(id)        -- lanes + processing + dead letters
        return count(id, "priority", "queue", "bulk", "processing",
                     "failed")
    end
    local hashes = {}
    local function task(id)
        if not hashes[id] then
            hashes[id] = hash(r, p .. "task:" .. id)
        end
        return hashes[id]
    end

    -- 1. nowhere twice
    for id in pairs(where) do
        if placed(id) > 1 then
            fail("task %s is in %d places: %s", id, placed(id),
                 json.encode(where[id]))
        end
    end

    -- 2. processing ⊆ processing:time, and both mean "processing"
    for _, id in ipairs(lanes.processing) do
        if not times[id] then
            fail("task %s is in task:processing but not in "
                 .. "task:processing:time", id)
        end
    end
    for id in pairs(times) do
        if count(id, "processing") == 0 then
            fail("task %s has a claim deadline but is not in "
                 .. "task:processing", id)
        end
        local h = task(id)
        if h.status ~= "processing" then
            fail("task %s has a claim deadline but status %s", id,
                 tostring(h.status))
        end
    end
    for _, id in ipairs(lanes.failed) do
        local h = task(id)
        if h.status ~= "failed" then
            fail("dead letter %s has status %s", id, tostring(h.status))
        end
    end

    -- 3-5. the rows (the system of record)
    local referenced = {}
    if env.db then
        local rows = assert(env.db:query(
            "SELECT id, status, task_id, midi_path, notes_path, "
            .. "posteriors_path, error_message, note_count FROM audio_midi "
            .. "WHERE task_id IS NOT NULL"))
        for _, row in ipairs(rows) do
            local id = row.task_id
            local h = task(id)
            if row.status == "pending" or row.status == "processing" then
                local n = count(id, "priority", "queue", "bulk",
                                "processing")
                local in_flight = (h.status == "completed"
                                   or h.status == "failed")
                    and count(id, "results", "results_processing") > 0
                if not (n == 1 or (n == 0 and in_flight)) then
                    fail("%s row %s: task %s is in %d of the lanes and "
                         .. "task:processing (hash status %s, places %s)",
                         row.status, row.id, id, n, tostring(h.status),
                         json.encode(where[id] or {}))
                end
            else
                if count(id, "priority", "queue", "bulk", "processing") > 0
                   or times[id] then
                    fail("%s row %s: task %s is still queued or claimed "
                         .. "(%s)", row.status, row.id, id,
                         json.encode(where[id] or {}))
                end
                if h.status and h.status ~= row.status then
                    fail("%s row %s: task hash %s says %s", row.status,
                         row.id, id, h.status)
                end
                if row.status == "failed" and h.status == "failed"
                   and count(id, "failed") ~= 1 then
                    fail("failed task %s is not a dead letter", id)
                end
                if row.status == "failed"
                   and not nonnull(row.error_message) then
                    fail("failed row %s has no error message", row.id)
                end
            end
            if row.status == "completed" then
                local names = { midi = nonnull(row.midi_path),
                                notes = nonnull(row.notes_path),
                                posteriors = nonnull(row.posteriors_path) }
                if not names.midi and not names.notes then
                    fail("completed row %s names no result file", row.id)
                end
                local up = h.uploads and json.decode(h.uploads)
                if h.status == "completed" then
                    if type(up) ~= "table" then
                        fail("completed task %s has no accepted upload", id)
                    else
                        -- the claim that completed posted these names
                        -- (or replayed the same bytes: a later claim)
                        local uc, hc = tonumber(up.claim), tonumber(h.claim)
                        if not uc or not hc or uc > hc then
                            fail("task %s: the accepted upload is claim %s, "
                                 .. "the task's claim is %s", id,
                                 tostring(up.claim), tostring(h.claim))
                        end
                        for _, k in ipairs({ "midi", "notes",
                                             "posteriors" }) do
                            if names[k] ~= up[k] then
                                fail("row %s: %s is %s, the accepted "
                                     .. "upload posted %s", row.id, k,
                                     tostring(names[k]), tostring(up[k]))
                            end
                        end
                    end
                end
                for k, name in pairs(names) do
                    if referenced[name] then
                        fail("file %s is named by two rows", name)
                    end
                    referenced[name] = row.id
                    if env.media_store == "pg" then
                        local sr = assert(env.db:query(
                            "SELECT size FROM media_objects WHERE name = $1",
                            name))
                        if not sr[1] or sr[1].size == 0 then
                            fail("row %s: %s object %s is missing or empty",
                                 row.id, k, name)
                        end
                    elseif env.media then
                        local size = sys.file_size(env.media .. "/" .. name)
                        if not size or size == 0 then
                            fail("row %s: %s file %s is missing or empty",
                                 row.id, k, name)
                        end
                    end
                end
            end
        end
        local stored
        if env.media_store == "pg" then
            stored = {}
            for _, o in ipairs(assert(env.db:query(
                    "SELECT name FROM media_objects"))) do
                stored[#stored + 1] = o.name
            end
            local orphans = assert(env.db:query(
                "SELECT count(*)::int AS n FROM pg_largeobject_metadata m "
                .. "WHERE NOT EXISTS (SELECT 1 FROM media_objects o "
                .. "WHERE o.oid = m.oid)"))[1].n
            if orphans > 0 then
                fail("%d large objects belong to no media_objects row",
                     orphans)
            end
        elseif env.media then
            stored = sys.listdir(env.media) or {}
        end
        for _, name in ipairs(stored or {}) do
            local ext = name:match("^%x+%.(%a+)$")
            if ext and RESULT_EXT[ext] and not referenced[name] then
                fail("result file %s belongs to no completed row "
                     .. "(a duplicate or refused result)", name)
            end
        end
    end

    -- 6. tasks without rows
    for _, id in ipairs(env.task_ids or {}) do
        local h = task(id)
        local lanes_n = count(id, "priority", "queue", "bulk")
        local proc_n = count(id, "processing")
        if h.status == "completed" then
            if placed(id) > 0 or times[id] then
                fail("completed task %s is still in %s", id,
                     json.encode(where[id]))
            end
        elseif h.status == "failed" then
            if lanes_n + proc_n > 0 or times[id] then
                fail("failed task %s is still queued or claimed", id)
            end
        elseif h.status == "pending" then
            if lanes_n ~= 1 or proc_n > 0 then
                fail("pending task %s is in %s", id,
                     json.encode(where[id] or {}))
            end
        elseif h.status == "processing" then
            if proc_n ~= 1 or lanes_n > 0 then
                fail("processing task %s is in %s", id,
                     json.encode(where[id] or {}))
            end
        else
            fail("task %s has no hash (status %s)", id, tostring(h.status))
        end
    end

    -- 7. heartbeats expire
    for _, key in ipairs(scan(r, p .. "worker:*")) do
        local ttl = r:call("PTTL", key)
        if type(ttl) ~= "number" or ttl <= 0 then
            fail("%s has no TTL (PTTL %s)", key, tostring(ttl))
        end
    end

    -- 8. web serves
    if env.url then
        local res, err = httpc.request({ url = env.url .. "/healthz",
                                         timeout = 5 })
        if not res or res.status ~= 200 then
            fail("/healthz: %s", res and tostring(res.status)
                                     or tostring(err))
        end
    end
    return bad
end


--- Raises unless every invariant holds within env.timeout seconds.
function _M.check(env)
    local deadline = sys.now() + (env.timeout or 5)
    local bad
    while true do
        bad = _M.violations(env)
        if #bad == 0 then
            return true
        end
        if sys.now() > deadline then
            break
        end
        sys.sleep(0.1)
    end
    error("invariants violated:\n  " .. table.concat(bad, "\n  "), 2)
end

return _M
