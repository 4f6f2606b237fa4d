-- wtt.tab.encode_many: every format from one reading of the document,
-- the same bytes as encoding each format on its own.

local tab = require "wtt.tab"
local tabdoc = require "spec.support.tabdoc"


describe("wtt.tab.encode_many", function()
    it("gives each format's bytes, type and extension as encode does", function()
        local names = tabdoc.names()
        assert.is_true(#names > 3)
        for _, name in ipairs(names) do
            local doc = tabdoc.sample(name)
            local all = assert(tab.encode_many(doc))
            for _, f in ipairs(tab.FORMATS) do
                local bytes, ctype, ext = assert(tab.encode(doc, f))
                assert.are.equal(bytes, all[f][1], name .. " " .. f)
                assert.are.equal(ctype, all[f][2])
                assert.are.equal(ext, all[f][3])
            end
        end
    end)

    it("writes only the formats asked for", function()
        local doc = tabdoc.sample(tabdoc.names()[1])
        local some = assert(tab.encode_many(doc, { "gp", "ascii" }))
        assert.is_truthy(some.gp and some.ascii)
        assert.is_nil(some.json)
        assert.are.equal("PK", some.gp[1]:sub(1, 2))
    end)

    it("answers an unknown format and a malformed document with nil, err", function()
        local doc = tabdoc.sample(tabdoc.names()[1])
        local out, err, f = tab.encode_many(doc, { "ascii", "pdf" })
        assert.is_nil(out)
        assert.matches("unknown tab format 'pdf'", err)
        assert.are.equal("pdf", f)
        doc.notes[1].fret = "x"
        out, err = tab.encode_many(doc, { "json", "musicxml" })
        assert.is_nil(out)
        assert.matches("notes%[1%]%.fret must be", err)
        -- The reader is left clean: the next document encodes as before.
        local good = tabdoc.sample(tabdoc.names()[1])
        assert.are.equal(assert(tab.encode(good, "json")),
                         assert(tab.encode_many(good, { "json" })).json[1])
    end)
end)
