--- Audio bombs for the H4 specs (docs/reliability.md): small files whose
-- headers or structure claim far more work than their size, made at run
-- time (the point of a bomb is that it is small, so none is committed).
-- Hand-made bytes where the format is simple (FLAC of constant subframes,
-- WAV and RF64 headers, Ogg pages, ID3v2 tags), libsndfile's own encoders
-- through the FFI where a codec is needed (Opus, MP3), as in
-- spec/01-unit/audio_spec.lua.

local bit = require "bit"
local ffi = require "ffi"

local _M = {}

-- Own type and function names (the symbols renamed with __asm__), so that
-- this can be loaded beside audio_spec.lua's declarations.
ffi.cdef [[
typedef struct {
    int64_t frames;
    int     samplerate;
    int     channels;
    int     format;
    int     sections;
    int     seekable;
} wtt_bombs_SF_INFO;
typedef struct wtt_bombs_SNDFILE wtt_bombs_SNDFILE;
wtt_bombs_SNDFILE *wtt_bombs_sf_open(const char *, int, wtt_bombs_SF_INFO *)
    __asm__("sf_open");
int64_t wtt_bombs_sf_writef(wtt_bombs_SNDFILE *, const float *, int64_t)
    __asm__("sf_writef_float");
int wtt_bombs_sf_close(wtt_bombs_SNDFILE *) __asm__("sf_close");
const char *wtt_bombs_sf_strerror(wtt_bombs_SNDFILE *) __asm__("sf_strerror");
]]
local sf = {
    open = ffi.C.wtt_bombs_sf_open, writef = ffi.C.wtt_bombs_sf_writef,
    close = ffi.C.wtt_bombs_sf_close, strerror = ffi.C.wtt_bombs_sf_strerror,
}

local SFM_WRITE = 0x20
_M.SF = {
    wav = 0x010000, flac = 0x170000, ogg = 0x200000, mpeg = 0x230000,
    pcm_16 = 0x0002, opus = 0x0064, mp3 = 0x0082,
}


local function u16(v)
    return string.char(v % 256, math.floor(v / 256) % 256)
end

local function u32(v)
    return string.char(v % 256, math.floor(v / 256) % 256,
                       math.floor(v / 65536) % 256,
                       math.floor(v / 16777216) % 256)
end

local function u64(v)
    return u32(v % 4294967296) .. u32(math.floor(v / 4294967296))
end

local function be(v, n)
    local out = {}
    for i = n, 1, -1 do
        out[i] = string.char(v % 256)
        v = math.floor(v / 256)
    end
    return table.concat(out)
end


local function write(path, data)
    local f = assert(io.open(path, "wb"))
    assert(f:write(data))
    assert(f:close())
    return path
end
_M.write = write


---------------------------------------------------------------- FLAC

local function crc8(s)
    local c = 0
    for i = 1, #s do
        c = bit.bxor(c, s:byte(i))
        for _ = 1, 8 do
            c = bit.band(bit.band(c, 0x80) ~= 0
                         and bit.bxor(bit.lshift(c, 1), 0x07)
                         or bit.lshift(c, 1), 0xFF)
        end
    end
    return c
end

local function crc16(s)
    local c = 0
    for i = 1, #s do
        c = bit.bxor(c, bit.lshift(s:byte(i), 8))
        for _ = 1, 8 do
            c = bit.band(bit.band(c, 0x8000) ~= 0
                         and bit.bxor(bit.lshift(c, 1), 0x8005)
                         or bit.lshift(c, 1), 0xFFFF)
        end
    end
    return c
end

-- FLAC's UTF-8-like coding of a frame number (< 2^21 here).
local function utf8n(n)
    if n < 0x80 then
        return string.char(n)
    elseif n < 0x800 then
        return string.char(0xC0 + math.floor(n / 64), 0x80 + n % 64)
    elseif n < 0x10000 then
        return string.char(0xE0 + math.floor(n / 4096),
                           0x80 + math.floor(n / 64) % 64, 0x80 + n % 64)
    end
    return string.char(0xF0 + math.floor(n / 262144),
                       0x80 + math.floor(n / 4096) % 64,
                       0x80 + math.floor(n / 64) % 64, 0x80 + n % 64)
