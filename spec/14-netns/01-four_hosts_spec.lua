-- The four services on four network hosts (docs/reliability.md, "Four
-- hosts"): web (`wtt serve`), a worker (`wtt worker`), redis-server and
-- PostgreSQL each run in their own network namespace, joined by veth pairs
-- to a bridge, with the configuration an operator writes: REDIS_URL,
-- DATABASE_URL and WTT_WEB_URL name the hosts' addresses, Redis requires a
-- password, PostgreSQL takes scram-sha-256 logins from the subnet only.
--
-- Unlike every other spec (servers on 127.0.0.1), the servers here listen
-- on private addresses of a random 10.A.B.0/24 that exists on this machine
-- only: the namespaces, veth pairs and bridge are made by
-- spec/support/netns.lua and deleted in teardown, also after a failure.
-- The spec process itself stays in the root namespace and reaches every
-- host through the bridge (10.A.B.1). Needs root (CAP_NET_ADMIN and
-- CAP_SYS_ADMIN); without it every test reports "skipped, because ...".
--
-- The scenarios, each followed by the invariant checker
-- (spec/support/invariants.lua): the end-to-end flow; the worker's link cut
-- mid-task and restored; web partitioned from Redis (/readyz 503, /healthz
-- 200, recovery); and a batch of tasks with latency and loss on the
-- worker's link (tc netem; where the kernel has no netem, the same delay,
-- jitter and loss through spec/support/netwire.py, a user-space wire of
-- two TAP devices), then the same batch without, printing the end-to-end
-- times and what was retried. Timeouts are those of
-- spec/support/faults.lua: a visibility timeout of 1.5 s, worker heartbeats
-- and reaps every 0.2 s, web's reaper every second.

local netns = require "spec.support.netns"
local support = require "spec.support.faults"
local core_redis = require "wtt.core.redis"
local json = require "wtt.json"
local midi = require "wtt.midi"
local sys = require "wtt.sys"

local WHY = netns.unavailable()

-- The clips of the batch scenario (a few seconds of audio each).
local BATCH = { "guitar_nylon_single", "guitar_steel_single", "guitar_strum",
                "guitar_fast_run", "piano_chords", "bass_line" }

