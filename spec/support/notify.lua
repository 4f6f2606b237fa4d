--- A stand-in for systemd's notification socket (sd_notify(3)): a unix
-- datagram socket that a process started with NOTIFY_SOCKET=<path> writes
-- its states to (READY=1, RELOADING=1, STOPPING=1, ...). Python (Debian's
-- python3) listens, because wtt's own sockets are stream sockets; each
-- datagram becomes one line of a file, its newlines turned to spaces.
--
--     local l = notify.listen()
--     spawn(..., { env = { NOTIFY_SOCKET = l.socket } })
--     l:wait_for("READY=1")  -> the text so far, or nil after the timeout
--     l:close()

local helpers = require "spec.support.server"
local sys = require "wtt.sys"

local _M = {}

local LISTENER = [[
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a") as out:
    while True:
        msg = s.recv(4096).decode()
        out.write(msg.replace("\n", " ") + "\n")
        out.flush()
]]

local listener_mt = {}
listener_mt.__index = listener_mt


function _M.listen()
    local dir = assert(sys.mkdtemp("wtt-notify-"))
    local l = setmetatable({ dir = dir, socket = dir .. "/notify.sock",
                             file = dir .. "/got" }, listener_mt)
    assert(sys.write_file(dir .. "/listen.py", LISTENER))
    l.pid = assert(sys.spawn({ "python3", dir .. "/listen.py", l.socket,
                               l.file }))
    assert(helpers.eventually(function()
        return sys.exists(l.socket)
    end), "the notification socket did not appear")
    return l
end


--- Everything received so far, one datagram per line.
function listener_mt.text(self)
    return sys.read_file(self.file) or ""
end


--- The text once it holds `state` at least `n` times (default 1), or nil.
function listener_mt.wait_for(self, state, n, timeout)
    return helpers.eventually(function()
        local t, count = self:text(), 0
        for _ in t:gmatch(state:gsub("%p", "%%%0")) do
            count = count + 1
        end
        return count >= (n or 1) and t
    end, timeout or 30)
end


function listener_mt.close(self)
    sys.kill(self.pid, "KILL")
    sys.wait(self.pid, 5)
    sys.rmtree(self.dir)
end

return _M
