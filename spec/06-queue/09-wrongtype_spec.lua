-- Q4, for every script of lua/queue/scripts (the directory is listed, so a
-- script added later is covered, or this spec names it): each script runs
-- once on a realistic state (where it writes), then once per key it is
-- given, with that key replaced by a value of another type. The DUMP of
-- every key must be the same before and after that run (Redis does not
-- undo the writes a script made before a command failed, so a check in
-- the middle is too late), and the reply must be a refusal from
-- lua/queue/errors.lua that names the key.

local rh = require "spec.support.redis"
local qh = require "spec.support.queue"
local queue = require "wtt.queue"
local errors = require "queue.errors"
local runtime = require "wtt.runtime"
local sys = require "wtt.sys"

local id = qh.id
local P = "{wtt}:"
local SCRIPT_DIR = runtime.lua_dir .. "/queue/scripts"


-- The Redis type every key of the queue holds (docs/queue.md "Keys").
local function expected_type(key)
    local k = queue.keys(P)
    for _, name in ipairs({ "queue", "priority", "bulk", "processing",
                            "failed", "results", "results_processing" }) do
        if key == k[name] then
            return "list"
        end
    end
    if key == k.time or key == k.workers then
        return "zset"
    end
    if key == k.clients then
        return "hash"
    end
    if key == k.paused then
        return "string"
    end
    if key:sub(1, #k.task_prefix) == k.task_prefix
       and key:sub(#k.task_prefix + 1):match("^%x+$") then
        return "hash"
    end
    error("no type known for key " .. key)
end


-- Every key: its DUMP and whether it has a TTL.
local function snapshot(r)
    local out = {}
    for _, key in ipairs(assert(r:call("KEYS", "*"))) do
        out[key] = { dump = r:call("DUMP", key),
                     ttl = r:call("PTTL", key) > 0 }
    end
    return out
end


-- KEYS indexes the header calls a key prefix (no key by that name is
-- touched).
local function prefix_indexes(file)
    return qh.prefix_keys(assert(sys.read_file(SCRIPT_DIR .. "/" .. file)))
end


local function policy()
    local p = qh.policy()
    p.fair_share = function() return "client-a", 5 end
    return p
end


local function claimed(q)
    assert.is_true(q:enqueue({ id = id(1), audio_midi_id = 1,
                               payload = {} }))
    return assert(q:claim("w"))
end


local function dead(q)
    local t = claimed(q)
    assert.equal("dead", q:fail(t.id, t.claim, "boom", false))
    return t
end


-- Per operation: a state where the script writes (set up from an empty
-- Redis), and the call through wtt.queue. `reads` = the script writes
-- nothing by design.
local CASES = {
    enqueue = function(q)
        dead(q)                          -- replaced, its dead letter removed
        return function() return q:enqueue({ id = id(1), payload = {} }) end
    end,
    claim = function(q)
        assert.is_true(q:enqueue({ id = id(1), payload = {} }))
        return function() return q:claim("w") end
    end,
    heartbeat = function(q)
        local t = claimed(q)
        sys.sleep(0.005)                 -- so that the deadline moves
        return function() return q:heartbeat(t.id, t.claim) end
    end,
    progress = function(q)
        local t = claimed(q)
        return function() return q:progress(t.id, t.claim, 1, 2) end
    end,
    complete = function(q)
        local t = claimed(q)
        return function() return q:complete(t.id, t.claim, { n = 1 }) end
    end,
    complete_many = function(q)
        local t = claimed(q)
        return function()
            return q:complete_many({ { id = t.id, claim = t.claim,
                                       result = { n = 1 } } })
        end
    end,
    fail = function(q)
        local t = claimed(q)
        return function() return q:fail(t.id, t.claim, "boom", false) end
    end,
    release = function(q)
        local t = claimed(q)
        return function() return q:release(t.id, t.claim) end
    end,
    reap = function(q)
        local t = claimed(q)
        q.r:call("ZADD", P .. "task:processing:time", 1, t.id)   -- expired
        return function() return q:reap_batch() end
    end,
    requeue = function(q)
        local t = dead(q)
        return function() return q:requeue_dead(t.id) end
    end,
    purge = function(q)
        dead(q)
        return function() return q:purge_dead() end
    end,
    stats = function(q)
        claimed(q)
        return function() return q:stats() end, "reads"
    end,
    store = function(q)
        local t = claimed(q)
        return function()
            return q:store_result(t.id, t.claim, "fp", { midi = "x.mid" })
        end
    end,
}


-- Task hashes of garbage: every field a script reads holds a value of the
-- wrong shape, or the fields are missing. Each script must run to its end
-- on them (a Redis error in the middle would leave the writes made before
-- it), with a refusal or a whole transition; enqueue must replace a hash
-- that is not a live task (not pending or processing).
local GARBAGE = {
    { status = "bogus", claim = "x1", attempts = "NaN", payload = "{",
      client = "", deadline = "soon", uploads = "[[", result = "}",
      lane = "nowhere", worker = "" },
    { status = "processing", claim = "-7", attempts = "1e400",
      payload = "null", timeout_ms = "-1", lane = "" },
    { status = "failed", claim = "", attempts = "", payload = "[]" },
    { junk = "1" },
    { status = "pending", claim = "x", attempts = "x", max_attempts = "x",
      timeout_ms = "x", payload = "{", client = "nobody", waiting = "x",
      lane = "x" },
}

describe("queue scripts and wrong-typed keys (Q4) #redis", function()
    local srv, r
    setup(function()
        srv = rh.start()
        r = assert(srv:client())
    end)
    teardown(function()
        if r then r:close() end
        if srv then srv:stop() end
    end)

    -- A queue whose client records the last script call.
    local function recording_queue()
        local rec = {}
        local proxy = setmetatable({
            eval = function(_, s, keys, args)
                rec.script, rec.keys, rec.args = s, keys, args
                return r:eval(s, keys, args)
            end,
        }, { __index = function(_, name)
            return function(_, ...) return r[name](r, ...) end
        end })
        return queue.new(proxy, { prefix = P, policy = policy() }), rec
    end

    local files = {}
    for _, name in ipairs(assert(sys.listdir(SCRIPT_DIR))) do
        if name:match("%.lua$") then
            files[#files + 1] = name
        end
    end
    table.sort(files)

    it("finds the scripts", function()
        assert.is_true(#files >= 11)
    end)

    for _, file in ipairs(files) do
        local op, nkeys = file:match("^([%a_]+)%-(%d+)%.lua$")
        it(file .. ": a wrong-typed key changes nothing", function()
            assert(op, "script name not <op>-<nkeys>.lua: " .. file)
            local case = CASES[op]
            assert(case, "no realistic state for " .. file .. ": add one to "
                   .. "CASES in spec/06-queue/09-wrongtype_spec.lua")

            -- 1. realistic: the call succeeds (and writes)
            assert(r:call("FLUSHALL"))
            local q, rec = recording_queue()
            local call, reads = case(q)
            local before = snapshot(r)
            rec.script = nil
            local ok, err = call()
            assert(ok ~= nil, "the realistic call failed: " .. tostring(err))
            assert(rec.script, file .. " was not run by the call")
            assert.equal(tonumber(nkeys), #rec.keys)
            if not reads then
                assert.are_not.same(before, snapshot(r))
            end
            local script, keys, args = rec.script, rec.keys, rec.args
            local prefixes = prefix_indexes(file)

            -- 2. each key corrupted in turn; every problem is listed
            local checked, problems = 0, {}
            local function problem(i, key, fmt, ...)
                problems[#problems + 1] = ("KEYS[%d] %s: "):format(i, key)
                                          .. fmt:format(...)
            end
            for i, key in ipairs(keys) do
                if not prefixes[i] then
                    assert(r:call("FLUSHALL"))
                    local q2 = recording_queue()
                    case(q2)
                    local want = expected_type(key)
                    r:call("DEL", key)
                    if want == "string" then
                        r:call("RPUSH", key, "corrupt")
                    else
                        r:call("SET", key, "corrupt")
                    end
                    local pre = snapshot(r)
                    local res, rerr = r:eval(script, keys, args)
                    local post = snapshot(r)
                    local changed = {}
                    for k in pairs(pre) do
                        if not post[k] or post[k].dump ~= pre[k].dump
                           or post[k].ttl ~= pre[k].ttl then
                            changed[#changed + 1] = k
                        end
                    end
                    for k in pairs(post) do
                        if not pre[k] then
                            changed[#changed + 1] = k
                        end
                    end
                    table.sort(changed)
                    if #changed > 0 then
                        problem(i, key, "wrote %s", table.concat(changed, ", "))
                    end
                    local code = type(res) == "table" and res[1]
                    if type(res) ~= "table" then
                        problem(i, key, "a Redis error, not a refusal: %s",
                                tostring(rerr))
                    elseif not (type(code) == "number" and code < 0
                                and errors.text[code]) then
                        problem(i, key, "not a refusal from the error "
                                .. "table: %s", require("cjson").encode(res))
                    elseif code == errors.WRONGTYPE then
                        local text = key .. " is a "
                            .. (want == "string" and "list" or "string")
                            .. ", not a " .. want
                        if res[2] ~= text then
                            problem(i, key, "says %q, not %q",
                                    tostring(res[2]), text)
                        end
                    end
                    checked = checked + 1
                end
            end
            assert(#problems == 0, file .. ":\n  "
                   .. table.concat(problems, "\n  "))
            assert.is_true(checked > 0)
        end)

        it(file .. ": a task hash of garbage fails whole or not at all",
           function()
            assert(op and CASES[op])
            local problems = {}
            for gi, fields in ipairs(GARBAGE) do
                assert(r:call("FLUSHALL"))
                local q, rec = recording_queue()
                local call = CASES[op](q)
                -- the task's hash as the realistic state left it, garbled
                local hkey = P .. "task:" .. id(1)
                r:call("DEL", hkey)
                local args = { "HSET", hkey }
                for k, v in pairs(fields) do
                    args[#args + 1] = k
                    args[#args + 1] = v
                end
                assert(r:call(unpack(args)))
                local pre = snapshot(r)
                rec.script = nil
                local res, rerr = call()
                local post = snapshot(r)
                local changed = {}
                for k in pairs(pre) do
                    if not post[k] or post[k].dump ~= pre[k].dump then
                        changed[#changed + 1] = k
                    end
                end
                for k in pairs(post) do
                    if not pre[k] then
                        changed[#changed + 1] = k
                    end
                end
                table.sort(changed)
                local what = ("garbage %d: %s"):format(gi, tostring(res))
                if res == nil and rerr and tostring(rerr):find("ERR", 1, true)
                then
                    problems[#problems + 1] = what .. ": a Redis error: "
                        .. tostring(rerr) .. (#changed > 0 and (" after "
                        .. "writing " .. table.concat(changed, ", ")) or "")
                end
                if op == "enqueue" and fields.status ~= "processing"
                   and fields.status ~= "pending" then
                    -- not a live task: replaced, so the reconciler can
                    -- rebuild the task it stands for
                    if not res then
                        problems[#problems + 1] = what .. ": refused: "
                                                  .. tostring(rerr)
                    end
                end
            end
            assert(#problems == 0, file .. ":\n  "
                   .. table.concat(problems, "\n  "))
        end)
    end
end)
