--- Redis Cluster mode for wtt.redis (`redis://host:port?cluster=1`).
--
-- A cluster client holds one plain wtt.redis client per node it has
-- talked to and a slot map (CLUSTER SLOTS). Every command, script run and
-- pipeline goes to the master owning its first key's slot; keyless
-- commands (PING, INFO, TIME...) go to the node used last, so they
-- describe the node that holds the queue, or to a master not known to be
-- down when that node cannot be reached. Replies that say the command did
-- not run are handled here:
--
--   MOVED slot addr   the slot has a new owner: note it, reload the whole
--                     map (from that node first) and send it there;
--   ASK slot addr     the slot is being migrated and this key has gone:
--                     ASKING + the command on that node, map unchanged;
--   TRYAGAIN          a multi-key command met a half-migrated slot;
--   CLUSTERDOWN       the cluster is failing over or lost coverage;
--   connect failures  the node is gone: nothing was sent.
--
-- The last three retry with the client's backoff, a bounded number of
-- times, and reload the map; when no node at all answers (an outage, not
-- a failover) the error is returned at once, as by a plain client. A transport failure after the command was
-- sent is returned as it is (it may have run), as by a plain client, and
-- the next command reloads the map first. Scripts are loaded per
-- connection by the node clients, so a redirect to a node that never saw
-- a script (or flushed it) loads it there (NOSCRIPT path in scripts.lua).
-- Pub/sub uses its own connection to any node: Redis Cluster forwards
-- PUBLISH to every node, and a lost subscriber connection reconnects to
-- the next node that answers.

local bit = require "bit"
local sys = require "wtt.sys"
local internal = require "wtt.redis.internal"
local scripts = require "wtt.redis.scripts"
local null = require("wtt.core.redis").null

local type = type
local error = error
local pairs = pairs
local ipairs = ipairs
local select = select
local tostring = tostring
local tonumber = tonumber
local unpack = unpack
local setmetatable = setmetatable
local band, bxor, lshift, rshift = bit.band, bit.bxor, bit.lshift, bit.rshift
local str_byte = string.byte
local str_find = string.find
local str_match = string.match
local str_sub = string.sub
local str_upper = string.upper
local str_format = string.format
local sleep = sys.sleep
local backoff_delay = internal.backoff_delay
local check_command = internal.check_command
local check_timeout = internal.check_timeout
local evalsha_argv = scripts.evalsha_argv

local _M = {}

-- Redirects followed for one command before giving up (as other cluster
-- clients: a map that keeps moving is a fault, not a state to wait out).
local MAX_REDIRECTS = 16
-- TRYAGAIN / CLUSTERDOWN / unreachable node retries for one command, with
-- the client's backoff between them (0.1 s doubling to backoff_max, with
-- jitter: 13 to 26 s in all with the defaults, longer than a replica takes
-- to win an election with cluster-node-timeout 5 s).
local MAX_WAITS = 10

local NSLOTS = 16384


-- CRC16-CCITT (XMODEM), the hash Redis Cluster puts keys in slots with.
local CRC = {}
for i = 0, 255 do
    local crc = lshift(i, 8)
    for _ = 1, 8 do
        if band(crc, 0x8000) ~= 0 then
            crc = bxor(lshift(crc, 1), 0x1021)
        else
            crc = lshift(crc, 1)
        end
    end
    CRC[i] = band(crc, 0xffff)
end


--- The cluster slot of `key`: the CRC16 of its hash tag (the part between
-- the first `{` and the next `}`, when not empty) or of the whole key.
function _M.keyslot(key)
    key = tostring(key)
    local s = str_find(key, "{", 1, true)
    if s then
        local e = str_find(key, "}", s + 1, true)
        if e and e > s + 1 then
            key = str_sub(key, s + 1, e - 1)
        end
    end
    local crc = 0
    for i = 1, #key do
        crc = bxor(band(lshift(crc, 8), 0xffff),
                   CRC[bxor(rshift(crc, 8), str_byte(key, i))])
    end
    return band(crc, NSLOTS - 1)
end
local keyslot = _M.keyslot


