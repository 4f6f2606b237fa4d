--- The status of a transcription as GET /transcribe/status/{id}/ answers
-- it (docs/api.md), shared with the event stream, whose `completed` event
-- carries the same document (docs/web.md).

local json = require "wtt.json"
local tasks = require "wtt.service.tasks"

local type = type
local tonumber = tonumber
local nonnull = tasks.nonnull

local _M = {}

--- The audio_midi columns the document is made of.
_M.COLUMNS = "id, status, task_id, progress, midi_path, notes_path, "
             .. "error_message, note_count, duration_s"


--- "done/total" as { done, total }, or nil.
function _M.parse_progress(s)
    if type(s) ~= "string" then
        return nil
    end
    local d, t = s:match("^(%d+)/(%d+)$")
    if not d then
        return nil
    end
    return { done = tonumber(d), total = tonumber(t) }
end


--- Whether the row's task hash tells more than the row: while it runs,
-- the hash is fresher (progress events are throttled, and pub/sub may
-- have dropped a `claimed`).
function _M.running(row)
    return (row.status == "pending" or row.status == "processing")
           and nonnull(row.task_id) ~= nil
end


--- The status document of `row` (with COLUMNS), `t` its task hash when
-- running (or nil).
function _M.doc(row, t)
    local progress = _M.parse_progress(nonnull(row.progress))
    local state = row.status
    if _M.running(row) and type(t) == "table" and t.status == "processing" then
        state = "processing"
        progress = _M.parse_progress(t.progress) or progress
    end
    local completed = row.status == "completed"
    return {
        id = row.id,
        status = state,
        task_id = row.task_id,
        progress = progress or json.null,
        has_midi = completed and nonnull(row.midi_path) ~= nil,
        has_notes = completed and nonnull(row.notes_path) ~= nil,
        error = row.error_message,
        note_count = row.note_count,
        duration_s = row.duration_s,
    }
end

return _M
