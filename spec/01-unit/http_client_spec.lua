-- Specs for the wtt.http_client C module (core/bind/wtt_http_client.c), run
-- inside the wtt VM (`wtt spec`) against a small Python 3 stdlib HTTP server
-- that this file writes to a temp file and starts on a free port of 127.0.0.1.

local httpc = require "wtt.http_client"

local assert = assert
local describe = describe
local it = it
local lazy_setup = lazy_setup
local lazy_teardown = lazy_teardown
local io_open = io.open
local os_execute = os.execute
local os_remove = os.remove
local os_tmpname = os.tmpname
local str_byte = string.byte
local str_char = string.char
local str_format = string.format
local str_rep = string.rep
local tbl_concat = table.concat
local error = error
local ipairs = ipairs
local tonumber = tonumber


-- The test server. GET/POST/any method on:
--   /inspect          method, version, client address, headers, body length
--   /echo             the request body back, X-Method: the method
--   /status/N         status N
--   /big?n=N          N bytes (byte i is i % 251), with Content-Length
--   /big-chunked?n=N  the same bytes, chunked
--   /slow?delay=S     answers after S seconds
--   /stream?n=N&interval=S  N chunked "data: i\n\n" events, S apart
--   /stats            stream_aborts=<clients that left a stream early>
--   /multipart        one line per part: name, filename, type, size, hex
--   /headers          repeated response headers
--   /redirect         302 to /inspect
--   /truncate         announces 1000 bytes, sends 10, closes
--   /close            closes without answering
-- It writes "<port> <closed port>\n" to the file named by argv[1] and exits
-- by itself after 10 minutes in case teardown never runs.
local SERVER = [=[
import os, socket, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit, parse_qs

STATS = {"stream_aborts": 0}
LOCK = threading.Lock()


def pattern(n):
    return bytes(i % 251 for i in range(n))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def __getattr__(self, name):
        if name.startswith("do_"):
            return self.route
        raise AttributeError(name)

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def reply(self, status, body, headers=()):
        if status in (204, 304):
            body = b""
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def route(self):
        url = urlsplit(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        body = self.read_body()
        p = url.path

        if p == "/inspect":
            lines = ["method=" + self.command, "path=" + self.path,
                     "version=" + self.request_version,
                     "client_ip=" + self.client_address[0],
                     "client_port=%d" % self.client_address[1],
                     "body_len=%d" % len(body)]
            for k, v in self.headers.items():
                lines.append("h:%s=%s" % (k.lower(), v))
            self.reply(200, ("\n".join(lines) + "\n").encode(),
                       [("Content-Type", "text/plain")])
        elif p == "/echo":
            self.reply(200, body, [("Content-Type", "application/octet-stream"),
                                   ("X-Method", self.command)])
        elif p.startswith("/status/"):
            code = int(p[8:])
            self.reply(code, b"status %d" % code)
        elif p == "/big":
            self.reply(200, pattern(int(q["n"])))
        elif p == "/big-chunked":
            data = pattern(int(q["n"]))
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(data), 16384):
                self.chunk(data[i:i + 16384])
            self.wfile.write(b"0\r\n\r\n")
        elif p == "/slow":
            time.sleep(float(q.get("delay", "2")))
            self.reply(200, b"slow")
        elif p == "/stream":
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                for i in range(int(q.get("n", "10"))):
                    self.chunk(b"data: %d\n\n" % i)
                    time.sleep(float(q.get("interval", "0.02")))
                self.wfile.write(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                with LOCK:
                    STATS["stream_aborts"] += 1
                self.close_connection = True
        elif p == "/stats":
            with LOCK:
                text = "stream_aborts=%d\n" % STATS["stream_aborts"]
            self.reply(200, text.encode())
        elif p == "/multipart":
            ctype = self.headers.get("Content-Type", "")
            boundary = ctype.split("boundary=", 1)[1].strip('"').encode()
            lines = []
            for part in body.split(b"--" + boundary)[1:]:
                if part.startswith(b"--"):
                    break
                head, _, data = part[2:].partition(b"\r\n\r\n")
                data = data[:-2]
                info = {"name": "", "filename": "", "type": ""}
                for h in head.decode().split("\r\n"):
                    k, _, v = h.partition(":")
                    if k.lower() == "content-type":
                        info["type"] = v.strip()
                    elif k.lower() == "content-disposition":
                        for item in v.split(";")[1:]:
                            ik, _, iv = item.strip().partition("=")
                            info[ik] = iv.strip('"')
                lines.append("part name=%s filename=%s type=%s size=%d hex=%s"
                             % (info["name"], info["filename"], info["type"],
                                len(data), data[:32].hex()))
            self.reply(200, ("\n".join(lines) + "\n").encode())
        elif p == "/headers":
            self.reply(200, b"ok", [("Set-Cookie", "a=1"),
                                    ("Set-Cookie", "b=2"),
                                    ("X-Dup", "one"), ("X-Dup", "two"),
                                    ("X-Empty", "")])
        elif p == "/redirect":
            self.reply(302, b"moved", [("Location", "/inspect")])
        elif p == "/truncate":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"0123456789")
            self.wfile.flush()
            self.close_connection = True
        elif p == "/close":
            self.close_connection = True
        else:
            self.reply(404, b"not found")


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass


def main():
    threading.Timer(600, os._exit, [0]).start()
    srv = Server(("127.0.0.1", 0), Handler)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    closed = s.getsockname()[1]
    s.close()
    tmp = sys.argv[1] + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d %d\n" % (srv.server_address[1], closed))
    os.rename(tmp, sys.argv[1])
    srv.serve_forever()


main()
]=]


