--- The golden clips the engine specs compare against: a clip in
-- spec/fixtures/clips/ with the official implementation's outputs in
-- spec/fixtures/golden/<name>/ (made by tools/reference/make-goldens.sh),
-- and the two note-extraction presets the goldens were made with.

local runtime = require "wtt.runtime"
local sys = require "wtt.sys"

local _M = {}

_M.FIXTURES = runtime.source_dir .. "/spec/fixtures"

_M.PRESETS = {
    python = { min_note_ms = 127.70 },
    js = { min_note_frames = 5 },
}


--- Names of the clips that have goldens, sorted.
function _M.clips()
    local clips = {}
    for _, name in ipairs(sys.listdir(_M.FIXTURES .. "/golden") or {}) do
        if sys.exists(_M.FIXTURES .. "/clips/" .. name .. ".wav") == "file"
        then
            clips[#clips + 1] = name
        end
    end
    table.sort(clips)
    return clips
end

return _M
