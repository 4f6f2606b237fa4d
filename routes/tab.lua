-- GET /transcribe/tab/{id}/: the tablature of a completed transcription
-- (docs/api.md), rendered from its stored notes without running the model,
-- and cached per option set in the media store's tab/ directory.

local http = require "wtt.http"
local log = require "wtt.log"
local sys = require "wtt.sys"
local media = require "wtt.service.media"
local tasks = require "wtt.service.tasks"
local web = require "wtt.service.web"

local abort = http.abort
local nonnull = tasks.nonnull
local concat = table.concat
local sort = table.sort
local format = string.format
local tostring = tostring
local type = type
local pairs = pairs

-- Query keys: the format and tab.options' keys. Others are refused, so a
-- misspelt option is a 422, not silently the default.
local OPTION_KEYS = { "instrument", "tuning", "capo", "max_fret",
                      "fold_octaves", "tempo", "time_signature", "pickup" }
local QUERY_KEYS = { format = true }
for _, k in ipairs(OPTION_KEYS) do
    QUERY_KEYS[k] = true
end

-- Accept media types -> format, for requests without ?format=.
local ACCEPT = {
    ["text/plain"] = "ascii",
    ["application/json"] = "json",
    ["application/vnd.recordare.musicxml+xml"] = "musicxml",
    ["application/xml"] = "musicxml",
    ["text/xml"] = "musicxml",
    ["application/x-guitar-pro"] = "gp",
}
local DEFAULT_FORMAT = "ascii"


-- The format an Accept header asks for: the acceptable type with the
-- highest q (the first of equals) that names a format; else the default.
local function negotiate(accept)
    if type(accept) ~= "string" then
        return DEFAULT_FORMAT
    end
    local ranges = {}
    for item in accept:gmatch("[^,]+") do
        local mtype = item:match("^%s*([^;%s]+)")
        local q = tonumber(item:match(";%s*[qQ]%s*=%s*([%d%.]+)")) or 1
        if mtype and q > 0 then
            ranges[#ranges + 1] = { mtype:lower(), q, #ranges }
        end
    end
    sort(ranges, function(a, b)
        if a[2] ~= b[2] then
            return a[2] > b[2]
        end
        return a[3] < b[3]
    end)
    for _, r in ipairs(ranges) do
        if ACCEPT[r[1]] then
            return ACCEPT[r[1]]
        end
    end
    return DEFAULT_FORMAT
end


-- A stable text of a Lua value (keys sorted), for the cache key.
local function canonical(v)
    if type(v) ~= "table" then
        return type(v) == "string" and format("%q", v) or tostring(v)
    end
    local keys = {}
    for k in pairs(v) do
        keys[#keys + 1] = tostring(k)
    end
    sort(keys)
    local parts = {}
    for i, k in ipairs(keys) do
        local val = v[k]
        if val == nil then
            val = v[tonumber(k)]
        end
        parts[i] = k .. "=" .. canonical(val)
    end
    return "{" .. concat(parts, ",") .. "}"
end


-- The format and the checked options of the request.
-- @return fmt, opts | nil, option, detail (a 422 naming the option)
local function request_options(req, tab)
    local raw = {}
    for k, v in pairs(req.query) do
        if not QUERY_KEYS[k] then
            return nil, k, "unknown option '" .. tostring(k) .. "' (options: "
                           .. "format, " .. concat(OPTION_KEYS, ", ") .. ")"
        end
        if type(v) == "table" then
            return nil, k, k .. " is given more than once"
        end
        raw[k] = v
    end
    local fmt = raw.format
    if fmt == nil or fmt == "" then
        fmt = negotiate(req:header("Accept"))
    elseif not tab.FORMAT_INFO[fmt] then
        return nil, "format", "format must be one of "
            .. concat(tab.FORMATS, ", ") .. ", got '" .. tostring(fmt) .. "'"
    end
    raw.format = nil
    local opts, err, option = tab.options(raw)
    if not opts then
        option = tostring(option)
        err = tostring(err)
        if not err:find(option, 1, true) then
            err = option .. ": " .. err
        end
        return nil, option, err
    end
    return fmt, opts
end


local function row_or_404(id)
    if not tasks.is_uuid(id) then
        abort(404, "not_found", "no such audio_midi id")
    end
    local rows = web.check(web.db():read("SELECT status, notes_path, "
        .. "midi_path, original_name FROM audio_midi WHERE id = $1", id))
    if not rows[1] then
        abort(404, "not_found", "no such audio_midi id")
    end
    return rows[1]
end


-- Renders `fmt` from the notes file `source` (a media name).
local function render(source, opts, fmt, tab)
    local notes_in = require "wtt.tab.notes_in"
    local kind = notes_in.kind(source)
    local bytes, err = media.read(source)
    if not bytes then
        error("cannot read the notes file " .. source .. ": " .. tostring(err))
    end
    local notes
    notes, err = notes_in.decode(bytes, kind, source)
    if not notes then
        error("stored notes file unreadable: " .. tostring(err))
    end
    local doc
    doc, err = tab.build(notes, opts)
    if not doc then
        abort(422, "unprocessable", "cannot tab these notes with these "
              .. "options: " .. tostring(err))
    end
    local out, ctype_or_err = tab.encode(doc, fmt)
    if not out then
        error("tab encoder " .. fmt .. " failed: " .. tostring(ctype_or_err))
    end
    return out
end


local function get_tab(req)
    local tab = require "wtt.tab"
    local fmt, opts, detail = request_options(req, tab)
    if not fmt then
        return web.error(req, 422, "invalid", detail, { option = opts })
    end
    local id = req.params.id
    local row = row_or_404(id)
    -- the notes file, or the MIDI when only MIDI was asked for
    local source = row.status == "completed"
        and (nonnull(row.notes_path) or nonnull(row.midi_path))
    local there, eerr = false, nil
    if source then
        there, eerr = media.exists(source)
        if there == nil then
            web.unavailable("media store", eerr)
        end
    end
    if not there then
        abort(404, "not_ready", "no notes for this id (status "
              .. tostring(row.status) .. ")")
    end
    local name = nonnull(row.original_name)
    opts.title = name and name:gsub("%.[%w]+$", "") or id
    local key = concat({ "tab", source, canonical(opts), tab.signature(),
                         fmt }, "\0")
    local cname = media.tab_name(key, fmt)
    local cpath = media.tab_path(cname)
    local info = tab.FORMAT_INFO[fmt]
    local headers = { ["X-Wtt-Cache"] = "hit", Vary = "Accept" }
    if sys.exists(cpath) ~= "file" then
        local bytes = render(source, opts, fmt, tab)
        headers["X-Wtt-Cache"] = "miss"
        local ok, err = media.write_tab(cname, bytes)
        if not ok then
            -- a full disk costs the cache, not the answer
            log.warn("tab.cache_write_failed", { name = cname,
                                                 error = tostring(err) })
            headers["Content-Type"] = info[1]
            headers["X-Content-Type-Options"] = "nosniff"
            headers["Content-Disposition"] = format(
                'attachment; filename="%s.%s"', id, info[2])
            return 200, bytes, headers
        end
    end
    return http.file(req, cpath, {
        content_type = info[1], nofollow = true,
        download_name = id .. "." .. info[2], headers = headers,
    })
end


return {
    { "GET", "/transcribe/tab/:id/", get_tab },
}
