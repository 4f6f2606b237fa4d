-- A rolling restart of two web replicas under load gives zero failed
-- requests (docs/operations.md, "Rolling restart").
--
-- Real parts only: PostgreSQL, redis-server, two `wtt serve` replicas on
-- loopback ports sharing one Redis, one database and one media store,
-- HAProxy in front of them running docker/haproxy/haproxy.cfg exactly as
-- shipped (its addresses come from the environment), and a `wtt worker`
-- that reaches web through HAProxy too. A load process
-- (spec/support/load_client.lua) uploads, generates, polls statuses,
-- downloads MIDI files and checks health through HAProxy while the spec
-- restarts replica A (SIGTERM, wait for exit 0, start again, wait until
-- HAProxy has it UP), then replica B. An event stream open on each replica
-- (through HAProxy) must end cleanly when its replica stops, and the
-- reconnect be served.
--
-- The media store: PostgreSQL large objects (WTT_MEDIA_STORE=pg), what
-- two replicas on two hosts need (docs/operations.md, "The shared media
-- store"). `WTT_MEDIA_STORE=dir wtt spec ...` runs the same restart with
-- the replicas sharing one WTT_MEDIA_DIR instead.

local helpers = require "spec.support.server"
local pgh = require "spec.support.pg"
local spec_redis = require "spec.support.spec_redis"
local real_stack = require "spec.support.real_stack"
local service = require "spec.support.service"
local inv = require "spec.support.invariants"
local httpc = require "wtt.http_client"
local json = require "wtt.json"
local load_results = require "spec.support.load_results"
local pg = require "wtt.pg"
local sys = require "wtt.sys"
local runtime = require "wtt.runtime"

local ROOT = runtime.source_dir
local CFG = ROOT .. "/docker/haproxy/haproxy.cfg"
local LOAD = ROOT .. "/spec/support/load_client.lua"
-- wtt's default, above what the shipped checks need to take a replica out
-- of rotation (inter 1 s x fall 2 + timeout check 1 s); set here because
-- `wtt spec` runs servers with no drain unless a spec asks.
local DRAIN_S = "5"
-- One redis-server, or a cluster under WTT_SPEC_REDIS=cluster (then the
-- queue's keys carry a hash tag: spec/support/spec_redis.lua).
local PREFIX = real_stack.PREFIX
local KEY_PREFIX = PREFIX ~= "" and PREFIX or false
local MEDIA_STORE = os.getenv("WTT_MEDIA_STORE") or "pg"
local CLIENTS = 3


local function sh(cmd)
    local p = assert(io.popen("(" .. cmd .. ") 2>&1; echo \"rc=$?\""))
    local out = p:read("*a")
    p:close()
    local rc = tonumber(out:match("rc=(%d+)%s*$"))
    return rc, out:gsub("rc=%d+%s*$", "")
end


local function need(tool)
    assert(sh("command -v " .. tool) == 0, tool .. " is missing: "
           .. "scripts/bootstrap --only test installs the Debian package "
           .. "haproxy")
end


-- The environment that fills in the shipped configuration's addresses.
local function lb_env(ports)
    return {
        WTT_LB_BIND = "127.0.0.1:" .. ports.lb,
        WTT_LB_STATS = "127.0.0.1:" .. ports.stats,
        WTT_WEB1 = "127.0.0.1:" .. ports.web[1],
        WTT_WEB2 = "127.0.0.1:" .. ports.web[2],
    }
end


describe("haproxy.cfg", function()
    it("passes haproxy -c as shipped", function()
        need("haproxy")
        local env = lb_env({ lb = 18008, stats = 18404,
                             web = { 18001, 18002 } })
        local vars = {}
        for k, v in pairs(env) do
            vars[#vars + 1] = k .. "=" .. v
        end
        local rc, out = sh("env " .. table.concat(vars, " ")
                           .. " haproxy -c -f '" .. CFG .. "'")
        assert(rc == 0, out)
        assert.matches("Configuration file is valid", out)
    end)
end)


describe("rolling restart behind HAProxy #redis #pg", function()
    local tmp, pgs, redis, ports, lb_url, stats_url
    local replicas, haproxy_pid, worker_pid = {}, nil, nil
    local media, serve_env

    local function start_replica(i)
        local srv = helpers.serve({ routes = ROOT .. "/routes",
                                    port = ports.web[i], env = serve_env })
        assert(helpers.eventually(function()
            local res = srv:request("GET", "/readyz")
            return res and res.status == 200
        end, 20), "replica " .. i .. " not ready:\n" .. srv:log_text())
        replicas[i] = srv
        return srv
    end

    -- HAProxy's view of the servers: { web1 = "UP", ... } and the
    -- backend's row (retries, redispatches).
    local function lb_stats()
        local res = httpc.request({ url = stats_url, timeout = 5 })
        if not res or res.status ~= 200 then
            return nil
        end
        local lines = {}
        for line in res.body:gmatch("[^\n]+") do
            lines[#lines + 1] = line
        end
        local cols = {}
        local i = 0
        for name in lines[1]:gsub("^# ", ""):gmatch("([^,]*),") do
            i = i + 1
            cols[name] = i
        end
        local state, backend = {}, nil
        for n = 2, #lines do
            local f = {}
            for v in (lines[n] .. ","):gmatch("([^,]*),") do
                f[#f + 1] = v
            end
            if f[1] == "web" then
                if f[2] == "BACKEND" then
                    backend = { retries = tonumber(f[cols.wretr]) or 0,
                                redispatches = tonumber(f[cols.wredis]) or 0 }
                else
                    state[f[2]] = f[cols.status]
                end
            end
        end
        return state, backend
    end

    local function wait_lb(server, want)
        return helpers.eventually(function()
            local state = lb_stats()
            return state and state[server] == want
        end, 30)
    end

    local function logs()
        local out = {}
        for i, srv in pairs(replicas) do
            out[#out + 1] = "\n--- replica " .. i .. " ---\n" .. srv:log_text()
        end
        out[#out + 1] = "\n--- haproxy ---\n"
                        .. (sys.read_file(tmp .. "/haproxy.log") or "")
        out[#out + 1] = "\n--- worker ---\n"
                        .. (sys.read_file(tmp .. "/worker.log") or "")
        return table.concat(out)
    end

    -- The process that answered: the first 8 hex digits of the request
    -- id are its own (docs/http.md).
    local function process_of(res_id)
        return res_id and res_id:sub(1, 8)
    end

    local function replica_process(i)
        local res = assert(replicas[i]:request("GET", "/livez"))
        return process_of(res.headers["x-request-id"])
    end

    -- An event stream through HAProxy, read by hand so its end shows:
    -- { conn, process, raw }.
    local function open_stream(id)
        local conn = assert(sys.tcp_connect("127.0.0.1", ports.lb))
        assert(conn:send("GET /transcribe/events/" .. id .. "/ HTTP/1.1\r\n"
                         .. "Host: lb\r\nAccept: text/event-stream\r\n\r\n"))
        local raw = ""
        assert(helpers.eventually(function()
            raw = raw .. (conn:recv(65536, 0.1) or "")
            return raw:find("\r\n\r\n", 1, true)
        end, 10), "no answer to the event stream: " .. raw)
        assert.equal(200, helpers.status_of(raw), raw)
        local rid = raw:match("\r\n[Xx]%-[Rr]equest%-[Ii]d: (%x+)")
        return { conn = conn, raw = raw, process = process_of(rid) }
    end

    setup(function()
        need("haproxy")
        tmp = assert(sys.mkdtemp("wtt-rolling-"))
        media = tmp .. "/media"
        assert(os.execute("mkdir -p '" .. media .. "'"))
        pgs = pgh.start()
        redis = spec_redis.start({ args = { "--maxmemory-policy",
                                            "noeviction" } })
        local code, out = real_stack.wtt({ "migrate" },
            { DATABASE_URL = pgs.url }, tmp .. "/migrate.log")
        assert(code == 0, "wtt migrate failed:\n" .. out)
        ports = { lb = assert(sys.free_port()), stats = assert(sys.free_port()),
                  web = { assert(sys.free_port()), assert(sys.free_port()) } }
        lb_url = "http://127.0.0.1:" .. ports.lb
        stats_url = "http://127.0.0.1:" .. ports.stats .. "/stats;csv"
        serve_env = {
            DATABASE_URL = pgs.url, REDIS_URL = redis.url,
            WTT_MEDIA_DIR = media, WTT_WORKER_TOKEN = real_stack.TOKEN,
            WTT_SUBSCRIBER_TICK_S = "0.2", WTT_KEY_PREFIX = KEY_PREFIX,
            WTT_DRAIN_S = DRAIN_S,
            WTT_MEDIA_STORE = MEDIA_STORE ~= "dir" and MEDIA_STORE or false,
        }
        start_replica(1)
        start_replica(2)
        local log = tmp .. "/haproxy.log"
        haproxy_pid = assert(sys.spawn({ "haproxy", "-db", "-f", CFG },
            { env = lb_env(ports), stdout = log, stderr = log }))
        assert(wait_lb("web1", "UP") and wait_lb("web2", "UP"),
               "HAProxy never saw both replicas UP" .. logs())
        local wlog = tmp .. "/worker.log"
        worker_pid = assert(sys.spawn({ runtime.exe, "worker" }, {
            env = { REDIS_URL = redis.url, WTT_WEB_URL = lb_url,
                    WTT_WORKER_TOKEN = real_stack.TOKEN, WTT_DEVICE = "cpu",
                    WTT_POLL_INTERVAL = "0.5", DATABASE_URL = false,
                    WTT_KEY_PREFIX = KEY_PREFIX },
            stdout = wlog, stderr = wlog }))
    end)

    teardown(function()
        if worker_pid then
            helpers.terminate(worker_pid, 30)
        end
        if haproxy_pid then
            helpers.terminate(haproxy_pid)
        end
        for _, srv in pairs(replicas) do
            srv:stop()
        end
        if redis then redis:stop() end
        if pgs then pgs:stop() end
        if tmp then sys.rmtree(tmp) end
    end)

    it("restarts A then B under load with zero failed requests, and every "
       .. "task completes exactly once", function()
        local wav = tmp .. "/clip.wav"
        assert(sys.write_file(wav, service.wav(1.0)))
        local stop = tmp .. "/stop-load"
        local outs = {}
        for i = 1, CLIENTS do
            outs[i] = tmp .. "/load-" .. i .. ".json"
        end
        local job = tmp .. "/load.json"
        assert(sys.write_file(job, json.encode({
            url = lb_url, wav = wav, stop = stop, threads = outs,
            upload_every_s = 1.0, max_uploads = 40, finish_s = 120,
            deadline_s = 300 })))
        local llog = tmp .. "/load.log"
        local load_pid = assert(sys.spawn({ runtime.exe, "run", LOAD, job },
                                          { stdout = llog, stderr = llog }))

        -- An upload followed by event streams (one on each replica), as
        -- the web page does; generated only once both replicas restarted,
        -- so the streams stay open until their replica stops.
        local up = assert(httpc.request({
            url = lb_url .. "/transcribe/upload/", method = "POST",
            timeout = 30,
            multipart = { { name = "file", file = wav, filename = "sse.wav",
                            content_type = "audio/wav" } } }))
        assert.equal(201, up.status, up.body)
        local sse_id = json.decode(up.body).audio_midi_id
        local want = { [replica_process(1)] = 1, [replica_process(2)] = 2 }
        local streams = {}
        for _ = 1, 20 do
            local st = open_stream(sse_id)
            local i = want[st.process]
            if i and not streams[i] then
                streams[i] = st
            else
                st.conn:close()
            end
            if streams[1] and streams[2] then
                break
            end
        end
        assert(streams[1] and streams[2], "no event stream on each replica")

        -- Load first, then the rolling restart: A, then B, each only once
        -- the other is back in rotation.
        sys.sleep(2)
        local restarts = {}
        for i, name in ipairs({ "web1", "web2" }) do
            local old = replicas[i]
            local t0 = sys.now()
            sys.kill(old.pid, "TERM")
            local how, code = sys.wait(old.pid, 60)
            old.stopped = true
            local text = old:log_text()
            assert(how == "exited" and code == 0,
                   ("replica %d ended %s %s after SIGTERM:\n%s"):format(
                       i, tostring(how), tostring(code), text))
            assert.truthy(text:find("event=http.drained unfinished=0", 1,
                                    true), text)
            -- The drain, not a refused connection, took it out of rotation:
            -- HAProxy saw /readyz answer 503 while the replica still
            -- accepted (a replica that stopped accepting first would be
            -- DOWN for a "Layer4 connection problem", later).
            local down = (sys.read_file(tmp .. "/haproxy.log") or "")
                :match("Server web/" .. name .. " is DOWN[^\n]*")
            assert.truthy(down, name .. " was never DOWN in HAProxy" .. logs())
            assert.truthy(down:find("Layer7 wrong status, code: 503", 1, true),
                          down)
            local stopped_s = sys.now() - t0
            -- Its event stream ended with the last chunk (through
            -- HAProxy), and the reconnect an EventSource makes is served.
            local st = streams[i]
            assert(helpers.eventually(function()
                st.raw = st.raw .. (st.conn:recv(65536, 0.1) or "")
                return st.raw:find("\r\n0\r\n\r\n$")
            end, 10), "the event stream of replica " .. i .. " did not end "
                      .. "cleanly: " .. st.raw:sub(-80))
            st.conn:close()
            local again = open_stream(sse_id)
            again.conn:close()
            sys.rmtree(old.dir)
            replicas[i] = nil
            start_replica(i)
            assert(wait_lb(name, "UP"), name .. " not back UP" .. logs())
            restarts[#restarts + 1] = ("%s stopped in %.1f s, back UP "
                .. "after %.1f s"):format(name, stopped_s, sys.now() - t0)
            sys.sleep(1)
        end
        sys.sleep(2)
        local g = assert(httpc.request({
            url = lb_url .. "/transcribe/generate/", method = "POST",
            timeout = 30,
            headers = { ["Content-Type"] = "application/json" },
            body = json.encode({ audio_midi_id = sse_id, options = {} }) }))
        assert.equal(202, g.status, g.body)
        assert(sys.write_file(stop, "stop"))
        local how, code = sys.wait(load_pid, 420)
        if not how then
            sys.kill(load_pid, "KILL")
            sys.wait(load_pid, 5)
        end
        assert(how == "exited" and code == 0, "the load process failed:\n"
               .. (sys.read_file(llog) or "") .. logs())

        -- Zero failed requests.
        local counts, failures, tasks = load_results.collect(outs)
        local total, keys = 0, {}
        for k, n in pairs(counts) do
            total = total + n
            keys[#keys + 1] = k .. "=" .. n
        end
        table.sort(keys)
        local _, backend = lb_stats()
        backend = backend or {}
        io.write(("\nrolling restart: %d requests through HAProxy (%s), "
                  .. "%d failed; %d tasks; HAProxy retries %s, "
                  .. "redispatches %s; %s\n"):format(
            total, table.concat(keys, " "), #failures, #tasks,
            tostring(backend.retries), tostring(backend.redispatches),
            table.concat(restarts, "; ")))
        assert.equal(0, #failures, table.concat(failures, "\n") .. logs())
        assert.is_true(#tasks >= 10, "too little load: " .. #tasks)
        assert.is_true((counts["upload 201"] or 0) == #tasks)

        -- Every uploaded task completed, exactly once: one claim each (no
        -- worker request failed either, or it would have been retried),
        -- and the queue and the rows agree (spec/support/invariants.lua).
        local r = assert(redis:client())
        local db = assert(pg.connect(pgs.url))
        for _, t in ipairs(tasks) do
            assert.equal("completed", t.status, json.encode(t) .. logs())
            local h = assert(r:call("HGET", PREFIX .. "task:" .. t.task_id,
                                    "attempts"))
            assert.equal("1", h, "task " .. t.task_id .. " was claimed "
                         .. tostring(h) .. " times" .. logs())
        end
        -- The load's tasks and the one the event streams followed.
        assert(helpers.eventually(function()
            local res = httpc.request({ timeout = 5,
                url = lb_url .. "/transcribe/status/" .. sse_id .. "/" })
            return res and res.status == 200
                   and json.decode(res.body).status == "completed"
        end, 60), "the streamed upload's task did not complete" .. logs())
        local rows = assert(db:read(
            "SELECT count(*) AS n FROM audio_midi WHERE status = 'completed'"))
        assert.equal(#tasks + 1, tonumber(rows[1].n))
        inv.check({ r = r, prefix = PREFIX, db = db, url = lb_url,
                    timeout = 20,
                    media = MEDIA_STORE == "dir" and media or nil,
                    media_store = MEDIA_STORE })
        r:close()
        db:close()
    end)
end)
