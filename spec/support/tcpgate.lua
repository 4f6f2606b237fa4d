--- A repointable, cuttable TCP forwarder between clients and a server
-- (spec/support/tcpgate.py): the address a managed Redis or an operator
-- moves on failover (R4), and a network partition that leaves sockets
-- half-open (R6: nothing passes, nothing is closed).
--
--   local g = gate.start("127.0.0.1", srv.port)
--   g.url            -- redis://127.0.0.1:<port>/0, for the clients
--   g:cut() g:heal() g:target(host, port) g:kick() g:stats() g:stop()

local httpc = require "wtt.http_client"
local json = require "wtt.json"
local sys = require "wtt.sys"
local runtime = require "wtt.runtime"

local _M = {}

_M.PYTHON = os.getenv("WTT_PYTHON") or "python3"
_M.SCRIPT = runtime.source_dir .. "/spec/support/tcpgate.py"

local gate_mt = {}
gate_mt.__index = gate_mt
local started = {}


--- Starts a gate forwarding to host:port. Raises when it does not start.
function _M.start(host, port)
    local dir = assert(sys.mkdtemp("wtt-gate-"))
    local log = dir .. "/gate.log"
    local pid = assert(sys.spawn({ _M.PYTHON, _M.SCRIPT, host,
                                   tostring(port) },
                                 { stdout = log, stderr = log }))
    local self = setmetatable({ pid = pid, dir = dir, log = log }, gate_mt)
    started[#started + 1] = self
    for _ = 1, 400 do
        local p, c = (sys.read_file(log) or ""):match("ready (%d+) (%d+)")
        if p then
            self.port, self.control = tonumber(p), tonumber(c)
            self.url = "redis://127.0.0.1:" .. p .. "/0"
            return self
        end
        if sys.wait(pid, 0) then
            self.pid = nil
            break
        end
        sys.sleep(0.025)
    end
    local text = sys.read_file(log) or ""
    self:stop()
    error("tcpgate did not start:\n" .. text)
end


-- One control request; returns the gate's state (a table) or raises.
local function control(self, path)
    local res, err = httpc.request({ url = "http://127.0.0.1:" .. self.control
                                     .. path, timeout = 5 })
    assert(res and res.status == 200, "tcpgate " .. path .. ": "
           .. tostring(err or (res and res.status)))
    return json.decode(res.body)
end

function gate_mt.cut(self) return control(self, "/cut") end
function gate_mt.heal(self) return control(self, "/heal") end
function gate_mt.kick(self) return control(self, "/kick") end
function gate_mt.stats(self) return control(self, "/stats") end
function gate_mt.target(self, host, port)
    return control(self, "/target/" .. host .. "/" .. port)
end


--- Ends the process and removes its dir. Safe twice.
function gate_mt.stop(self)
    if self.pid then
        sys.kill(self.pid, "TERM")
        if not sys.wait(self.pid, 5) then
            sys.kill(self.pid, "KILL")
            sys.wait(self.pid, 5)
        end
        self.pid = nil
    end
    if self.dir then
        sys.rmtree(self.dir)
        self.dir = nil
    end
end


--- Stops every gate this Lua state started (teardown safety net).
function _M.stop_all()
    for _, g in ipairs(started) do
        g:stop()
    end
    started = {}
end

return _M
