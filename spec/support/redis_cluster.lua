--- Spec helper: a real 3-master, 3-replica Redis Cluster on loopback.
--
--     local rc = require "spec.support.redis_cluster"
--     local c = rc.start()                     -- six redis-server processes
--     c.url                                    -- "redis://127.0.0.1:P?cluster=1"
--     local m = c:master_of("{wtt}:")          -- the master owning that slot
--     c:failover(c:replica_of(m))              -- manual CLUSTER FAILOVER
--     c:migrate_begin(slot, src, dst)          -- IMPORTING / MIGRATING
--     c:migrate_keys(slot, src, dst)           -- MIGRATE ... KEYS, in batches
--     c:migrate_end(slot, src, dst)            -- SETSLOT NODE everywhere
--     local r = assert(c:client())             -- a wtt.redis cluster client
--     c:stop()
--
-- Each node is a server from spec/support/redis.lua (own random port, own
-- cluster-bus port, own temp dir holding nodes.conf). The cluster is built
-- by hand (CLUSTER MEET, ADDSLOTSRANGE, REPLICATE) rather than with
-- `redis-cli --cluster create`, so that which replica follows which master
-- is known, and the migration is driven step by step so that a spec can
-- hold a slot half-migrated (clients then really meet ASK).

local rh = require "spec.support.redis"
local redis = require "wtt.redis"
local core = require "wtt.core.redis"
local sys = require "wtt.sys"

local _M = {}

local cluster_mt = {}
cluster_mt.__index = cluster_mt

local RANGES = { { 0, 5460 }, { 5461, 10922 }, { 10923, 16383 } }


-- One command on a fresh connection to `node` (no cluster routing: the
-- helper talks to the node it means). Returns the reply or nil, err.
local function cmd(node, ...)
    local c, err = core.connect(node.host, node.port,
                                { connect_timeout = 2, timeout = 10 })
    if not c then
        return nil, err
    end
    local res
    res, err = c:call(...)
    c:close()
    return res, err
end
_M.cmd = cmd


local function must(node, ...)
    local res, err = cmd(node, ...)
    if res == nil then
        error(table.concat({ ... }, " ", 1, 2) .. " on :" .. node.port
              .. ": " .. tostring(err), 2)
    end
    return res
end


-- Waits up to `secs` for fn() to return a true value; raises with `what`.
local function wait_for(what, fn, secs)
    local deadline = sys.now() + (secs or 60)
    while sys.now() < deadline do
        local v = fn()
        if v then
            return v
        end
        sys.sleep(0.05)
    end
    error("redis cluster: timed out waiting for " .. what)
end
_M.wait_for = wait_for


local function info_field(node, field)
    local info = cmd(node, "CLUSTER", "INFO")
    return info and info:match(field .. ":([^\r\n]*)")
end


