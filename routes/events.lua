-- The live progress of a transcription as Server-Sent Events
-- (docs/web.md "The event stream"; docs/api.md): GET
-- /transcribe/events/{id}/, where {id} is the upload's id, as for
-- /transcribe/status/{id}/. The stream itself is lua/wtt/service/
-- event_stream.lua; polling the status route stays the fallback.

local http = require "wtt.http"
local sse = require "wtt.sse"
local event_stream = require "wtt.service.event_stream"
local task_events = require "wtt.service.task_events"
local tasks = require "wtt.service.tasks"
local web = require "wtt.service.web"

local abort = http.abort
local nonnull = tasks.nonnull


local function not_found()
    abort(404, "not_found", "no such audio_midi id")
end


local function events(req)
    local id = req.params.id
    if not tasks.is_uuid(id) then
        not_found()
    end
    local db = web.db()
    local rows = web.check(db:read("SELECT status, task_id, task_claim "
                                   .. "FROM audio_midi WHERE id = $1", id))
    local row = rows[1]
    if not row then
        not_found()
    end
    -- EventSource sends Last-Event-ID on its reconnects; a client that
    -- cannot set headers may pass ?last_event_id=.
    local last = req:header("Last-Event-ID") or req.query.last_event_id
    local last_run, last_phase = task_events.parse_id(last)
    if last_run and (row.status == "completed" or row.status == "failed")
       and not task_events.after(tonumber(nonnull(row.task_claim)) or 0,
                                 task_events.TERMINAL, last_run, last_phase)
    then
        -- The client has the end already: 204 tells EventSource to stop
        -- reconnecting.
        return 204, "", { ["Cache-Control"] = "no-store" }
    end
    local s = event_stream.new(req._ctx, id, nonnull(row.task_id), last_run,
                               last_phase)
    return 200, http.stream(function() return s:next() end, {
        on_close = function() s:close() end,
        poll_ms = 1000,
        -- the kernel holds no more than the stream's own buffer, so a
        -- client that stops reading is found behind (and dropped) soon
        sndbuf = s.capacity,
    }), sse.HEADERS
end


return {
    { "GET", "/transcribe/events/:id/", events },
}
