local rh = require "spec.support.redis"
local qh = require "spec.support.queue"
local queue = require "wtt.queue"
local sys = require "wtt.sys"
local runtime = require "wtt.runtime"

local id = qh.id

-- A child process: waits for the "go" key, then runs `op` in a loop and
-- writes one line per result to its output file.
local CHILD = [[
local redis = require "wtt.redis"
local queue = require "wtt.queue"
local sys = require "wtt.sys"
local url, prefix, op, out, name = ...
local r = assert(redis.connect(url))
local q = queue.new(r, { prefix = prefix })
while not r:call("GET", prefix .. "go") do sys.sleep(0.001) end
local lines = {}
if op == "claim" then
    while true do
        local t, err = q:claim(name)
        assert(not err, err)
        if not t then break end
        lines[#lines + 1] = t.id
    end
else
    for _ = 1, 20 do
        local n, d = q:reap()
        assert(n, d)
        lines[#lines + 1] = n .. " " .. d
    end
end
assert(sys.write_file(out, table.concat(lines, "\n") .. "\n"))
]]


describe("wtt.queue races between processes #redis", function()
    local srv, r, q, dir
    local P = "{wtt}:"
    setup(function()
        srv = rh.start()
        r = assert(srv:client())
        dir = assert(sys.mkdtemp("wtt-queue-race-"))
        assert(sys.write_file(dir .. "/child.lua", CHILD))
    end)
    teardown(function()
        if r then r:close() end
        if srv then srv:stop() end
        if dir then sys.rmtree(dir) end
    end)
    before_each(function()
        assert(r:call("FLUSHALL"))
        q = queue.new(r, { prefix = P, policy = qh.policy() })
    end)

    local function run_children(op, n)
        local pids, outs = {}, {}
        for i = 1, n do
            outs[i] = dir .. "/" .. op .. i .. ".out"
            os.remove(outs[i])
            pids[i] = assert(sys.spawn({ runtime.exe, "run",
                dir .. "/child.lua", srv.url, P, op, outs[i], "w" .. i }))
        end
        sys.sleep(0.2)
        assert(r:call("SET", P .. "go", "1"))
        local lines = {}
        for i = 1, n do
            local how, code = sys.wait(pids[i], 30)
            assert.equal("exited", how)
            assert.equal(0, code)
            for line in assert(sys.read_file(outs[i])):gmatch("[^\n]+") do
                lines[#lines + 1] = line
            end
        end
        return lines
    end

    it("4 clients racing claim on 500 tasks claim each exactly once",
       function()
        for i = 1, 500 do
            assert.is_true(q:enqueue({ id = id(i), payload = {} }))
        end
        local ids = run_children("claim", 4)
        assert.equal(500, #ids)
        local seen = {}
        for _, x in ipairs(ids) do
            assert.is_nil(seen[x])
            seen[x] = true
        end
        assert.equal(500, r:call("LLEN", P .. "task:processing"))
        assert.equal(0, q:stats().pending)
        for i = 1, 500, 50 do
            assert.equal("1", q:get(id(i)).attempts)
        end
    end)

    it("4 reapers running at once recover each expired claim exactly once",
       function()
        local first
        for i = 1, 300 do
            assert.is_true(q:enqueue({ id = id(i), payload = {} }))
            local t = assert(q:claim("gone"))
            first = first or t
        end
        sys.sleep(0.35)
        local lines = run_children("reap", 4)
        local requeued, dead = 0, 0
        for _, line in ipairs(lines) do
            local a, b = line:match("^(%d+) (%d+)$")
            requeued, dead = requeued + tonumber(a), dead + tonumber(b)
        end
        assert.equal(300, requeued)
        assert.equal(0, dead)
        local pending = r:call("LRANGE", P .. "task:queue", 0, -1)
        assert.equal(300, #pending)
        local seen = {}
        for _, x in ipairs(pending) do
            assert.is_nil(seen[x])
            seen[x] = true
        end
        assert.equal(0, r:call("LLEN", P .. "task:processing"))
        assert.equal(0, r:call("ZCARD", P .. "task:processing:time"))
        -- one reap's INCR
        assert.equal(tostring(tonumber(first.claim) + 1), q:get(id(1)).claim)
    end)
end)
