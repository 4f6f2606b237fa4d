--- Spec and bench helpers: Server-Sent Events clients over raw TCP, many
-- at once in one process (poll(2) through the FFI), each parsing the
-- chunked HTTP answer and the event stream as a browser's EventSource
-- does.
--
--     local sse = require "spec.support.sse"
--     local c = sse.open(port, "/transcribe/events/" .. id .. "/",
--                        { last_event_id = "1001000" })
--     sse.wait({ c }, function() return c.ended end, 10)
--     c.status, c.headers["content-type"], c.events[1].event, c.events[1].data
--
-- Every event is { id, event, data, t } (t: sys.now() when its bytes were
-- read); `comments` counts comment lines; `ended` is "end" (the server
-- finished the chunked body), "closed" (EOF without it) or "reset".

local ffi = require "ffi"
local sys = require "wtt.sys"

local _M = {}

pcall(ffi.cdef, [[
struct wtt_spec_pollfd { int fd; short events; short revents; };
int poll(struct wtt_spec_pollfd *fds, unsigned long nfds, int timeout);
struct wtt_spec_rlimit { unsigned long cur; unsigned long max; };
int getrlimit(int resource, struct wtt_spec_rlimit *rlim);
int setrlimit(int resource, const struct wtt_spec_rlimit *rlim);
int setsockopt(int fd, int level, int name, const void *val, unsigned len);
]])

local POLLIN = 1
local RLIMIT_NOFILE = 7
local SOL_SOCKET, SO_RCVBUF = 1, 8


--- Raises this process's soft limit on open files to `n` (or the hard
-- limit). Returns the soft limit now in force.
function _M.raise_nofile(n)
    local rl = ffi.new("struct wtt_spec_rlimit")
    if ffi.C.getrlimit(RLIMIT_NOFILE, rl) ~= 0 then
        return nil
    end
    local want = math.min(n, tonumber(rl.max))
    if tonumber(rl.cur) < want then
        rl.cur = want
        ffi.C.setrlimit(RLIMIT_NOFILE, rl)
        ffi.C.getrlimit(RLIMIT_NOFILE, rl)
    end
    return tonumber(rl.cur)
end


local client = {}
local client_mt = { __index = client }


