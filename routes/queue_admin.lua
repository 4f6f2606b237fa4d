-- Queue administration over HTTP (admin token), the twin of `wtt queue`:
-- dead letters (list, inspect, requeue one, requeue all, purge) and
-- pausing claims. Bulk actions need an explicit confirmation in the body,
-- as the CLI needs --yes.

local http = require "wtt.http"
local admin = require "wtt.admin"
local conn = require "wtt.service.conn"
local queue = require "wtt.queue"

local ERR_CONFIRM = 'send {"confirm": "%s"} to do this'


local function queue_or_503()
    local q, err = conn.queue()
    if not q then
        http.abort(503, "unavailable", "queue: " .. tostring(err),
                   { ["Retry-After"] = "5" })
    end
    return q
end


local function checked(v, err)
    if v == nil and err then
        http.abort(503, "unavailable", tostring(err),
                   { ["Retry-After"] = "5" })
    end
    return v
end


local function confirm(req, word)
    local body = req.body ~= "" and req:json() or {}
    if type(body) ~= "table" or body.confirm ~= word then
        http.abort(409, "confirmation_required", ERR_CONFIRM:format(word))
    end
end


local function stats(req)
    admin.authorize(req)
    return 200, checked(queue_or_503():stats())
end


local function dead(req)
    admin.authorize(req)
    local offset = tonumber(req.query.offset) or 0
    local count = math.min(tonumber(req.query.count) or 100, 1000)
    local ids = checked(queue_or_503():dead(offset, count))
    return 200, { offset = offset, ids = ids }
end


local function task(req)
    admin.authorize(req)
    if not req.params.id:match("^[0-9a-f]+$") then
        http.abort(404, "not_found", "no such task")
    end
    local t = checked(queue_or_503():get(req.params.id))
    if not t then
        http.abort(404, "not_found", "no such task")
    end
    return 200, t
end


local function requeue(req)
    admin.authorize(req)
    -- An id no task can have is no dead letter (the queue raises on it:
    -- a 500 found by spec/fuzz/fuzz_routes.c).
    if not queue.valid_id(req.params.id) then
        http.abort(404, "not_found", "no such dead letter")
    end
    local ok, err = queue_or_503():requeue_dead(req.params.id)
    if not ok then
        if err == "not found" then
            http.abort(404, "not_found", "no such dead letter")
        end
        checked(nil, err)
    end
    return 200, { requeued = req.params.id }
end


local function requeue_all(req)
    admin.authorize(req)
    confirm(req, "requeue-all")
    return 200, { requeued = checked(queue_or_503():requeue_all_dead()) }
end


local function purge(req)
    admin.authorize(req)
    confirm(req, "purge")
    return 200, { purged = checked(queue_or_503():purge_dead()) }
end


local function pause(req)
    admin.authorize(req)
    checked(queue_or_503():pause())
    return 200, { paused = true }
end


local function resume(req)
    admin.authorize(req)
    checked(queue_or_503():resume())
    return 200, { paused = false }
end


-- `auth`: the token is checked before any body is read (lua/wtt/server.lua).
local AUTH = { auth = admin.authorize }
local BODY = { body = "raw", auth = admin.authorize }

return {
    { "GET", "/_admin/queue/", stats, AUTH },
    { "GET", "/_admin/queue/dead/", dead, AUTH },
    { "GET", "/_admin/queue/task/:id/", task, AUTH },
    { "POST", "/_admin/queue/dead/:id/requeue/", requeue, BODY },
    { "POST", "/_admin/queue/dead/requeue-all/", requeue_all, BODY },
    { "POST", "/_admin/queue/dead/purge/", purge, BODY },
    { "POST", "/_admin/queue/pause/", pause, BODY },
    { "POST", "/_admin/queue/resume/", resume, BODY },
}
