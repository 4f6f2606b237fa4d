--- The media store: one flat directory (WTT_MEDIA_DIR) of files with
-- server-generated names `^[0-9a-f]{32}\.(wav|mp3|flac|ogg|mid|json|npy)$`,
-- and the tab cache in its subdirectory tab/ (tab_name, tab_path).
-- Client file names are data only (OWASP file upload rules); a name that
-- does not match the pattern is never opened. Files are written atomically
-- (temp file + rename in the same directory) and served with O_NOFOLLOW.

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


--- The media directory, created on first use.
function _M.dir()
    local dir = config.get().media_dir
    if sys.exists(dir) ~= "dir" then
        os.execute("mkdir -p '" .. dir:gsub("'", "'\\''") .. "'")
    end
    return dir
end


--- Full path of a valid name, or nil.
function _M.path(name)
    if not _M.valid_name(name) then
        return nil
    end
    return config.get().media_dir .. "/" .. name
end


--- Writes `bytes` under `name` atomically. true | nil, err.
function _M.write(name, bytes)
    assert(_M.valid_name(name), "invalid media name")
    return sys.write_file(_M.dir() .. "/" .. name, bytes)
end


--- Moves an uploaded temp file (req.files entry) into the store under
-- `name`. The rename is atomic when the temp dir is on the same file
-- system; otherwise the bytes are copied with an atomic write.
function _M.keep_upload(req, file, name)
    assert(_M.valid_name(name), "invalid media name")
    local dest = _M.dir() .. "/" .. name
    local ok, err = req:keep(file, dest)
    if ok then
        return true
    end
    -- keep() took ownership but the rename failed (EXDEV): copy instead.
    local data = sys.read_file(file.path)
    if not data then
        os.remove(file.path)
        return nil, err
    end
    ok, err = sys.write_file(dest, data)
    os.remove(file.path)
    return ok, err
end


function _M.exists(name)
    local p = _M.path(name)
    return p ~= nil and sys.exists(p) == "file"
end


function _M.remove(name)
    local p = _M.path(name)
    if p then
        os.remove(p)
    end
end


-- Rendered tablature (routes/tab.lua's cache) lives in the subdirectory
-- tab/, out of /media/'s reach, under names as strict as the store's:
-- `^[0-9a-f]{32}\.(ascii|json|musicxml|alphatex|gp)$`, derived from the
-- cache key.
local TAB_DIR = "tab"
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
    return config.get().media_dir .. "/" .. TAB_DIR .. "/" .. name
end


--- Writes a rendered tab under its cache name atomically. true | nil, err
function _M.write_tab(name, bytes)
    local path = assert(_M.tab_path(name), "invalid tab cache name")
    local dir = _M.dir() .. "/" .. TAB_DIR
    if sys.exists(dir) ~= "dir" then
        os.execute("mkdir -p '" .. dir:gsub("'", "'\\''") .. "'")
    end
    return sys.write_file(path, bytes)
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
