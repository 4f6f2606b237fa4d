-- The public transcription API (docs/api.md): upload, generate, status,
-- midi, notes (JSON or CSV), audio (the upload itself), retune. The worker-facing endpoints are in routes/worker.lua,
-- the metrics in routes/metrics.lua.
--
-- PostgreSQL is the system of record: a row is written before its task is
-- enqueued, so a task Redis never got (or lost) is re-enqueued by the
-- reconciler (lua/wtt/reconciler.lua). Workers never reach the database;
-- the subscriber (lua/wtt/subscriber.lua) records their results.

local http = require "wtt.http"
local json = require "wtt.json"
local pg = require "wtt.pg"
local audio = require "wtt.audio"
local config = require "wtt.service.config"
local conn = require "wtt.service.conn"
local idempotency = require "wtt.service.idempotency"
local media = require "wtt.service.media"
local options = require "wtt.service.options"
local status_doc = require "wtt.service.status"
local tasks = require "wtt.service.tasks"
local web = require "wtt.service.web"

local cfg = config.get()
local nonnull = tasks.nonnull
local abort = http.abort
local one_file = web.one_file


local function row_or_404(db, id, columns)
    if not tasks.is_uuid(id) then
        abort(404, "not_found", "no such audio_midi id")
    end
    local rows = web.check(db:read("SELECT " .. columns
        .. " FROM audio_midi WHERE id = $1", id))
    if not rows[1] then
        abort(404, "not_found", "no such audio_midi id")
    end
    return rows[1]
end


-- A client file name as data: printable ASCII, at most 200 characters.
local function clean_name(name)
    if type(name) ~= "string" then
        return pg.null
    end
    name = name:gsub("[^%w%._%- ]", "_"):sub(1, 200)
    return name
end


---------------------------------------------------------------- upload

local function upload(req)
    local file = one_file(req, "file")
    if not file then
        abort(400, "bad_request",
              "expected multipart/form-data with a 'file' part")
    end
    if (file.size or 0) == 0 then
        abort(400, "bad_request", "the uploaded file is empty")
    end
    local ext = media.sniff_audio(media.head(file.path, 16))
    if not ext then
        abort(415, "unsupported_media_type",
              "not a WAV, MP3, FLAC or Ogg file (checked by content)")
    end
    local info, perr = audio.probe(file.path, { max_duration = cfg.max_audio_s })
    if not info then
        abort(422, "unprocessable", "unreadable audio: " .. tostring(perr))
    end
    local db = web.db()
    local name = media.new_name(ext)
    local ok, kerr = media.keep_upload(req, file, name)
    if not ok then
        -- The store removes its partial copy; the temp file goes with
        -- the request.
        media.remove(name)
        if web.storage_full(kerr) then
            web.insufficient("media store", kerr)
        end
        error("cannot store the upload: " .. tostring(kerr))
    end
    local duration = info.duration
    if type(duration) ~= "number" or duration < 0 or duration ~= duration then
        duration = pg.null
    end
    local rows, err, state = db:query(
        "INSERT INTO audio_midi (original_name, audio_path, duration_s) "
        .. "VALUES ($1, $2, $3) RETURNING id",
        clean_name(file.filename), name, duration)
    if not rows then
        media.remove(name)
        web.check(nil, err, state)
    end
    return 201, {
        audio_midi_id = rows[1].id,
        format = info.format,
        duration_s = duration ~= pg.null and duration or nil,
    }
end


---------------------------------------------------------------- generate

local generate_row

-- Who is asking, for the priority plugin's fairness: the header named by
-- WTT_CLIENT_ID_HEADER when set (a proxy in front that sets it from an API
-- key or X-Forwarded-For; clients must not be able to set it themselves),
-- else the peer address.
local function client_of(req)
    local id
    if cfg.client_id_header then
        id = req:header(cfg.client_id_header)
    end
    if type(id) ~= "string" or id == "" then
        id = req.client
    end
    if type(id) ~= "string" then
        return nil
    end
    return (id:gsub("[^\33-\126]", "_"):sub(1, 128))
end

local function generate(req)
    local doc = req:json()
    if type(doc) ~= "table" then
        abort(422, "invalid", "expected {\"audio_midi_id\": string, \"options\": {...}}")
    end
    local id = doc.audio_midi_id
    if type(id) ~= "string" then
        abort(422, "invalid", "audio_midi_id must be a string")
    end
    for k in pairs(doc) do
        if k ~= "audio_midi_id" and k ~= "options" then
            abort(422, "invalid", "unknown field '" .. tostring(k) .. "'")
        end
    end
    local opts, outputs = options.validate(doc.options, true)
    if not opts then
        abort(422, "invalid", outputs)
    end
    if not tasks.is_uuid(id) then
        abort(404, "not_found", "no such audio_midi id")
    end
    local stored = {}
    for k, v in pairs(opts) do
        stored[k] = v
    end
    stored.outputs = outputs

    -- A retried request with the same Idempotency-Key gets the first answer
    -- and enqueues nothing (docs/reliability.md Q6).
    local slot, replay = idempotency.begin(req, "generate",
        idempotency.fingerprint({ audio_midi_id = id, options = stored }))
    if replay then
        return replay.status, replay.body, replay.headers
    end
    return idempotency.run(slot, req, function()
        return generate_row(req, id, stored)
    end)
