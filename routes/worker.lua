-- The worker-facing endpoints (docs/api.md): the audio a worker downloads
-- (GET /media/{name}) and the results it uploads (POST
-- /transcribe/_result/{id}/). Both need the worker token, checked by the
-- routes' `auth` option before any body is read: a caller without it is
-- answered 401 whatever it sends, and its body is never parsed.
--
-- Workers never reach the database: a stored result waits in the task hash
-- until the worker completes the task and the subscriber
-- (lua/wtt/subscriber.lua) records it.

local failpoint = require "wtt.failpoint"
local http = require "wtt.http"
local json = require "wtt.json"
local pg = require "wtt.pg"
local midi = require "wtt.midi"
local sys = require "wtt.sys"
local config = require "wtt.service.config"
local media = require "wtt.service.media"
local tasks = require "wtt.service.tasks"
local web = require "wtt.service.web"

local cfg = config.get()
local abort = http.abort
local one_file = web.one_file

local MEDIA_TYPES = {
    wav = "audio/wav", mp3 = "audio/mpeg", flac = "audio/flac",
    ogg = "audio/ogg", mid = "audio/midi", json = "application/json",
    npy = "application/octet-stream",
}

local NPY_MAGIC = "\147NUMPY"


---------------------------------------------------------------- media

-- From whichever store is configured (wtt.service.media): with the
-- PostgreSQL store any replica serves what any other received.
local function get_media(req)
    local name = req.params.name
    if not media.valid_name(name) then
        abort(404, "not_found", "no such media file")
    end
    local status, body, headers = media.serve(req, name, {
        content_type = MEDIA_TYPES[name:match("%.(%w+)$")],
        download_name = name,
    })
    if not status then
        if body then                -- nil, err: the store failed
            web.unavailable("media store", body)
        end
        abort(404, "not_found", "no such media file")
    end
    return status, body, headers
end


---------------------------------------------------------------- _result

local function read_part(file)
    return file and assert(sys.read_file(file.path)) or nil
end


-- The uploaded parts, validated before anything is written.
-- @return midi bytes, notes bytes, posteriors bytes, number of notes
local function validated_parts(req)
    local mfile, nfile, pfile = one_file(req, "midi"), one_file(req, "notes"),
                                one_file(req, "posteriors")
    if not mfile and not nfile then
        abort(400, "bad_request", "expected a 'midi' and/or 'notes' part")
    end
    local mbytes, nbytes, pbytes = read_part(mfile), read_part(nfile),
                                   read_part(pfile)
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
    if pbytes and pbytes:sub(1, #NPY_MAGIC) ~= NPY_MAGIC then
        abort(422, "invalid_posteriors", "posteriors must be a .npy file")
    end
    return mbytes, nbytes, pbytes, n_notes
end


-- Writes the parts under content-derived names: a replay of the same bytes
-- maps to the same files, so a retried POST stores nothing twice.
-- @return names { midi, notes, posteriors }, created (names new here)
local function write_parts(id, mbytes, nbytes, pbytes)
    local names, created = {}, {}
    local function put(kind, bytes, ext)
        if not bytes then
            return
        end
        local name = media.content_name(id .. ":" .. kind, bytes, ext)
        local there, eerr = media.exists(name)
        if there == nil then
            for _, c in ipairs(created) do
                media.remove(c)
            end
            web.unavailable("media store", eerr)
        end
        if not there then
            local ok, err = media.put(name, bytes)
            if not ok then
                -- Nothing of this POST stays: the store's write is atomic
                -- (no partial name), and the names made before it go. A
                -- full disk is 507, which the worker retries (H10).
                media.remove(name)
                for _, c in ipairs(created) do
                    media.remove(c)
                end
                if web.storage_full(err) then
                    web.insufficient("media store", err)
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
    return names, created
end


local function post_result(req)
    local id = req.params.id
    if not tasks.is_task_id(id) then
        abort(404, "not_found", "no such task")
    end
    local claim = req.form.claim
    if type(claim) ~= "string" or not claim:match("^%d+$") or #claim > 20 then
        abort(400, "bad_request", "form field 'claim' (the claim token) is required")
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
    local mbytes, nbytes, pbytes, n_notes = validated_parts(req)
    local names, created = write_parts(id, mbytes, nbytes, pbytes)
    -- Test program only (lua/wtt/failpoint.lua): a crash with the files
    -- written and Redis not told (docs/reliability.md W8).
    failpoint.hit("result.files_written")
    local fp = pg.sha256hex((names.midi or "") .. "|" .. (names.notes or "")
                            .. "|" .. (names.posteriors or ""))
    local how, err, stored = q:store_result(id, claim, fp, {
        midi = names.midi, notes = names.notes,
        posteriors = names.posteriors, n_notes = n_notes, claim = claim,
    })
    if how then
        -- Test program only: a crash with the result stored in Redis and
        -- the worker not answered (docs/reliability.md W6, W8).
        failpoint.hit("result.stored")
        return 200, { stored = how == "stored", replay = how == "replay",
                      midi = names.midi, notes = names.notes,
                      posteriors = names.posteriors, n_notes = n_notes }
    end
    for _, c in ipairs(created) do
        media.remove(c)
    end
    if err == "not found" then
        abort(404, "not_found", "no such task")
    elseif err == "stale" then
        abort(409, "stale_claim", "the claim token is not the task's current claim")
    elseif err == "result exists" then
        local ok, existing = pcall(json.decode, stored or "")
        return web.error(req, 409, "result_exists",
            "a different result is already stored for this task",
            { result = ok and existing or nil })
    elseif err == "not processing" then
        abort(409, "not_processing", "the task is " .. tostring(t.status)
              .. ", not processing")
    elseif err and err:find("^WRONGTYPE") then
        error("the task key of " .. id .. ": " .. err)
    end
    web.unavailable("queue", err)
end


return {
    { "GET", "/media/*name", get_media, { auth = web.require_worker } },
    { "POST", "/transcribe/_result/:id/", post_result,
      { body = "form", max_body = cfg.max_result, max_file = cfg.max_result,
        auth = web.require_worker } },
}
