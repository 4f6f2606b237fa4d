--- The HTTP helpers routes use: errors, JSON, files, streams.
--
-- A route handler receives a request and returns `status, body, headers`.
-- `body` may be a string, a table (sent as JSON), or what `file()` or
-- `stream()` return. Errors that should reach the client as a status are
-- raised with `abort()`; any other error becomes a 500 with a request id.

local json = require "wtt.json"
local httpd = require "wtt.core.http_server"

local type = type
local error = error
local tonumber = tonumber
local str_match = string.match
local str_format = string.format

local _M = {}

local ERROR_MT = {}
local FILE_KIND, STREAM_KIND = "file", "stream"

_M.JSON = "application/json"


--- Raises an error that the server answers with `status`.
-- @param status HTTP status (4xx/5xx)
-- @param code short machine-readable error name ("not_found")
-- @param detail human-readable explanation
-- @param headers optional extra response headers
function _M.abort(status, code, detail, headers)
    error(setmetatable({
        status = status, error = code, detail = detail, headers = headers,
    }, ERROR_MT), 2)
end


--- True when `err` is an error raised by `abort` (or the watchdog).
function _M.is_abort(err)
    return type(err) == "table" and type(err.status) == "number"
end


--- The JSON error body the API uses everywhere: {error, detail, request_id}.
function _M.error_body(code, detail, request_id)
    return json.encode({
        error = code, detail = detail, request_id = request_id,
    })
end


--- Decodes a JSON request body, or aborts with 400.
function _M.decode_json(body)
    if body == nil or body == "" then
        _M.abort(400, "bad_request", "request body must be JSON")
    end
    local ok, value = pcall(json.decode, body)
    if not ok then
        _M.abort(400, "bad_request", "malformed JSON: " .. tostring(value))
    end
    return value
end


-- Parses a single-range "bytes=a-b" header against `size`.
-- @return offset, length | nil (ignore the header) | false (unsatisfiable)
local function parse_range(header, size)
    if not header then
        return nil
    end
    local a, b = str_match(header, "^%s*bytes%s*=%s*(%d*)%s*%-%s*(%d*)%s*$")
    if not a or (a == "" and b == "") then
        return nil     -- multiple ranges or junk: serve the whole file
    end
    local first, last
    if a == "" then
        local n = tonumber(b)
        if n == 0 then
            return false
        end
        first = size > n and size - n or 0
        last = size - 1
    else
        first = tonumber(a)
        last = b ~= "" and tonumber(b) or size - 1
        if last >= size then
            last = size - 1
        end
    end
    if first >= size or last < first then
        return false
    end
    return first, last - first + 1
end
_M.parse_range = parse_range


--- The status, byte range and headers of an answer with a body of `size`
-- bytes, honouring a Range request header (one range; junk or several
-- ranges get the whole body). Shared by file() and bodies that do not come
-- from a local file (wtt.service.media's PostgreSQL store), so both answer
-- a range the same way.
-- @param req the request (for its Range header)
-- @param size the body's length in bytes
-- @param opts { content_type, download_name, headers }
-- @return status (200, 206 or 416), offset, length, headers; a 416 has
--   no body (offset and length are nil)
function _M.range_answer(req, size, opts)
    opts = opts or {}
    local headers = {
        ["Content-Type"] = opts.content_type or "application/octet-stream",
        ["Accept-Ranges"] = "bytes",
        ["X-Content-Type-Options"] = "nosniff",
    }
    if opts.download_name then
        headers["Content-Disposition"] = str_format(
            'attachment; filename="%s"',
            (opts.download_name:gsub('[^%w%._%-]', "_")))
    end
    if opts.headers then
        for k, v in pairs(opts.headers) do
            headers[k] = v
        end
    end
    local offset, length = parse_range(req:header("Range"), size)
    if offset == false then
        headers["Content-Range"] = "bytes */" .. str_format("%d", size)
        return 416, nil, nil, headers
    end
    if offset then
        headers["Content-Range"] = str_format("bytes %d-%d/%d", offset,
                                              offset + length - 1, size)
        return 206, offset, length, headers
    end
    return 200, 0, size, headers
end


--- Serves a file, honouring a Range request header.
-- @param req the request (for its Range header)
-- @param path file to send (regular files only)
-- @param opts { content_type, download_name, nofollow, headers }
-- @return status, body, headers (return them from the route)
function _M.file(req, path, opts)
    opts = opts or {}
    local fd, size = httpd.open(path, opts.nofollow)
    if not fd then
        _M.abort(404, "not_found", "no such file")
    end
    local status, offset, length, headers = _M.range_answer(req, size, opts)
    if status == 416 then
        fd:close()
        return 416, "", headers
    end
    return status, { kind = FILE_KIND, fd = fd, offset = offset,
                     length = length }, headers
end


--- A streamed (chunked) response fed by `next_chunk`.
-- `next_chunk()` returns a string to send, `false` when it has nothing yet
-- (it is asked again after `poll_ms`, or after `ms` when it returns
-- `false, ms`; sooner when a waker from httpd.waker wakes it), or nil to
-- end the response. `text, ms` sends text and then waits as `false, ms`
-- would, without asking again first.
-- `on_close(finished)` runs once when the response ends, also when the
-- client went away (`finished` is false then).
-- `sndbuf` (bytes, optional) caps the kernel's send buffer of the socket,
-- so a client that stops reading holds at most that much there.
-- @return a body for `return 200, http.stream(...), headers`
function _M.stream(next_chunk, opts)
    opts = opts or {}
    return {
        kind = STREAM_KIND,
        next = next_chunk,
        on_close = opts.on_close,
        poll_ms = opts.poll_ms or 100,
        sndbuf = opts.sndbuf,
    }
end


return _M
