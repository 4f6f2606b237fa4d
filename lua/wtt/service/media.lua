--- The media store: uploads and results under server-generated names
-- `^[0-9a-f]{32}\.(wav|mp3|flac|ogg|mid|json|npy)$`, in one of two
-- backends chosen by WTT_MEDIA_STORE (docs/operations.md, "The shared media
-- store"):
--
-- * dir (default): one flat local directory, WTT_MEDIA_DIR
--   (wtt.service.media.dir); for one web host.
-- * pg: PostgreSQL large objects, seen by every web replica on the same
--   database (wtt.service.media.pg), with a bounded local cache.
--
-- Both give the same calls: put, keep_upload, exists, read, remove,
-- local_path (for C code that opens paths) and serve (GET with Range).
-- Client file names are data only (OWASP file upload rules); a name that
-- does not match the pattern is never looked up. Writes are atomic (a name
-- appears only when its bytes are complete) and idempotent (a name that
-- exists keeps its bytes: names are never reused, and content names,
-- content_name, always name the same bytes).

local sys = require "wtt.sys"
local pg = require "wtt.pg"
local config = require "wtt.service.config"

local _M = {}

local EXTS = { wav = true, mp3 = true, flac = true, ogg = true, mid = true,
               json = true, npy = true }
_M.EXTS = EXTS

local urandom


--- `n` random bytes as lowercase hex (2n characters), from /dev/urandom.
function _M.random_hex(n)
    if not urandom then
        urandom = assert(io.open("/dev/urandom", "rb"))
    end
    local bytes = assert(urandom:read(n))
    return (bytes:gsub(".", function(c)
        return string.format("%02x", c:byte())
    end))
end


--- True when `name` is a media name the store could have generated.
function _M.valid_name(name)
    if type(name) ~= "string" or #name > 37 then
        return false
    end
    local hex, ext = name:match("^([0-9a-f]+)%.(%l+%d?)$")
    return hex ~= nil and #hex == 32 and EXTS[ext] == true
end


--- A fresh random name with extension `ext`.
function _M.new_name(ext)
    assert(EXTS[ext], "unknown media extension")
    return _M.random_hex(16) .. "." .. ext
end


--- A name derived from content (same bytes + same scope -> same name).
function _M.content_name(scope, bytes, ext)
    assert(EXTS[ext], "unknown media extension")
    return pg.sha256hex(scope .. "\0" .. bytes):sub(1, 32) .. "." .. ext
end


---------------------------------------------------------------- the store

local BACKENDS = {
    dir = "wtt.service.media.dir",
    pg = "wtt.service.media.pg",
}

local store


--- The store of this Lua state, made from the configuration on first use:
-- WTT_MEDIA_STORE=dir (WTT_MEDIA_DIR) or pg (PostgreSQL large objects, the
-- connection of wtt.service.conn, a local cache in WTT_MEDIA_DIR/cache).
function _M.store()
    if store then
        return store
    end
    local cfg = config.get()
    local backend = require(assert(BACKENDS[cfg.media_store],
                                   "unknown media store"))
    if cfg.media_store == "pg" then
        store = backend.new({
            db = require("wtt.service.conn").pg,
            cache_dir = cfg.media_dir .. "/cache",
            cache_bytes = cfg.media_cache_bytes,
            valid = _M.valid_name, random_hex = _M.random_hex,
        })
    else
        store = backend.new({ dir = cfg.media_dir, valid = _M.valid_name,
                              random_hex = _M.random_hex,
                              cache_bytes = cfg.media_cache_bytes })
    end
    return store
end


--- A store of `kind` ("dir" or "pg") with `opts` (the backend's new()
-- options; valid and random_hex are filled in). For specs and tools.
function _M.new_store(kind, opts)
    local backend = require(assert(BACKENDS[kind], "unknown media store"))
    local o = { valid = _M.valid_name, random_hex = _M.random_hex }
    for k, v in pairs(opts) do
        o[k] = v
    end
    return backend.new(o)
end


--- Forgets this state's store (specs that change the configuration).
function _M.reset()
    store = nil
end


-- Every call below checks the name first: an invalid name is never looked
-- up, whatever the backend.

--- Writes `bytes` under `name` atomically (visible only when complete); a
-- name that exists keeps its bytes (content names: the same bytes).
-- @return true | nil, err
function _M.put(name, bytes)
    assert(_M.valid_name(name), "invalid media name")
    return _M.store():put(name, bytes)
end


--- Stores an uploaded temp file (a req.files entry) under `name`, without
-- reading it into memory; the temp file is gone after.
-- @return true | nil, err
function _M.keep_upload(req, file, name)
    assert(_M.valid_name(name), "invalid media name")
    return _M.store():keep_upload(req, file, name)
end


--- True when `name` is a valid name the store holds | nil, err (the
-- store could not tell: its database is down).
function _M.exists(name)
    if not _M.valid_name(name) then
        return false
    end
    return _M.store():exists(name)
end


--- All bytes of `name` | nil, "not found" (an invalid or missing name)
-- | nil, err.
function _M.read(name)
    if not _M.valid_name(name) then
        return nil, "not found"
    end
    return _M.store():read(name)
end


--- Removes `name` (nothing for an invalid or missing name).
-- @return true | nil, err
function _M.remove(name)
    if not _M.valid_name(name) then
        return true
    end
    return _M.store():remove(name)
end


--- A local file path holding `name`, for C code that opens paths
-- | nil, err ("not found" for an invalid or missing name). With the pg
-- store it is a cached copy: read it at once, it may be evicted later.
function _M.local_path(name)
    if not _M.valid_name(name) then
        return nil, "not found"
    end
    return _M.store():local_path(name)
end


--- Calls `fn(path)` with a local file holding `name` and returns what it
-- returns; with the pg store, fetched again and `fn` called once more when
-- `fn` failed because another serving thread evicted the cached copy
-- meanwhile.
-- @return fn's results | nil, err (invalid or missing name, store failure)
function _M.with_local_path(name, fn)
    if not _M.valid_name(name) then
        return nil, "not found"
    end
    return _M.store():with_local_path(name, fn)
end


--- Answers a GET for `name` with Range support (http.file's semantics).
-- @param opts http.file's { content_type, download_name, headers }
-- @return status, body, headers | nil for an invalid or missing name
--   | nil, err (the store failed: answer 503)
function _M.serve(req, name, opts)
    if not _M.valid_name(name) then
        return nil
    end
    return _M.store():serve(req, name, opts)
end


-- Rendered tablature (routes/tab.lua's cache) is a local cache of each
-- replica, out of /media/'s reach: the dir store keeps it in WTT_MEDIA_DIR/
-- tab/, the pg store in its bounded cache directory. Names are as strict
-- as the store's: `^[0-9a-f]{32}\.(ascii|json|musicxml|alphatex|gp)$`,
-- derived from the cache key.
local TAB_EXTS = { ascii = true, json = true, musicxml = true,
                   alphatex = true, gp = true }


--- The cache name of `key` (any string) for a tab `format`.
function _M.tab_name(key, format)
    assert(TAB_EXTS[format], "unknown tab format")
    return pg.sha256hex(key):sub(1, 32) .. "." .. format
end


--- Full path of a valid tab cache name, or nil.
function _M.tab_path(name)
    if type(name) ~= "string" or #name > 41 then
        return nil
    end
    local hex, ext = name:match("^([0-9a-f]+)%.(%l+)$")
    if not hex or #hex ~= 32 or not TAB_EXTS[ext] then
        return nil
    end
    return _M.store():cache_dir() .. "/" .. name
end


--- Writes a rendered tab under its cache name atomically. true | nil, err
function _M.write_tab(name, bytes)
    local path = assert(_M.tab_path(name), "invalid tab cache name")
    local ok, err = sys.write_file(path, bytes)
    if ok then
        _M.store():cache_added(name)
    end
    return ok, err
end


-- Magic bytes of the accepted audio containers -> extension.
--- The audio type of `head` (the first bytes of a file) by content, or nil.
function _M.sniff_audio(head)
    if #head >= 12 and head:sub(1, 4) == "RIFF" and head:sub(9, 12) == "WAVE" then
        return "wav"
    end
    if head:sub(1, 4) == "fLaC" then
        return "flac"
    end
    if head:sub(1, 4) == "OggS" then
        return "ogg"
    end
    if head:sub(1, 3) == "ID3" then
        return "mp3"
    end
    local b1, b2 = head:byte(1, 2)
    -- MPEG audio frame sync: 11 set bits, layer bits not 00.
    if b1 == 0xFF and b2 and b2 >= 0xE0 and (b2 % 8) >= 2 then
        return "mp3"
    end
    return nil
end


--- Reads the first `n` bytes of a file.
function _M.head(path, n)
    local f = io.open(path, "rb")
    if not f then
        return ""
    end
    local s = f:read(n or 16) or ""
    f:close()
    return s
end

return _M
