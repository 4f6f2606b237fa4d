local http = require "wtt.http"

describe("wtt.http.parse_range", function()
    local parse = http.parse_range

    it("ignores a missing header", function()
        assert.is_nil(parse(nil, 100))
    end)

    it("parses first-last", function()
        assert.same({ 10, 20 }, { parse("bytes=10-29", 100) })
    end)

    it("parses an open end", function()
        assert.same({ 90, 10 }, { parse("bytes=90-", 100) })
    end)

    it("parses a suffix", function()
        assert.same({ 70, 30 }, { parse("bytes=-30", 100) })
        assert.same({ 0, 100 }, { parse("bytes=-300", 100) })
    end)

    it("clamps the end to the size", function()
        assert.same({ 50, 50 }, { parse("bytes=50-1000", 100) })
    end)

    it("marks unsatisfiable ranges", function()
        assert.is_false(parse("bytes=100-", 100))
        assert.is_false(parse("bytes=20-10", 100))
        assert.is_false(parse("bytes=-0", 100))
    end)

    it("ignores multiple ranges and junk", function()
        assert.is_nil(parse("bytes=0-1,5-6", 100))
        assert.is_nil(parse("pages=1-2", 100))
        assert.is_nil(parse("bytes=-", 100))
    end)
end)

describe("wtt.http.abort", function()
    it("raises an error table the server turns into a status", function()
        local ok, err = pcall(http.abort, 409, "conflict", "busy")
        assert.is_false(ok)
        assert.is_true(http.is_abort(err))
        assert.equal(409, err.status)
        assert.equal("conflict", err.error)
    end)

    it("decode_json aborts with 400 on malformed input", function()
        local ok, err = pcall(http.decode_json, "{bad")
        assert.is_false(ok)
        assert.equal(400, err.status)
        assert.same({ a = 1 }, http.decode_json('{"a":1}'))
    end)
end)
