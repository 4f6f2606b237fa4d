--- Notes files read back for tablature: Basic Pitch's notes CSV, wtt's
-- notes JSON and Standard MIDI Files, so `wtt tab` and the tab route can
-- re-tab without running the model.
--
--     local notes, err, warnings = notes_in.read("song.notes.csv")
--
-- Every note comes back as { start_s, end_s, pitch, amplitude, velocity,
-- bends (list of 1/3-semitone bins, or nil), onset (0..1, or nil) },
-- sorted by start, then pitch. A malformed file is `nil, err` with the file
-- name (and the line of a CSV); `warnings` lists what was read but left
-- out on purpose (MIDI percussion), so nothing disappears silently.

local json = require "wtt.json"
local midi = require "wtt.midi"
local sys = require "wtt.sys"

local floor = math.floor
local format = string.format
local tonumber = tonumber
local tostring = tostring
local type = type

local _M = {}

local CSV_COLUMNS = { "start_time_s", "end_time_s", "pitch_midi", "velocity" }

-- MIDI pitch bends: 8192 units span `range` semitones, a bin is 1/3.
local BINS_PER_SEMITONE = 3
local PERCUSSION_CHANNEL = 9


-- The latest a note may end: the longest recording wtt transcribes
-- (WTT_MAX_AUDIO_S, docs/api.md; 4 h by default), so the notes of any
-- transcription fit. Without a bound a few hundred bytes of MIDI (long
-- deltas at a slow tempo) asked the tab renderer for hundreds of
-- thousands of measures and hundreds of megabytes of text (found by
-- spec/fuzz/fuzz_tab.c).
local MAX_END_S = tonumber(os.getenv("WTT_MAX_AUDIO_S") or "")
if MAX_END_S == nil or MAX_END_S ~= MAX_END_S or MAX_END_S <= 0
   or MAX_END_S == math.huge then
    MAX_END_S = 14400
end


local function finite(x)
    return type(x) == "number" and x == x and x ~= math.huge
        and x ~= -math.huge
end


-- The checks every reader shares; nil or the reason.
local function check_note(n)
    if not finite(n.start_s) or n.start_s < 0 then
        return "start must be a finite number >= 0"
    end
    if not finite(n.end_s) or n.end_s < n.start_s then
        return "end must be a finite number >= start"
    end
    if n.end_s > MAX_END_S then
        return format("end must be at most %g s (WTT_MAX_AUDIO_S, the "
                      .. "longest recording wtt takes)", MAX_END_S)
    end
    if type(n.pitch) ~= "number" or n.pitch % 1 ~= 0 or n.pitch < 0
       or n.pitch > 127 then
        return "pitch_midi must be an integer in 0-127"
    end
    if not finite(n.amplitude) or n.amplitude < 0 or n.amplitude > 1 then
        return "amplitude must be in [0, 1]"
    end
    if n.onset ~= nil and (not finite(n.onset) or n.onset < 0
                           or n.onset > 1) then
        return "onset must be in [0, 1]"
    end
    return nil
end


local function velocity_of(amplitude)
    local v = floor(127 * amplitude + 0.5)
    return v < 1 and 1 or (v > 127 and 127 or v)
end


local function by_start_then_pitch(a, b)
    if a.start_s ~= b.start_s then
        return a.start_s < b.start_s
    end
    if a.pitch ~= b.pitch then
        return a.pitch < b.pitch
    end
    return a.end_s < b.end_s
end


local function base_name(path)
    return path:match("([^/]+)$") or path
end


---------------------------------------------------------------- CSV

