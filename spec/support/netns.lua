--- Spec helper: a private network of network namespaces on this machine,
-- for specs that run the services as separate hosts.
--
--     local netns = require "spec.support.netns"
--     local why = netns.unavailable()          -- nil, or the reason
--     local net = netns.create({ "web", "redis", "pg", "worker" })
--     net.hosts.web.addr                       -- "10.A.B.2"
--     net:argv("web", { "wtt", "serve" })      -- ip netns exec ... wtt serve
--     net:link("worker", "down"); net:link("worker", "up")
--     net:blackhole("web", net.hosts.redis.addr)   -- web -> redis dropped
--     net:qdisc("worker", { "netem", "delay", "100ms" })
--     net:wire("worker", 100, 20, 2); net:unwire("worker")   -- no netem
--     net:destroy()                            -- safe twice, also on failure
--
-- Topology: one Linux bridge in the root namespace holding 10.A.B.1/24
-- (so the spec process reaches every host through it), and per host a
-- named namespace (`ip netns add`) joined to the bridge by a veth pair,
-- with 10.A.B.(2, 3, ...) in the order given. A and B are random and
-- checked against every route and address already on the machine; the
-- names carry a random suffix, so parallel runs do not collide. Nothing
-- existing is touched: the root namespace only gains the bridge, its
-- address and the connected route the kernel adds for it, all removed by
-- destroy(). Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) and `ip`/`tc`
-- from iproute2; wire() also python3 and /dev/net/tun.

local helpers = require "spec.support.server"
local sys = require "wtt.sys"

local _M = {}

_M.IP = os.getenv("WTT_IP") or "ip"
_M.TC = os.getenv("WTT_TC") or "tc"

local net_mt = {}
net_mt.__index = net_mt

local live = {}        -- networks created by this Lua state and not destroyed


local run = helpers.run
_M.run = run


local function must(argv)
    local ok, out = run(argv)
    if not ok then
        error(out, 2)
    end
    return out
end


local function hex(n)
    local f = assert(io.open("/dev/urandom", "rb"))
    local bytes = f:read(n)
    f:close()
    return (bytes:gsub(".", function(c)
        return ("%02x"):format(c:byte())
    end))
end


local function effective_caps()
    local f = io.open("/proc/self/status", "r")
    local text = f and f:read("*a") or ""
    if f then
        f:close()
    end
    local uid = text:match("\nUid:%s+(%d+)")
    local caps = text:match("\nCapEff:%s+(%x+)")
    return tonumber(uid), caps and tonumber(caps:sub(-8), 16) or 0
end


local CAP_NET_ADMIN, CAP_SYS_ADMIN = 12, 21

--- nil when namespaces, veth pairs and a bridge can be made here, else
-- the reason (a sentence for "skipped, because ...").
function _M.unavailable()
    local uid, caps = effective_caps()
    if uid ~= 0 then
        return "the specs do not run as root (uid " .. tostring(uid)
            .. "): network namespaces need CAP_NET_ADMIN and CAP_SYS_ADMIN"
    end
    local bit = require "bit"
    for name, n in pairs({ CAP_NET_ADMIN = CAP_NET_ADMIN,
                           CAP_SYS_ADMIN = CAP_SYS_ADMIN }) do
        if bit.band(caps, bit.lshift(1, n)) == 0 then
            return "this process lacks " .. name .. " (a container without "
                .. "it cannot make network namespaces)"
        end
    end
    local ok, out = run({ _M.IP, "-V" })
    if not ok then
        return "`ip` (iproute2) cannot run: " .. out
    end
    -- The real test: a throwaway namespace and a veth pair.
    local probe = "wtt-probe-" .. hex(4)
    ok, out = run({ _M.IP, "netns", "add", probe })
    if not ok then
        return "`ip netns add` fails here: " .. out
    end
    local why
    ok, out = run({ _M.IP, "-n", probe, "link", "add", "pv0", "type", "veth",
                    "peer", "name", "pv1" })
    if not ok then
        why = "veth pairs cannot be made here: " .. out
    end
    run({ _M.IP, "netns", "del", probe })
    return why
end


-- A /24 in 10.0.0.0/8 that no route or address here overlaps.
local function free_subnet()
    local ok, routes = run({ _M.IP, "-4", "route", "show", "table", "all" })
    local _, addrs = run({ _M.IP, "-4", "-o", "addr", "show" })
    local text = (ok and routes or "") .. "\n" .. (addrs or "")
    for _ = 1, 50 do
        local b = hex(2)
        local a, c = 16 + tonumber(b:sub(1, 2), 16) % 224,
                     tonumber(b:sub(3, 4), 16)
        local prefix = ("10.%d.%d."):format(a, c)
        -- any route or address naming 10.a.c.* or a 10/8 covering route
        if not text:find(prefix, 1, true)
           and not text:find("10%.0%.0%.0/8")
           and not text:find(("10%%.%d%%.0%%.0/16"):format(a)) then
            return prefix
        end
    end
    error("netns: no free 10.x.y.0/24 found")
end


