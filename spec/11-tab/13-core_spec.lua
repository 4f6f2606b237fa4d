-- wtt.core.tab: the C fingering search's Lua face (core/bind/wtt_tab.c):
-- expected failures come back as nil, err; misuse raises.

local core = require "wtt.core.tab"
local tab = require "wtt.tab"

local GUITAR = { tuning = { 64, 59, 55, 50, 45, 40 }, capo = 0, max_fret = 22,
                 ordered = true }

local function settings()
    local w, lim = tab.settings("guitar")
    local ww, ll = {}, {}
    for k, v in pairs(w) do ww[k] = v end
    for k, v in pairs(lim) do ll[k] = v end
    return ww, ll
end

describe("wtt.core.tab", function()
    it("gives every position of a pitch, string by string", function()
        local f = assert(core.fingering(GUITAR))
        assert.same({ 1, 0, 2, 5, 3, 9, 4, 14, 5, 19 }, { f:positions(64) })
        assert.same({}, { f:positions(39) })     -- below the low E
        assert.same({}, { f:positions(60.5) })   -- not a MIDI note
    end)

    it("fingers a piece from flat arrays", function()
        local f = assert(core.fingering(GUITAR, settings()))
        -- Open C (x32010), then a single E4.
        local strings, frets, steps = f:search(
            { 48, 52, 55, 60, 64, 64 }, { 0, 0, 0, 0, 0, 1 },
            { 0.9, 0.9, 0.9, 0.9, 0.9, 1.9 }, { 5, 1 })
        assert.same({ 5, 4, 3, 2, 1, 1 }, strings)
        assert.same({ 3, 2, 0, 1, 0, 0 }, frets)
        assert.is_true(steps > 0)
        assert.same({ {}, {}, 0 }, { f:search({}, {}, {}, {}) })
    end)

    it("names the chords with no fingering and tests one chord", function()
        local w, lim = settings()
        lim.span, lim.span_open = 1, 1
        local f = assert(core.fingering(GUITAR, w, lim))
        -- A stretch of five frets on the three lowest strings.
        assert.is_false(f:playable({ 41, 47, 53 }))
        assert.is_true(f:playable({ 40 }))
        assert.same({ 2 }, f:unplayable({ 40, 41, 47, 53 }, { 1, 3 }))
        local s, err = f:search({ 40, 41, 47, 53 }, { 0, 1, 1, 1 },
                                { 1, 2, 2, 2 }, { 1, 3 })
        assert.is_nil(s)
        assert.equal("a chord has no fingering", err)
    end)

    it("returns nil, err for settings and chords out of range", function()
        local w, lim = settings()
        lim.candidates = 0
        local f, err = core.fingering(GUITAR, w, lim)
        assert.is_nil(f)
        assert.matches("candidates", err)
        f, err = core.fingering({ tuning = {}, capo = 0, max_fret = 22 })
        assert.is_nil(f)
        assert.matches("strings", err)
        f = assert(core.fingering(GUITAR, settings()))
        local ok
        ok, err = f:playable({ 40, 45, 50, 55, 59, 64, 69 })
        assert.is_nil(ok)
        assert.matches("as many notes as the instrument strings", err)
        ok, err = f:unplayable({ 40, 45 }, { 1 })
        assert.is_nil(ok)
        assert.matches("fewer than the notes", err)
        ok, err = f:search({ 40 }, { 0 }, { 1 }, { 2 })
        assert.is_nil(ok)
        assert.is_string(err)
    end)

    it("raises on misuse", function()
        local f = assert(core.fingering(GUITAR, settings()))
        assert.has_error(function() core.fingering("guitar") end)
        assert.has_error(function()
            local w, lim = settings()
            w.move = "fast"
            core.fingering(GUITAR, w, lim)
        end)
        assert.has_error(function() f:search({ 40 }, { 0, 1 }, { 1 }, { 1 }) end)
        assert.has_error(function() f:search({ 40.5 }, { 0 }, { 1 }, { 1 }) end)
        assert.has_error(function() f:playable({ "E2" }) end)
        local positions_only = assert(core.fingering(GUITAR))
        assert.has_error(function() positions_only:playable({ 40 }) end)
    end)
end)