describe("four services on four network hosts #netns #redis #pg", function()
    if WHY then
        it("run in separate network namespaces", function()
            pending("skipped, because " .. WHY)
        end)
        return
    end

    local net, env
    local secret = ("%08x%08x"):format(math.random(0, 0x7fffffff),
                                       sys.getpid())

    local function in_ns(name)
        return function(argv)
            return net:argv(name, argv)
        end
    end

    setup(function()
        net = netns.create({ "web", "redis", "pg", "worker" })
        local ok, err = pcall(function()
            env = support.start({
                web = { host = net.hosts.web.addr, wrap = in_ns("web") },
                redis = { host = net.hosts.redis.addr, password = secret,
                          wrap = in_ns("redis") },
                pg = { host = net.hosts.pg.addr, password = secret,
                       hba = { "host all all " .. net.subnet
                               .. " scram-sha-256" },
                       wrap = in_ns("pg") },
            })
        end)
        if not ok then
            net:destroy()
            net = nil
            error(err, 0)
        end
    end)

    teardown(function()
        -- every process first: a namespace with a process left in it
        -- outlives its name
        local ok, err = true, nil
        if env then
            ok, err = pcall(env.stop, env)
        end
        local left = net and net:destroy() or {}
        assert(ok, err)
        assert.same({}, left)
    end)

    after_each(function()
        if env then
            env:kill_workers()
        end
    end)

    local function completed(h)
        return h.status == "completed"
    end

    local function worker(extra)
        local w = env:worker(extra, nil, in_ns("worker"))
        assert.equal(1, w:await("worker.started", 1, 60), w:text())
        return w
    end

    local function stop_worker(w)
        w:signal("TERM")
        assert.same({ "exited", 0 }, { w:wait(30) }, w:text())
    end

    -- TCP connections established inside host `name` (ss), as
    -- "local -> peer" lines.
    local function connections(name)
        local ok, out = net:exec(name, { "ss", "-Htn", "state",
                                         "established" })
        assert(ok, out)
        local conns = {}
        for line in out:gmatch("[^\n]+") do
            local l, p = line:match("(%S+)%s+(%S+)%s*$")
            if l then
                conns[#conns + 1] = l .. " -> " .. p
            end
        end
        return conns
    end

    local function has_conn(conns, from, to)
        for _, c in ipairs(conns) do
            if c:find(from .. ":", 1, true) == 1
               and c:find(" -> " .. to, 1, true) then
                return true
            end
        end
        return false
    end

    local function midi_served(id, n)
        local res = assert(env:http("GET", "/transcribe/midi/" .. id .. "/"))
        assert.equal(200, res.status, res.body)
        local doc = assert(midi.decode(res.body))
        assert.equal(n, #doc.notes)
    end


    it("upload through web, the worker claims, downloads, transcribes and "
       .. "posts across the network; the MIDI is served", function()
        local H = net.hosts
        -- The servers listen on their hosts' addresses only.
        local c = core_redis.connect("127.0.0.1", env.rsrv.port,
                                     { connect_timeout = 1 })
        assert.is_nil(c, "redis-server answers on 127.0.0.1")
        assert.matches("^redis://:[^@]+@" .. H.redis.addr:gsub("%.", "%%.")
                       .. ":%d+/0$", env.rsrv.url)
        assert.matches("@" .. H.pg.addr:gsub("%.", "%%.") .. ":",
                       env.pgsrv.url)

        local w = worker({ WTT_WORKER_TEST_WINDOW_SLEEP = "0.3" })
        local id, tid = env:submit("guitar_nylon_single")
        env:wait_task(tid, support.running_on(w, 1), 60, "first progress")
        -- While it runs: the worker is connected to Redis and web, web to
        -- Redis and PostgreSQL, each from its own address.
        local rport = ":" .. env.rsrv.port
        local wc = connections("worker")
        assert.is_true(has_conn(wc, H.worker.addr, H.redis.addr .. rport),
                       table.concat(wc, "\n"))
        local webc = connections("web")
        assert.is_true(has_conn(webc, H.web.addr, H.redis.addr .. rport),
                       table.concat(webc, "\n"))
        assert.is_true(has_conn(webc, H.web.addr, H.pg.addr .. ":"
                                                  .. env.pgsrv.port),
                       table.concat(webc, "\n"))

        local h = env:wait_task(tid, completed, 60, "completion")
        assert.equal("1", h.attempts)
        local row = env:wait_row(id, "completed")
        midi_served(id, row.note_count)
        assert.equal(1, w:await("task.completed id=" .. tid), w:text())
        env:check_invariants(10)
        stop_worker(w)
    end)


    it("the worker's link cut mid-task and restored: the task completes "
       .. "exactly once", function()
        local w = worker({ WTT_WORKER_TEST_WINDOW_SLEEP = "0.6" })
        local id, tid = env:submit("guitar_steel_single")
        local h1 = env:wait_task(tid, support.running_on(w, 1), 60,
                                 "first progress")
        local up = false
        finally(function()
            if not up then
                net:link("worker", "up")
            end
        end)
        net:link("worker", "down")
        local cut_at = sys.now()
        -- No heartbeat crosses the cut: the claim expires (1.5 s) and
        -- web's reaper (every second) puts the task back.
        local h2 = env:wait_task(tid, function(h)
            return h.status == "pending"
        end, 15, "the expired claim reaped while the worker is cut off")
        local reaped_after = sys.now() - cut_at
        -- One more reaper period, then the link comes back.
        sys.sleep(1)
        local held = sys.now() - cut_at
        net:link("worker", "up")
        up = true

        local h = env:wait_task(tid, completed, 90,
                                "completion after the link came back")
        local row = env:wait_row(id, "completed")
        midi_served(id, row.note_count)
        assert.is_true(tonumber(h.claim) > tonumber(h1.claim))
        assert.equal("2", h.attempts)
        assert.equal(1, w:await("task.completed id=" .. tid), w:text())
        env:check_invariants(10)
        print(("\nlink cut: held %.1f s, reaped by web %.1f s after the "
               .. "cut (status %s, attempts %s); afterwards the worker "
               .. "logged task.lost x%d, task.claimed x%d, "
               .. "download/upload retries x%d/x%d, task.completed x%d; "
               .. "the task completed once, attempt %s")
              :format(held, reaped_after, h2.status, h2.attempts,
                      w:count("task.lost"), w:count("task.claimed"),
                      w:count("task.download_retry"),
                      w:count("task.upload_retry"),
                      w:count("task.completed"), h.attempts))
        stop_worker(w)
    end)


    it("web partitioned from Redis: /readyz answers 503 and recovers, "
       .. "/healthz stays 200", function()
        local res = assert(env:http("GET", "/readyz"))
        assert.equal(200, res.status, res.body)
        local healed = false
        finally(function()
            if not healed then
                net:blackhole("web", net.hosts.redis.addr, true)
            end
        end)
        net:blackhole("web", net.hosts.redis.addr)
        local cut_at = sys.now()
        -- web's Redis client gives up after its 5 s timeout
        local down = support.eventually(function()
            local r = env:http("GET", "/readyz?verbose", { timeout = 20 })
            return r and r.status == 503 and r
        end, 40, 0.2)
        assert.truthy(down, "/readyz never failed" .. env:logs())
        local failed_after = sys.now() - cut_at
        local checks = {}
        for _, ch in ipairs(down.json.checks) do
            checks[ch.name] = ch
        end
        assert.is_false(checks.redis.ok)
        assert.is_true(checks.database.ok)
        for _ = 1, 3 do
            res = assert(env:http("GET", "/healthz"))
            assert.equal(200, res.status, res.body)
        end

        net:blackhole("web", net.hosts.redis.addr, true)
        healed = true
        local healed_at = sys.now()
        assert.truthy(support.eventually(function()
            local r = env:http("GET", "/readyz", { timeout = 20 })
            return r and r.status == 200
        end, 40, 0.2), "/readyz did not recover" .. env:logs())
        local recovered_after = sys.now() - healed_at
        -- And the whole path works again.
        local w = worker()
        local id, tid = env:submit("guitar_strum")
        env:wait_task(tid, completed, 60, "completion after healing")
        env:wait_row(id, "completed")
        env:check_invariants(10)
        print(("\npartition web-redis: /readyz 503 after %.1f s (%s), "
               .. "200 again %.1f s after healing; /healthz 200 throughout")
              :format(failed_after, tostring(checks.redis.detail),
                      recovered_after))
        stop_worker(w)
    end)


    it("a batch with latency and loss on the worker's link, then the same "
       .. "batch without", function()
        local w

        -- p-th percentile, nearest rank
        local function pct(xs, p)
            local s = {}
            for i, x in ipairs(xs) do s[i] = x end
            table.sort(s)
            return s[math.max(1, math.ceil(p / 100 * #s))]
        end

        -- Uploads and generates every clip of BATCH at once on a fresh
        -- worker; returns the end-to-end seconds (upload started -> hash
        -- completed) per task, the batch's wall time, and what was
        -- retried: attempts beyond the first (reaped or failed claims),
        -- and the worker's download/upload retries, lost claims, errors.
        local function batch()
            w = worker()
            local t0, tids, ids = {}, {}, {}
            local started = sys.now()
            for i, clip in ipairs(BATCH) do
                t0[i] = sys.now()
                ids[i], tids[i] = env:submit(clip)
            end
            local e2e, extra, left = {}, 0, #BATCH
            local deadline = sys.now() + 240
            while left > 0 and sys.now() < deadline do
                for i, tid in ipairs(tids) do
                    if not e2e[i] then
                        local h = env:task(tid)
                        if h.status == "completed" then
                            e2e[i] = sys.now() - t0[i]
                            extra = extra + tonumber(h.attempts) - 1
                            left = left - 1
                        end
                        assert.are_not.equal("failed", h.status,
                                             json.encode(h) .. w:text())
                    end
                end
                sys.sleep(0.05)
            end
            assert.equal(0, left, "tasks not completed in 240 s"
                                  .. env:logs())
            local wall = sys.now() - started
            for _, id in ipairs(ids) do
                env:wait_row(id, "completed", 20)
            end
            local out = { e2e = e2e, wall = wall, extra = extra,
                          dl = w:count("task.download_retry"),
                          ul = w:count("task.upload_retry"),
                          lost = w:count("task.lost"),
                          err = w:count("task.error") }
            stop_worker(w)
            env:check_invariants(10)
            return out
        end

        -- netem where the kernel has it, else the same figures through
        -- the user-space wire
        local delay, jitter, loss = 100, 20, 2
        local how, stats, fallback
        local ok, err = net:qdisc("worker", { "netem", "delay",
            delay .. "ms", jitter .. "ms", "loss", loss .. "%" })
        if ok then
            how = "tc netem"
        else
            fallback = err:match("Error: ([^\n]*)") or err
            how = "spec/support/netwire.py"
            local wired, werr = pcall(net.wire, net, "worker", delay, jitter,
                                      loss)
            if not wired then
                pending("skipped, because tc netem fails here (" .. fallback
                        .. ") and so does its user-space stand-in: "
                        .. tostring(werr))
                return
            end
        end
        local cleared = false
        finally(function()
            if not cleared then
                if fallback then
                    net:unwire("worker")
                else
                    net:clear_qdisc("worker")
                end
            end
        end)
        local slow = batch()
        if fallback then
            stats = net:unwire("worker")
        else
            stats = net:qdisc_stats("worker")
            net:clear_qdisc("worker")
        end
        cleared = true
        local fast = batch()

        local function line(label, b)
            return ("  %-13s %d tasks in %5.1f s: median %5.2f s, p99 "
                    .. "%5.2f s; attempts beyond the first %d, worker "
                    .. "download retries %d, upload retries %d, lost "
                    .. "claims %d, task errors %d")
                :format(label, #b.e2e, b.wall, pct(b.e2e, 50),
                        pct(b.e2e, 99), b.extra, b.dl, b.ul, b.lost, b.err)
        end
        print("\nbatch on the worker's link, end-to-end (upload -> "
              .. "completed), one worker, p99 by nearest rank:")
        if fallback then
            print("  (no netem here: tc says \"" .. fallback .. "\"; the "
                  .. "kernel lacks CONFIG_NET_SCH_NETEM, so the worker's "
                  .. "veth pair is swapped for spec/support/netwire.py, a "
                  .. "user-space wire with the same delay, jitter and loss)")
        end
        print(("  impaired by %s: delay %d ms +- %d ms, loss %d%%, each "
               .. "way"):format(how, delay, jitter, loss))
        for l in stats:gmatch("[^\n]+") do
            if l ~= "ready" then
                print("    " .. l)
            end
        end
        print(line("impaired", slow))
        print(line("no impairment", fast))
    end)
end)
