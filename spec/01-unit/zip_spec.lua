-- wtt.zlib (crc32, raw deflate) and wtt.zip (the archive writer of .gp
-- tabs): known CRC vectors, and archives read back by independent readers,
-- Python's zipfile and, where installed, Info-ZIP's `unzip -t`.

local json = require "wtt.json"
local sys = require "wtt.sys"
local zlib = require "wtt.zlib"
local zip = require "wtt.zip"

local PYTHON = "/usr/bin/python3"

-- Prints what zipfile reads: per entry its name, method, sizes, CRC and
-- whether the data equals the file it was written from.
local READER = [[
import json, sys, zipfile, zlib
out = {"entries": []}
with zipfile.ZipFile(sys.argv[1]) as z:
    out["testzip"] = z.testzip()
    for i, info in enumerate(z.infolist()):
        data = z.read(info)
        want = open(sys.argv[2 + i], "rb").read()
        out["entries"].append({
            "name": info.filename, "method": info.compress_type,
            "size": info.file_size, "compressed": info.compress_size,
            "crc": info.CRC, "crc_ok": zlib.crc32(data) == info.CRC,
            "same": data == want, "is_dir": info.is_dir(),
            "date": list(info.date_time)})
print(json.dumps(out))
]]


local function run(argv, dir)
    local out, err = dir .. "/stdout", dir .. "/stderr"
    local pid = assert(sys.spawn(argv, { stdout = out, stderr = err }))
    local how, code = sys.wait(pid, 60)
    assert.equal("exited", how)
    return code, sys.read_file(out) or "", sys.read_file(err) or ""
end


describe("wtt.zlib", function()
    it("computes known CRC-32 vectors", function()
        assert.equal(0, zlib.crc32(""))
        assert.equal(0xE8B7BE43, zlib.crc32("a"))
        assert.equal(0xCBF43926, zlib.crc32("123456789"))
        assert.equal(0x414FA339, zlib.crc32(
            "The quick brown fox jumps over the lazy dog"))
    end)

    it("continues a running CRC", function()
        assert.equal(0xCBF43926, zlib.crc32("56789", zlib.crc32("1234")))
    end)

    it("deflates repetitive text to a fraction of its size", function()
        local s = ("<Note><Fret>3</Fret></Note>"):rep(1000)
        for _, level in ipairs({ 0, 1, 6, 9 }) do
            local d = assert(zlib.deflate(s, level))
            if level == 0 then
                assert.truthy(#d > #s)       -- stored blocks, raw stream
            else
                assert.truthy(#d < #s / 20, level .. ": " .. #d)
            end
        end
    end)

    it("raises on a level outside [0, 9]", function()
        assert.has_error(function() zlib.deflate("x", 10) end)
        assert.has_error(function() zlib.deflate("x", -1) end)
        assert.has_error(function() zlib.crc32("x", -1) end)
    end)
end)


describe("wtt.zip", function()
    local dir
    before_each(function() dir = assert(sys.mkdtemp("wtt-zip-")) end)
    after_each(function() sys.rmtree(dir) end)

    local text = ("score.gpif line\n"):rep(2000)
    local binary = {}
    for i = 0, 4095 do
        binary[#binary + 1] = string.char((i * 7919 + 13) % 256)
    end
    binary = table.concat(binary)
    local entries = {
        { name = "VERSION", data = "7.0", store = true },
        { name = "Content/", data = "" },
        { name = "Content/score.gpif", data = text },
        { name = "Content/binär.bin", data = binary },
        { name = "empty", data = "" },
    }

    local function write_archive()
        local bytes = assert(zip.archive(entries, { level = 6 }))
        local path = dir .. "/t.zip"
        assert(sys.write_file(path, bytes))
        local files = {}
        for i, e in ipairs(entries) do
            files[i] = dir .. "/want" .. i
            assert(sys.write_file(files[i], e.data))
        end
        return path, bytes, files
    end

    it("writes an archive Python's zipfile reads back", function()
        local path, _, files = write_archive()
        local script = dir .. "/read.py"
        assert(sys.write_file(script, READER))
        local argv = { PYTHON, script, path }
        for _, f in ipairs(files) do
            argv[#argv + 1] = f
        end
        local code, out, err = run(argv, dir)
        assert.equal(0, code, err)
        local got = json.decode(out)
        assert.equal(json.null, got.testzip)     -- no bad entry
        assert.equal(#entries, #got.entries)
        for i, e in ipairs(entries) do
            local g = got.entries[i]
            assert.equal(e.name, g.name)
            assert.equal(#e.data, g.size)
            assert.is_true(g.same, e.name)
            assert.is_true(g.crc_ok, e.name)
            assert.same({ 1980, 1, 1, 0, 0, 0 }, g.date)
        end
        -- VERSION is stored as asked, the text deflated, the empty and
        -- directory entries stored; random-looking bytes stay stored when
        -- deflate cannot shrink them.
        assert.equal(0, got.entries[1].method)
        assert.equal(0, got.entries[2].method)
        assert.is_true(got.entries[2].is_dir)
        assert.equal(8, got.entries[3].method)
        assert.truthy(got.entries[3].compressed < #text / 20)
        assert.equal(0, got.entries[5].method)
    end)

    it("writes an archive `unzip -t` finds no error in", function()
        if not sys.exists("/usr/bin/unzip") then
            pending("skipped, because /usr/bin/unzip is not installed")
            return
        end
        local path = write_archive()
        local code, out, err = run({ "/usr/bin/unzip", "-t", path }, dir)
        assert.equal(0, code, out .. err)
        assert.matches("No errors detected", out)
        assert.matches("Content/score.gpif%s+OK", out)
    end)

    it("gives the same bytes for the same entries", function()
        local a = assert(zip.archive(entries))
        local b = assert(zip.archive(entries))
        assert.equal(a, b)
    end)

    it("raises on entries without a name or data", function()
        assert.has_error(function() zip.archive({ { data = "x" } }) end)
        assert.has_error(function()
            zip.archive({ { name = "a", data = 1 } })
        end)
        assert.has_error(function() zip.archive("x") end)
    end)
end)
