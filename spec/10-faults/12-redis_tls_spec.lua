-- R8 (docs/reliability.md): Redis over TLS with certificate verification, at
-- service level. A redis-server with a TLS port only, a throwaway CA and
-- client certificates required (tls-auth-clients yes), PostgreSQL, `wtt
-- serve` and a real `wtt worker`, all given the CA and the client
-- certificate through WTT_REDIS_CA_FILE / WTT_REDIS_CERT / WTT_REDIS_KEY
-- (docs/redis.md): a task completes through it. Then the mismatches a
-- deployment can get wrong, each against the real servers: a CA that did
-- not sign the server's certificate, rediss:// against a plain-TCP Redis,
-- redis:// against the TLS-only port, and (R8's neighbour) a wrong or
-- missing password for a Redis with requirepass. A worker must stop at start (exit 1)
-- with a message naming the problem, not retry forever; web (which never
-- exits for Redis) must answer /readyz 503 with that message and log it at
-- start (docs/worker.md, docs/api.md).

local support = require "spec.support.faults"
local rh = require "spec.support.redis"
local helpers = require "spec.support.server"
local httpc = require "wtt.http_client"
local json = require "wtt.json"
local runtime = require "wtt.runtime"
local sys = require "wtt.sys"

describe("R8: Redis over TLS, service level #redis #pg", function()
    if support.needs_single_redis("TLS and requirepass are set up on one "
                                  .. "redis-server (the cluster specs run "
                                  .. "plain TCP)") then
        return
    end

    local env, plain, locked, other_dir, other_ca

    setup(function()
        env = support.start({ redis = { tls = true,
                                        tls_auth_clients = true } })
        plain = rh.start()
        locked = rh.start({ password = "s3cret" })
        other_dir = assert(sys.mkdtemp("wtt-r8-"))
        other_ca = rh.make_ca(other_dir, "other")
    end)

    teardown(function()
        if env then env:stop() end
        if plain then plain:stop() end
        if locked then locked:stop() end
        if other_dir then sys.rmtree(other_dir) end
    end)

    after_each(function()
        if env then
            env:kill_workers()
        end
    end)

    local tls_port = function() return env.rsrv.port end

    -- The three ways to get it wrong: URL and CA for REDIS_URL and
    -- WTT_REDIS_CA_FILE, and what the message must say.
    local CASES = {
        { name = "a CA that did not sign the server's certificate",
          url = function() return env.rsrv.url end,
          ca = function() return other_ca.cert end,
          says = { "certificate verify failed", "WTT_REDIS_CA_FILE" } },
        { name = "rediss:// against a plain-TCP Redis",
          url = function() return plain.url:gsub("^redis:", "rediss:") end,
          says = { "tls handshake", "plain-TCP Redis port" } },
        { name = "redis:// against the TLS-only port",
          url = function()
              return "redis://127.0.0.1:" .. tls_port() .. "/0"
          end,
          says = { "TLS-only port? use rediss://" } },
        { name = "a wrong password",
          url = function()
              return "redis://:wrong@127.0.0.1:" .. locked.port .. "/0"
          end,
          says = { "WRONGPASS", "refused the URL's credentials" } },
        { name = "no password for a server that needs one",
          url = function()
              return "redis://127.0.0.1:" .. locked.port .. "/0"
          end,
          says = { "NOAUTH", "redis://user:password@" } },
    }

    local function says_all(text, words)
        for _, w in ipairs(words) do
            if not text:find(w, 1, true) then
                return false, w
            end
        end
        return true
    end


    it("a task completes through TLS Redis (CA and client certificate "
       .. "from the environment)", function()
        assert.equal("PONG", env.r:call("PING"))
        local w = env:worker()
        local id = env:submit("guitar_nylon_single")
        local row = env:wait_row(id, "completed", 60)
        assert.is_true(row.note_count > 0)
        local res = assert(httpc.request({ url = env.url
                                                  .. "/readyz?verbose" }))
        assert.equal(200, res.status, res.body)
        w:signal("TERM")
        assert.same({ "exited", 0 }, { w:wait(15) }, w:text())
        env:check_invariants(8)
    end)


    for _, case in ipairs(CASES) do
        it("a worker with " .. case.name .. " exits 1 at start, saying so",
           function()
            local e = { REDIS_URL = case.url() }
            if case.ca then
                e.WTT_REDIS_CA_FILE = case.ca()
            end
            local w = env:worker(e, { "--noop" })
            local how, code = w:wait(20)
            assert.same({ "exited", 1 }, { how, code }, w:text())
            local ok, missing = says_all(w:text(), case.says)
            assert(ok, "the log does not say '" .. tostring(missing)
                       .. "':\n" .. w:text())
            assert.equal(1, w:count("worker.start_failed"), w:text())
        end)
    end


    it("web with each mismatch answers /readyz 503 naming it, and logs it "
       .. "at start", function()
        for _, case in ipairs(CASES) do
            local port = assert(sys.free_port())
            local e = {}
            for k, v in pairs(env.serve_env) do
                e[k] = v
            end
            e.REDIS_URL = case.url()
            e.WTT_REDIS_CA_FILE = case.ca and case.ca() or e.WTT_REDIS_CA_FILE
            e.WTT_LISTEN = "127.0.0.1:" .. port
            e.WTT_RECONCILE_INTERVAL_S = "3600"
            local log = env.tmp .. "/serve-r8-" .. port .. ".log"
            local pid = assert(sys.spawn({ runtime.exe, "serve" },
                { env = e, stdout = log, stderr = log }))
            local ok, err = pcall(function()
                local res
                assert.truthy(support.eventually(function()
                    res = httpc.request({ url = "http://127.0.0.1:" .. port
                                          .. "/readyz?verbose", timeout = 10 })
                    return res and res.status ~= 0
                end, 20, 0.1), "serve did not answer:\n"
                               .. (sys.read_file(log) or ""))
                assert.equal(503, res.status, res.body)
                local detail
                for _, c in ipairs(json.decode(res.body).checks) do
                    if c.name == "redis" then
                        assert.is_false(c.ok)
                        detail = c.detail
                    end
                end
                local good, missing = says_all(tostring(detail), case.says)
                assert(good, case.name .. ": /readyz does not say '"
                       .. tostring(missing) .. "': " .. tostring(detail))
                assert.truthy(support.eventually(function()
                    local text = sys.read_file(log) or ""
                    return text:find("redis.misconfigured", 1, true)
                           and says_all(text, case.says)
                end, 15), case.name .. ": no redis.misconfigured line:\n"
                          .. (sys.read_file(log) or ""))
            end)
            helpers.terminate(pid)
            assert(ok, err)
        end
        env:check_invariants(5)
    end)
end)