--- Opens an event stream: connects, sends the GET, returns the client
-- (nothing read yet). opts: last_event_id, headers, bind, rcvbuf (bytes:
-- a small receive buffer makes a slow reader).
function _M.open(port, path, opts)
    opts = opts or {}
    local conn, err = sys.tcp_connect("127.0.0.1", port,
                                      { bind = opts.bind, timeout = 10 })
    if not conn then
        return nil, err
    end
    if opts.rcvbuf then
        local v = ffi.new("int[1]", opts.rcvbuf)
        ffi.C.setsockopt(conn:fd(), SOL_SOCKET, SO_RCVBUF, v, 4)
    end
    local lines = { "GET " .. path .. " HTTP/1.1", "Host: 127.0.0.1",
                    "Accept: text/event-stream" }
    if opts.last_event_id then
        lines[#lines + 1] = "Last-Event-ID: " .. opts.last_event_id
    end
    for k, v in pairs(opts.headers or {}) do
        lines[#lines + 1] = k .. ": " .. v
    end
    local ok, serr = conn:send(table.concat(lines, "\r\n") .. "\r\n\r\n", 10)
    if not ok then
        conn:close()
        return nil, serr
    end
    return setmetatable({
        conn = conn, fd = conn:fd(), raw = "", body = "", text = "",
        headers = {}, events = {}, comments = 0, cur = {},
        state = "head", bytes = 0,
    }, client_mt)
end


-- Parses complete lines of the event stream in self.text.
local function parse_events(self, t)
    local text = self.text
    local pos = 1
    while true do
        local nl = text:find("\n", pos, true)
        if not nl then
            break
        end
        local line = text:sub(pos, nl - 1):gsub("\r$", "")
        pos = nl + 1
        local cur = self.cur
        if line == "" then
            if cur.data then
                self.events[#self.events + 1] = {
                    id = cur.id, event = cur.event or "message",
                    data = table.concat(cur.data, "\n"), t = t,
                }
            end
            if cur.id then
                self.last_id = cur.id
            end
            self.cur = {}
        elseif line:sub(1, 1) == ":" then
            self.comments = self.comments + 1
        else
            local field, value = line:match("^([^:]*):? ?(.*)$")
            if field == "data" then
                cur.data = cur.data or {}
                cur.data[#cur.data + 1] = value
            elseif field == "id" then
                cur.id = value
            elseif field == "event" then
                cur.event = value
            elseif field == "retry" then
                self.retry = tonumber(value)
            end
        end
    end
    self.text = text:sub(pos)
end


-- Decodes what can be decoded of the chunked body in self.body.
local function parse_chunks(self, t)
    while true do
        local eol = self.body:find("\r\n", 1, true)
        if not eol then
            return
        end
        local size = tonumber(self.body:sub(1, eol - 1):match("^%x+"), 16)
        if not size then
            self.ended = "bad chunk"
            return
        end
        if size == 0 then
            self.ended = "end"
            return
        end
        if #self.body < eol + 1 + size + 2 then
            return
        end
        self.text = self.text .. self.body:sub(eol + 2, eol + 1 + size)
        self.body = self.body:sub(eol + 4 + size)
        parse_events(self, t)
    end
end


local function feed(self, data, t)
    self.bytes = self.bytes + #data
    if self.state == "head" then
        self.raw = self.raw .. data
        local e = self.raw:find("\r\n\r\n", 1, true)
        if not e then
            return
        end
        local head = self.raw:sub(1, e - 1)
        self.status = tonumber(head:match("^HTTP/1%.%d (%d%d%d)"))
        for k, v in head:gmatch("\r\n([^:\r\n]+):%s*([^\r\n]*)") do
            self.headers[k:lower()] = v
        end
        data = self.raw:sub(e + 4)
        self.raw = nil
        self.state = "body"
        self.chunked = (self.headers["transfer-encoding"] or ""):lower()
                       == "chunked"
        self.length = tonumber(self.headers["content-length"])
        if self.status == 204 or self.status == 304 then
            self.length = 0
        end
    end
    if self.chunked then
        self.body = self.body .. data
        parse_chunks(self, t)
    else
        self.plain = (self.plain or "") .. data
        if self.length and #self.plain >= self.length then
            self.ended = "end"
        end
    end
end


-- Reads what is there without blocking, stamping it with the time it was
-- read; the bytes are parsed later (parse_pending), so that a poll that
-- finds many clients readable stamps each at its own read, not after the
-- parsing of the others.
-- With `once`, one read (poll said the socket is readable; what arrives
-- later, it says again).
local function read_pending(self, once)
    while self.conn do
        local data, err, how = self.conn:recv(1024 * 1024, 0)
        if data then
            self.pending = self.pending or {}
            self.pending[#self.pending + 1] = { data, sys.now() }
            if once then
                break
            end
        elseif err == "timeout" then
            break
        else
            self.eof = how == "reset" and "reset" or "closed"
            self.conn:close()
            self.conn = nil
        end
    end
end


local function parse_pending(self)
    local p = self.pending
    self.pending = nil
    for i = 1, p and #p or 0 do
        feed(self, p[i][1], p[i][2])
    end
    if self.eof then
        self.ended = self.ended or self.eof
    end
end


--- Reads what is there without blocking. Returns false once the stream
-- ended (see `ended`).
function client.pump(self)
    read_pending(self)
    parse_pending(self)
    return not self.ended
end


function client.close(self)
    if self.conn then
        self.conn:close()
        self.conn = nil
    end
    self.ended = self.ended or "closed by client"
end


--- The events named `name`.
function client.named(self, name)
    local out = {}
    for _, e in ipairs(self.events) do
        if e.event == name then
            out[#out + 1] = e
        end
    end
    return out
end


--- Pumps `clients` (and calls `on_ready(fd)` for each extra descriptor in
-- `extra` that is readable) until `done()` is true or `timeout` seconds
-- pass. Returns done()'s value.
function _M.wait(clients, done, timeout, extra, on_ready)
    local deadline = sys.now() + (timeout or 10)
    local n = #clients + (extra and #extra or 0)
    local fds = ffi.new("struct wtt_spec_pollfd[?]", math.max(n, 1))
    local owner = {}
    while true do
        local v = done()
        if v then
            return v
        end
        local left = deadline - sys.now()
        if left <= 0 then
            return done()
        end
        local k = 0
        for _, c in ipairs(clients) do
            if c.conn then
                fds[k].fd = c.fd
                fds[k].events = POLLIN
                fds[k].revents = 0
                owner[k] = c
                k = k + 1
            end
        end
        for _, fd in ipairs(extra or {}) do
            fds[k].fd = fd
            fds[k].events = POLLIN
            fds[k].revents = 0
            owner[k] = fd
            k = k + 1
        end
        if k == 0 then
            sys.sleep(math.min(0.05, left))
        else
            local rc = ffi.C.poll(fds, k, math.max(1, math.floor(math.min(left, 0.2) * 1000)))
            if rc > 0 then
                -- The extra descriptors come last in the set but are
                -- handled first (a bench's reference clock), then every
                -- readable client is read, and only then parsed.
                for i = 0, k - 1 do
                    if fds[i].revents ~= 0 and type(owner[i]) ~= "table"
                       and on_ready then
                        on_ready(owner[i])
                    end
                end
                local ready = {}
                for i = 0, k - 1 do
                    if fds[i].revents ~= 0 and type(owner[i]) == "table" then
                        read_pending(owner[i], true)
                        ready[#ready + 1] = owner[i]
                    end
                end
                for _, c in ipairs(ready) do
                    parse_pending(c)
                end
            end
        end
    end
end


--- A condition for _M.wait: pred(c) holds for every client of `clients`.
function _M.all(clients, pred)
    return function()
        for _, c in ipairs(clients) do
            if not pred(c) then
                return false
            end
        end
        return true
    end
end


--- Decodes an event's JSON data.
function _M.data(e)
    return require("wtt.json").decode(e.data)
end

return _M
