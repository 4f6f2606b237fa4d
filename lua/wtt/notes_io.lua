--- Note events as files: JSON, CSV (the official header), MIDI.

local json = require "wtt.json"
local midi = require "wtt.midi"
local sys = require "wtt.sys"

local floor = math.floor
local next = next
local concat = table.concat
local format = string.format

local _M = {}

local CSV_HEADER = "start_time_s,end_time_s,pitch_midi,velocity,pitch_bend"


local function velocity(amplitude)
    local v = floor(127 * amplitude + 0.5)
    return v < 1 and 1 or (v > 127 and 127 or v)
end
_M.velocity = velocity


-- Debian's lua-cjson has no array marker (an empty table becomes {}), so
-- the note list is written by hand; numbers use %.17g so that they read
-- back exactly.
local function num(x)
    if x ~= x or x == math.huge or x == -math.huge then
        return "null"
    end
    if x == floor(x) and x >= -2^53 and x <= 2^53 then
        return format("%d", x)
    end
    return format("%.17g", x)
end


--- The notes as the JSON document wtt writes (and the API serves):
-- { <meta fields>..., "notes": [ {start_s, end_s, pitch_midi, amplitude,
-- velocity, onset, pitch_bends: [...]}, ... ] }
function _M.to_json(notes, meta)
    local parts = {}
    for i, n in ipairs(notes) do
        local bends = {}
        for j, b in ipairs(n.bends or {}) do
            bends[j] = num(b)
        end
        parts[i] = format('{"start_s":%s,"end_s":%s,"pitch_midi":%d,'
                          .. '"amplitude":%s,"velocity":%d,%s'
                          .. '"pitch_bends":[%s]}',
                          num(n.start_s), num(n.end_s), n.pitch,
                          num(n.amplitude), velocity(n.amplitude),
                          n.onset and ('"onset":' .. num(n.onset) .. ",")
                              or "",
                          concat(bends, ","))
    end
    local head = ""
    if meta and next(meta) then
        head = json.encode(meta):sub(2, -2) .. ","
    end
    return "{" .. head .. '"notes":[' .. concat(parts, ",\n") .. "]}\n"
end


--- CSV with the official header; bends follow as extra columns.
function _M.to_csv(notes)
    local lines = { CSV_HEADER }
    for i, n in ipairs(notes) do
        local row = { format("%.9f", n.start_s), format("%.9f", n.end_s),
                      n.pitch, velocity(n.amplitude) }
        for _, b in ipairs(n.bends or {}) do
            row[#row + 1] = b
        end
        lines[i + 1] = concat(row, ",")
    end
    return concat(lines, "\n") .. "\n"
end


--- Writes `data` to `path` atomically; true | nil, err.
function _M.write(path, data)
    local ok, err = sys.write_file(path, data)
    if not ok then
        return nil, "cannot write " .. path .. ": " .. tostring(err)
    end
    return true
end


-- midi.encode/midi.write's notes and options from `notes` and `opts`.
local function midi_args(notes, opts)
    opts = opts or {}
    local program = opts.program
    if not program and opts.instrument then
        program = midi.PROGRAMS[opts.instrument]
        if not program then
            return nil, "unknown instrument '" .. opts.instrument .. "'"
        end
    end
    local list = {}
    for i, n in ipairs(notes) do
        list[i] = { start_s = n.start_s, end_s = n.end_s, pitch = n.pitch,
                    amplitude = n.amplitude, bends = n.bends }
    end
    return list, {
        tempo = opts.tempo, program = program,
        multiple_pitch_bends = opts.multiple_pitch_bends,
    }
end


--- Writes a Standard MIDI File. opts: tempo, program/instrument,
-- multiple_pitch_bends.
function _M.write_midi(path, notes, opts)
    local list, mopts = midi_args(notes, opts)
    if not list then
        return nil, mopts
    end
    return midi.write(path, list, mopts)
end


--- The bytes of the Standard MIDI File write_midi would write (for stores
-- that take bytes, not paths) | nil, err.
function _M.encode_midi(notes, opts)
    local list, mopts = midi_args(notes, opts)
    if not list then
        return nil, mopts
    end
    return midi.encode(list, mopts)
end

return _M
