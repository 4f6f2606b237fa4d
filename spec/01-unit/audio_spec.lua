-- wtt.audio: decoding, downmix, resampling, limits and bad input.
--
-- Test files are made here: WAV bytes written from Lua (including headers
-- that lie), and FLAC, Ogg/Vorbis, Ogg/Opus and MP3 encoded through
-- libsndfile's own encoders (libFLAC, libvorbisenc, libopus, LAME), called
-- with the FFI, since Debian's flac/oggenc/lame/sox CLIs are not installed.

local ffi = require "ffi"
local audio = require "wtt.audio"
local sys = require "wtt.sys"

local bit = require "bit"

ffi.cdef [[
typedef struct {
    int64_t frames;
    int     samplerate;
    int     channels;
    int     format;
    int     sections;
    int     seekable;
} wtt_spec_SF_INFO;
typedef struct wtt_spec_SNDFILE wtt_spec_SNDFILE;
wtt_spec_SNDFILE *sf_open(const char *path, int mode, wtt_spec_SF_INFO *info);
int64_t sf_writef_float(wtt_spec_SNDFILE *sf, const float *ptr, int64_t n);
int sf_close(wtt_spec_SNDFILE *sf);
const char *sf_strerror(wtt_spec_SNDFILE *sf);
int __asan_address_is_poisoned(void const volatile *addr);
]]

-- Under AddressSanitizer freed blocks sit in its quarantine (256 MB by
-- default), so resident memory says little about what we keep alive.
local ASAN = pcall(function()
    return ffi.C.__asan_address_is_poisoned
end)

local SFM_WRITE = 0x20
local SF = {
    wav = 0x010000, aiff = 0x020000, au = 0x030000, voc = 0x080000,
    w64 = 0x0B0000, wavex = 0x130000, flac = 0x170000, caf = 0x180000,
    ogg = 0x200000, rf64 = 0x220000, mpeg = 0x230000,
    pcm_16 = 0x0002, float = 0x0006, vorbis = 0x0060, opus = 0x0064,
    mp3 = 0x0082,
}

local dir


-- Little-endian packing for hand-made headers.
local function u16(v)
    return string.char(v % 256, math.floor(v / 256) % 256)
end


local function u32(v)
    return string.char(v % 256, math.floor(v / 256) % 256,
                       math.floor(v / 65536) % 256,
                       math.floor(v / 16777216) % 256)
end


--- WAV header: PCM (tag 1) or IEEE float (tag 3).
local function wav_header(rate, channels, bits, data_bytes, tag)
    local block = channels * bits / 8
    return "RIFF" .. u32(36 + data_bytes) .. "WAVE"
        .. "fmt " .. u32(16) .. u16(tag or 1) .. u16(channels)
        .. u32(rate) .. u32(rate * block) .. u16(block) .. u16(bits)
        .. "data" .. u32(data_bytes)
end


--- Interleaved samples from gen(frame, channel) (0-based) as int16 or
--- float32 bytes.
local function samples(frames, channels, gen, float)
    local n = frames * channels
    local buf = ffi.new(float and "float[?]" or "int16_t[?]", n)
    local k = 0
    for i = 0, frames - 1 do
        for c = 0, channels - 1 do
            local v = gen(i, c)
            if float then
                buf[k] = v
            else
                v = math.floor(v * 32767 + 0.5)
                buf[k] = math.max(-32768, math.min(32767, v))
            end
            k = k + 1
        end
    end
    return ffi.string(buf, n * (float and 4 or 2))
end


local function write(name, data)
    local path = dir .. "/" .. name
    assert(sys.write_file(path, data))
    return path
end


local function sine(freq, rate, amp)
    return function(i)
        return (amp or 0.5) * math.sin(2 * math.pi * freq * i / rate)
    end
end