-- Commands without a key: they go to the node used last.
local KEYLESS = {}
for name in ([[PING ECHO INFO TIME CONFIG SCRIPT CLUSTER PUBLISH DBSIZE
    FLUSHALL FLUSHDB SELECT AUTH CLIENT COMMAND ASKING READONLY READWRITE
    LASTSAVE BGSAVE BGREWRITEAOF SAVE ROLE DEBUG ACL HELLO QUIT RESET
    LATENCY SLOWLOG FUNCTION WAIT KEYS SCAN RANDOMKEY MULTI EXEC DISCARD
    UNWATCH PUBSUB MEMORY OBJECT XINFO XGROUP]]):gmatch("%S+") do
    KEYLESS[name] = true
end
-- Sub-command first, then the key.
local KEY_AT_3 = { MEMORY = true, OBJECT = true, XINFO = true, XGROUP = true }
local SCRIPT_RUN = { EVAL = true, EVALSHA = true, EVAL_RO = true,
                     EVALSHA_RO = true, FCALL = true, FCALL_RO = true }


--- The slot a command (array {name, args...}) goes to, or nil when it
-- has no key. A command routed wrong still arrives: the node answers
-- MOVED.
function _M.command_slot(argv)
    local name = str_upper(argv[1])
    if SCRIPT_RUN[name] then
        local n = tonumber(argv[3])
        if n and n > 0 and argv[4] ~= nil then
            return keyslot(argv[4])
        end
        return nil
    end
    if name == "SCAN" or name == "KEYS" then
        -- A pattern with a literal hash tag ("{wtt}:task:*") names the one
        -- slot its keys can be in: scan the node owning it.
        local pat = name == "KEYS" and argv[2] or nil
        for i = 3, #argv - 1 do
            if pat == nil and str_upper(tostring(argv[i])) == "MATCH" then
                pat = argv[i + 1]
            end
        end
        local tag = pat and str_match(tostring(pat), "^[^{]*{([^}]+)}")
        if tag and not str_find(tag, "[*?%[\\]") then
            return keyslot(tag)
        end
        return nil
    end
    if KEY_AT_3[name] then
        return argv[3] ~= nil and keyslot(argv[3]) or nil
    end
    if KEYLESS[name] or argv[2] == nil then
        return nil
    end
    return keyslot(argv[2])
end
local command_slot = _M.command_slot


-- What an error reply asks for: "MOVED", slot, addr | "ASK", slot, addr |
-- "TRYAGAIN" | "CLUSTERDOWN" | "UNSENT" (the node could not be reached:
-- nothing was sent) | nil (an answer to return as it is).
local function redirect(err)
    if type(err) ~= "string" then
        return nil
    end
    local c = str_byte(err, 1)
    if c == 77 or c == 65 then                         -- M, A
        local kind, slot, addr = str_match(err, "^(%u+) (%d+) (%S+)$")
        if kind == "MOVED" or kind == "ASK" then
            return kind, tonumber(slot), addr
        end
    elseif c == 84 and str_find(err, "^TRYAGAIN") then  -- T
        return "TRYAGAIN"
    elseif c == 67 and str_find(err, "^CLUSTERDOWN") then  -- C
        return "CLUSTERDOWN"
    elseif str_find(err, "^connect failed") or str_find(err, "^reconnect backoff")
    then
        return "UNSENT"
    end
    return nil
end
_M.redirect = redirect


