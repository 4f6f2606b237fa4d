--- Output buffers the tab writers keep between calls.
--
-- A fresh multi-megabyte block costs a page fault per 4 KiB on its first
-- touch, which took longer than writing a ten-minute piece's ASCII, JSON
-- or MusicXML. So each writer fills one buffer that lives as long as its
-- module, and hands the text out with `take`; a buffer that held more than
-- KEEP_BYTES (a very long piece) is given back rather than kept.
--
--     local OUT = held.new()
--     ... OUT:put(...) ...
--     return held.take(OUT)

local buffer = require "string.buffer"

local _M = {}

local KEEP_BYTES = 16 * 1024 * 1024


--- A buffer to hold.
function _M.new()
    return buffer.new()
end


--- The buffer's text; the buffer is emptied for the next call, or freed
-- when the text was larger than KEEP_BYTES.
function _M.take(b)
    local text = b:tostring()
    if #text > KEEP_BYTES then
        b:free()
    else
        b:reset()
    end
    return text
end


return _M
