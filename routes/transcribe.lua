-- The transcription API (design.md §7, docs/api.md): upload, generate,
-- status, midi, notes, retune, metrics, and the worker's result upload.
--
-- PostgreSQL is the system of record: a row is written before its task is
-- enqueued, so a task Redis never got (or lost) is re-enqueued by the
-- reconciler (lua/wtt/reconciler.lua). Workers never reach the database;
-- the subscriber (lua/wtt/subscriber.lua) records their results.

local http = require "wtt.http"
local json = require "wtt.json"
local pg = require "wtt.pg"
local redis = require "wtt.redis"
local audio = require "wtt.audio"
local midi = require "wtt.midi"
local config = require "wtt.service.config"
local conn = require "wtt.service.conn"
local idempotency = require "wtt.service.idempotency"
local media = require "wtt.service.media"
local options = require "wtt.service.options"
local tasks = require "wtt.service.tasks"
local web = require "wtt.service.web"

local cfg = config.get()
local nonnull = tasks.nonnull
local abort = http.abort


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


local function one_file(req, field)
    local found
    for _, f in ipairs(req.files) do
        if f.field == field then
            if found then
                abort(400, "bad_request", "more than one '" .. field .. "' part")
            end
            found = f
        end
    end
    return found
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
    -- and enqueues nothing (reliability.md Q6).
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

local function parse_progress(s)
    if type(s) ~= "string" then
        return nil
    end
    local d, t = s:match("^(%d+)/(%d+)$")
    if not d then
        return nil
    end
    return { done = tonumber(d), total = tonumber(t) }
end