end


-- Records the task in the row, then enqueues it (generate's side effects).
generate_row = function(req, id, stored)
    local db = web.db()
    local task_id = tasks.new_task_id()
    -- 1. the row first (the system of record) ...
    local row, err, state = db:tx(function(tx)
        local rows = assert(tx:query("SELECT id, status, task_id, audio_path, "
            .. "duration_s FROM audio_midi WHERE id = $1 FOR UPDATE", id))
        local r = rows[1]
        if not r then
            abort(404, "not_found", "no such audio_midi id")
        end
        if nonnull(r.task_id) and (r.status == "pending" or r.status == "processing") then
            abort(409, "conflict", "a transcription of this upload is already "
                  .. r.status .. " (task " .. r.task_id .. ")")
        end
        assert(tx:exec("UPDATE audio_midi SET task_id = $2, status = 'pending', "
            .. "options = $3::jsonb, error_message = NULL, progress = NULL "
            .. "WHERE id = $1", id, task_id, pg.json(stored)))
        r.task_id = task_id
        r.options = stored
        r.client = client_of(req)
        return r
    end)
    if not row then
        if http.is_abort(err) then
            error(err, 0)
        end
        web.check(nil, err, state)
    end
    -- 2. ... then the queue. If Redis is down the row stays pending and the
    -- reconciler enqueues it once Redis is back.
    local q, qerr = conn.queue()
    local ok
    if q then
        ok, qerr = tasks.enqueue(q, row)
    end
    if not ok then
        local status, body = web.error(req, 503, "unavailable",
            "queue unavailable (" .. tostring(qerr) .. "); the task is recorded "
            .. "and will be enqueued when the queue is back", { task_id = task_id })
        return status, body, { ["Retry-After"] = web.RETRY_AFTER }
    end
    return 202, { task_id = task_id }
end


---------------------------------------------------------------- status

local function status(req)
    local db = web.db()
    local row = row_or_404(db, req.params.id, status_doc.COLUMNS)
    local t
    if status_doc.running(row) then
        local q = conn.queue()
        if q then
            local ok, hash = pcall(q.get, q, row.task_id)
            t = ok and hash or nil
        end
    end
    return 200, status_doc.doc(row, t)
end


---------------------------------------------------------------- downloads

local function result_file(req, column, content_type, ext)
    local db = web.db()
    local row = row_or_404(db, req.params.id, "status, " .. column .. " AS path")
    local status, body, headers
    if row.status == "completed" then
        status, body, headers = media.serve(req, nonnull(row.path), {
            content_type = content_type,
            download_name = req.params.id .. "." .. ext,
        })
    end
    if not status then
        if body then                -- nil, err: the store failed
            web.unavailable("media store", body)
        end
        abort(404, "not_ready", "no " .. ext .. " result for this id (status "
              .. row.status .. ")")
    end
    return status, body, headers
end


local function get_midi(req)
    return result_file(req, "midi_path", "audio/midi", "mid")
end


-- ?format=csv: the notes as `wtt transcribe --notes-csv` writes them
-- (the official header, bends as extra columns), made from the stored
-- notes file.
local function notes_csv(req)
    local db = web.db()
    local row = row_or_404(db, req.params.id, "status, notes_path")
    local bytes, rerr
    if row.status == "completed" then
        bytes, rerr = media.read(nonnull(row.notes_path))
        if not bytes and rerr ~= "not found" then
            web.unavailable("media store", rerr)
        end
    end
    if not bytes then
        abort(404, "not_ready", "no csv result for this id (status "
              .. row.status .. ")")
    end
    local ok, doc = pcall(json.decode, bytes)
    if not ok or type(doc) ~= "table" or type(doc.notes) ~= "table" then
        error("stored notes file unreadable: " .. tostring(row.notes_path))
    end
    local notes = {}
    for i, n in ipairs(doc.notes) do
        notes[i] = { start_s = n.start_s, end_s = n.end_s, pitch = n.pitch_midi,
                     amplitude = n.amplitude, bends = n.pitch_bends }
    end
    return 200, require("wtt.notes_io").to_csv(notes), {
        ["Content-Type"] = "text/csv; charset=utf-8",
        ["X-Content-Type-Options"] = "nosniff",
        ["Content-Disposition"] = 'attachment; filename="' .. req.params.id
                                  .. '.csv"',
    }
end


local function get_notes(req)
    local fmt = req.query.format
    if fmt == "csv" then
        return notes_csv(req)
    elseif fmt ~= nil and fmt ~= "json" then
        abort(422, "invalid", "format must be json or csv")
    end
    return result_file(req, "notes_path", "application/json", "json")
end


---------------------------------------------------------------- audio

local AUDIO_TYPES = { wav = "audio/wav", mp3 = "audio/mpeg",
                      flac = "audio/flac", ogg = "audio/ogg" }

-- The uploaded recording itself, for the page's player: inline, with
-- Range (browsers seek by ranges). It never changes under its id.
local function get_audio(req)
    local db = web.db()
    local row = row_or_404(db, req.params.id, "audio_path")
    local name = nonnull(row.audio_path)
    local ext = type(name) == "string" and name:match("%.(%w+)$")
    local status, body, headers
    if AUDIO_TYPES[ext] then
        status, body, headers = media.serve(req, name, {
            content_type = AUDIO_TYPES[ext],
            headers = {
                ["Content-Disposition"] = 'inline; filename="' .. req.params.id
                                          .. "." .. ext .. '"',
                ["Cache-Control"] = "private, max-age=86400",
            },
        })
    end
    if not status then
        if body then                -- nil, err: the store failed
            web.unavailable("media store", body)
        end
        abort(404, "not_found", "no recording for this id")
    end
    return status, body, headers
end


---------------------------------------------------------------- retune

local function retune(req)
    local doc = req:json()
    local opts, why = options.validate(doc, false)
    if not opts then
        abort(422, "invalid", why)
    end
    local db = web.db()
    local row = row_or_404(db, req.params.id, "status, posteriors_path")
    if row.status ~= "completed" then
        abort(409, "conflict", "the transcription is " .. row.status .. ", not completed")
    end
    -- The loader reads a path: with the pg store, this replica's cached
    -- copy (fetched on the first re-tune here, then kept in memory by
    -- wtt.service.posteriors).
    local posteriors = require "wtt.service.posteriors"
    local pname, found = nonnull(row.posteriors_path), false
    local post, err
    if media.valid_name(pname) and posteriors.held(pname) then
        found = true
        post, err = posteriors.open(pname)
    else
        post, err = media.with_local_path(pname, function(path)
            found = true
            return posteriors.open(pname, path)
        end)
    end
    if not post then
        if found then
            error(err)
        end
        if err ~= "not found" then
            web.unavailable("media store", err)
        end
        abort(409, "conflict", "no posteriorgram is stored for this transcription")
    end
    local model = require "wtt.model"
    local notes_io = require "wtt.notes_io"
    local notes
    notes, err = post:notes(model.note_options(opts))
    if not notes then
        abort(422, "invalid", tostring(err))
    end
    local mname, nname = media.new_name("mid"), media.new_name("json")
    local mbytes, ok
    mbytes, err = notes_io.encode_midi(notes, { instrument = "guitar" })
    if mbytes then
        ok, err = media.put(mname, mbytes)
    end
    if ok then
        ok, err = media.put(nname, notes_io.to_json(notes, { retune = opts }))
    end
    if not ok then
        media.remove(mname)
        media.remove(nname)
        if web.storage_full(err) then
            web.insufficient("media store", err)
        end
        error("cannot write the retuned result: " .. tostring(err))
    end
    local n, uerr, state = db:exec("UPDATE audio_midi SET midi_path = $2, "
        .. "notes_path = $3, note_count = $4, "
        .. "options = options || jsonb_build_object('retune', $5::jsonb) "
        .. "WHERE id = $1 AND status = 'completed'",
        req.params.id, mname, nname, #notes, pg.json(opts))
    if n ~= 1 then
        media.remove(mname)
        media.remove(nname)
        if not n then
            web.check(nil, uerr, state)
        end
        abort(409, "conflict", "the transcription changed meanwhile")
    end
    return 200, { n_notes = #notes, options = opts }
end


local JSON_BODY = { body = "raw" }

return {
    { "POST", "/transcribe/upload/", upload,
      { body = "form", max_body = cfg.max_upload, max_file = cfg.max_upload } },
    { "POST", "/transcribe/generate/", generate, JSON_BODY },
    { "GET", "/transcribe/status/:id/", status },
    { "GET", "/transcribe/midi/:id/", get_midi },
    { "GET", "/transcribe/notes/:id/", get_notes },
    { "GET", "/transcribe/audio/:id/", get_audio },
    { "POST", "/transcribe/retune/:id/", retune, JSON_BODY },
}
