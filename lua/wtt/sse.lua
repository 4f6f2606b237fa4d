--- Server-Sent Events on the wire (the event-stream format of the WHATWG
-- HTML standard): events with an id, comments, the reconnection hint, and
-- the headers of a stream.

local type = type
local tostring = tostring
local str_find = string.find
local str_gsub = string.gsub
local concat = table.concat

local _M = {}

--- Headers of an event stream. `X-Accel-Buffering: no` keeps nginx (and
-- proxies that honour it) from buffering events; `no-store` keeps caches
-- out of it.
_M.HEADERS = {
    ["Content-Type"] = "text/event-stream; charset=utf-8",
    ["Cache-Control"] = "no-store",
    ["X-Accel-Buffering"] = "no",
}


-- Field values must not break a line: CR and LF end a field.
local function one_line(s)
    s = tostring(s)
    if str_find(s, "[\r\n]") then
        s = str_gsub(s, "[\r\n]", " ")
    end
    return s
end


--- One event: `id:`, `event:`, then `data` (a string; each of its lines
-- becomes a `data:` line, which the client joins back with newlines).
function _M.event(name, id, data)
    local out = { "id: ", one_line(id), "\nevent: ", one_line(name), "\n" }
    if type(data) ~= "string" then
        data = tostring(data)
    end
    if str_find(data, "[\r\n]") then
        data = str_gsub(data, "\r\n?", "\n")
        for line in (data .. "\n"):gmatch("([^\n]*)\n") do
            out[#out + 1] = "data: "
            out[#out + 1] = line
            out[#out + 1] = "\n"
        end
    else
        out[#out + 1] = "data: "
        out[#out + 1] = data
        out[#out + 1] = "\n"
    end
    out[#out + 1] = "\n"
    return concat(out)
end


--- A comment line (ignored by clients; keeps proxies and the connection
-- from timing out).
function _M.comment(text)
    return ": " .. one_line(text) .. "\n\n"
end


--- The reconnection delay the client should use, in ms.
function _M.retry(ms)
    return ("retry: %d\n\n"):format(ms)
end

return _M
