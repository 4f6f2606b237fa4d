--- Reads float32 .npy files (v1.0, C order) for the engine specs.
local ffi = require "ffi"
local sys = require "wtt.sys"

local _M = {}


--- Loads `path`: returns { rows, cols, get = function(r, c) } (1-based).
function _M.load(path)
    local data = assert(sys.read_file(path))
    assert(data:sub(1, 6) == "\147NUMPY", path .. ": not a .npy file")
    local hl = data:byte(9) + data:byte(10) * 256
    local header = data:sub(11, 10 + hl)
    assert(header:find("'<f4'", 1, true), path .. ": not float32")
    local rows, cols = header:match("'shape': %((%d+), (%d+)%)")
    rows, cols = tonumber(rows), tonumber(cols)
    local body = data:sub(11 + hl)
    assert(#body == rows * cols * 4, path .. ": size mismatch")
    local f = ffi.new("float[?]", rows * cols)
    ffi.copy(f, body, #body)
    return {
        rows = rows, cols = cols, data = f, bytes = body,
        get = function(r, c) return f[(r - 1) * cols + (c - 1)] end,
    }
end


return _M