-- Basic Pitch's notes CSV: the header, then start, end, pitch, velocity
-- and the bends as further columns (none, or one empty cell, when the
-- note has none). Python's csv module ends lines with \r\n.
local function parse_csv(text, name)
    local notes, lineno, header_seen = {}, 0, false
    for line in (text .. "\n"):gmatch("([^\n]*)\n") do
        lineno = lineno + 1
        line = line:gsub("\r$", "")
        if lineno == 1 then
            line = line:gsub("^\239\187\191", "")     -- a UTF-8 BOM
        end
        if line:match("^%s*$") then
            -- blank lines (a final newline) carry nothing
        elseif not header_seen then
            local cols = {}
            for c in (line .. ","):gmatch("%s*([^,]-)%s*,") do
                cols[#cols + 1] = c
            end
            for i, want in ipairs(CSV_COLUMNS) do
                if cols[i] ~= want then
                    return nil, format("%s:%d: expected the header %s,"
                        .. "pitch_bend, got '%s'", name, lineno,
                        table.concat(CSV_COLUMNS, ","), line:sub(1, 80))
                end
            end
            header_seen = true
        else
            local cells = {}
            for c in (line .. ","):gmatch("%s*([^,]-)%s*,") do
                cells[#cells + 1] = c
            end
            local function bad(what)
                return nil, format("%s:%d: %s", name, lineno, what)
            end
            if #cells < 4 then
                return bad("expected at least 4 columns (start_time_s,"
                           .. "end_time_s,pitch_midi,velocity), got "
                           .. #cells)
            end
            local v = tonumber(cells[4])
            if not v or v % 1 ~= 0 or v < 0 or v > 127 then
                return bad("velocity must be an integer in 0-127, got '"
                           .. cells[4] .. "'")
            end
            local n = { start_s = tonumber(cells[1]),
                        end_s = tonumber(cells[2]),
                        pitch = tonumber(cells[3]),
                        amplitude = v / 127,
                        velocity = v < 1 and 1 or v }
            local bends
            for i = 5, #cells do
                if cells[i] ~= "" then
                    local b = tonumber(cells[i])
                    if not finite(b) or b % 1 ~= 0 then
                        return bad(format("pitch bend (column %d) must be "
                            .. "an integer, got '%s'", i, cells[i]))
                    end
                    bends = bends or {}
                    bends[#bends + 1] = b
                elseif i < #cells then
                    return bad(format("empty pitch bend in column %d", i))
                end
            end
            n.bends = bends
            local why = check_note(n)
            if why then
                return bad(why .. " (got '" .. line:sub(1, 80) .. "')")
            end
            notes[#notes + 1] = n
        end
    end
    if not header_seen then
        return nil, name .. ": empty file (expected the header "
                    .. table.concat(CSV_COLUMNS, ",") .. ",pitch_bend)"
    end
    return notes
end


---------------------------------------------------------------- JSON

-- wtt's notes JSON (notes_io.to_json): { ..., "notes": [ { start_s, end_s,
-- pitch_midi, amplitude, velocity, pitch_bends, onset? } ] }; a bare list
-- of such notes is read too.
local function parse_json(text, name)
    local ok, doc = pcall(json.decode, text)
    if not ok then
        return nil, name .. ": malformed JSON: " .. tostring(doc)
    end
    local list = type(doc) == "table" and doc.notes
    if list == nil and type(doc) == "table" and (doc[1] ~= nil
                                                 or next(doc) == nil) then
        list = doc
    end
    if type(list) ~= "table" then
        return nil, name .. ": expected an object with a \"notes\" list"
    end
    local notes = {}
    for i = 1, #list do
        local e = list[i]
        local function bad(what)
            return nil, format("%s: note %d: %s", name, i, what)
        end
        if type(e) ~= "table" then
            return bad("expected an object")
        end
        local amplitude, vel = e.amplitude, e.velocity
        if amplitude == nil or amplitude == json.null then
            if type(vel) ~= "number" or vel % 1 ~= 0 or vel < 1 or vel > 127
            then
                return bad("needs amplitude (0-1) or velocity (1-127)")
            end
            amplitude = vel / 127
        end
        local onset = e.onset
        if onset == json.null then
            onset = nil
        end
        local n = { start_s = e.start_s, end_s = e.end_s,
                    pitch = e.pitch_midi, amplitude = amplitude,
                    onset = onset }
        local why = check_note(n)
        if why then
            return bad(why)
        end
        n.velocity = velocity_of(amplitude)
        local pb = e.pitch_bends
        if pb ~= nil and pb ~= json.null then
            if type(pb) ~= "table" then
                return bad("pitch_bends must be a list of integers")
            end
            for j = 1, #pb do
                local b = pb[j]
                if not finite(b) or b % 1 ~= 0 then
                    return bad("pitch_bends must be a list of integers")
                end
            end
            if #pb > 0 then
                n.bends = { unpack(pb) }
            end
        end
        notes[#notes + 1] = n
    end
    return notes
end


---------------------------------------------------------------- MIDI

-- Pitch-bend range per (track, channel) from RPN 0 (CC 101 = 0, 100 = 0,
-- then data entry CC 6), which wtt's writer sends when the range is not 2.
local function bend_ranges(file)
    local ranges = {}
    for t, track in ipairs(file.tracks) do
        local rpn = {}
        for _, ev in ipairs(track) do
            if ev.type == "control_change" then
                local ch = ev.channel
                local st = rpn[ch] or {}
                rpn[ch] = st
                if ev.controller == 101 then
                    st.msb = ev.value
                elseif ev.controller == 100 then
                    st.lsb = ev.value
                elseif ev.controller == 6 and st.msb == 0 and st.lsb == 0 then
                    ranges[t .. ":" .. ch] = ev.value
                end
            end
        end
    end
    return ranges
end


-- A note's bends: the wheel positions on its channel and track from its
-- start to its end, in bins (wtt's and Basic Pitch's writers spread them
-- evenly over the note, so they read back as the per-frame curve).
--
-- Where one note ends on the tick another starts, both may have a bend on
-- that tick. wtt's writer orders a tick's bends by note, then puts the
-- reset to 0 of an unbent note just before its note-on, so the last bend
-- on such a tick is the starting note's and the others the ending one's.
-- A wheel already off centre at the start counts as the first value;
-- all-zero curves are no bends.
local function note_bends(note, ch)
    local list = ch.bends
    if not list then
        return nil
    end
    local per_unit = ch.range * BINS_PER_SEMITONE / 8192
    -- the first bend at or after the start (binary search: long files
    -- have many bends per channel)
    local lo, hi = 1, #list + 1
    while lo < hi do
        local mid = floor((lo + hi) / 2)
        if list[mid].time < note.start_s then
            lo = mid + 1
        else
            hi = mid
        end
    end
    local before = lo > 1 and list[lo - 1].value or 0
    local first, last = lo, lo - 1
    while last < #list and list[last + 1].time <= note.end_s do
        last = last + 1
    end
    if ch.ends[note.start_s] then
        -- keep only the last bend on the start tick
        while first < last and list[first + 1].time == note.start_s do
            first = first + 1
        end
    end
    if ch.starts[note.end_s] and last >= first
       and list[last].time == note.end_s then
        last = last - 1
    end
    local out, any = {}, false
    if before ~= 0 and (first > last or list[first].time > note.start_s) then
        out[1] = floor(before * per_unit + 0.5)
    end
    for i = first, last do
        out[#out + 1] = floor(list[i].value * per_unit + 0.5)
    end
    for _, v in ipairs(out) do
        if v ~= 0 then
            any = true
        end
    end
    return any and out or nil
end


-- Per (track, channel): its bends in file order, its bend range, and the
-- times where its notes start and end.
local function channels_of(file)
    local chans = {}
    local function get(track, channel)
        local key = track .. ":" .. channel
        local c = chans[key]
        if not c then
            c = { starts = {}, ends = {}, range = 2 }
            chans[key] = c
        end
        return c
    end
    for i, b in ipairs(file.bends) do
        local c = get(b.track, b.channel)
        c.bends = c.bends or {}
        c.bends[#c.bends + 1] = { time = b.time, tick = b.tick,
                                  value = b.value, seq = i }
    end
    for _, c in pairs(chans) do
        table.sort(c.bends, function(x, y)
            if x.tick ~= y.tick then
                return x.tick < y.tick
            end
            return x.seq < y.seq
        end)
    end
    for key, range in pairs(bend_ranges(file)) do
        local t, ch = key:match("^(%d+):(%d+)$")
        get(tonumber(t), tonumber(ch)).range = range
    end
    for _, m in ipairs(file.notes) do
        local c = get(m.track, m.channel)
        c.starts[m.start_s] = true
        c.ends[m.end_s] = true
    end
    return function(track, channel)
        return get(track, channel)
    end
end


local function parse_midi(bytes, name)
    local file, err = midi.decode(bytes)
    if not file then
        return nil, name .. ": " .. tostring(err)
    end
    local channel = channels_of(file)
    local notes, drums = {}, 0
    for _, m in ipairs(file.notes) do
        if m.channel == PERCUSSION_CHANNEL then
            drums = drums + 1
        else
            local vel = m.velocity < 1 and 1 or m.velocity
            local n = { start_s = m.start_s, end_s = m.end_s,
                        pitch = m.pitch, amplitude = vel / 127,
                        velocity = vel }
            n.bends = note_bends(n, channel(m.track, m.channel))
            local why = check_note(n)
            if why then
                return nil, format("%s: note %d: %s", name, #notes + 1, why)
            end
            notes[#notes + 1] = n
        end
    end
    local warnings = {}
    if drums > 0 then
        warnings[1] = format("%s: %d percussion notes (MIDI channel 10) "
                             .. "left out: they have no pitch to fret",
                             name, drums)
    end
    return notes, nil, warnings
end


---------------------------------------------------------------- entry

local KINDS = {
    csv = parse_csv, json = parse_json, mid = parse_midi, midi = parse_midi,
}


--- The kind of a notes file by its name: "csv", "json", "mid" or nil.
function _M.kind(path)
    local ext = (path:match("%.([%w]+)$") or ""):lower()
    if ext == "midi" then
        return "mid"
    end
    return KINDS[ext] and ext or nil
end


--- Notes from the bytes of a notes file of `kind` ("csv", "json", "mid");
-- `name` labels the errors.
-- @return notes, nil, warnings | nil, err
function _M.decode(bytes, kind, name)
    local parse = KINDS[kind]
    if not parse then
        return nil, tostring(name) .. ": not a notes file (expected "
                    .. ".notes.csv, .notes.json, .mid or .midi)"
    end
    local notes, err, warnings = parse(bytes, name)
    if not notes then
        return nil, err
    end
    table.sort(notes, by_start_then_pitch)
    return notes, nil, warnings or {}
end


--- Reads a notes file (.notes.csv, .notes.json, .mid/.midi).
-- @return notes, nil, warnings | nil, err
function _M.read(path)
    local kind = _M.kind(path)
    local name = base_name(path)
    if not kind then
        return nil, name .. ": not a notes file (expected .notes.csv, "
                    .. ".notes.json, .mid or .midi)"
    end
    local bytes, err = sys.read_file(path)
    if not bytes then
        return nil, name .. ": " .. tostring(err)
    end
    return _M.decode(bytes, kind, name)
end


--- The name of the output files for a notes file: its base name without
-- .notes.csv, .notes.json, .mid or .midi ("song.notes.csv" -> "song").
function _M.stem(path)
    local base = base_name(path)
    for _, suffix in ipairs({ "%.notes%.csv$", "%.notes%.json$",
                              "%.[Mm][Ii][Dd][Ii]?$", "%.[Cc][Ss][Vv]$",
                              "%.[Jj][Ss][Oo][Nn]$" }) do
        local s, n = base:gsub(suffix, "")
        if n > 0 and s ~= "" then
            return s
        end
    end
    return base
end


return _M