--- Creates the network: one host per name in `names`, in that order.
-- @return net { id, subnet ("10.A.B.0/24"), gateway ("10.A.B.1"),
--   bridge, hosts = { name = { ns, addr, veth (in the namespace),
--   peer (on the bridge) } } }
function _M.create(names)
    local id = hex(3)
    local prefix = free_subnet()
    local self = setmetatable({
        id = id, hosts = {}, order = {},
        subnet = prefix .. "0/24", gateway = prefix .. "1",
        bridge = "wtb" .. id,
        dir = assert(sys.mkdtemp("wtt-netns-")),
    }, net_mt)
    live[self] = true
    local ok, err = pcall(function()
        must({ _M.IP, "link", "add", self.bridge, "type", "bridge" })
        self.bridge_made = true
        must({ _M.IP, "addr", "add", self.gateway .. "/24", "dev",
               self.bridge })
        must({ _M.IP, "link", "set", self.bridge, "up" })
        for i, name in ipairs(names) do
            assert(name:match("^%l+$") and #name <= 8,
                   "netns: host names are short lowercase words")
            local h = {
                name = name,
                ns = "wtt-" .. id .. "-" .. name,
                addr = prefix .. (i + 1),
                -- interface names: 15 characters at most
                veth = "wt" .. id .. "n" .. i,
                peer = "wt" .. id .. "b" .. i,
            }
            self.order[#self.order + 1] = h
            must({ _M.IP, "netns", "add", h.ns })
            self.hosts[name] = h
            must({ _M.IP, "link", "add", h.veth, "type", "veth", "peer",
                   "name", h.peer })
            h.links_made = true
            must({ _M.IP, "link", "set", h.veth, "netns", h.ns })
            must({ _M.IP, "link", "set", h.peer, "master", self.bridge })
            must({ _M.IP, "link", "set", h.peer, "up" })
            must({ _M.IP, "-n", h.ns, "addr", "add", h.addr .. "/24", "dev",
                   h.veth })
            must({ _M.IP, "-n", h.ns, "link", "set", h.veth, "up" })
            must({ _M.IP, "-n", h.ns, "link", "set", "lo", "up" })
        end
    end)
    if not ok then
        self:destroy()
        error(err, 2)
    end
    return self
end


--- `argv` run inside host `name`'s namespace (ip netns exec execs the
-- command in place: the pid spawn returns is the command's).
function net_mt.argv(self, name, argv)
    local h = assert(self.hosts[name], "netns: no host " .. tostring(name))
    local out = { _M.IP, "netns", "exec", h.ns }
    for _, a in ipairs(argv) do
        out[#out + 1] = a
    end
    return out
end


--- Runs `argv` in host `name`'s namespace to completion; true, output or
-- nil, err.
function net_mt.exec(self, name, argv)
    return run(self:argv(name, argv))
end


--- Sets host `name`'s link "down" or "up" (its bridge-side end: the host
-- sees NO-CARRIER, as with a pulled cable or a dead switch port).
function net_mt.link(self, name, state)
    assert(state == "up" or state == "down")
    must({ _M.IP, "link", "set", self.hosts[name].peer, state }, self.dir)
end


--- Inside host `from`'s namespace, drops every packet to `addr` (a
-- blackhole route: the peer is silent, as across a partition), or lifts
-- that again with heal = true.
function net_mt.blackhole(self, from, addr, heal)
    must(self:argv(from, { _M.IP, "route", heal and "del" or "add",
                           "blackhole", addr .. "/32" }), self.dir)
end