end


--- A silent FLAC of `seconds` at `rate` Hz, `channels` channels, 16 bits:
-- frames of 65535 samples whose subframes are CONSTANT 0 (a dozen bytes
-- each), so four hours at 1 kHz is a few KB. opts.unknown: STREAMINFO's
-- total sample count 0 (unknown length: only decoding finds the end).
-- @return the file's bytes
function _M.flac_silent(seconds, rate, channels, opts)
    opts = opts or {}
    channels = channels or 1
    local total = math.floor(seconds * rate)
    local B = 65535
    -- STREAMINFO: blocksizes, frame sizes unknown, then 64 bits of rate
    -- (20), channels - 1 (3), bits - 1 (5), total samples (36), MD5 0.
    local t = opts.unknown and 0 or total
    local hi = rate * 256 + (channels - 1) * 32 + 15   -- 28 bits
    local packed = be(hi * 16 + math.floor(t / 4294967296), 4)
        .. be(t % 4294967296, 4)
    local info = be(B, 2) .. be(B, 2) .. be(0, 3) .. be(0, 3) .. packed
        .. string.rep("\0", 16)
    local out = { "fLaC", "\128" .. be(#info, 3), info }
    local n, done = 0, 0
    while done < total do
        local size = math.min(B, total - done)
        local head = "\255\248" .. string.char(0x70, (channels - 1) * 16)
            .. utf8n(n) .. be(size - 1, 2)
        head = head .. string.char(crc8(head))
        local frame = head .. string.rep("\0\0\0", channels)
        out[#out + 1] = frame .. be(crc16(frame), 2)
        n, done = n + 1, done + size
    end
    return table.concat(out)
end


---------------------------------------------------------------- WAV

--- A 16-bit PCM WAV header (with WAVE_FORMAT_EXTENSIBLE above 2
-- channels) declaring `data_bytes` of audio.
function _M.wav_header(rate, channels, data_bytes)
    local block = channels * 2
    local fmt
    if channels > 2 then
        fmt = u16(0xFFFE) .. u16(channels) .. u32(rate) .. u32(rate * block)
            .. u16(block) .. u16(16) .. u16(22) .. u16(16) .. u32(0)
            -- KSDATAFORMAT_SUBTYPE_PCM
            .. "\1\0\0\0\0\0\16\0\128\0\0\170\0\56\155\113"
    else
        fmt = u16(1) .. u16(channels) .. u32(rate) .. u32(rate * block)
            .. u16(block) .. u16(16)
    end
    local riff = math.min(4 + 8 + #fmt + 8 + data_bytes, 4294967295)
    return "RIFF" .. u32(riff) .. "WAVE" .. "fmt " .. u32(#fmt) .. fmt
        .. "data" .. u32(math.min(data_bytes, 4294967295))
end


--- A WAV of `seconds` of a quiet 440 Hz tone on every channel.
function _M.wav(seconds, rate, channels)
    local frames = math.floor(seconds * rate)
    local buf = ffi.new("int16_t[?]", frames * channels)
    local w = 2 * math.pi * 440 / rate
    for i = 0, frames - 1 do
        local v = math.floor(3000 * math.sin(w * i))
        for c = 0, channels - 1 do
            buf[i * channels + c] = v
        end
    end
    return _M.wav_header(rate, channels, frames * channels * 2)
        .. ffi.string(buf, frames * channels * 2)
end


--- A WAV whose header declares `declared` bytes of audio (up to 4 GiB,
-- the RIFF field's limit) over `actual` bytes of silence.
function _M.wav_lying(declared, actual)
    return _M.wav_header(8000, 1, declared) .. string.rep("\0", actual)
end


--- An RF64 (64-bit WAV) whose ds64 chunk declares `declared` bytes of
-- audio (terabytes) over `actual` bytes of silence.
function _M.rf64_lying(declared, actual)
    local fmt = u16(1) .. u16(1) .. u32(8000) .. u32(16000) .. u16(2)
        .. u16(16)
    local ds64 = u64(declared + 80) .. u64(declared) .. u64(declared / 2)
        .. u32(0)
    return "RF64" .. u32(4294967295) .. "WAVE" .. "ds64" .. u32(#ds64)
        .. ds64 .. "fmt " .. u32(#fmt) .. fmt .. "data" .. u32(4294967295)
        .. string.rep("\0", actual)
end


---------------------------------------------------------------- encoded

--- Encodes `seconds` of a 440 Hz tone with libsndfile (format = major |
-- subtype) into `path`; returns the bytes.
function _M.encode(path, format, rate, seconds)
    local info = ffi.new("wtt_bombs_SF_INFO")
    info.samplerate, info.channels, info.format = rate, 1, format
    local h = sf.open(path, SFM_WRITE, info)
    assert(h ~= nil, ffi.string(sf.strerror(nil)))
    local frames = math.floor(seconds * rate)
    local buf = ffi.new("float[?]", math.max(frames, 1))
    for i = 0, frames - 1 do
        buf[i] = 0.3 * math.sin(2 * math.pi * 440 * i / rate)
    end
    assert(sf.writef(h, buf, frames) == frames)
    assert(sf.close(h) == 0)
    local f = assert(io.open(path, "rb"))
    local data = f:read("*a")
    f:close()
    return data
end


---------------------------------------------------------------- Ogg

local CRC32 = {}
for i = 0, 255 do
    local c = bit.lshift(i, 24)
    for _ = 1, 8 do
        c = bit.band(c, 0x80000000) ~= 0
            and bit.bxor(bit.lshift(c, 1), 0x04C11DB7) or bit.lshift(c, 1)
    end
    CRC32[i] = c
end

local function ogg_crc(s)
    local c = 0
    for i = 1, #s do
        c = bit.bxor(bit.lshift(c, 8),
                     CRC32[bit.band(bit.bxor(bit.rshift(c, 24), s:byte(i)),
                                    0xFF)])
    end
    return bit.tobit(c)
end


--- The Ogg stream `data` (one logical stream) chained `n` times, each
-- link with its own serial number and fixed page CRCs.
function _M.ogg_chain(data, n)
    local pages = {}
    local pos = 1
    while pos <= #data do
        assert(data:sub(pos, pos + 3) == "OggS", "not an Ogg page")
        local nseg = data:byte(pos + 26)
        local len = 27 + nseg
        for k = 1, nseg do
            len = len + data:byte(pos + 26 + k)
        end
        pages[#pages + 1] = data:sub(pos, pos + len - 1)
        pos = pos + len
    end
    local out = {}
    for link = 1, n do
        local serial = u32(0x10000 + link)
        for _, p in ipairs(pages) do
            local page = p:sub(1, 14) .. serial .. p:sub(19, 22) .. "\0\0\0\0"
                .. p:sub(27)
            local c = ogg_crc(page)
            out[#out + 1] = page:sub(1, 22)
                .. u32(c < 0 and c + 4294967296 or c) .. page:sub(27)
        end
    end
    return table.concat(out)
end


---------------------------------------------------------------- ID3

local function syncsafe(n)
    return string.char(math.floor(n / 2097152) % 128,
                       math.floor(n / 16384) % 128,
                       math.floor(n / 128) % 128, n % 128)
end


--- An ID3v2.3 tag declaring `declared` bytes (at most 2^28 - 1) of which
-- `actual` are present (padding), before `mp3`.
function _M.id3(declared, actual, mp3)
    return "ID3\3\0\0" .. syncsafe(declared) .. string.rep("\0", actual)
        .. mp3
end


return _M