local function sorted_keys(set)
    local list = {}
    for k in pairs(set) do
        list[#list + 1] = k
    end
    table.sort(list)
    return list
end


-- "host:port" -> host, port.
local function split_addr(addr)
    local host, port = str_match(addr, "^%[?(.-)%]?:(%d+)$")
    return host, tonumber(port)
end


local client = {}
local client_mt = { __index = client }


--- A cluster client.
-- @param cfg parsed URL and options (lua/wtt/redis.lua), cfg.seeds set
-- @param make_node function(host, port) -> a plain lazy client to one node
-- @param lazy true: do not load the slot map now
-- @return client | nil, err
function _M.new(cfg, make_node, lazy)
    local self = setmetatable({
        cfg = cfg,
        make_node = make_node,
        nodes = {},           -- "host:port" -> plain client
        slots = {},           -- slot -> "host:port" of its master
        known = {},           -- every node of the map, sorted
        down = {},            -- "host:port" -> true: last connect failed
        seeds = {},
        last = nil,           -- node of the last routed command
        stale = true,         -- reload the map before the next command
        refreshes = 0,        -- map loads (for specs and metrics)
        redirects = 0,        -- MOVED and ASK followed
        closed = false,
        cluster = true,
    }, client_mt)
    for _, s in ipairs(cfg.seeds) do
        local h = str_find(s.host, ":", 1, true) and ("[" .. s.host .. "]")
                  or s.host
        self.seeds[#self.seeds + 1] = h .. ":" .. s.port
    end
    if not lazy then
        local ok, err = self:refresh()
        if not ok then
            return nil, err
        end
    end
    return self
end


-- The plain client for `addr`, made on first use.
function client._node(self, addr)
    local n = self.nodes[addr]
    if not n then
        local host, port = split_addr(addr)
        n = self.make_node(host, port)
        self.nodes[addr] = n
    end
    return n
end


--- Reloads the slot map with CLUSTER SLOTS, asking `first` (if given),
-- the node used last, every known node, then the seeds, until one answers.
-- @return true | nil, err
function client.refresh(self, first)
    if self.closed then
        return nil, "closed"
    end
    local order, seen = {}, {}
    local function add(a)
        if a and not seen[a] then
            seen[a] = true
            order[#order + 1] = a
        end
    end
    add(first)
    add(self.last)
    for a in pairs(self.nodes) do
        add(a)
    end
    -- Every node of the last map, replicas too: when the nodes this client
    -- has talked to (and the seeds) are all gone, the others still answer.
    for _, a in ipairs(self.known) do
        add(a)
    end
    for _, a in ipairs(self.seeds) do
        add(a)
    end
    local last_err = "no node known"
    for _, addr in ipairs(order) do
        local n = self:_node(addr)
        local res, err = n:call("CLUSTER", "SLOTS")
        if type(res) == "table" and #res > 0 then
            local host = split_addr(addr)
            local function node_addr(m)
                local ip = m[1]
                if ip == "" or ip == "?" then
                    ip = host           -- the node that answered
                end
                if str_find(ip, ":", 1, true) then
                    ip = "[" .. ip .. "]"
                end
                return ip .. ":" .. tostring(m[2])
            end
            local slots, known = {}, {}
            for _, e in ipairs(res) do
                local a = node_addr(e[3])
                for s = e[1], e[2] do
                    slots[s] = a
                end
                for i = 3, #e do
                    known[node_addr(e[i])] = true
                end
            end
            self.slots = slots
            self.known = sorted_keys(known)
            self.stale = false
            self.refreshes = self.refreshes + 1
            return true
        end
        last_err = err or "CLUSTER SLOTS: empty"
    end
    return nil, "cluster map failed: " .. tostring(last_err)
end


-- Any node to send a keyless command to.
function client._default(self)
    if self.last then
        return self.last
    end
    -- A master not known to be down; a node's death is seen before the
    -- map (its replica takes over a few seconds later).
    local any
    for _, a in pairs(self.slots) do
        if not self.down[a] then
            return a
        end
        any = any or a
    end
    for _, a in ipairs(self.known) do
        if not self.down[a] then
            return a
        end
    end
    return any or self.seeds[1]
end


-- Runs `op(node_client, asking)` for `slot` (nil: keyless), following
-- redirects and retrying what did not run (see the module comment).
function client._run(self, slot, op)
    if self.closed then
        return nil, "closed"
    end
    local ask, waits, moved_to
    local res, err
    for _ = 1, MAX_REDIRECTS + MAX_WAITS do
        if self.stale and not ask then
            self:refresh(moved_to)
        end
        local addr = ask or (slot and self.slots[slot]) or self:_default()
        local node = self:_node(addr)
        res, err = op(node, ask ~= nil)
        if res ~= nil or err == nil then
            if not ask then
                self.last = addr
            end
            self.down[addr] = nil
            return res
        end
        local kind, rslot, raddr = redirect(err)
        if kind == "MOVED" then
            self.redirects = self.redirects + 1
            self.slots[rslot] = raddr
            self.stale = true
            moved_to = raddr
            ask = nil
        elseif kind == "ASK" then
            self.redirects = self.redirects + 1
            ask = raddr
        elseif kind then
            waits = (waits or 0) + 1
            if waits > MAX_WAITS then
                return nil, err
            end
            if kind == "UNSENT" then
                self.down[addr] = true
                if self.last == addr then
                    self.last = nil     -- keyless commands: another node
                end
                if not self:refresh() then
                    -- No node answers at all: an outage, not a failover
                    -- in progress. Fail fast, as a plain client does.
                    return nil, err
                end
            end
            ask = nil
            if kind ~= "TRYAGAIN" then
                self.stale = true
            end
            sleep(backoff_delay(self.cfg, waits))
        else
            if not node:connected() then
                -- A transport failure: the node may be gone; look again.
                self.stale = true
            end
            return nil, err
        end
    end
    return nil, str_format("cluster: too many redirects (last: %s)",
                           tostring(err))
end


-- A pipeline entry's reply as call returns it.
local function unwrap(v)
    if v == null then
        return nil
    end
    if type(v) == "table" and type(v.err) == "string" then
        return nil, v.err
    end
    return v
end


--- As a plain client's call, routed by the first key.
function client.call(self, cmd, ...)
    check_command(cmd, 3)
    local argv = { cmd, ... }
    local n = select("#", ...) + 1
    return self:_run(command_slot(argv), function(node, asking)
        if not asking then
            return node:call(unpack(argv, 1, n))
        end
        local res, err = node:pipeline(function(p)
            p:call("ASKING")
            p:call(unpack(argv, 1, n))
        end)
        if not res then
            return nil, err
        end
        return unwrap(res[2])
    end)
end


--- As a plain client's eval, routed by KEYS[1].
function client.eval(self, script, keys, args)
    local argv = evalsha_argv(script, keys, args, 3)
    return self:_run(command_slot(argv), function(node, asking)
        if not asking then
            return node:eval(script, keys, args)
        end
        local res, err = node:pipeline(function(p)
            p:call("ASKING")
            p:eval(script, keys, args)
        end)
        if not res then
            return nil, err
        end
        return unwrap(res[2])
    end)
end


function client.script(self, source)
    return scripts.script(source)
end


local pipe = {}
local pipe_mt = { __index = pipe }

function pipe.call(self, cmd, ...)
    check_command(cmd, 3)
    local n = select("#", ...)
    local argv = { cmd, ... }
    for i = 2, n + 1 do
        local t = type(argv[i])
        if t ~= "string" and t ~= "number" then
            error(str_format("bad argument #%d to 'call' (string or number "
                             .. "expected, got %s)", i, t), 2)
        end
    end
    self.n = self.n + 1
    self.e[self.n] = { argv = argv, slot = command_slot(argv) }
end

function pipe.eval(self, script, keys, args)
    local argv = evalsha_argv(script, keys, args, 3)
    self.n = self.n + 1
    self.e[self.n] = { script = script, keys = keys, args = args,
                       slot = command_slot(argv) }
end


--- As a plain client's pipeline. Entries are sent, in order, to the node
-- of their slot (keyless ones to the node of the pipeline's first key);
-- entries answered MOVED, ASK, TRYAGAIN or CLUSTERDOWN did not run and
-- are sent again where the answer says, their replies taking their place.
-- A transport failure returns nil, err as a plain pipeline does.
function client.pipeline(self, fn)
    if type(fn) ~= "function" then
        error("bad argument #1 to 'pipeline' (function expected)", 2)
    end
    local p = setmetatable({ n = 0, e = {} }, pipe_mt)
    fn(p)
    if p.n == 0 then
        return {}
    end
    if self.closed then
        return nil, "closed"
    end
    local first_slot
    for i = 1, p.n do
        first_slot = first_slot or p.e[i].slot
    end
    local out = {}
    local todo = {}
    for i = 1, p.n do
        todo[i] = i
    end
    local ask = {}                 -- entry -> node it was asked to go to
    local waits, moved_to = 0, nil
    for _ = 1, MAX_REDIRECTS + MAX_WAITS do
        if self.stale then
            self:refresh(moved_to)
        end
        -- Group the entries left by node, keeping their order.
        local groups, order = {}, {}
        for _, i in ipairs(todo) do
            local s = p.e[i].slot or first_slot
            local addr = ask[i] or (s and self.slots[s]) or self:_default()
            if not groups[addr] then
                groups[addr] = {}
                order[#order + 1] = addr
            end
            local g = groups[addr]
            g[#g + 1] = i
        end
        local again, wait = {}, nil
        for _, addr in ipairs(order) do
            local g = groups[addr]
            local node = self:_node(addr)
            local pos = {}
            local res, err = node:pipeline(function(np)
                local k = 0
                for _, i in ipairs(g) do
                    local e = p.e[i]
                    if ask[i] then
                        np:call("ASKING")
                        k = k + 1
                    end
                    if e.script then
                        np:eval(e.script, e.keys, e.args)
                    else
                        np:call(unpack(e.argv, 1, #e.argv))
                    end
                    k = k + 1
                    pos[i] = k
                end
            end)
            if not res then
                if redirect(err) ~= "UNSENT" then
                    if not node:connected() then
                        self.stale = true
                    end
                    return nil, err
                end
                if self.last == addr then
                    self.last = nil
                end
                if not self:refresh() then
                    return nil, err         -- no node answers: an outage
                end
                wait = "UNSENT"
                for _, i in ipairs(g) do
                    again[#again + 1] = i
                    ask[i] = nil
                end
            else
                self.last = addr
                for _, i in ipairs(g) do
                    local v = res[pos[i]]
                    local kind, rslot, raddr
                    if type(v) == "table" then
                        kind, rslot, raddr = redirect(v.err)
                    end
                    if kind == "MOVED" then
                        self.redirects = self.redirects + 1
                        self.slots[rslot] = raddr
                        self.stale = true
                        moved_to = raddr
                        ask[i] = nil
                        again[#again + 1] = i
                    elseif kind == "ASK" then
                        self.redirects = self.redirects + 1
                        ask[i] = raddr
                        again[#again + 1] = i
                    elseif kind then
                        wait = kind
                        ask[i] = nil
                        again[#again + 1] = i
                    else
                        out[i] = v
                    end
                end
            end
        end
        if #again == 0 then
            return out
        end
        table.sort(again)
        todo = again
        if wait then
            waits = waits + 1
            if waits > MAX_WAITS then
                break
            end
            if wait ~= "TRYAGAIN" then
                self.stale = true
            end
            sleep(backoff_delay(self.cfg, waits))
        end
    end
    -- Entries still redirected keep their last error reply.
    for _, i in ipairs(todo) do
        out[i] = out[i] or { err = "cluster: too many redirects" }
    end
    return out
end


-- Opens a subscriber connection to the first node that answers, starting
-- after the one used last time so that a dead node is not tried first
-- again and again.
local function open_any(self)
    return function()
        local addrs, seen = {}, {}
        local function add(a)
            if a and not seen[a] then
                seen[a] = true
                addrs[#addrs + 1] = a
            end
        end
        for _, a in pairs(self.slots) do
            add(a)
        end
        for a in pairs(self.nodes) do
            add(a)
        end
        for _, a in ipairs(self.known) do
            add(a)
        end
        for _, a in ipairs(self.seeds) do
            add(a)
        end
        table.sort(addrs)
        self.sub_turn = (self.sub_turn or 0) + 1
        local err = "no node known"
        for k = 0, #addrs - 1 do
            local addr = addrs[(self.sub_turn + k) % #addrs + 1]
            local conn
            conn, err = internal.open(self:_node(addr).cfg)
            if conn then
                return conn
            end
        end
        -- The map may be stale (nodes replaced): reload it for next time.
        self:refresh()
        return nil, err
    end
end


--- As a plain client's subscribe, on a connection to any node (PUBLISH
-- reaches every node of a cluster); a lost connection reconnects to the
-- next node that answers.
function client.subscribe(self, channels, patterns, on_message, opts)
    if self.closed then
        return nil, "closed"
    end
    if self.stale then
        self:refresh()
    end
    local any = self:_node(self:_default())
    local cfg = setmetatable({ open = open_any(self) },
                             { __index = any.cfg })
    return any.subscribe_cfg(any, cfg, channels, patterns, on_message, opts)
end


function client.set_timeout(self, t)
    check_timeout(t, "timeout")
    local old = self.cfg.timeout
    self.cfg.timeout = t
    self.cfg.core_opts.timeout = t
    for _, n in pairs(self.nodes) do
        n:set_timeout(t)
    end
    return old
end


--- True while a connection to some node is open.
function client.connected(self)
    for _, n in pairs(self.nodes) do
        if n:connected() then
            return true
        end
    end
    return false
end


function client.close(self)
    self.closed = true
    for _, n in pairs(self.nodes) do
        n:close()
    end
    return true
end


return _M