--- Adds a root qdisc (`spec`: tc words, e.g. { "netem", "delay",
-- "100ms" }) on host `name`'s link, both ends: the host's egress and the
-- bridge's egress towards it. Returns true or nil, tc's message.
function net_mt.qdisc(self, name, spec)
    local h = self.hosts[name]
    local function add(argv_prefix, dev)
        local argv = {}
        for _, a in ipairs(argv_prefix) do argv[#argv + 1] = a end
        for _, a in ipairs({ "qdisc", "add", "dev", dev, "root" }) do
            argv[#argv + 1] = a
        end
        for _, a in ipairs(spec) do argv[#argv + 1] = a end
        return run(argv)
    end
    local ok, err = add({ _M.TC }, h.peer)
    if not ok then
        return nil, err
    end
    ok, err = add({ _M.IP, "netns", "exec", h.ns, _M.TC }, h.veth)
    if not ok then
        self:clear_qdisc(name)
        return nil, err
    end
    return true
end


--- Removes what qdisc() added (the default qdisc comes back).
function net_mt.clear_qdisc(self, name)
    local h = self.hosts[name]
    run({ _M.TC, "qdisc", "del", "dev", h.peer, "root" })
    run(self:argv(name, { _M.TC, "qdisc", "del", "dev", h.veth, "root" }),
        self.dir)
end


--- `tc -s qdisc` of host `name`'s namespace side (counters: sent,
-- dropped), for the spec's report.
function net_mt.qdisc_stats(self, name)
    local h = self.hosts[name]
    local _, out = run(self:argv(name, { _M.TC, "-s", "qdisc", "show", "dev",
                                         h.veth }), self.dir)
    local _, out2 = run({ _M.TC, "-s", "qdisc", "show", "dev", h.peer },
                        self.dir)
    return (out or "") .. (out2 or "")
end


_M.PYTHON = os.getenv("WTT_PYTHON") or "python3"
_M.NETWIRE = require("wtt.runtime").source_dir .. "/spec/support/netwire.py"

-- One `ip` call that must succeed.
local function ipc(self, ...)
    must({ _M.IP, ... }, self.dir)
end


--- Swaps host `name`'s veth pair for a user-space wire (netwire.py: two
-- TAP devices, one on the bridge and one in the namespace, with
-- `delay_ms` +- `jitter_ms` and `loss_pct` on every frame, each way): the
-- netem of a kernel without one. The host keeps its address and MAC, so
-- its peers' ARP caches stay right; connections made before the swap
-- break (start the host's processes after it). unwire() swaps back.
function net_mt.wire(self, name, delay_ms, jitter_ms, loss_pct)
    local h = self.hosts[name]
    assert(not h.wire, "netns: host already wired")
    local i = 0
    for n, x in ipairs(self.order) do
        if x == h then i = n end
    end
    local w = { a = "wt" .. self.id .. "x" .. i, b = "wt" .. self.id .. "y" .. i,
                log = self.dir .. "/wire-" .. name .. ".log" }
    w.pid = assert(sys.spawn({ _M.PYTHON, _M.NETWIRE, w.a, w.b,
                               tostring(delay_ms), tostring(jitter_ms),
                               tostring(loss_pct) },
                             { stdout = w.log, stderr = w.log }))
    h.wire = w
    local ready
    for _ = 1, 200 do
        ready = (sys.read_file(w.log) or ""):find("ready", 1, true)
        if ready or sys.wait(w.pid, 0) then
            break
        end
        sys.sleep(0.05)
    end
    if not ready then
        self:unwire(name)
        error("netwire did not start:\n" .. (sys.read_file(w.log) or ""))
    end
    local ok, err = pcall(function()
        local _, out = run({ _M.IP, "-n", h.ns, "-o", "link", "show", "dev",
                             h.veth }, self.dir)
        local mac = assert((out or ""):match("link/ether (%x[%x:]+)"),
                           "no MAC on " .. h.veth .. ": " .. tostring(out))
        ipc(self, "-n", h.ns, "addr", "del", h.addr .. "/24", "dev", h.veth)
        ipc(self, "-n", h.ns, "link", "set", h.veth, "down")
        ipc(self, "link", "set", h.peer, "down")
        w.swapped = true
        ipc(self, "link", "set", w.a, "master", self.bridge)
        ipc(self, "link", "set", w.a, "up")
        ipc(self, "link", "set", w.b, "netns", h.ns)
        ipc(self, "-n", h.ns, "link", "set", w.b, "address", mac)
        ipc(self, "-n", h.ns, "addr", "add", h.addr .. "/24", "dev", w.b)
        ipc(self, "-n", h.ns, "link", "set", w.b, "up")
    end)
    if not ok then
        self:unwire(name)
        error(err, 2)
    end
    return true
end


--- Ends host `name`'s wire (its TAP devices go with the process) and puts
-- the veth pair back. Returns netwire's counters (text lines).
function net_mt.unwire(self, name)
    local h = self.hosts[name]
    local w = h.wire
    if not w then
        return ""
    end
    h.wire = nil
    helpers.terminate(w.pid)
    if w.swapped then
        ipc(self, "link", "set", h.peer, "up")
        ipc(self, "-n", h.ns, "link", "set", h.veth, "up")
        ipc(self, "-n", h.ns, "addr", "add", h.addr .. "/24", "dev", h.veth)
    end
    return sys.read_file(w.log) or ""
end


--- Deletes every namespace (their veth ends go with them, and the peers
-- with those) and the bridge. Processes still running inside a deleted
-- namespace keep it alive but unnamed: stop them first. Safe twice;
-- returns the list of what could not be removed (empty when clean).
function net_mt.destroy(self)
    if self.destroyed then
        return {}
    end
    self.destroyed = true
    live[self] = nil
    local left = {}
    for _, h in ipairs(self.order) do
        if h.wire then
            pcall(net_mt.unwire, self, h.name)
        end
        if self.hosts[h.name] then
            local ok, err = run({ _M.IP, "netns", "del", h.ns })
            if not ok then
                left[#left + 1] = err
            end
        end
        if h.links_made then
            -- gone with the namespace, unless the move into it failed
            run({ _M.IP, "link", "del", h.peer })
        end
    end
    if self.bridge_made then
        local ok, err = run({ _M.IP, "link", "del", self.bridge })
        if not ok then
            left[#left + 1] = err
        end
    end
    sys.rmtree(self.dir)
    return left
end


--- Destroys every network this Lua state created (teardown safety net).
function _M.destroy_all()
    for net in pairs(live) do
        net:destroy()
    end
end

return _M
