local sys = require "wtt.sys"


local PYTHON = "/usr/bin/python3"
local HAVE_PYTHON = sys.exists(PYTHON) ~= nil

-- A tiny echo server: accepts connections one after another and echoes
-- every byte until the client closes.
local ECHO_SERVER = table.concat({
    "import socket, sys",
    "s = socket.socket()",
    "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)",
    "s.bind(('127.0.0.1', int(sys.argv[1])))",
    "s.listen(8)",
    "while True:",
    "    c, _ = s.accept()",
    "    while True:",
    "        d = c.recv(65536)",
    "        if not d:",
    "            break",
    "        c.sendall(d)",
    "    c.close()",
}, "\n")


local children = {}
local dirs = {}


local function spawn(argv, opts)
    local pid, err = sys.spawn(argv, opts)
    assert(pid, err)
    children[#children + 1] = pid
    return pid
end


local function tmpdir()
    local dir = assert(sys.mkdtemp("wtt-sys-spec-"))
    dirs[#dirs + 1] = dir
    return dir
end


local eventually = require("spec.support.server").eventually


-- Reads from `conn` until `n` bytes arrived or `timeout` seconds passed.
local function recv_n(conn, n, timeout)
    local deadline = sys.now() + (timeout or 5)
    local parts, got = {}, 0
    while got < n do
        local left = deadline - sys.now()
        if left <= 0 then
            break
        end
        local data, err = conn:recv(n - got, left)
        if not data then
            return table.concat(parts), err
        end
        parts[#parts + 1] = data
        got = got + #data
    end
    return table.concat(parts)
end


local function start_echo_server()
    local port = assert(sys.free_port())
    spawn({ PYTHON, "-c", ECHO_SERVER, tostring(port) })
    local conn = eventually(function()
        return sys.tcp_connect("127.0.0.1", port, { timeout = 1 })
    end)
    assert(conn, "echo server did not come up on port " .. port)
    return conn, port
end


after_each(function()
    for _, pid in ipairs(children) do
        sys.kill(pid, "KILL")
        sys.wait(pid, 5)
    end
    children = {}
    for _, dir in ipairs(dirs) do
        sys.rmtree(dir)
    end
    dirs = {}
end)


describe("wtt.sys", function()

    -- The module is assembled from one file per subsystem (core/bind/sys/):
    -- its Lua surface is this list, no more and no less.
    it("reads and sets resource limits, and the CPU time used", function()
        local soft, hard = assert(sys.getrlimit("cpu"))
        assert.is_true(soft <= hard)
        local used = assert(sys.cpu_s())
        assert.is_true(used > 0)
        -- Lowering the soft limit and raising it back to the hard one
        -- are both allowed without privileges.
        assert.is_true(sys.setrlimit("cpu", math.ceil(used) + 3600))
        assert.equal(math.ceil(used) + 3600, (sys.getrlimit("cpu")))
        assert.is_true(sys.setrlimit("cpu", hard))
        assert.equal(hard, (sys.getrlimit("cpu")))
        local fs_soft, fs_hard = assert(sys.getrlimit("fsize"))
        assert.is_true(fs_soft <= fs_hard)
        assert.has_error(function() sys.getrlimit("bogus") end)
        assert.has_error(function() sys.setrlimit("cpu", -1) end)
    end)

    it("exports exactly its functions", function()
        local names = {}
        for k, v in pairs(sys) do
            assert.equal("function", type(v), k)
            names[#names + 1] = k
        end
        table.sort(names)
        assert.same({
            "cpu_count", "cpu_s", "exists", "file_age", "file_size",
            "free_port", "getenv",
            "getpid", "getrlimit", "heap_trim", "heap_trim_every", "kill", "listdir", "mkdirs", "mkdtemp", "notify", "now",
            "read_file",
            "realpath", "rmtree", "rss_kb", "setenv", "setrlimit",
            "signaled", "sleep",
            "spawn", "symlink", "tcp_connect", "time", "trap", "untrap",
            "wait", "write_file",
        }, names)
    end)

    it("gives malloc's free pages back, now or on a period", function()
        local released, err = sys.heap_trim()
        if require("wtt.runtime").sanitized then
            -- The sanitizer's allocator replaces malloc's: nothing to trim.
            assert.is_nil(released)
            assert.matches("not available", err)
        else
            assert.is_boolean(released)
        end
        assert.is_true(sys.heap_trim_every(0))
        local ok
        ok, err = sys.heap_trim_every(-5)
        assert.is_nil(ok)
        assert.matches("0 to 86400", err)
        assert.has_error(function() sys.heap_trim_every("often") end)
    end)

    it("reports an OS failure as nil, '<op> failed: <path>: <reason>'",
       function()
        local ok, err = sys.write_file("/nonexistent-wtt-dir/f", "x")
        assert.is_nil(ok)
        assert.equal("write_file failed: /nonexistent-wtt-dir/f: "
                     .. "no such file or directory", err)
    end)
end)


describe("wtt.sys processes", function()

    it("reports the exit code of a child", function()
        local pid = spawn({ "/bin/sh", "-c", "exit 3" })
        local how, code = sys.wait(pid, 5)
        assert.equal("exited", how)
        assert.equal(3, code)
    end)

    it("searches argv[1] in PATH", function()
        local pid = spawn({ "sh", "-c", "exit 0" })
        assert.same({ "exited", 0 }, { sys.wait(pid, 5) })
    end)

    it("reports a missing program as nil, err", function()
        local pid, err = sys.spawn({ "wtt-no-such-program-xyz" })
        assert.is_nil(pid)
        assert.matches("^spawn failed: .*not found", err)
    end)

    it("kills a child with TERM and reports the signal", function()
        local pid = spawn({ "sleep", "10" })
        assert.is_true(sys.kill(pid, "TERM"))
        local how, signo = sys.wait(pid, 5)
        assert.equal("signaled", how)
        assert.equal(15, signo)
    end)

    it("accepts signal numbers", function()
        local pid = spawn({ "sleep", "10" })
        assert.is_true(sys.kill(pid, 9))
        assert.same({ "signaled", 9 }, { sys.wait(pid, 5) })
    end)

    it("raises on an unknown signal name", function()
        assert.has_error(function()
            sys.kill(sys.getpid(), "NOSUCHSIG")
        end)
    end)

    it("returns nil, timeout while the child runs", function()
        local pid = spawn({ "sleep", "10" })
        local t0 = sys.now()
        local how, err = sys.wait(pid, 0.2)
        local elapsed = sys.now() - t0
        assert.is_nil(how)
        assert.equal("timeout", err)
        assert.is_true(elapsed >= 0.19 and elapsed < 2)
    end)

    it("polls without waiting when the timeout is 0", function()
        local pid = spawn({ "sleep", "10" })
        local t0 = sys.now()
        assert.same({ nil, "timeout" }, { sys.wait(pid, 0) })
        assert.is_true(sys.now() - t0 < 0.1)
    end)

    it("fails to wait for a process that is not a child", function()
        local how, err = sys.wait(1, 0)
        assert.is_nil(how)
        assert.matches("^wait failed", err)
    end)

    it("passes env over the current environment", function()
        local dir = tmpdir()
        local pid = spawn({ "/bin/sh", "-c", 'printf %s "$X" > "$OUT"' },
                          { env = { X = "hello world", OUT = dir .. "/x" } })
        assert.same({ "exited", 0 }, { sys.wait(pid, 5) })
        assert.equal("hello world", sys.read_file(dir .. "/x"))
    end)

    it("removes a variable whose env value is false", function()
        local dir = tmpdir()
        assert.is_true(sys.setenv("WTT_SYS_SPEC_VAR", "present"))
        local pid = spawn({ "/bin/sh", "-c",
                            'printf %s "${WTT_SYS_SPEC_VAR-unset}"' },
                          { env = { WTT_SYS_SPEC_VAR = false },
                            stdout = dir .. "/out" })
        sys.wait(pid, 5)
        sys.setenv("WTT_SYS_SPEC_VAR", nil)
        assert.equal("unset", sys.read_file(dir .. "/out"))
    end)

    it("appends stdout and stderr to files", function()
        local dir = tmpdir()
        for _ = 1, 2 do
            local pid = spawn({ "/bin/sh", "-c", "echo out; echo err >&2" },
                              { stdout = dir .. "/out",
                                stderr = dir .. "/err" })
            sys.wait(pid, 5)
        end
        assert.equal("out\nout\n", sys.read_file(dir .. "/out"))
        assert.equal("err\nerr\n", sys.read_file(dir .. "/err"))
    end)

    it("gives the child /dev/null as stdin by default", function()
        local dir = tmpdir()
        local pid = spawn({ "/bin/sh", "-c", "cat; echo done" },
                          { stdout = dir .. "/out" })
        assert.same({ "exited", 0 }, { sys.wait(pid, 5) })
        assert.equal("done\n", sys.read_file(dir .. "/out"))
    end)

    it("runs the child in cwd", function()
        local dir = tmpdir()
        local pid = spawn({ "/bin/sh", "-c", "pwd" },
                          { cwd = dir, stdout = dir .. "/out" })
        sys.wait(pid, 5)
        local out = sys.read_file(dir .. "/out"):gsub("\n$", "")
        assert.equal(sys.realpath(dir), sys.realpath(out))
    end)

    it("does not leak descriptors into the child", function()
        if io == nil or io.open == nil then
            pending("io library not available")
            return
        end
        local dir = tmpdir()
        local path = dir .. "/held"
        local held = assert(io.open(path, "w"))  -- fopen: no O_CLOEXEC
        local fd
        for _, name in ipairs(sys.listdir("/proc/self/fd")) do
            if sys.realpath("/proc/self/fd/" .. name) == sys.realpath(path)
            then
                fd = name
            end
        end
        assert.is_not_nil(fd)
        local pid = spawn({ "/bin/sh", "-c",
                            "if [ -e /proc/$$/fd/" .. fd .. " ]; "
                            .. "then echo leaked; else echo clean; fi" },
                          { stdout = dir .. "/out" })
        sys.wait(pid, 5)
        held:close()
        assert.equal("clean\n", sys.read_file(dir .. "/out"))
    end)

    it("kills a whole session started with setsid", function()
        local dir = tmpdir()
        local pid = spawn({ "/bin/sh", "-c",
                            "sleep 10 & echo $! > g.tmp && mv g.tmp g; wait" },
                          { cwd = dir, setsid = true })
        local gpid = eventually(function()
            return tonumber(sys.read_file(dir .. "/g") or "")
        end)
        assert.is_not_nil(gpid)
        assert.is_true(sys.kill(-pid, "KILL"))
        assert.same({ "signaled", 9 }, { sys.wait(pid, 5) })
        -- gone or a zombie: either way no resident set any more
        assert.is_true(eventually(function()
            return sys.rss_kb(gpid) == nil
        end, 2) or false)
    end)

    it("reports the resident set of self and of a child", function()
        assert.is_true(sys.rss_kb() > 0)
        local pid = spawn({ "sleep", "10" })
        assert.is_true(sys.rss_kb(pid) > 0)
    end)

end)


describe("wtt.sys clocks and environment", function()

    it("sleeps for the requested time", function()
        local t0 = sys.now()
        sys.sleep(0.05)
        local elapsed = sys.now() - t0
        assert.is_true(elapsed >= 0.045 and elapsed < 1)
    end)

    it("returns wall time close to os.time", function()
        assert.is_true(math.abs(sys.time() - os.time()) < 2)
    end)

    it("sets, reads and unsets a variable", function()
        assert.is_true(sys.setenv("WTT_SYS_SPEC_ENV", "v1"))
        assert.equal("v1", sys.getenv("WTT_SYS_SPEC_ENV"))
        sys.setenv("WTT_SYS_SPEC_ENV", nil)
        assert.is_nil(sys.getenv("WTT_SYS_SPEC_ENV"))
    end)

    it("returns the process id and the cpu count", function()
        assert.is_true(sys.getpid() > 1)
        assert.is_true(sys.cpu_count() >= 1)
    end)

end)


describe("wtt.sys files", function()

    it("round-trips mkdtemp, write_file, read_file, listdir, rmtree",
       function()
        local dir = assert(sys.mkdtemp("wtt-sys-spec-"))
        assert.equal("dir", sys.exists(dir))
        assert.is_true(sys.write_file(dir .. "/b", "bee"))
        assert.is_true(sys.write_file(dir .. "/a", "a\0z"))
        assert.is_true(sys.write_file(dir .. "/c", ""))
        assert.equal("a\0z", sys.read_file(dir .. "/a"))
        assert.equal(3, sys.file_size(dir .. "/b"))
        assert.same({ "a", "b", "c" }, sys.listdir(dir))
        assert.is_true(sys.rmtree(dir))
        assert.is_nil(sys.exists(dir))
    end)

    it("replaces a file atomically without leaving temp files", function()
        local dir = tmpdir()
        assert.is_true(sys.write_file(dir .. "/f", "one"))
        assert.is_true(sys.write_file(dir .. "/f", "two"))
        assert.equal("two", sys.read_file(dir .. "/f"))
        assert.same({ "f" }, sys.listdir(dir))
    end)

    it("reports missing files as nil, err", function()
        local dir = tmpdir()
        local data, err = sys.read_file(dir .. "/missing")
        assert.is_nil(data)
        assert.matches("^read_file failed: .*no such file", err)
        local list, lerr = sys.listdir(dir .. "/missing")
        assert.is_nil(list)
        assert.matches("^listdir failed", lerr)
        assert.is_nil(sys.file_size(dir .. "/missing"))
    end)

    it("classifies paths with exists", function()
        local dir = tmpdir()
        sys.write_file(dir .. "/f", "x")
        assert.is_true(sys.symlink("f", dir .. "/l"))
        assert.equal("file", sys.exists(dir .. "/f"))
        assert.equal("link", sys.exists(dir .. "/l"))
        assert.equal("dir", sys.exists(dir))
        assert.is_nil(sys.exists(dir .. "/nope"))
    end)

    it("resolves paths with realpath", function()
        local dir = tmpdir()
        sys.write_file(dir .. "/f", "x")
        sys.symlink("f", dir .. "/l")
        assert.equal(sys.realpath(dir) .. "/f", sys.realpath(dir .. "/l"))
    end)

    it("does not follow a symlink out of the tree", function()
        local outside = tmpdir()
        assert.is_true(sys.write_file(outside .. "/keep", "k"))
        local tree = assert(sys.mkdtemp("wtt-sys-spec-"))
        assert(sys.write_file(tree .. "/inner", "i"))
        assert.is_true(sys.symlink(outside, tree .. "/dirlink"))
        assert.is_true(sys.symlink(outside .. "/keep", tree .. "/filelink"))
        assert.is_true(sys.rmtree(tree))
        assert.is_nil(sys.exists(tree))
        assert.equal("k", sys.read_file(outside .. "/keep"))
        assert.same({ "keep" }, sys.listdir(outside))
    end)

    it("removes only the link when given a link to a directory", function()
        local outside = tmpdir()
        local dir = tmpdir()
        sys.write_file(outside .. "/keep", "k")
        sys.symlink(outside, dir .. "/ln")
        assert.is_true(sys.rmtree(dir .. "/ln/"))
        assert.is_nil(sys.exists(dir .. "/ln"))
        assert.equal("k", sys.read_file(outside .. "/keep"))
    end)

    it("refuses to remove /", function()
        assert.has_error(function()
            sys.rmtree("/")
        end)
    end)

end)


describe("wtt.sys tcp", function()

    it("returns a free port nothing listens on", function()
        local port = sys.free_port()
        assert.is_true(port > 0 and port < 65536)
        local conn, err = sys.tcp_connect("127.0.0.1", port)
        assert.is_nil(conn)
        assert.matches("refused", err)
    end)

    -- Without python3 the whole block is reported as pending.
    local describe_echo = HAVE_PYTHON and describe or pending

    describe_echo("against an echo server", function()

        it("round-trips data", function()
            local conn = start_echo_server()
            assert.equal(5, conn:send("hello"))
            assert.equal("hello", recv_n(conn, 5, 5))
            conn:close()
        end)

        it("returns nil, timeout when nothing arrives", function()
            local conn = start_echo_server()
            local t0 = sys.now()
            local data, err = conn:recv(100, 0.1)
            assert.is_nil(data)
            assert.equal("timeout", err)
            assert.is_true(sys.now() - t0 >= 0.09)
            conn:close()
        end)

        it("reads everything until the peer closes", function()
            local conn = start_echo_server()
            conn:send("abc")
            assert.is_true(conn:shutdown("write"))
            assert.same({ "abc", "closed" }, { conn:recv_all(5) })
            assert.same({ nil, "closed" }, { conn:recv(10, 1) })
            conn:close()
        end)

        it("connects from another loopback address", function()
            local _, port = start_echo_server()
            local conn, err = sys.tcp_connect("127.0.0.1", port,
                                              { bind = "127.0.0.2" })
            assert.is_not_nil(conn, err)
            conn:close()
        end)

        it("answers nil, closed after close", function()
            local conn = start_echo_server()
            assert.is_true(conn:close())
            assert.is_true(conn:close())
            assert.same({ nil, "closed" }, { conn:send("x") })
            assert.same({ nil, "closed" }, { conn:recv(1, 0) })
            assert.same({ nil, "closed" }, { conn:fd() })
        end)

    end)

end)


describe("sys.mkdirs", function()
    local dir
    before_each(function() dir = assert(sys.mkdtemp("wtt-mkdirs-")) end)
    after_each(function() sys.rmtree(dir) end)

    it("makes the missing parents and accepts an existing directory",
       function()
        assert.is_true(sys.mkdirs(dir .. "/a/b/c"))
        assert.equal("dir", sys.exists(dir .. "/a/b/c"))
        assert.is_true(sys.mkdirs(dir .. "/a/b/c/"))
        assert.is_true(sys.mkdirs(dir .. "/a"))
    end)

    it("returns nil, err where a file is in the way or the path is empty",
       function()
        assert(sys.write_file(dir .. "/f", "x"))
        local ok, err = sys.mkdirs(dir .. "/f/g")
        assert.is_nil(ok)
        assert.truthy(err:find("not a directory", 1, true), err)
        ok, err = sys.mkdirs(dir .. "/f")
        assert.is_nil(ok)
        assert.truthy(err:find("not a directory", 1, true), err)
        assert.is_nil((sys.mkdirs("")))
    end)

    it("applies the mode (less the umask)", function()
        assert.is_true(sys.mkdirs(dir .. "/m/n", tonumber("700", 8)))
        local st = io.popen("stat -c %a '" .. dir .. "/m/n'"):read("*l")
        assert.equal("700", st)
    end)
end)


describe("sys.file_age", function()
    it("gives seconds since the last change, and nil, err for no file",
       function()
        local dir = assert(sys.mkdtemp("wtt-age-"))
        local f = dir .. "/f"
        assert(sys.write_file(f, "x"))
        local young = assert(sys.file_age(f))
        assert.is_true(young >= 0 and young < 60, tostring(young))
        -- An hour back (touch -d), as the media sweep's grace sees it.
        os.execute("touch -d '1 hour ago' '" .. f .. "'")
        local old = assert(sys.file_age(f))
        assert.is_true(old > 3500 and old < 3700, tostring(old))
        local ok, err = sys.file_age(dir .. "/none")
        assert.is_nil(ok)
        assert.truthy(err:find("no such file", 1, true), err)
        sys.rmtree(dir)
    end)
end)