--- A 16-bit PCM WAV file.
local function wav(name, rate, channels, frames, gen)
    local data = samples(frames, channels, gen)
    return write(name, wav_header(rate, channels, 16, #data) .. data)
end


--- Encodes with libsndfile (format = major | subtype).
local function encode(name, format, rate, channels, frames, gen)
    local path = dir .. "/" .. name
    local info = ffi.new("wtt_spec_SF_INFO")
    info.samplerate = rate
    info.channels = channels
    info.format = format
    local sf = ffi.C.sf_open(path, SFM_WRITE, info)
    assert(sf ~= nil, ffi.string(ffi.C.sf_strerror(nil)))
    local block = 4096
    local buf = ffi.new("float[?]", block * channels)
    local i = 0
    while i < frames do
        local n = math.min(block, frames - i)
        for k = 0, n - 1 do
            for c = 0, channels - 1 do
                buf[k * channels + c] = gen(i + k, c)
            end
        end
        assert(ffi.C.sf_writef_float(sf, buf, n) == n)
        i = i + n
    end
    assert(ffi.C.sf_close(sf) == 0)
    return path
end


local function floats(pcm)
    local s = pcm:to_string()
    return ffi.cast("const float *", s), s
end


--- Magnitude of `pcm` at `freq` (Goertzel), normalised so that a sine of
--- amplitude A gives about A / 2.
local function goertzel(pcm, freq)
    local p, anchor = floats(pcm)
    local n = #pcm
    local c = 2 * math.cos(2 * math.pi * freq / pcm:rate())
    local s1, s2 = 0, 0
    for i = 0, n - 1 do
        s1, s2 = p[i] + c * s1 - s2, s1
    end
    local _ = anchor
    return math.sqrt(math.max(0, s1 * s1 + s2 * s2 - c * s1 * s2)) / n
end


--- Frequency from rising zero crossings over the middle 80 %.
local function zc_freq(pcm)
    local p, anchor = floats(pcm)
    local n = #pcm
    local a, b = math.floor(n * 0.1), math.floor(n * 0.9)
    local first, last, count
    for i = a + 1, b - 1 do
        if p[i - 1] < 0 and p[i] >= 0 then
            if first == nil then
                first = i
            else
                count = (count or 0) + 1
            end
            last = i
        end
    end
    local _ = anchor
    return count * pcm:rate() / (last - first)
end


local function flac_zero_total(path)
    local b = assert(sys.read_file(path))
    -- STREAMINFO starts at byte 8 (0-based): the total sample count is the
    -- low 4 bits of its byte 13 and its bytes 14-17.
    local hi = bit.band(b:byte(8 + 13 + 1), 0xF0)
    return b:sub(1, 8 + 13) .. string.char(hi) .. "\0\0\0\0"
        .. b:sub(8 + 18 + 1)
end


lazy_setup(function()
    dir = assert(sys.mkdtemp("wtt-audio-spec-"))
end)


lazy_teardown(function()
    if dir then
        sys.rmtree(dir)
    end
end)


describe("wtt.audio resampling and downmix", function()

    it("turns 44.1 kHz stereo into 22050 Hz mono of librosa's length",
       function()
        local n = 44101
        local path = wav("st.wav", 44100, 2, n, sine(440, 44100))
        local pcm, info = audio.load(path)
        assert.truthy(pcm, info)
        assert.equal(22050, pcm:rate())
        assert.equal(math.ceil(n * 22050 / 44100), #pcm)
        assert.is_true(math.abs(#pcm - n * 22050 / 44100) <= 1)
        assert.equal("wav", info.format)
        assert.equal("pcm_16", info.subtype)
        assert.equal(44100, info.sample_rate)
        assert.equal(2, info.channels)
        assert.equal(n, info.frames)
        assert.equal(n, info.frames_read)
        assert.is_false(info.truncated)
    end)

    it("keeps the frequency of a sine", function()
        local path = wav("f.wav", 44100, 2, 44100 * 2, sine(1000, 44100))
        local pcm = assert(audio.load(path))
        assert.near(1000, zc_freq(pcm), 1)
        assert.is_true(goertzel(pcm, 1000) > 0.2)
        assert.is_true(goertzel(pcm, 1500) < 0.01)
        assert.near(0.5 / math.sqrt(2), pcm:rms(), 0.01)
        assert.near(0.5, pcm:peak(), 0.02)
    end)

    it("passes 22050 Hz mono through with its exact samples", function()
        local n = 12345
        local gen = sine(440, 22050)
        local path = wav("p.wav", 22050, 1, n, gen)
        local pcm = assert(audio.load(path))
        assert.equal(n, #pcm)
        for _, i in ipairs({ 1, 2, 100, 7777, n }) do
            local q = math.floor(gen(i - 1) * 32767 + 0.5)
            assert.equal(q / 32768, pcm:get(i))
        end
    end)

    it("mixes channels down to their mean", function()
        local path = wav("mean.wav", 22050, 2, 1000, function(_, c)
            return c == 0 and 0.5 or 0.25
        end)
        local pcm = assert(audio.load(path))
        local l = math.floor(0.5 * 32767 + 0.5) / 32768
        local r = math.floor(0.25 * 32767 + 0.5) / 32768
        assert.near((l + r) / 2, pcm:get(500), 1e-7)

        local anti = wav("anti.wav", 44100, 2, 44100, function(i, c)
            local v = sine(440, 44100)(i)
            return c == 0 and v or -v
        end)
        assert.equal(0, assert(audio.load(anti)):peak())
    end)

    it("resamples other rates and honours opts.rate", function()
        local path = wav("48k.wav", 48000, 1, 48000, sine(440, 48000))
        local pcm = assert(audio.load(path))
        assert.equal(math.ceil(48000 * (22050 / 48000)), #pcm)
        assert.near(440, zc_freq(pcm), 1)

        local p16 = assert(audio.load(path, { rate = 16000 }))
        assert.equal(16000, p16:rate())
        assert.equal(16000, #p16)
        assert.near(440, zc_freq(p16), 1)
    end)

    it("gives the same samples for any block and read size", function()
        local path = wav("blk.wav", 44100, 2, 30011, sine(330, 44100))
        local whole = assert(audio.load(path)):to_string()
        local r = assert(audio.open(path, { block = 256 }))
        local parts = {}
        while true do
            local pcm, err = r:read(1000)
            assert.is_nil(err)
            if not pcm then
                break
            end
            assert.is_true(#pcm <= 1000)
            parts[#parts + 1] = pcm:to_string()
        end
        r:close()
        assert.equal(#whole, #table.concat(parts))
        assert.equal(whole, table.concat(parts))
    end)

    it("offers the soxr quality recipes", function()
        local path = wav("q.wav", 44100, 1, 4410, sine(440, 44100))
        for _, q in ipairs({ "hq", "vhq", "mq", "lq", "qq" }) do
            local pcm = assert(audio.load(path, { quality = q }))
            assert.equal(2205, #pcm)
        end
    end)
end)


describe("wtt.audio formats", function()

    local function check(path, format, subtype, rate, frames, freq, exact)
        local info = assert(audio.probe(path))
        assert.equal(format, info.format)
        assert.equal(subtype, info.subtype)
        assert.equal(rate, info.sample_rate)
        local pcm, linfo = audio.load(path)
        assert.truthy(pcm, linfo)
        local want = math.ceil(frames * 22050 / rate)
        if exact then
            assert.equal(want, #pcm)
        else
            assert.is_true(math.abs(#pcm - want) <= 0.01 * want,
                           ("%d samples, %d expected"):format(#pcm, want))
        end
        assert.near(freq, zc_freq(pcm), 2)
        assert.is_true(goertzel(pcm, freq) > 0.15)
        return info
    end

    it("decodes FLAC", function()
        local path = encode("a.flac", SF.flac + SF.pcm_16, 44100, 2, 88200,
                            sine(440, 44100))
        check(path, "flac", "pcm_16", 44100, 88200, 440, true)
    end)

    it("decodes Ogg/Vorbis", function()
        local path = encode("a.ogg", SF.ogg + SF.vorbis, 44100, 2, 88200,
                            sine(440, 44100))
        check(path, "ogg", "vorbis", 44100, 88200, 440, true)
    end)

    it("decodes Ogg/Opus", function()
        local path = encode("a.opus", SF.ogg + SF.opus, 48000, 2, 96000,
                            sine(440, 48000))
        check(path, "ogg", "opus", 48000, 96000, 440, true)
    end)

    it("decodes MP3 (mpg123) with the encoder delay trimmed", function()
        local path = encode("a.mp3", SF.mpeg + SF.mp3, 44100, 2, 88200,
                            sine(440, 44100))
        check(path, "mpeg", "mp3", 44100, 88200, 440, true)
    end)

    it("decodes float WAV, WAVEX, RF64, W64, AIFF, AU and CAF", function()
        local data = samples(22050, 1, sine(440, 22050), true)
        local path = write("f32.wav", wav_header(22050, 1, 32, #data, 3)
                                      .. data)
        check(path, "wav", "float", 22050, 22050, 440, true)
        for _, c in ipairs({ { "wavex", "wav" }, { "rf64", "rf64" },
                             { "w64", "w64" }, { "aiff", "aiff" },
                             { "au", "au" }, { "caf", "caf" } }) do
            local p = encode("a." .. c[1], SF[c[1]] + SF.pcm_16, 44100, 2,
                             44100, sine(440, 44100))
            local info = check(p, c[2], "pcm_16", 44100, 44100, 440, true)
            assert.is_false(info.truncated)
        end
    end)
end)


describe("wtt.audio bad input", function()

    local function fails(path, pattern, opts)
        local pcm, err = audio.load(path, opts)
        assert.is_nil(pcm)
        assert.is_string(err)
        assert.matches(pattern, err)
        return err
    end

    it("refuses an empty file", function()
        fails(write("empty.wav", ""), "^open failed: empty file$")
        local info, err = audio.probe(dir .. "/empty.wav")
        assert.is_nil(info)
        assert.equal("probe failed: empty file", err)
    end)

    it("refuses a missing file, a directory and a FIFO without hanging",
       function()
        fails(dir .. "/nope.wav", "^open failed: no such file or directory$")
        fails(dir, "^open failed: not a regular file$")
        local fifo = dir .. "/fifo.wav"
        local pid = assert(sys.spawn({ "mkfifo", fifo }))
        assert.same({ "exited", 0 }, { sys.wait(pid, 5) })
        local t0 = sys.now()
        fails(fifo, "^open failed: not a regular file$")
        assert.is_true(sys.now() - t0 < 1)
    end)

    it("refuses random bytes whatever the extension", function()
        local seed = 12345
        for k = 1, 8 do
            local t = {}
            for i = 1, 16384 do
                seed = (seed * 1103515245 + 12345) % 2147483648
                t[i] = string.char(math.floor(seed / 65536) % 256)
            end
            for _, ext in ipairs({ ".bin", ".wav", ".mp3", ".flac", ".ogg" })
            do
                fails(write("rnd" .. k .. ext, table.concat(t)),
                      "^open failed: unrecognised format$")
            end
        end
    end)

    it("refuses formats outside the allow-list", function()
        local path = encode("a.voc", SF.voc + SF.pcm_16, 22050, 1, 1000,
                            sine(440, 22050))
        fails(path, "^open failed: unsupported format: VOC")
    end)

    it("refuses absurd sample rates and channel counts", function()
        local data = samples(100, 1, sine(1, 100))
        fails(write("r500.wav", wav_header(500, 1, 16, #data) .. data),
              "^open failed: sample rate 500 Hz out of range 1000%-768000$")
        fails(write("r10m.wav", wav_header(10000000, 1, 16, #data) .. data),
              "^open failed: sample rate 10000000 Hz out of range")
        local d40 = samples(100, 40, function() return 0 end)
        fails(write("c40.wav", wav_header(22050, 40, 16, #d40) .. d40),
              "^open failed: channel count 40 out of range 1%-32$")
        local d0 = samples(100, 1, function() return 0 end)
        fails(write("c0.wav", wav_header(22050, 0, 16, #d0) .. d0),
              "^open failed: ")
    end)

    it("refuses a header that claims audio the file does not hold",
       function()
        fails(write("lie.wav", wav_header(44100, 2, 16, 2000000000)),
              "^open failed: header claims 2000000000 bytes of audio but "
              .. "the file holds none$")
    end)

    it("decodes what a truncated WAV holds and says it is truncated",
       function()
        local data = samples(44100, 2, sine(440, 44100))
        local whole = wav_header(44100, 2, 16, #data) .. data
        local path = write("cut.wav", whole:sub(1, 44 + 4 * 10000))
        local info = assert(audio.probe(path))
        assert.is_true(info.truncated)
        assert.equal(10000, info.frames)
        local pcm, linfo = assert(audio.load(path))
        assert.equal(5000, #pcm)
        assert.is_true(linfo.truncated)

        fails(path, "^open failed: truncated file: header claims 176400 "
              .. "bytes of audio, the file holds 40000$",
              { truncated = "error" })

        -- A header 100x larger than the data: same rule.
        local big = write("big.wav", wav_header(44100, 2, 16, 100 * #data)
                                     .. data)
        local _, binfo = assert(audio.load(big))
        assert.is_true(binfo.truncated)
    end)

    it("accepts the 0xFFFFFFFF size of streamed WAVs", function()
        local data = samples(4410, 1, sine(440, 44100))
        local hdr = wav_header(44100, 1, 16, #data):sub(1, 40)
            .. "\255\255\255\255"
        local pcm, info = audio.load(write("stream.wav", hdr .. data))
        assert.truthy(pcm, info)
        assert.equal(2205, #pcm)
        assert.is_false(info.truncated)
    end)

    it("marks a truncated FLAC file", function()
        local path = encode("t.flac", SF.flac + SF.pcm_16, 44100, 1, 44100,
                            sine(440, 44100))
        local bytes = assert(sys.read_file(path))
        local cut = write("cut.flac", bytes:sub(1, math.floor(#bytes / 2)))
        local pcm, info = audio.load(cut)
        assert.truthy(pcm, info)
        assert.is_true(info.truncated)
        assert.is_true(#pcm < 22050)
    end)

    it("refuses a truncated Ogg file (libsndfile cannot open it)",
       function()
        local path = encode("t.ogg", SF.ogg + SF.vorbis, 44100, 1, 44100,
                            sine(440, 44100))
        local bytes = assert(sys.read_file(path))
        fails(write("cut.ogg", bytes:sub(1, math.floor(#bytes / 2))),
              "^open failed: unreadable header: ")
    end)

    it("streams a FLAC file of unknown length under the duration cap",
       function()
        local path = encode("u.flac", SF.flac + SF.pcm_16, 8000, 1, 8000 * 3,
                            sine(440, 8000))
        local unknown = write("unknown.flac", flac_zero_total(path))
        local info = assert(audio.probe(unknown))
        assert.is_nil(info.frames)
        assert.is_nil(info.duration)
        local pcm, linfo = audio.load(unknown)
        assert.truthy(pcm, linfo)
        assert.equal(3 * 22050, #pcm)
        assert.equal(3 * 8000, linfo.frames_read)

        fails(unknown, "^decode failed: audio longer than the limit of 2 s$",
              { max_duration = 2 })
    end)

    it("refuses a known duration over the limit before decoding",
       function()
        local path = wav("long.wav", 8000, 1, 8000 * 3, sine(440, 8000))
        fails(path, "^open failed: duration 3%.0 s exceeds the limit of "
              .. "2%.5 s$", { max_duration = 2.5 })
        local info, err = audio.probe(path, { max_duration = 1 })
        assert.is_nil(info)
        assert.matches("^probe failed: duration", err)
        assert.truthy(audio.load(path, { max_duration = 3 }))
    end)

    it("refuses NaN and Inf samples by default", function()
        local n = 8000 * 2
        local gen = function(i)
            if i == 12000 then
                return 0 / 0
            elseif i == 13000 then
                return math.huge
            end
            return 0.25
        end
        local data = samples(n, 1, gen, true)
        local path = write("nan.wav", wav_header(8000, 1, 32, #data, 3)
                                      .. data)
        fails(path, "^decode failed: non%-finite sample at 1%.500 s$")

        local pcm, info = audio.load(path, { nonfinite = "zero" })
        assert.truthy(pcm, info)
        assert.equal(2, info.nonfinite)
        assert.equal(2 * 22050, #pcm)
        local p, anchor = floats(pcm)
        for i = 0, #pcm - 1 do
            assert(p[i] == p[i] and p[i] < math.huge and p[i] > -math.huge)
        end
        local _ = anchor

        local stereo = samples(100, 2, function(i, c)
            return (i == 50 and c == 1) and -math.huge or 0
        end, true)
        fails(write("inf.wav", wav_header(22050, 2, 32, #stereo, 3)
                               .. stereo),
              "^decode failed: non%-finite sample at 0%.002 s$")
    end)

    it("never crashes on corrupted or cut files", function()
        local gen = sine(440, 44100)
        local sources = {
            wav("fz.wav", 44100, 2, 22050, gen),
            encode("fz.flac", SF.flac + SF.pcm_16, 44100, 2, 22050, gen),
            encode("fz.ogg", SF.ogg + SF.vorbis, 44100, 2, 22050, gen),
            encode("fz.mp3", SF.mpeg + SF.mp3, 44100, 2, 22050, gen),
        }
        local seed = 4242
        local function rnd()
            seed = (seed * 1103515245 + 12345) % 2147483648
            return seed / 2147483648
        end
        for _, src in ipairs(sources) do
            local good = assert(sys.read_file(src))
            local ext = src:match("%.%w+$")
            for _ = 1, 40 do
                local s = good
                if rnd() < 0.6 then
                    for _ = 1, 1 + math.floor(rnd() * 8) do
                        local pos = 1 + math.floor(rnd() * math.min(#s, 256))
                        s = s:sub(1, pos - 1)
                            .. string.char(math.floor(rnd() * 256))
                            .. s:sub(pos + 1)
                    end
                else
                    s = s:sub(1, math.floor(rnd() * #s))
                end
                local pcm, err = audio.load(write("mut" .. ext, s),
                                            { max_duration = 10 })
                if pcm then
                    assert.is_true(#pcm <= 10 * 22050 + 1)
                else
                    assert.matches("^%a+ failed: ", err)
                end
            end
        end
    end)

    it("keeps failing the same way after a decode error", function()
        local data = samples(100, 1, function(i)
            return i == 10 and 0 / 0 or 0
        end, true)
        local path = write("nan2.wav", wav_header(22050, 1, 32, #data, 3)
                                       .. data)
        local r = assert(audio.open(path))
        local pcm, err = r:read(10)
        assert.is_nil(pcm)
        assert.matches("^decode failed: non%-finite", err)
        assert.same({ nil, err }, { r:read(10) })
        r:close()
    end)
end)


describe("wtt.audio readers", function()

    it("reads in blocks with memory well below the file's size",
       function()
        -- 10 minutes of 44.1 kHz stereo 16-bit: 106 MB on disk, 53 MB of
        -- float output; written one second at a time.
        local secs = 600
        local one = samples(44100, 2, sine(441, 44100))
        local path = dir .. "/long.wav"
        local f = assert(io.open(path, "wb"))
        f:write(wav_header(44100, 2, 16, #one * secs))
        for _ = 1, secs do
            f:write(one)
        end
        f:close()
        local size = assert(sys.file_size(path))
        one = nil
        collectgarbage()

        local r = assert(audio.open(path))
        local rss0 = sys.rss_kb()
        local peak, total = rss0, 0
        while true do
            local pcm, err = r:read(65536)
            assert.is_nil(err)
            if not pcm then
                break
            end
            total = total + #pcm
            peak = math.max(peak, sys.rss_kb())
        end
        local info = r:info()
        r:close()
        assert.equal(secs * 22050, total)
        assert.equal(secs * 44100, info.frames_read)
        assert.equal(total, info.samples_out)
        local growth = (peak - rss0) * 1024
        assert.is_true(growth < (ASAN and size or size / 8),
                       ("rss grew by %d KiB"):format(peak - rss0))
    end)

    it("returns nil at the end and nil, closed after close", function()
        local path = wav("r.wav", 22050, 1, 100, sine(440, 22050))
        local r = assert(audio.open(path))
        local info = r:info()
        assert.equal(100, info.frames)
        assert.equal(22050, info.rate)
        local pcm = assert(r:read(1000))
        assert.equal(100, #pcm)
        assert.is_nil(r:read())
        assert.is_nil(r:read())
        assert.is_true(r:close())
        assert.is_true(r:close())
        assert.same({ nil, "closed" }, { r:read() })
        assert.same({ nil, "closed" }, { r:info() })
        assert.matches("closed", tostring(r))
    end)

    it("raises on misuse", function()
        local path = wav("m.wav", 22050, 1, 100, sine(440, 22050))
        assert.has_error(function() audio.load() end)
        assert.has_error(function() audio.load(path, { rat = 1 }) end)
        assert.has_error(function() audio.load(path, { rate = 10 }) end)
        assert.has_error(function() audio.load(path, { nonfinite = "x" }) end)
        assert.has_error(function() audio.load(path, { max_duration = 0 })
        end)
        local r = assert(audio.open(path))
        assert.has_error(function() r:read(0) end)
        assert.has_error(function() r:read(1.5) end)
        r:close()
    end)
end)


describe("wtt.audio pcm buffers", function()

    it("round-trips float32 bytes and answers its methods", function()
        local bytes = ffi.string(ffi.new("float[4]", { 0.5, -1, 0.25, 0 }),
                                 16)
        local pcm = audio.pcm_from_string(bytes, 8000)
        assert.equal(4, #pcm)
        assert.equal(8000, pcm:rate())
        assert.equal(-1, pcm:get(2))
        assert.equal(bytes, pcm:to_string())
        assert.equal(1, pcm:peak())
        assert.near(math.sqrt((0.25 + 1 + 0.0625) / 4), pcm:rms(), 1e-7)
        assert.matches("4 samples at 8000 Hz", tostring(pcm))
    end)

    it("slices like string.sub", function()
        local pcm = audio.pcm_from_string(
            ffi.string(ffi.new("float[5]", { 1, 2, 3, 4, 5 }), 20), 100)
        local s = pcm:sub(2, 4)
        assert.equal(3, #s)
        assert.equal(2, s:get(1))
        assert.equal(4, s:get(3))
        assert.equal(100, s:rate())
        assert.equal(2, #pcm:sub(-2))
        assert.equal(5, pcm:sub(-1):get(1))
        assert.equal(0, #pcm:sub(4, 2))
        assert.equal(5, #pcm:sub(0, 99))
        local empty = pcm:sub(9)
        assert.equal(0, #empty)
        assert.equal(0, empty:peak())
        assert.equal(0, empty:rms())
        assert.equal("", empty:to_string())
    end)

    it("raises on misuse", function()
        local pcm = audio.pcm_from_string(string.rep("\0", 8), 100)
        assert.has_error(function() pcm:get(0) end)
        assert.has_error(function() pcm:get(3) end)
        assert.has_error(function() pcm:get(1.5) end)
        assert.has_error(function() audio.pcm_from_string("abc", 100) end)
        assert.has_error(function() audio.pcm_from_string("", 0) end)
    end)
end)
