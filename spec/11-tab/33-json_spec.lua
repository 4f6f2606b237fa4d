-- wtt.tab.out.json (and the reader wtt.core.tabout shares with MusicXML):
-- numbers written as LuaJIT writes them, strings escaped as wtt.json
-- escapes them, and a malformed document answered with nil and the field.

local json = require "wtt.json"
local out_json = require "wtt.tab.out.json"
local musicxml = require "wtt.tab.out.musicxml"
local tabdoc = require "spec.support.tabdoc"

-- How the document's numbers were always written: null for NaN and the
-- infinities, %d for integers up to 2^53, LuaJIT's tostring otherwise.
local function lua_json_number(x)
    if x ~= x or x == math.huge or x == -math.huge then
        return "null"
    elseif x == math.floor(x) and x >= -2^53 and x <= 2^53 then
        return string.format("%d", x)
    end
    return tostring(x)
end


describe("wtt.tab.out.json", function()
    it("writes numbers as LuaJIT writes them, ties and all", function()
        local values = {
            0, -0.0, 1, 0.5, 1 / 3, 2 / 3, 117.53, 0.1, 1e-5, 1e-4,
            99999999999999.9, 1e15 + 0.5, 2^53, 2^53 + 2, -2^53 - 2,
            123456.7890123456, 0 / 0, math.huge, -math.huge, 1e300,
            4.9406564584124654e-324, 2^-21, -2^-21, 3 * 2^-21,
            515.535400390625, 0.000030517578125, 1.25e-7,
        }
        math.randomseed(11)
        for _ = 1, 2000 do
            values[#values + 1] = math.random(0, 6000000) / 10000
            values[#values + 1] = math.random(1, 2^20) * 2^math.random(-40, 5)
            values[#values + 1] = (math.random() - 0.5)
                                  * 10^math.random(-12, 20)
        end
        local doc = tabdoc.large(#values)
        for i, x in ipairs(values) do
            doc.notes[i].start_s = x
        end
        local text = assert(out_json.encode(doc))
        local i = 0
        for got in text:gmatch('{"start_s":([^,]*),"end_s"') do
            i = i + 1
            if i <= #values then
                assert.equal(lua_json_number(values[i]), got, "value " .. i)
            end
        end
        assert.truthy(i >= #values)
    end)

    it("escapes strings as wtt.json does", function()
        local bytes = {}
        for c = 1, 255 do
            bytes[c] = string.char(c)
        end
        local doc = tabdoc.sample("chords")
        doc.title = "\0" .. table.concat(bytes) .. "/</"
        doc.unplayable[1].reason = 'say "when"'
        local text = assert(out_json.encode(doc))
        assert.truthy(text:find('"title":' .. json.encode(doc.title) .. ",",
                                1, true))
        assert.truthy(text:find('"reason":"say \\"when\\""', 1, true))
        assert.same(doc.title, json.decode(text).title)
    end)

    it("writes an empty list as [] and skips a missing title", function()
        local doc = tabdoc.sample("rests")
        doc.title = nil
        local text = assert(out_json.encode(doc))
        assert.falsy(text:find('"title"', 1, true))
        assert.truthy(text:find('"techniques":[]', 1, true))
        assert.truthy(text:find('"unplayable":[]}\n', 1, true))
    end)

    it("answers a malformed document with nil and the field", function()
        local cases = {
            { function(d) d.notes[2].fret = "3" end,
              "json: notes[2].fret must be an integer (got string)" },
            { function(d) d.notes[1].start_s = nil end,
              "json: notes[1].start_s must be a number (got nil)" },
            { function(d) d.notes[1].techniques = { 5 } end,
              "json: notes[1].techniques[1] must be a table (got number)" },
            { function(d) d.notes[1].techniques = { { type = "bend",
                                                      release = 1 } } end,
              "json: notes[1].techniques[1].release must be a boolean"
              .. " (got number)" },
            { function(d) d.measures[1].events[2].notes = "1" end,
              "json: measures[1].events[2].notes must be a table (got"
              .. " string)" },
            { function(d) d.measures[1].events[1].ticks = 1.5 end,
              "json: measures[1].events[1].ticks must be an integer (got"
              .. " number)" },
            { function(d) d.tuning = nil end,
              "json: tuning must be a table (got nil)" },
            { function(d) d.time_signature = { 4 } end,
              "json: time_signature must be a list of two integers (got"
              .. " nil)" },
            { function(d) d.unplayable[1].reason = false end,
              "json: unplayable[1].reason must be a string (got boolean)" },
            { function(d) d.notes[3] = true end,
              "json: notes[3] must be a table (got boolean)" },
        }
        for _, c in ipairs(cases) do
            local doc = tabdoc.sample("chords")
            c[1](doc)
            local text, err = out_json.encode(doc)
            assert.is_nil(text)
            assert.equal(c[2], err)
        end
        local doc = tabdoc.sample("chords")
        doc.notes[2].fret = "3"
        local xml, err = musicxml.encode(doc)
        assert.is_nil(xml)
        assert.equal("musicxml: notes[2].fret must be an integer (got"
                     .. " string)", err)
        -- MusicXML reads only what it writes.
        doc = tabdoc.sample("chords")
        doc.notes[2].start_s, doc.unplayable = nil, nil
        assert.truthy(musicxml.encode(doc))
        assert.has_error(function() out_json.encode("doc") end)
        assert.has_error(function() musicxml.encode(nil) end)
    end)

    it("writes one document after another from the same memory", function()
        local big = tabdoc.large(3000)
        local small = tabdoc.sample("ties")
        local a = assert(out_json.encode(big))
        local b = assert(musicxml.encode(small))
        local c = assert(out_json.encode(small))
        assert.equal(a, assert(out_json.encode(big)))
        assert.equal(b, assert(musicxml.encode(small)))
        assert.equal(c, assert(out_json.encode(small)))
        assert.same(json.decode(c).notes[1].fret, small.notes[1].fret)
    end)
end)
