--- Tablature from note events (docs/tab.md): the one module routes, the
-- command line and plugins use.
--
--     local tab = require "wtt.tab"
--     local opts, err, option = tab.options{ tuning = "drop_d", capo = "2" }
--     local doc = assert(tab.build(notes, opts))
--     local bytes, content_type, ext = tab.encode(doc, "musicxml")
--     local all = tab.encode_many(doc)   -- every format, one reading
--
-- build runs fingering (weights from the `tab` plugin, hot-reloaded like
-- the queue's policies), techniques, rhythm and the measure grid, and
-- returns the tab document; encode writes it in one of FORMATS.

local instrument = require "wtt.tab.instrument"
local finger = require "wtt.tab.finger"
local technique = require "wtt.tab.technique"
local policy = require "wtt.policy"

local floor = math.floor
local type = type
local tostring = tostring
local tonumber = tonumber
local ipairs = ipairs
local pairs = pairs
local sort = table.sort
local concat = table.concat
local new_table = require "table.new"

local _M = {}

_M.FORMATS = { "ascii", "json", "musicxml", "alphatex", "gp" }

local FORMAT_INFO = {
    ascii = { "text/plain; charset=utf-8", "tab.txt" },
    json = { "application/json", "tab.json" },
    musicxml = { "application/vnd.recordare.musicxml+xml", "musicxml" },
    alphatex = { "text/plain; charset=utf-8", "alphatex" },
    gp = { "application/x-guitar-pro", "gp" },
}
_M.FORMAT_INFO = FORMAT_INFO


local function integer(v)
    local n = tonumber(v)
    if n and n % 1 == 0 then
        return n
    end
    return nil
end


local function boolean(v)
    if v == nil or v == false or v == "" or v == "0" or v == "false"
       or v == "no" then
        return false
    end
    if v == true or v == "1" or v == "true" or v == "yes" then
        return true
    end
    return nil
end


--- Checks and normalises tab options from the command line or a query
-- (strings or numbers). Unknown keys are ignored (the caller owns them).
-- @return opts | nil, err, option (the name at fault)
function _M.options(raw)
    raw = raw or {}
    local o = {}
    for _, k in ipairs({ "capo", "max_fret" }) do
        if raw[k] ~= nil and raw[k] ~= "" then
            o[k] = integer(raw[k])
            if not o[k] then
                return nil, k .. " must be an integer, got '"
                            .. tostring(raw[k]) .. "'", k
            end
        end
    end
    local inst, err, option = instrument.resolve{
        instrument = raw.instrument ~= "" and raw.instrument or nil,
        tuning = raw.tuning ~= "" and raw.tuning or nil,
        capo = o.capo, max_fret = o.max_fret }
    if not inst then
        return nil, err, option
    end
    o.instrument = inst
    o.fold_octaves = boolean(raw.fold_octaves)
    if o.fold_octaves == nil then
        return nil, "fold_octaves must be true or false", "fold_octaves"
    end
    if raw.tempo ~= nil and raw.tempo ~= "" then
        o.tempo = tonumber(raw.tempo)
        if not o.tempo or o.tempo < 20 or o.tempo > 400 then
            return nil, "tempo must be a number of bpm in [20, 400]", "tempo"
        end
    end
    local ts = raw.time_signature
    if ts ~= nil and ts ~= "" then
        local b, t
        if type(ts) == "table" then
            b, t = integer(ts[1]), integer(ts[2])
        else
            b, t = tostring(ts):match("^(%d+)/(%d+)$")
            b, t = tonumber(b), tonumber(t)
        end
        if not b or b < 1 or b > 16 or not (t == 2 or t == 4 or t == 8) then
            return nil, "time_signature must be like 4/4 or 3/4 (1-16 "
                        .. "beats of 2, 4 or 8)", "time_signature"
        end
        o.time_signature = { b, t }
    end
    if raw.pickup ~= nil and raw.pickup ~= "" then
        o.pickup = tonumber(raw.pickup)
        local limit = o.time_signature and o.time_signature[1] or 16
        if not o.pickup or o.pickup < 0 or o.pickup >= limit
           or o.pickup * 4 % 1 ~= 0 then
            return nil, "pickup must be a number of beats (in 16ths) below "
                        .. "the measure's", "pickup"
        end
    end
    local formats = raw.formats
    if formats ~= nil and formats ~= "" then
        local list = {}
        if type(formats) == "string" then
            for f in formats:gmatch("[^,%s]+") do
                list[#list + 1] = f
            end
        else
            list = formats
        end
        for _, f in ipairs(list) do
            if not FORMAT_INFO[f] then
                return nil, "format must be one of "
                            .. concat(_M.FORMATS, ", ") .. ", got '"
                            .. tostring(f) .. "'", "format"
            end
        end
        o.formats = list
    end
    return o
end


--- The search settings in force (the `tab` plugin).
-- @return weights, limits, version
function _M.settings(inst_name)
    local p = policy.current()
    return p.fingering_weights(inst_name), p.fingering_limits(inst_name),
           p.versions.tab
end


--- A string that changes whenever the settings in force do (for caches).
function _M.signature()
    local w, l, v = _M.settings()
    local parts = { tostring(v) }
    for _, t in ipairs({ w, l }) do
        local keys = {}
        for k in pairs(t) do
            keys[#keys + 1] = k
        end
        sort(keys)
        for _, k in ipairs(keys) do
            parts[#parts + 1] = k .. "=" .. tostring(t[k])
        end
    end
    return concat(parts, ";")
end


local function velocity_of(n)
    if n.velocity then
        return n.velocity
    end
    local v = floor(127 * (n.amplitude or 0.8) + 0.5)
    return v < 1 and 1 or (v > 127 and 127 or v)
end


-- Notes in the shape the stages work on, sorted (a copy: callers keep
-- theirs). Each note holds a slot for the fields the fingering sets (in
-- C, core/bind/wtt_tab.c), and for a document (`whole`) for every field
-- the later stages set: a note table that grows past its hash size is
-- copied into a bigger one, for every note of a long piece.
local function prepare(notes, whole)
    local list = new_table(#notes, 0)
    for i, n in ipairs(notes) do
        local p = n.pitch or n.pitch_midi
        if type(p) ~= "number" or type(n.start_s) ~= "number"
           or type(n.end_s) ~= "number" then
            return nil, "note " .. i .. " needs start_s, end_s and pitch"
        end
        if whole then
            list[i] = { start_s = n.start_s, end_s = n.end_s, pitch = p,
                        velocity = velocity_of(n), bends = n.bends,
                        onset = n.onset, string = false, fret = false,
                        chord = false, techniques = false, tick = false,
                        ticks = false, duration = false, measure = false,
                        beat = false, pitch_midi = false }
        else
            list[i] = { start_s = n.start_s, end_s = n.end_s, pitch = p,
                        velocity = velocity_of(n), bends = n.bends,
                        onset = n.onset, string = false, fret = false,
                        chord = false }
        end
    end
    -- Notes files come sorted: check in one pass before paying for a sort.
    for i = 2, #list do
        local a, b = list[i - 1], list[i]
        if a.start_s > b.start_s
           or (a.start_s == b.start_s and a.pitch > b.pitch) then
            sort(list, function(x, y)
                if x.start_s ~= y.start_s then return x.start_s < y.start_s end
                return x.pitch < y.pitch
            end)
            break
        end
    end
    return list
end


local function gcd(a, b)
    while b ~= 0 do
        a, b = b, a % b
    end
    return a
end


--- The length of `ticks` as a reduced fraction of a whole note.
function _M.fraction(ticks, divisions)
    local whole = 4 * divisions
    local g = gcd(ticks, whole)
    return floor(ticks / g) .. "/" .. floor(whole / g)
end


local function finger_notes(notes, opts, whole)
    local list, err = prepare(notes, whole)
    if not list then
        return nil, err
    end
    local inst = opts.instrument
    local w, lim = _M.settings(inst.name)
    return finger.run(list, inst, w, lim, opts.fold_octaves)
end


--- Fingering only (no rhythm): sets string and fret on a copy of `notes`.
-- @return placed, unplayable, stats (see finger.run) | nil, err
function _M.finger(notes, opts)
    return finger_notes(notes, opts, false)
end


--- Builds the tab document (docs/tab.md) from note events.
-- @param notes { {start_s, end_s, pitch, amplitude|velocity, bends?,
--   onset?} }
-- @param opts from _M.options (nil: the defaults)
-- @return doc | nil, err
function _M.build(notes, opts)
    if not opts then
        opts = assert(_M.options({}))
    end
    local placed, unplayable = finger_notes(notes, opts, true)
    if not placed then
        return nil, unplayable
    end
    technique.annotate(placed)
    local rhythm = require "wtt.tab.rhythm"
    local grid = require "wtt.tab.grid"
    local r, err = rhythm.estimate(placed, {
        tempo = opts.tempo, time_signature = opts.time_signature,
        pickup = opts.pickup })
    if not r then
        return nil, err
    end
    -- The placed notes are this call's own copies: they become the
    -- document's notes as they are (a new table per note would double the
    -- garbage of a long piece), pitch_midi set by the grid as it writes
    -- their other fields. Their working fields (pitch, bends, onset,
    -- chord) stay; the formats write only the document's fields.
    local measures
    measures, err = grid.build(placed, r, opts, true)
    if not measures then
        return nil, err
    end
    local inst = opts.instrument
    return {
        version = 1,
        title = opts.title,
        instrument = inst.name,
        tuning = inst.tuning,
        tuning_name = inst.tuning_name,
        capo = inst.capo,
        tempo_bpm = r.tempo_bpm,
        time_signature = { r.beats_per_measure, r.beat_type },
        pickup_ticks = r.pickup_ticks or 0,
        divisions = 12,
        measures = measures,
        notes = placed,
        unplayable = unplayable,
    }
end


--- The document in `format`.
-- @return bytes, content_type, ext | nil, err
function _M.encode(doc, format)
    local info = FORMAT_INFO[format]
    if not info then
        return nil, "unknown tab format '" .. tostring(format) .. "'"
    end
    local bytes, err = require("wtt.tab.out." .. format).encode(doc)
    if not bytes then
        return nil, err
    end
    return bytes, info[1], info[2]
end


--- The document in each of `formats` (default: FORMATS), read out of Lua
-- once for all of them (`encode` reads it per call).
-- @return { [format] = { bytes, content_type, ext } } | nil, err, format
function _M.encode_many(doc, formats)
    formats = formats or _M.FORMATS
    for _, f in ipairs(formats) do
        if not FORMAT_INFO[f] then
            return nil, "unknown tab format '" .. tostring(f) .. "'", f
        end
    end
    local texts, err = require("wtt.core.tabout").many(doc, formats)
    if not texts then
        return nil, err
    end
    local out = {}
    for _, f in ipairs(formats) do
        local bytes = texts[f]
        if f == "gp" then
            bytes, err = require("wtt.tab.out.gp").pack(bytes)
            if not bytes then
                return nil, err, f
            end
        end
        out[f] = { bytes, FORMAT_INFO[f][1], FORMAT_INFO[f][2] }
    end
    return out
end


return _M
