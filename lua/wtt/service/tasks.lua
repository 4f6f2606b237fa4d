--- Tasks of the service: what the web enqueues for a row, and how a row is
-- (re-)enqueued. Shared by the generate route and the reconciler, so a task
-- enqueued late by the reconciler is the same task the route meant.

local json = require "wtt.json"
local pg = require "wtt.pg"
local media = require "wtt.service.media"

local _M = {}

local UUID = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"

--- True when `s` looks like a row id (uuid text).
function _M.is_uuid(s)
    return type(s) == "string" and #s == 36 and s:match(UUID) ~= nil
end


--- True when `s` is a task id (32 lowercase hex).
function _M.is_task_id(s)
    return type(s) == "string" and #s == 32 and s:match("^[0-9a-f]+$") ~= nil
end


function _M.new_task_id()
    return media.random_hex(16)
end


local function nonnull(v)
    if v == pg.null or v == json.null then
        return nil
    end
    return v
end
_M.nonnull = nonnull


--- The queue task for a row (id, audio_path, options, duration_s, task_id,
-- and `client` when the caller knows it).
-- `options` in PostgreSQL holds the engine options plus `outputs`.
function _M.task_for(row)
    local options, outputs = {}, { "midi", "notes", "posteriors" }
    local stored = nonnull(row.options)
    if type(stored) == "table" then
        for k, v in pairs(stored) do
            if k == "outputs" then
                outputs = v
            else
                options[k] = v
            end
        end
    end
    return {
        id = row.task_id,
        audio_midi_id = row.id,
        payload = {
            -- relative to the web's base URL (the worker's WTT_WEB_URL)
            audio_url = "/media/" .. row.audio_path,
            options = options,
            outputs = outputs,
            duration_s = nonnull(row.duration_s),
            -- who asked (the generate route; the priority plugin's
            -- fairness counts by it); rows the reconciler rebuilds have none
            client = row.client,
        },
    }
end


--- Enqueues the task of `row`. "exists" counts as success: the
-- reconciler or an earlier try enqueued it already.
-- @param claim_floor optional: the reconciler passes Redis' time (ms), so
--   a task rebuilt after a data loss never reuses a fencing token
-- @return true | nil, err
function _M.enqueue(q, row, claim_floor)
    local task = _M.task_for(row)
    task.claim_floor = claim_floor
    local ok, err = q:enqueue(task)
    if ok or err == "exists" then
        return true
    end
    return nil, err
end

return _M
