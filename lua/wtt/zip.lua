--- A small zip archive writer (PKWARE APPNOTE 6.3: local headers, data,
-- central directory; no zip64, no encryption), for .gp files.
--
--     local zip = require "wtt.zip"
--     local bytes, err = zip.archive({
--         { name = "VERSION", data = "7.0", store = true },
--         { name = "Content/score.gpif", data = xml },   -- deflated
--     }, { level = 6 })
--
-- Entries are deflated (wtt.zlib, raw deflate) unless `store` is set or
-- deflating would not make them smaller. Every entry gets the same fixed
-- timestamp (1980-01-01 00:00, the zip epoch), so equal input gives equal
-- bytes. Names are written as UTF-8 (general purpose flag bit 11).

local zlib = require "wtt.zlib"
local bit = require "bit"

local band, rshift = bit.band, bit.rshift
local char = string.char
local concat = table.concat
local type = type
local ipairs = ipairs

local _M = {}

local LOCAL_SIG = "PK\3\4"
local CENTRAL_SIG = "PK\1\2"
local END_SIG = "PK\5\6"
local FLAG_UTF8 = 0x0800
local DOS_DATE = 0x0021          -- 1980-01-01: day 1, month 1, year 0
local DOS_TIME = 0
local MAX_32 = 0xFFFFFFFF
local MAX_ENTRIES = 0xFFFF


local function u16(n)
    return char(band(n, 0xFF), band(rshift(n, 8), 0xFF))
end


-- n may exceed 2^31 (a CRC): bit ops work on its low 32 bits as a signed
-- number, which band/rshift handle.
local function u32(n)
    if n >= 0x80000000 then
        n = n - 0x100000000
    end
    return char(band(n, 0xFF), band(rshift(n, 8), 0xFF),
                band(rshift(n, 16), 0xFF), band(rshift(n, 24), 0xFF))
end


--- Builds a zip archive in memory.
-- @param entries list of { name = path inside the archive ("dir/" for a
--   directory), data = string, store = true to skip deflate }
-- @param opts { level = deflate level 0-9 (default 6) } or nil
-- @return the archive bytes | nil, err
function _M.archive(entries, opts)
    if type(entries) ~= "table" then
        error("entries must be a list", 2)
    end
    local level = opts and opts.level or 6
    if #entries > MAX_ENTRIES then
        return nil, "zip failed: more than 65535 entries"
    end
    local parts, central = {}, {}
    local offset = 0
    for i, e in ipairs(entries) do
        local name, data = e.name, e.data or ""
        if type(name) ~= "string" or name == "" or type(data) ~= "string" then
            error("entry " .. i .. " needs a name and string data", 2)
        end
        if #name > 0xFFFF then
            return nil, "zip failed: entry name too long: " .. name:sub(1, 64)
        end
        if #data > MAX_32 then
            return nil, "zip failed: entry too large: " .. name
        end
        local crc = zlib.crc32(data)
        local method, body = 0, data
        if not e.store and #data > 0 then
            local packed, err = zlib.deflate(data, level)
            if not packed then
                return nil, "zip failed: " .. name .. ": " .. err
            end
            if #packed < #data then
                method, body = 8, packed
            end
        end
        local version = method == 8 and 20 or 10
        -- version needed, flags, method, time, date, crc, sizes, name length
        local common = u16(version) .. u16(FLAG_UTF8) .. u16(method)
                       .. u16(DOS_TIME) .. u16(DOS_DATE) .. u32(crc)
                       .. u32(#body) .. u32(#data) .. u16(#name)
        parts[#parts + 1] = LOCAL_SIG .. common .. u16(0) .. name
        parts[#parts + 1] = body
        -- made by (2.0, MS-DOS attributes), then the same fields; no extra
        -- field or comment, disk 0, attributes: directory bit for "dir/".
        local attrs = name:sub(-1) == "/" and 0x10 or 0
        central[#central + 1] = CENTRAL_SIG .. u16(20) .. common .. u16(0)
                                .. u16(0) .. u16(0) .. u16(0) .. u32(attrs)
                                .. u32(offset) .. name
        offset = offset + 30 + #name + #body
        if offset > MAX_32 then
            return nil, "zip failed: archive larger than 4 GiB"
        end
    end
    local dir = concat(central)
    parts[#parts + 1] = dir
    parts[#parts + 1] = END_SIG .. u16(0) .. u16(0) .. u16(#entries)
                        .. u16(#entries) .. u32(#dir) .. u32(offset) .. u16(0)
    return concat(parts)
end


return _M