local function status(req)
    local db = web.db()
    local row = row_or_404(db, req.params.id, "id, status, task_id, progress, "
        .. "midi_path, notes_path, error_message, note_count, duration_s")
    local progress = parse_progress(nonnull(row.progress))
    local state = row.status
    -- While running, the task hash is fresher than the row (progress
    -- events are throttled, and pub/sub may have dropped a `claimed`).
    if (state == "pending" or state == "processing") and nonnull(row.task_id) then
        local q = conn.queue()
        if q then
            local ok, t = pcall(q.get, q, row.task_id)
            if ok and type(t) == "table" and t.status == "processing" then
                state = "processing"
                progress = parse_progress(t.progress) or progress
            end
        end
    end
    local completed = row.status == "completed"
    return 200, {
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


---------------------------------------------------------------- downloads

local function result_file(req, column, content_type, ext)
    local db = web.db()
    local row = row_or_404(db, req.params.id, "status, " .. column .. " AS path")
    local path = row.status == "completed" and media.path(nonnull(row.path))
    if not path then
        abort(404, "not_ready", "no " .. ext .. " result for this id (status "
              .. row.status .. ")")
    end
    return http.file(req, path, {
        content_type = content_type, nofollow = true,
        download_name = req.params.id .. "." .. ext,
    })
end


local function get_midi(req)
    return result_file(req, "midi_path", "audio/midi", "mid")
end


local function get_notes(req)
    return result_file(req, "notes_path", "application/json", "json")
end


---------------------------------------------------------------- media

local MEDIA_TYPES = {
    wav = "audio/wav", mp3 = "audio/mpeg", flac = "audio/flac",
    ogg = "audio/ogg", mid = "audio/midi", json = "application/json",
    npy = "application/octet-stream",
}

local function get_media(req)
    web.require_worker(req)
    local name = req.params.name
    local path = media.path(name)
    if not path then
        abort(404, "not_found", "no such media file")
    end
    return http.file(req, path, {
        content_type = MEDIA_TYPES[name:match("%.(%w+)$")], nofollow = true,
        download_name = name,
    })
end


---------------------------------------------------------------- _result

-- Records the uploaded names in the task hash if the claim still matches.
-- KEYS[1] task hash; ARGV claim, fingerprint, uploads JSON.
local STORE = redis.script([[
local h = redis.call('HMGET', KEYS[1], 'claim', 'status', 'upload_fp', 'uploads')
if not h[1] and not h[2] then return {-1, ''} end
if h[1] ~= ARGV[1] then return {-2, h[1] or ''} end
if h[3] then
  if h[3] == ARGV[2] then return {2, h[4] or ''} end
  return {-3, h[4] or ''}
end
if h[2] ~= 'processing' then return {-4, h[2] or ''} end
redis.call('HSET', KEYS[1], 'upload_fp', ARGV[2], 'uploads', ARGV[3], 'result', ARGV[3])
return {1, ARGV[3]}
]])

local function task_key(id)
    return cfg.key_prefix .. "task:" .. id
end


local function read_part(file)
    return file and assert(require("wtt.sys").read_file(file.path)) or nil
end


local function post_result(req)
    web.require_worker(req)
    local id = req.params.id
    if not tasks.is_task_id(id) then
        abort(404, "not_found", "no such task")
    end
    local claim = req.form.claim
    if type(claim) ~= "string" or not claim:match("^%d+$") or #claim > 20 then
        abort(400, "bad_request", "form field 'claim' (the claim token) is required")
    end
    local mfile, nfile, pfile = one_file(req, "midi"), one_file(req, "notes"),
                                one_file(req, "posteriors")
    if not mfile and not nfile then
        abort(400, "bad_request", "expected a 'midi' and/or 'notes' part")
    end
    local q = web.queue()
    local t, gerr = q:get(id)
    if not t then
        if gerr then
            web.unavailable("queue", gerr)
        end
        abort(404, "not_found", "no such task")
    end
    if t.claim ~= claim then
        abort(409, "stale_claim", "the claim token is not the task's current "
              .. "claim (the task was reaped or re-claimed)")
    end
    -- Validate everything before writing anything.
    local mbytes, nbytes, pbytes = read_part(mfile), read_part(nfile), read_part(pfile)
    if mbytes then
        local ok, err = midi.validate(mbytes)
        if not ok then
            abort(422, "invalid_midi", tostring(err))
        end
    end
    local n_notes
    if nbytes then
        local ok, doc = pcall(json.decode, nbytes)
        if not ok or type(doc) ~= "table" then
            abort(422, "invalid_notes", "notes must be a JSON object")
        end
        if type(doc.notes) == "table" then
            n_notes = #doc.notes
        end
    end
    if pbytes and pbytes:sub(1, 6) ~= "\147NUMPY" then
        abort(422, "invalid_posteriors", "posteriors must be a .npy file")
    end
    -- Content-derived names: a replay of the same bytes maps to the same
    -- files, so a retried POST stores nothing twice.
    local names, created = {}, {}
    local function put(kind, bytes, ext)
        if not bytes then
            return
        end
        local name = media.content_name(id .. ":" .. kind, bytes, ext)
        if not media.exists(name) then
            local ok, err = media.write(name, bytes)
            if not ok then
                for _, c in ipairs(created) do
                    media.remove(c)
                end
                error("cannot store the result: " .. tostring(err))
            end
            created[#created + 1] = name
        end
        names[kind] = name
    end
    put("midi", mbytes, "mid")
    put("notes", nbytes, "json")
    put("posteriors", pbytes, "npy")
    local fp = pg.sha256hex((names.midi or "") .. "|" .. (names.notes or "")
                            .. "|" .. (names.posteriors or ""))
    local uploads = json.encode({ midi = names.midi, notes = names.notes,
                                  posteriors = names.posteriors,
                                  n_notes = n_notes, claim = claim })
    local r = conn.redis()
    local res, err = r:eval(STORE, { task_key(id) }, { claim, fp, uploads })
    if not res then
        for _, c in ipairs(created) do
            media.remove(c)
        end
        web.unavailable("queue", err)
    end
    local code = res[1]
    if code == 1 or code == 2 then
        return 200, { stored = code == 1, replay = code == 2, midi = names.midi,
                      notes = names.notes, posteriors = names.posteriors,
                      n_notes = n_notes }
    end
    for _, c in ipairs(created) do
        media.remove(c)
    end
    if code == -1 then
        abort(404, "not_found", "no such task")
    elseif code == -2 then
        abort(409, "stale_claim", "the claim token is not the task's current claim")
    elseif code == -3 then
        local existing = res[2] ~= "" and json.decode(res[2]) or nil
        return web.error(req, 409, "result_exists",
            "a different result is already stored for this task", { result = existing })
    end
    abort(409, "not_processing", "the task is " .. tostring(res[2]) .. ", not processing")
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
    local ppath = media.path(nonnull(row.posteriors_path))
    if not ppath or not media.exists(row.posteriors_path) then
        abort(409, "conflict", "no posteriorgram is stored for this transcription")
    end
    local model = require "wtt.model"
    local notes_io = require "wtt.notes_io"
    local post, err = model.load_posteriors(ppath)
    if not post then
        error(err)
    end
    local notes
    notes, err = post:notes(model.note_options(opts))
    if not notes then
        abort(422, "invalid", tostring(err))
    end
    local mname, nname = media.new_name("mid"), media.new_name("json")
    media.dir()
    local ok
    ok, err = notes_io.write_midi(media.path(mname), notes, { instrument = "guitar" })
    if ok then
        ok, err = media.write(nname, notes_io.to_json(notes, { retune = opts }))
    end
    if not ok then
        media.remove(mname)
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


---------------------------------------------------------------- metrics

local INFO_SECTIONS = { "server", "clients", "memory", "stats" }
local INFO_KEYS = {
    server = { redis_version = true, uptime_in_seconds = true, redis_mode = true },
    clients = { connected_clients = true, blocked_clients = true,
                pubsub_clients = true },
    memory = { used_memory = true, used_memory_human = true, maxmemory = true,
               maxmemory_policy = true, mem_fragmentation_ratio = true },
    stats = { total_commands_processed = true, instantaneous_ops_per_sec = true,
              pubsub_channels = true, pubsub_patterns = true,
              evicted_keys = true, rejected_connections = true },
}

local function metrics(req)
    local out = { redis = {}, plugins = {} }
    local q, qerr = conn.queue()
    if q then
        local ok, stats, serr = pcall(q.stats, q)
        out.queue = ok and stats or json.null
        if not ok or not stats then
            out.queue_error = tostring(ok and serr or stats)
        end
        local wok, workers = pcall(q.workers, q)
        if wok and type(workers) == "table" then
            out.workers = workers
            out.workers_alive = #workers
        end
    else
        out.queue_error = tostring(qerr)
    end
    local r = conn.redis()
    for _, section in ipairs(INFO_SECTIONS) do
        local text = r and r:call("INFO", section)
        if type(text) == "string" and text:find(":", 1, true) then
            local s = {}
            for k, v in text:gmatch("([%w_]+):([^\r\n]*)") do
                if INFO_KEYS[section][k] then
                    s[k] = tonumber(v) or v
                end
            end
            out.redis[section] = s
        end
    end
    local ok, plugins = pcall(require, "wtt.plugins")
    if ok then
        for _, p in ipairs(plugins.list()) do
            out.plugins[#out.plugins + 1] = { name = p.name, version = p.version }
        end
    end
    if #out.plugins == 0 then
        out.plugins = nil
    end
    local db = conn.pg()
    if db then
        local rows = db:read("SELECT status, count(*) AS n FROM audio_midi GROUP BY status")
        if rows then
            out.db = {}
            for _, row in ipairs(rows) do
                out.db[row.status] = row.n
            end
        end
    end
    return 200, out
end


local JSON_BODY = { body = "raw" }

return {
    { "POST", "/transcribe/upload/", upload,
      { body = "form", max_body = cfg.max_upload, max_file = cfg.max_upload } },
    { "POST", "/transcribe/generate/", generate, JSON_BODY },
    { "GET", "/transcribe/status/:id/", status },
    { "GET", "/transcribe/midi/:id/", get_midi },
    { "GET", "/transcribe/notes/:id/", get_notes },
    { "POST", "/transcribe/retune/:id/", retune, JSON_BODY },
    { "POST", "/transcribe/_result/:id/", post_result,
      { body = "form", max_body = cfg.max_result, max_file = cfg.max_result } },
    { "GET", "/transcribe/metrics/", metrics },
    { "GET", "/media/*name", get_media },
}
