local rh = require "spec.support.redis"
local policy = require "wtt.policy"
local plugins = require "wtt.plugins"
local helpers = require "spec.support.server"
local queue = require "wtt.queue"
local sys = require "wtt.sys"
local runtime = require "wtt.runtime"

local PLUGINS = runtime.source_dir .. "/plugins"


local function copy_dir(from, to)
    assert(sys.exists(to) == "dir" or os.execute("mkdir -p '" .. to .. "'"))
    for _, name in ipairs(assert(sys.listdir(from))) do
        local kind = sys.exists(from .. "/" .. name)
        if kind == "dir" then
            copy_dir(from .. "/" .. name, to .. "/" .. name)
        elseif kind == "file" then
            assert(sys.write_file(to .. "/" .. name,
                                  assert(sys.read_file(from .. "/" .. name))))
        end
    end
end


describe("queue policy plugins #redis", function()
    local dir
    before_each(function()
        dir = assert(sys.mkdtemp("wtt-policy-"))
        copy_dir(PLUGINS, dir)
        policy.configure({ dir = dir, check_interval = 0 })
    end)
    after_each(function()
        sys.rmtree(dir)
    end)

    local function edit(path, from, to)
        local src = assert(sys.read_file(dir .. "/" .. path))
        local new = src:gsub(from, to)
        assert.is_not.equal(src, new)
        assert(sys.write_file(dir .. "/" .. path, new))
    end

    it("loads the shipped plugins with their schema defaults", function()
        local p = policy.current()
        assert.is_nil(policy.last_error())
        assert.equal("files", p.source)
        assert.same({ retry = "1.0.0", timeout = "1.0.0", priority = "1.1.0",
                      deadletter = "1.0.0", tab = "1.0.0" }, p.versions)
        assert.equal(3, p.max_attempts({}))
        assert.equal(86400, p.dead_ttl_s())
        assert.equal(604800, p.final_ttl_s())
        assert.equal("default", p.lane({ duration_s = 1 }))
        -- fairness is off by default
        assert.is_nil(p.fair_share({ client = "10.0.0.1" }))
    end)

    it("computes backoff with jitter, capped", function()
        local p = policy.current()
        assert.equal(1000, p.backoff_ms(1, 0))
        assert.equal(1999, p.backoff_ms(1, 0.999))
        assert.equal(4000, p.backoff_ms(3, 0))
        assert.equal(150000, p.backoff_ms(30, 0))
        assert.is_true(p.retryable("network down", true))
        assert.is_false(p.retryable("network down", false))
    end)

    it("derives the visibility timeout from the audio length", function()
        local p = policy.current()
        assert.equal(60000 + 30 * 2000, p.timeout_ms({ duration_s = 30 }))
        assert.equal(600000, p.timeout_ms({}))
        assert.equal(3600000, p.timeout_ms({ duration_s = 100000 }))
    end)

    it("takes WTT_<PLUGIN>_<FIELD> overrides and checks them", function()
        local schema = { fields = {
            { name = "max_attempts", type = "integer", default = 3,
              min = 1, max = 10 },
            { name = "never_retry", type = "array", default = {} } } }
        local env = { WTT_RETRY_MAX_ATTEMPTS = "7",
                      WTT_RETRY_NEVER_RETRY = "^bad,^unsupported" }
        local conf = assert(plugins.config("retry", schema,
                                          function(k) return env[k] end))
        assert.equal(7, conf.max_attempts)
        assert.same({ "^bad", "^unsupported" }, conf.never_retry)
        env.WTT_RETRY_MAX_ATTEMPTS = "70"
        local ok, err = plugins.config("retry", schema,
                                      function(k) return env[k] end)
        assert.is_nil(ok)
        assert.matches("out of range", err)
        env.WTT_RETRY_MAX_ATTEMPTS = "many"
        ok, err = plugins.config("retry", schema,
                                function(k) return env[k] end)
        assert.matches("bad value", err)
    end)

    it("picks up a changed plugin file in a running process", function()
        assert.equal(3, policy.current().max_attempts({}))
        edit("retry/schema.lua", "default = 3,", "default = 5,")
        assert.equal(5, policy.current().max_attempts({}))
        edit("priority/schema.lua", "short_clip_s\", type = \"number\", default = 0,",
             "short_clip_s\", type = \"number\", default = 10,")
        assert.equal("priority", policy.current().lane({ duration_s = 4 }))
    end)

    it("rejects a bad VERSION and keeps the previous policy", function()
        assert.equal(3, policy.current().max_attempts({}))
        edit("retry/schema.lua", "default = 3,", "default = 4,")
        edit("retry/handler.lua", 'VERSION = "1.0.0"', 'VERSION = "one"')
        local p = policy.current()
        assert.equal(3, p.max_attempts({}))
        assert.matches("VERSION", policy.last_error())
        local ok, err = policy.reload()
        assert.is_nil(ok)
        assert.matches("plugins/retry/handler.lua", err, 1, true)
        edit("retry/handler.lua", 'VERSION = "one"', 'VERSION = "1.1.0"')
        p = policy.current()
        assert.is_nil(policy.last_error())
        assert.equal(4, p.max_attempts({}))
        assert.equal("1.1.0", p.versions.retry)
    end)

    it("rejects a handler without a slot function or with a syntax error",
       function()
        assert.equal(600000, policy.current().timeout_ms({}))
        edit("timeout/handler.lua", "function _M.timeout_ms",
             "function _M.other")
        -- the previous policy stays in force
        assert.equal(600000, policy.current().timeout_ms({}))
        assert.matches("timeout_ms must be a function", policy.last_error())
        edit("timeout/handler.lua", "function _M.other",
             "function _M.timeout_ms(")
        assert.is_nil(policy.reload())
        assert.matches("timeout/handler.lua", policy.last_error(), 1, true)
    end)

    it("fills an absent plugin's slot with the shipped plugin", function()
        sys.rmtree(dir .. "/deadletter")
        local p = policy.current()
        assert.is_nil(policy.last_error())
        assert.equal("1.0.0", p.versions.deadletter)
        assert.is_true(p.shipped.deadletter)
        assert.is_nil(p.shipped.retry)
        -- the shipped schema is where the default comes from
        assert.equal(86400, p.dead_ttl_s())
    end)

    it("has no policy, and says why, when plugins/ never loaded", function()
        edit("retry/schema.lua", "default = 3,", "default = 0,")
        assert.is_nil(policy.reload())
        local ok, err = pcall(policy.current)
        assert.is_false(ok)
        assert.matches("no valid plugin set: plugins/retry/schema.lua:%d+: "
                       .. "retry.max_attempts: out of range", err)
    end)

    it("a worker does not start on plugins that fail to load", function()
        edit("timeout/handler.lua", "function _M.timeout_ms",
             "function _M.other")
        local log = dir .. "/worker.log"
        local pid = assert(sys.spawn({ runtime.exe, "worker", "--noop",
            "--redis-url", "redis://127.0.0.1:1" }, {
            env = { WTT_PLUGINS_DIR = dir }, stdout = log, stderr = log }))
        local how, code = sys.wait(pid, 20)
        local text = sys.read_file(log) or ""
        assert.equal("exited", how, text)
        assert.equal(1, code, text)
        assert.matches("worker.start_failed", text, 1, true)
        assert.matches("plugins/timeout/handler.lua:%d+: timeout_ms must be "
                       .. "a function", text)
    end)

    it("drives wtt.queue: a new policy applies to the next enqueue",
       function()
        local srv = rh.start()
        local r = assert(srv:client())
        local q = queue.new(r, { prefix = "{wtt}:" })
        assert.is_true(q:enqueue({ id = "a", payload = { duration_s = 10 } }))
        assert.equal("3", q:get("a").max_attempts)
        assert.equal("80000", q:get("a").timeout_ms)
        edit("retry/schema.lua", "default = 3,", "default = 6,")
        assert.is_true(q:enqueue({ id = "b", payload = {} }))
        assert.equal("6", q:get("b").max_attempts)
        r:close()
        srv:stop()
    end)

    it("fairness: a flooding client's tasks beyond fair_max_waiting wait "
       .. "in the bulk lane; another client's task is claimed before that "
       .. "backlog drains; a reload changes the limit", function()
        local srv = rh.start()
        local r = assert(srv:client())
        local P = "{fair}:"
        local q = queue.new(r, { prefix = P })
        edit("priority/schema.lua", "name = \"fair_max_waiting\", type = "
             .. "\"integer\", default = 0,", "name = \"fair_max_waiting\", "
             .. "type = \"integer\", default = 3,")
        assert.equal("1.1.0", policy.current().versions.priority)
        local function enqueue(id, client)
            local ok, lane = q:enqueue({ id = id, payload = {
                client = client, duration_s = 5 } })
            assert.is_true(ok, lane)
            return lane
        end
        local lanes = {}
        for i = 1, 20 do
            lanes[i] = enqueue("a" .. i, "client-a")
        end
        assert.same({ "default", "default", "default" },
                    { lanes[1], lanes[2], lanes[3] })
        for i = 4, 20 do
            assert.equal("bulk", lanes[i], "a" .. i)
        end
        assert.equal("default", enqueue("b1", "client-b"))
        assert.equal("default", enqueue("anon", nil))      -- not counted
        assert.equal("20", r:call("HGET", P .. "task:clients", "client-a"))
        assert.equal(17, r:call("LLEN", P .. "task:queue:bulk"))
        assert.equal(22, q:stats().pending)

        -- B's task comes 4th, behind at most 3 of A's, long before A's
        -- backlog drains.
        local order = {}
        for _ = 1, 5 do
            order[#order + 1] = assert(q:claim("w")).id
        end
        assert.same({ "a1", "a2", "a3", "b1", "anon" }, order)
        -- claims leave the waiting counts: B is gone, A has its bulk tasks
        assert.is_nil(r:call("HGET", P .. "task:clients", "client-b"))
        assert.equal("17", r:call("HGET", P .. "task:clients", "client-a"))
        -- A is still over its share: a new task of A waits in bulk, a new
        -- one of B does not
        assert.equal("bulk", enqueue("a21", "client-a"))
        assert.equal("default", enqueue("b2", "client-b"))
        assert.equal("b2", assert(q:claim("w")).id)

        -- Hot reload: fairness off again, the next task of A is not demoted
        edit("priority/schema.lua", "type = \"integer\", default = 3,",
             "type = \"integer\", default = 0,")
        assert.equal("default", enqueue("a22", "client-a"))
        assert.equal("a22", assert(q:claim("w")).id)

        -- The rest drains in order; the counts go back to nothing.
        local rest = {}
        while true do
            local t = q:claim("w")
            if not t then
                break
            end
            rest[#rest + 1] = t.id
        end
        assert.equal(18, #rest)
        assert.equal("a4", rest[1])
        assert.equal("a21", rest[18])
        assert.equal(0, r:call("EXISTS", P .. "task:clients"))
        r:close()
        srv:stop()
    end)

    it("uses the generation's plugins inside wtt serve", function()
        local files = {}
        for _, name in ipairs({ "retry", "timeout", "priority",
                                "deadletter" }) do
            for _, f in ipairs({ "handler", "schema" }) do
                local path = "plugins/" .. name .. "/" .. f .. ".lua"
                files[#files + 1] = { path = path, kind = "plugin",
                    source = assert(sys.read_file(dir .. "/" .. name .. "/"
                                                  .. f .. ".lua")) }
            end
        end
        files[2].source = files[2].source:gsub("default = 3,", "default = 9,")
        local a = assert(require("wtt.app").build(files))
        -- what lua/wtt/server.lua does with a generation's state
        plugins.activate(a.plugins)
        local p = policy.current()
        plugins.activate(nil)
        assert.equal("serve", p.source)
        assert.equal(9, p.max_attempts({}))
        assert.equal("files", policy.current().source)
    end)
end)


-- A reload is one validation: plugins that fail any check never reach
-- the serving threads, and the previous generation keeps serving.
describe("wtt serve: plugin reloads #http", function()
    local srv, pdir

    setup(function()
        pdir = assert(sys.mkdtemp("wtt-serve-plugins-"))
        copy_dir(PLUGINS, pdir)
        srv = helpers.serve({ plugins = pdir })
        assert(sys.write_file(srv.routes_dir .. "/attempts.lua", [[
            return { { "GET", "/attempts", function()
                return 200, { n = require("wtt.policy").current()
                                  .max_attempts({}) }
            end } }
        ]]))
        assert.equal(200, srv:admin("POST", "/_admin/reload").status)
    end)
    teardown(function()
        if srv then srv:stop() end
        if pdir then sys.rmtree(pdir) end
    end)

    local function attempts()
        return srv:json("GET", "/attempts").json.n
    end

    local function edit(path, from, to)
        local src = assert(sys.read_file(pdir .. "/" .. path))
        local new = src:gsub(from, to)
        assert.is_not.equal(src, new)
        assert(sys.write_file(pdir .. "/" .. path, new))
    end

    it("swaps in a valid change", function()
        assert.equal(3, attempts())
        edit("retry/schema.lua", "default = 3,", "default = 4,")
        assert.equal(200, srv:admin("POST", "/_admin/reload").status)
        assert.equal(4, attempts())
    end)

    it("refuses a bad configuration value and keeps serving the previous "
       .. "generation", function()
        local before = srv:admin("GET", "/_admin/reload").json.active.id
        edit("retry/schema.lua", "default = 4,", "default = 0,")
        local res = srv:admin("POST", "/_admin/reload")
        assert.equal(422, res.status, res.body)
        assert.matches("^plugins/retry/schema%.lua:%d+: retry%.max_attempts: "
                       .. "out of range", res.json.detail)
        assert.equal(before, srv:admin("GET", "/_admin/reload").json.active.id)
        assert.equal(4, attempts())
        edit("retry/schema.lua", "default = 0,", "default = 4,")
    end)

    it("refuses a missing slot function and a non-function slot", function()
        edit("timeout/handler.lua", "function _M.timeout_ms",
             "function _M.other")
        local res = srv:admin("POST", "/_admin/reload")
        assert.equal(422, res.status, res.body)
        assert.matches("^plugins/timeout/handler%.lua:%d+: timeout_ms must "
                       .. "be a function", res.json.detail)
        assert.equal(4, attempts())
        edit("timeout/handler.lua", "function _M.other%(conf, payload%)",
             "_M.timeout_ms = 5\nfunction _M.other(conf, payload)")
        res = srv:admin("POST", "/_admin/reload")
        assert.equal(422, res.status, res.body)
        assert.matches("timeout_ms must be a function", res.json.detail)
        assert.equal(4, attempts())
    end)
end)
