--- Validation of transcription options (POST /transcribe/generate/ and
-- POST /transcribe/retune/{id}/). Unknown keys and out-of-range values are
-- refused with a reason; the result holds only known keys.

local _M = {}

-- "posteriors" (the saved posteriorgram) feeds POST /transcribe/retune/.
local OUTPUTS = { midi = true, notes = true, posteriors = true }
-- The posteriorgram is opt-in: it is 1,760 bytes per frame (about 9 MB for
-- a minute of audio), and uploading it by default added about a third to
-- the end-to-end time of a task (bench/queue.sh).
_M.DEFAULT_OUTPUTS = { "midi", "notes" }

local function number(v)
    return type(v) == "number" and v == v and v > -math.huge and v < math.huge
end


local CHECKS = {
    onset_threshold = function(v)
        return number(v) and v > 0 and v < 1, "a number in (0, 1)"
    end,
    frame_threshold = function(v)
        return number(v) and v > 0 and v < 1, "a number in (0, 1)"
    end,
    min_note_ms = function(v)
        return number(v) and v >= 0 and v <= 60000, "a number of ms in [0, 60000]"
    end,
    min_freq = function(v)
        return number(v) and v > 0 and v <= 22050, "a frequency in (0, 22050] Hz"
    end,
    max_freq = function(v)
        return number(v) and v > 0 and v <= 22050, "a frequency in (0, 22050] Hz"
    end,
    melodia = function(v)
        return type(v) == "boolean", "a boolean"
    end,
    mode = function(v)
        return v == "official" or v == "guitar" or v == "bass",
               "official, guitar or bass"
    end,
    rules = function(v)
        return type(v) == "string" or (type(v) == "table" and #v > 0),
               "a comma-separated string or a list of rule names (ghost, "
               .. "weak, retrigger, split, bend, range, register, strum, chord, "
               .. "all, none)"
    end,
}


--- Validates `opts` (decoded JSON). `with_outputs`: `outputs` allowed.
-- @return normalized options, outputs | nil, reason
function _M.validate(opts, with_outputs)
    if opts == nil or opts == require("wtt.json").null then
        opts = {}
    end
    if type(opts) ~= "table" then
        return nil, "options must be a JSON object"
    end
    local out, outputs = {}, nil
    for k, v in pairs(opts) do
        if type(k) ~= "string" then
            return nil, "options must be a JSON object"
        end
        if k == "outputs" and with_outputs then
            if type(v) ~= "table" or #v == 0 then
                return nil, "outputs must be a non-empty list of \"midi\", \"notes\", \"posteriors\""
            end
            local seen, list = {}, {}
            for i, o in pairs(v) do
                if type(i) ~= "number" or not OUTPUTS[o] then
                    return nil, "outputs must be a subset of [\"midi\", \"notes\", \"posteriors\"]"
                end
                if not seen[o] then
                    seen[o] = true
                    list[#list + 1] = o
                end
            end
            table.sort(list)
            outputs = list
        else
            local check = CHECKS[k]
            if not check then
                return nil, "unknown option '" .. k .. "'"
            end
            local ok, what = check(v)
            if not ok then
                return nil, k .. " must be " .. what
            end
            out[k] = v
        end
    end
    if out.min_freq and out.max_freq and out.min_freq >= out.max_freq then
        return nil, "min_freq must be below max_freq"
    end
    if out.rules ~= nil then
        if out.mode ~= "guitar" and out.mode ~= "bass" then
            return nil, "rules needs mode guitar or bass"
        end
        local ok, err = require("wtt.model").check_mode(out.mode, out.rules)
        if not ok then
            return nil, "rules: " .. err
        end
    end
    return out, outputs or _M.DEFAULT_OUTPUTS
end

return _M