local function sh(cmd)
    local rc = os_execute(cmd)
    return rc == 0 or rc == true
end


local function read_file(path)
    local f = io_open(path, "rb")
    if f == nil then
        return nil
    end
    local data = f:read("*a")
    f:close()
    return data
end


local function write_file(path, data)
    local f = assert(io_open(path, "wb"))
    assert(f:write(data))
    assert(f:close())
end


-- The body /big serves: byte i is i % 251.
local function pattern(n)
    local t = {}
    for i = 0, n - 1 do
        t[#t + 1] = str_char(i % 251)
    end
    return tbl_concat(t)
end


local function all_bytes(times)
    local t = {}
    for i = 0, 255 do
        t[#t + 1] = str_char(i)
    end
    return str_rep(tbl_concat(t), times)
end


local function to_hex(s)
    return (s:gsub(".", function(c)
        return str_format("%02x", str_byte(c))
    end))
end


-- /inspect's body as { method=, version=, ..., h = { name = value } }.
local function parse_inspect(body)
    local t = { h = {} }
    for line in body:gmatch("[^\n]+") do
        local hk, hv = line:match("^h:([^=]+)=(.*)$")
        if hk then
            t.h[hk] = hv
        else
            local k, v = line:match("^([^=]+)=(.*)$")
            t[k] = v
        end
    end
    return t
end


describe("wtt.http_client", function()
    local base, refused_url, server_pid, script, ready

    -- Every request goes direct: the environment's proxy settings must not
    -- send 127.0.0.1 traffic elsewhere.
    local function request(opts)
        if opts.proxy == nil then
            opts.proxy = ""
        end
        return httpc.request(opts)
    end

    local function url(path)
        return base .. path
    end

    lazy_setup(function()
        script = os_tmpname()
        write_file(script, SERVER)
        ready = os_tmpname()
        os_remove(ready)
        local pidfile = os_tmpname()
        assert(sh(str_format("python3 %s %s >/dev/null 2>&1 & echo $! > %s",
                             script, ready, pidfile)))
        server_pid = read_file(pidfile):match("%d+")
        os_remove(pidfile)

        local port, closed
        for _ = 1, 200 do
            local s = read_file(ready)
            if s ~= nil then
                port, closed = s:match("^(%d+) (%d+)")
                break
            end
            sh("sleep 0.05")
        end
        assert(port, "the python3 test server did not start")
        base = "http://127.0.0.1:" .. port
        refused_url = "http://127.0.0.1:" .. closed .. "/"
    end)

    lazy_teardown(function()
        if server_pid ~= nil then
            sh("kill " .. server_pid .. " 2>/dev/null")
        end
        os_remove(script)
        os_remove(ready)
    end)


    describe("request()", function()
        it("GETs status, lowercased headers and body", function()
            local res, err = request{ url = url("/inspect") }
            assert.is_nil(err)
            assert.equal(200, res.status)
            assert.equal("text/plain", res.headers["content-type"])
            assert.equal("1.1", res.http_version)
            assert.equal(#res.body, res.size)
            assert.is_number(res.time)
            local info = parse_inspect(res.body)
            assert.equal("GET", info.method)
            assert.equal("/inspect", info.path)
            assert.equal("0", info.body_len)
        end)

        it("sends the given request headers", function()
            local res = assert(request{
                url = url("/inspect"),
                headers = { ["X-Test"] = "abc", ["X-Num"] = 42,
                            ["User-Agent"] = "spec/1", ["X-Empty"] = "" },
            })
            local h = parse_inspect(res.body).h
            assert.equal("abc", h["x-test"])
            assert.equal("42", h["x-num"])
            assert.equal("spec/1", h["user-agent"])
            assert.equal("", h["x-empty"])
        end)

        it("drops a default header given as false", function()
            local res = assert(request{
                url = url("/inspect"), headers = { Accept = false },
            })
            assert.is_nil(parse_inspect(res.body).h["accept"])
        end)

        it("POSTs a binary body with NUL bytes unchanged", function()
            local body = all_bytes(64)
            local res = assert(request{
                url = url("/echo"), method = "POST", body = body,
            })
            assert.equal(200, res.status)
            assert.equal("POST", res.headers["x-method"])
            assert.equal(#body, #res.body)
            assert.equal(body, res.body)
        end)

        it("defaults to POST without a Content-Type when given a body",
           function()
            local res = assert(request{ url = url("/inspect"), body = "abc" })
            local info = parse_inspect(res.body)
            assert.equal("POST", info.method)
            assert.equal("3", info.body_len)
            assert.is_nil(info.h["content-type"])
        end)

        it("answers HEAD with headers and an empty body", function()
            local res = assert(request{ url = url("/big?n=5000"),
                                        method = "HEAD" })
            assert.equal(200, res.status)
            assert.equal("5000", res.headers["content-length"])
            assert.equal("", res.body)
            assert.equal(0, res.size)
        end)

        it("sends any method token", function()
            for _, m in ipairs{ "PUT", "PATCH", "DELETE", "OPTIONS",
                                "PURGE" } do
                local res = assert(request{ url = url("/inspect"),
                                            method = m })
                assert.equal(m, parse_inspect(res.body).method)
            end
        end)

        it("returns non-2xx statuses as responses", function()
            for _, code in ipairs{ 404, 500, 503 } do
                local res, err = request{ url = url("/status/" .. code) }
                assert.is_nil(err)
                assert.equal(code, res.status)
                assert.equal("status " .. code, res.body)
            end
        end)

        it("joins repeated response headers with a comma", function()
            local res = assert(request{ url = url("/headers") })
            assert.equal("a=1, b=2", res.headers["set-cookie"])
            assert.equal("one, two", res.headers["x-dup"])
            assert.equal("", res.headers["x-empty"])
        end)

        it("streams body_file as the request body", function()
            local path = os_tmpname()
            local body = all_bytes(300)
            write_file(path, body)
            local res = assert(request{
                url = url("/echo"), method = "PUT", body_file = path,
            })
            os_remove(path)
            assert.equal("PUT", res.headers["x-method"])
            assert.equal(body, res.body)
        end)

        it("uploads multipart parts", function()
            local path = os_tmpname()
            write_file(path, all_bytes(40))
            local res = assert(request{
                url = url("/multipart"),
                multipart = {
                    { name = "field", value = "hello" },
                    { name = "blob", data = "\0\1\2", filename = "b.bin",
                      content_type = "application/octet-stream" },
                    { name = "audio", file = path, filename = "a.wav",
                      content_type = "audio/wav" },
                },
            })
            os_remove(path)
            assert.equal(200, res.status)
            local lines = {}
            for line in res.body:gmatch("[^\n]+") do
                lines[#lines + 1] = line
            end
            assert.same({
                "part name=field filename= type= size=5 hex="
                    .. to_hex("hello"),
                "part name=blob filename=b.bin type=application/octet-stream"
                    .. " size=3 hex=000102",
                "part name=audio filename=a.wav type=audio/wav size=10240"
                    .. " hex=" .. to_hex(all_bytes(1):sub(1, 32)),
            }, lines)
        end)

        it("reuses the connection between requests", function()
            local a = parse_inspect(assert(request{ url = url("/inspect") })
                                    .body)
            local b = parse_inspect(assert(request{ url = url("/inspect") })
                                    .body)
            assert.equal(a.client_port, b.client_port)
        end)

        it("speaks HTTP/1.0 when asked", function()
            local res = assert(request{ url = url("/inspect"),
                                        http_version = "1.0" })
            assert.equal("HTTP/1.0", parse_inspect(res.body).version)
        end)

        it("sends Expect: 100-continue only when asked", function()
            local body = str_rep("x", 4096)
            local on = parse_inspect(assert(request{
                url = url("/inspect"), body = body, expect_continue = true,
            }).body)
            assert.equal("100-continue", on.h["expect"])
            assert.equal("4096", on.body_len)
            local off = parse_inspect(assert(request{
                url = url("/inspect"), body = str_rep("x", 2000000),
                expect_continue = false,
            }).body)
            assert.is_nil(off.h["expect"])
            assert.equal("2000000", off.body_len)
        end)

        it("binds the given local address", function()
            local res = assert(request{ url = url("/inspect"),
                                        local_address = "host!127.0.0.2" })
            assert.equal("127.0.0.2", parse_inspect(res.body).client_ip)
        end)

        it("follows redirects only when asked", function()
            local res = assert(request{ url = url("/redirect") })
            assert.equal(302, res.status)
            assert.equal("/inspect", res.headers["location"])
            res = assert(request{ url = url("/redirect"), follow = true })
            assert.equal(200, res.status)
            assert.equal(url("/inspect"), res.url)
            assert.is_nil(res.headers["location"])
        end)

        it("receives a large body", function()
            local res = assert(request{ url = url("/big?n=3000000") })
            assert.equal(3000000, res.size)
            assert.equal(pattern(3000000), res.body)
        end)
    end)


    describe("failures", function()
        it("returns nil, err when the body exceeds max_size", function()
            local res, err = request{ url = url("/big?n=100000"),
                                      max_size = 1000 }
            assert.is_nil(res)
            assert.equal("request failed: response larger than 1000 bytes",
                         err)
        end)

        it("enforces max_size without a Content-Length", function()
            local res, err = request{ url = url("/big-chunked?n=100000"),
                                      max_size = 50000 }
            assert.is_nil(res)
            assert.equal("request failed: response larger than 50000 bytes",
                         err)
            res = assert(request{ url = url("/big-chunked?n=100000"),
                                  max_size = 100000 })
            assert.equal(100000, res.size)
        end)

        it("returns nil, err on timeout", function()
            local res, err = request{ url = url("/slow?delay=3"),
                                      timeout = 0.3 }
            assert.is_nil(res)
            assert.matches("^request failed: timeout", err)
        end)

        it("returns nil, err when the connection is refused", function()
            local res, err = request{ url = refused_url }
            assert.is_nil(res)
            assert.matches("^request failed: could not connect", err)
        end)

        it("returns nil, err on a truncated body", function()
            local res, err = request{ url = url("/truncate") }
            assert.is_nil(res)
            assert.matches("^request failed: incomplete body", err)
        end)

        it("returns nil, err on an empty reply", function()
            local res, err = request{ url = url("/close") }
            assert.is_nil(res)
            assert.matches("^request failed: empty reply", err)
        end)

        it("returns nil, err for a missing body_file", function()
            local res, err = request{ url = url("/echo"),
                                      body_file = "/nonexistent/x" }
            assert.is_nil(res)
            assert.matches("^request failed: cannot open body_file", err)
        end)

        it("returns nil, err for a missing multipart file", function()
            local res, err = request{
                url = url("/multipart"),
                multipart = { { name = "f", file = "/nonexistent/x" } },
            }
            assert.is_nil(res)
            assert.matches("^request failed: cannot read multipart file",
                           err)
        end)

        it("returns nil, err for an unsupported scheme", function()
            local res, err = request{ url = "file:///etc/passwd" }
            assert.is_nil(res)
            assert.matches("^request failed: unsupported protocol", err)
        end)
    end)


    describe("output", function()
        it("streams the body to a file", function()
            local path = os_tmpname()
            local res = assert(request{ url = url("/big?n=200000"),
                                        output = path })
            assert.is_nil(res.body)
            assert.equal(200000, res.size)
            assert.equal(pattern(200000), read_file(path))
            os_remove(path)
        end)

        it("removes the partial file on failure", function()
            local path = os_tmpname()
            local res, err = request{ url = url("/big-chunked?n=100000"),
                                      output = path, max_size = 20000 }
            assert.is_nil(res)
            assert.matches("larger than 20000 bytes", err)
            assert.is_nil(read_file(path))
        end)
    end)


    describe("on_data", function()
        it("receives the body in chunks", function()
            local got = {}
            local res = assert(request{
                url = url("/stream?n=5&interval=0"),
                on_data = function(chunk) got[#got + 1] = chunk end,
            })
            assert.is_nil(res.body)
            assert.is_nil(res.aborted)
            assert.equal("text/event-stream", res.headers["content-type"])
            local all = tbl_concat(got)
            assert.equal("data: 0\n\ndata: 1\n\ndata: 2\n\ndata: 3\n\n"
                         .. "data: 4\n\n", all)
            assert.equal(#all, res.size)
        end)

        it("aborts mid-stream when it returns false", function()
            local function aborts()
                local s = assert(request{ url = url("/stats") })
                return tonumber(s.body:match("stream_aborts=(%d+)"))
            end
            local before = aborts()
            local seen = ""
            local res, err = request{
                url = url("/stream?n=500&interval=0.02"),
                on_data = function(chunk)
                    seen = seen .. chunk
                    if seen:find("data: 3\n\n", 1, true) then
                        return false
                    end
                end,
            }
            assert.is_nil(err)
            assert.is_true(res.aborted)
            assert.equal(200, res.status)
            assert.is_nil(seen:find("data: 10\n", 1, true))
            -- the server sees the client go away
            local after = before
            for _ = 1, 100 do
                after = aborts()
                if after > before then
                    break
                end
                sh("sleep 0.05")
            end
            assert.equal(before + 1, after)
        end)

        it("re-raises an error from on_data and stays usable", function()
            assert.error_matches(function()
                request{ url = url("/stream?n=3&interval=0"),
                         on_data = function() error("boom") end }
            end, "boom")
            local res = assert(request{ url = url("/status/204") })
            assert.equal(204, res.status)
        end)

        it("may make another request while streaming", function()
            local inner
            local res = assert(request{
                url = url("/stream?n=2&interval=0"),
                on_data = function()
                    if inner == nil then
                        inner = request{ url = url("/status/201") }
                    end
                end,
            })
            assert.equal(200, res.status)
            assert.equal(201, inner.status)
        end)
    end)


    describe("new()", function()
        it("keeps its own connection", function()
            local c = httpc.new()
            local a = parse_inspect(assert(c:request{
                url = url("/inspect"), proxy = "" }).body)
            local b = parse_inspect(assert(c:request{
                url = url("/inspect"), proxy = "" }).body)
            assert.equal(a.client_port, b.client_port)
            local d = parse_inspect(assert(request{ url = url("/inspect") })
                                    .body)
            assert.not_equal(a.client_port, d.client_port)
            c:close()
        end)

        it("returns nil, 'closed' after close, which is safe twice",
           function()
            local c = httpc.new()
            c:close()
            c:close()
            local res, err = c:request{ url = url("/inspect") }
            assert.is_nil(res)
            assert.equal("closed", err)
        end)
    end)


    describe("misuse", function()
        it("raises without opts or url", function()
            assert.has_error(function() httpc.request() end)
            assert.error_matches(function() httpc.request{} end,
                                 "'url' must be a string")
        end)

        it("raises on bad option types", function()
            local u = url("/inspect")
            assert.has_error(function()
                httpc.request{ url = u, timeout = "1" }
            end)
            assert.has_error(function()
                httpc.request{ url = u, timeout = -1 }
            end)
            assert.has_error(function()
                httpc.request{ url = u, headers = { ["X-A"] = true } }
            end)
            assert.has_error(function()
                httpc.request{ url = u, headers = { ["Bad Name"] = "x" } }
            end)
            assert.has_error(function()
                httpc.request{ url = u, headers = { ["X-A"] = "a\r\nB: c" } }
            end)
            assert.has_error(function()
                httpc.request{ url = u, method = "GE T" }
            end)
            assert.has_error(function()
                httpc.request{ url = u, http_version = "9" }
            end)
        end)

        it("raises when given two bodies", function()
            assert.error_matches(function()
                httpc.request{ url = url("/echo"), body = "a",
                               multipart = { { name = "x", value = "y" } } }
            end, "alone")
        end)
    end)


    describe("escape()/unescape()", function()
        it("percent-encodes all but unreserved bytes", function()
            assert.equal("a%20b%26c%2F%00~-._Z9",
                         httpc.escape("a b&c/\0~-._Z9"))
            assert.equal("%C3%A9", httpc.escape("\195\169"))
        end)

        it("decodes %XX and leaves malformed escapes", function()
            assert.equal("a b/\0", httpc.unescape("a%20b%2f%00"))
            assert.equal("%zz%4+", httpc.unescape("%zz%4+"))
        end)

        it("round-trips every byte", function()
            local s = all_bytes(2)
            assert.equal(s, httpc.unescape(httpc.escape(s)))
        end)
    end)
end)
