--- Static files for the web page (routes/web.lua, docs/web.md): safe
-- names, content types, validators (ETag, 304) and gzip for text.
--
-- Paths arrive percent-decoded (an encoded slash is a slash by then), so
-- safety comes from what a name may look like, never from undoing tricks:
-- every segment must match SEGMENT (no "..", no leading dot, no NUL, no
-- backslash), only known extensions are served (a route's own `.lua` never
-- is), and the file must resolve (symlinks followed) inside its root.

local http = require "wtt.http"
local pg = require "wtt.pg"
local sys = require "wtt.sys"
local zlib = require "wtt.zlib"

local _M = {}

local TYPES = {
    html = "text/html; charset=utf-8",
    js = "text/javascript; charset=utf-8",
    mjs = "text/javascript; charset=utf-8",
    css = "text/css; charset=utf-8",
    svg = "image/svg+xml",
    json = "application/json",
    webmanifest = "application/manifest+json",
    png = "image/png",
    ico = "image/x-icon",
    woff2 = "font/woff2",
    woff = "font/woff",
    otf = "font/otf",
    eot = "application/vnd.ms-fontobject",
    sf2 = "application/octet-stream",
    sf3 = "application/octet-stream",
}
_M.TYPES = TYPES

-- Worth compressing: text. Fonts and soundfonts are compressed already.
local COMPRESS = { html = true, js = true, mjs = true, css = true,
                   svg = true, json = true, webmanifest = true }

local SEGMENT = "^[%w][%w_%-%.]*$"
local MAX_SEGMENTS = 4
local MIN_GZIP = 1024


--- The file under `root` that `rel` names, and its extension; nil when the
-- name is not one this module serves (the caller answers 404).
-- @param allow optional set of extensions (default: every known type)
function _M.resolve(root, rel, allow)
    if type(rel) ~= "string" or rel == "" or #rel > 200 then
        return nil
    end
    local n = 0
    for seg in (rel .. "/"):gmatch("([^/]*)/") do
        n = n + 1
        if n > MAX_SEGMENTS or not seg:match(SEGMENT) or seg:find("..", 1, true) then
            return nil
        end
    end
    if rel:sub(-1) == "/" then
        return nil
    end
    local ext = rel:match("%.(%w+)$")
    if not ext or not TYPES[ext] or (allow and not allow[ext]) then
        return nil
    end
    local path = root .. "/" .. rel
    -- A symlink anywhere on the way must not lead outside the root.
    local real = sys.realpath(path)
    local real_root = sys.realpath(root)
    if not real or not real_root
        or real:sub(1, #real_root + 1) ~= real_root .. "/" then
        return nil
    end
    return path, ext
end


-- gzip framing around zlib's raw deflate (RFC 1952): header, data, CRC-32
-- and length, both little-endian.
local function le32(x)
    return string.char(x % 256, math.floor(x / 256) % 256,
                       math.floor(x / 65536) % 256,
                       math.floor(x / 16777216) % 256)
end

function _M.gzip(bytes)
    local body, err = zlib.deflate(bytes, 9)
    if not body then
        return nil, err
    end
    return "\31\139\8\0\0\0\0\0\2\255" .. body .. le32(zlib.crc32(bytes))
        .. le32(#bytes % 4294967296)
end


-- True when Accept-Encoding accepts gzip (and does not refuse it, q=0).
local function accepts_gzip(req)
    local ae = req:header("Accept-Encoding")
    if type(ae) ~= "string" then
        return false
    end
    for item in ae:lower():gmatch("[^,]+") do
        local coding = item:match("^%s*([^;%s]+)")
        local q = tonumber(item:match(";%s*q%s*=%s*([%d%.]+)")) or 1
        if coding == "gzip" or coding == "x-gzip" then
            return q > 0
        end
    end
    return false
end


-- True when If-None-Match names `etag` (or is *).
local function not_modified(req, etag)
    local inm = req:header("If-None-Match")
    if type(inm) ~= "string" then
        return false
    end
    if inm:match("^%s*%*%s*$") then
        return true
    end
    for tag in inm:gmatch("[^,]+") do
        tag = tag:match("^%s*(.-)%s*$"):gsub("^W/", "")
        if tag == etag then
            return true
        end
    end
    return false
end


-- Per Lua state: file bytes' ETag and gzip by path and content hash, so a
-- file read anew (routes/web/ is re-read on each request, an edit shows at
-- once) is compressed only when it changed.
local gz_cache = {}
local vendor_cache = {}


--- Answers `path` (a resolved file of extension `ext`).
-- opts: cache_control (header value), headers (extra), immutable_read
-- (true: read the file once per Lua state and keep it; for files that only
-- change with an upgrade, like alphaTab's).
-- @return status, body, headers
function _M.serve(req, path, ext, opts)
    opts = opts or {}
    local entry = opts.immutable_read and vendor_cache[path]
    if not entry then
        local bytes = sys.read_file(path)
        if not bytes then
            http.abort(404, "not_found", "no such file")
        end
        local etag = '"' .. pg.sha256hex(bytes):sub(1, 24) .. '"'
        entry = { bytes = bytes, etag = etag }
        if opts.immutable_read then
            vendor_cache[path] = entry
        end
    end
    local headers = {
        ["Content-Type"] = TYPES[ext],
        ["X-Content-Type-Options"] = "nosniff",
        ["Cache-Control"] = opts.cache_control or "no-cache",
        ETag = entry.etag,
    }
    for k, v in pairs(opts.headers or {}) do
        headers[k] = v
    end
    local gzip_ok = COMPRESS[ext] and #entry.bytes >= MIN_GZIP
    if gzip_ok then
        headers.Vary = "Accept-Encoding"
    end
    if gzip_ok and accepts_gzip(req) then
        -- A distinct validator for the compressed variant (RFC 9110 8.8.3).
        local etag = entry.etag:sub(1, -2) .. '-gz"'
        headers.ETag = etag
        if not_modified(req, etag) then
            return 304, "", headers
        end
        local gz = gz_cache[entry.etag]
        if not gz then
            gz = assert(_M.gzip(entry.bytes))
            gz_cache[entry.etag] = gz
        end
        headers["Content-Encoding"] = "gzip"
        return 200, gz, headers
    end
    if not_modified(req, entry.etag) then
        return 304, "", headers
    end
    headers["Accept-Ranges"] = "bytes"
    -- Ranges only on the identity body (soundfonts, fonts, or a client
    -- that asked for no compression).
    local offset, length = http.parse_range(req:header("Range"), #entry.bytes)
    if offset == false then
        headers["Content-Range"] = "bytes */" .. #entry.bytes
        return 416, "", headers
    elseif offset then
        headers["Content-Range"] = ("bytes %d-%d/%d"):format(
            offset, offset + length - 1, #entry.bytes)
        return 206, entry.bytes:sub(offset + 1, offset + length), headers
    end
    return 200, entry.bytes, headers
end


return _M