--- Starts the cluster and waits until every node reports cluster_state:ok
-- and sees all six nodes with the intended roles.
-- @param opts { node_timeout = ms (default 2000), args = { extra
--   redis-server arguments for every node } }
function _M.start(opts)
    opts = opts or {}
    local self = setmetatable({ nodes = {} }, cluster_mt)
    for i = 1, 6 do
        local bus = assert(sys.free_port())
        local args = { "--cluster-enabled", "yes",
                       "--cluster-port", tostring(bus),
                       "--cluster-config-file", "nodes.conf",
                       "--cluster-node-timeout",
                       tostring(opts.node_timeout or 2000),
                       "--cluster-require-full-coverage", "yes" }
        for _, a in ipairs(opts.args or {}) do
            args[#args + 1] = a
        end
        local srv = rh.start({ args = args })
        srv.bus_port = bus
        srv.index = i
        srv.id = must(srv, "CLUSTER", "MYID")
        self.nodes[i] = srv
    end
    local first = self.nodes[1]
    for i = 2, 6 do
        local n = self.nodes[i]
        must(first, "CLUSTER", "MEET", n.host, n.port, n.bus_port)
    end
    for i = 1, 3 do
        must(self.nodes[i], "CLUSTER", "ADDSLOTSRANGE", RANGES[i][1],
             RANGES[i][2])
    end
    -- A replica can follow a master only once it knows it (gossip).
    for i = 4, 6 do
        local r, m = self.nodes[i], self.nodes[i - 3]
        wait_for("node " .. i .. " to learn its master", function()
            return cmd(r, "CLUSTER", "REPLICATE", m.id) == "OK"
        end)
    end
    self:wait_stable()
    self.url = "redis://" .. first.host .. ":" .. first.port .. "?cluster=1"
    return self
end


-- Node `n`'s view of the cluster from CLUSTER NODES: the number of
-- nodes, of masters, and whether any is failing or still in handshake.
local function view(n)
    local text = cmd(n, "CLUSTER", "NODES")
    if not text then
        return nil
    end
    local v = { lines = 0, masters = 0, fail = false }
    for line in text:gmatch("[^\n]+") do
        v.lines = v.lines + 1
        local id, _, flags = line:match("^(%S+) (%S+) (%S+)")
        if flags:find("fail", 1, true) or flags:find("handshake", 1, true)
           or flags:find("noaddr", 1, true) then
            v.fail = true
        end
        v[id] = flags:find("master", 1, true) and "master" or "replica"
        if v[id] == "master" then
            v.masters = v.masters + 1
        end
    end
    return v
end


--- Waits until every running node says cluster_state:ok, knows six nodes
-- with no fail flag, three of them masters, every replica's link to its master is up, and all
-- nodes agree on who owns each of the three ranges.
function cluster_mt.wait_stable(self, secs)
    wait_for("a stable cluster", function()
        local owners
        for _, n in ipairs(self.nodes) do
            if info_field(n, "cluster_state") ~= "ok" then
                return false
            end
            local v = view(n)
            -- Three masters: a demoted master is known as a replica by
            -- all (else they refuse it their vote in the next failover).
            if not v or v.lines ~= 6 or v.fail or v.masters ~= 3 then
                return false
            end
            local o = {}
            for i, r in ipairs(RANGES) do
                o[i] = (self:owner_seen_by(n, r[1]) or "?")
                       .. (self:owner_seen_by(n, r[2]) or "?")
            end
            local key = table.concat(o, ",")
            if owners and owners ~= key then
                return false
            end
            owners = key
            local role = cmd(n, "ROLE")
            if not role or (role[1] == "slave" and role[4] ~= "connected")
            then
                return false
            end
        end
        return true
    end, secs)
end


--- The port of the master owning `slot` as node `n` sees it (CLUSTER
-- SLOTS), or nil.
function cluster_mt.owner_seen_by(self, n, slot)
    local slots = cmd(n, "CLUSTER", "SLOTS")
    if type(slots) ~= "table" then
        return nil
    end
    for _, e in ipairs(slots) do
        if slot >= e[1] and slot <= e[2] then
            return tostring(e[3][2])
        end
    end
    return nil
end


--- A wtt.redis cluster client on c.url (`opts`: redis.connect options).
function cluster_mt.client(self, opts)
    return redis.connect(self.url, opts)
end


--- The node with this port.
function cluster_mt.by_port(self, port)
    for _, n in ipairs(self.nodes) do
        if tostring(n.port) == tostring(port) then
            return n
        end
    end
end


--- The slot of `key` (CLUSTER KEYSLOT on a node).
function cluster_mt.slot(self, key)
    return must(self.nodes[1], "CLUSTER", "KEYSLOT", key)
end


--- The master owning `slot_or_key` (a number or a key), from the view of
-- that master itself (the one whose CLUSTER SLOTS names itself).
function cluster_mt.master_of(self, slot_or_key)
    local slot = type(slot_or_key) == "number" and slot_or_key
                 or self:slot(slot_or_key)
    for _, n in ipairs(self.nodes) do
        if self:owner_seen_by(n, slot) == tostring(n.port) then
            local role = cmd(n, "ROLE")
            if role and role[1] == "master" then
                return n
            end
        end
    end
    error("no master owns slot " .. slot)
end


--- The replica following master `m` (ROLE on every node).
function cluster_mt.replica_of(self, m)
    for _, n in ipairs(self.nodes) do
        local role = cmd(n, "ROLE")
        if role and role[1] == "slave" and tostring(role[3]) == tostring(m.port)
        then
            return n
        end
    end
    error("no replica follows :" .. m.port)
end


--- The masters other than `m`.
function cluster_mt.other_masters(self, m)
    local out = {}
    for _, n in ipairs(self.nodes) do
        local role = cmd(n, "ROLE")
        if n ~= m and role and role[1] == "master" then
            out[#out + 1] = n
        end
    end
    return out
end


--- Manual failover: CLUSTER FAILOVER on `replica` (its master pauses
-- writes, the replica catches up and takes over: no acknowledged write
-- is lost), then waits until every node agrees.
-- A manual failover that does not complete within its own timeout (5 s,
-- e.g. the replica did not get the votes in time on a loaded machine) is
-- aborted by Redis; it is asked again, a few times.
function cluster_mt.failover(self, replica)
    for _ = 1, 4 do
        must(replica, "CLUSTER", "FAILOVER")
        local deadline = sys.now() + 15
        while sys.now() < deadline do
            local role = cmd(replica, "ROLE")
            if role and role[1] == "master" then
                self:wait_stable()
                return
            end
            sys.sleep(0.05)
        end
    end
    error("redis cluster: replica :" .. replica.port .. " never became "
          .. "master:\n" .. (sys.read_file(replica.log) or ""):sub(-3000))
end


--- Migration, step 1: `dst` imports `slot`, `src` migrates it. From now
-- on `src` answers ASK for keys of the slot it no longer holds.
function cluster_mt.migrate_begin(self, slot, src, dst)
    must(dst, "CLUSTER", "SETSLOT", slot, "IMPORTING", src.id)
    must(src, "CLUSTER", "SETSLOT", slot, "MIGRATING", dst.id)
end


--- Migration, step 2: moves every key of `slot` from `src` to `dst`
-- with MIGRATE ... KEYS, `batch` keys at a time (default 100).
-- @return the number of keys moved
function cluster_mt.migrate_keys(self, slot, src, dst, batch)
    local moved = 0
    while true do
        local keys = must(src, "CLUSTER", "GETKEYSINSLOT", slot, batch or 100)
        if #keys == 0 then
            return moved
        end
        must(src, "MIGRATE", dst.host, dst.port, "", 0, 10000, "KEYS",
             unpack(keys))
        moved = moved + #keys
    end
end


--- Migration, step 3: the slot belongs to `dst`, told to dst, src and
-- every other master (as redis-cli does), then waits for agreement.
function cluster_mt.migrate_end(self, slot, src, dst)
    must(dst, "CLUSTER", "SETSLOT", slot, "NODE", dst.id)
    must(src, "CLUSTER", "SETSLOT", slot, "NODE", dst.id)
    for _, n in ipairs(self:other_masters(dst)) do
        if n ~= src then
            cmd(n, "CLUSTER", "SETSLOT", slot, "NODE", dst.id)
        end
    end
    wait_for("every node to see slot " .. slot .. " on :" .. dst.port,
             function()
        for _, n in ipairs(self.nodes) do
            if self:owner_seen_by(n, slot) ~= tostring(dst.port) then
                return false
            end
        end
        return true
    end)
end


--- The three steps at once.
function cluster_mt.migrate(self, slot, src, dst)
    self:migrate_begin(slot, src, dst)
    local n = self:migrate_keys(slot, src, dst)
    self:migrate_end(slot, src, dst)
    return n
end


--- Runs `fn(node)` on every node.
function cluster_mt.each(self, fn)
    for _, n in ipairs(self.nodes) do
        fn(n)
    end
end


--- FLUSHALL on every master.
function cluster_mt.flushall(self)
    for _, n in ipairs(self.nodes) do
        local role = cmd(n, "ROLE")
        if role and role[1] == "master" then
            must(n, "FLUSHALL")
        end
    end
end


--- Stops every node and removes their dirs. Safe twice.
function cluster_mt.stop(self)
    for _, n in ipairs(self.nodes) do
        n:stop()
    end
end


return _M
