-- Worker faults against the real stack, continued (reliability.md W3, W7):
-- real PostgreSQL, redis-server, `wtt serve` and `wtt worker` processes
-- on real clips, the invariant checker after every scenario.
--
-- W3: a slow but healthy worker (CPU starved by two `yes` processes,
-- every inference window stretched past the visibility timeout) keeps its
-- claim through heartbeats: never reaped, one attempt, one completion. The
-- negative twins are W1 and W2 (01-workers_spec.lua): a worker that stops
-- heartbeating is reaped.
--
-- W7: audio download faults. The worker reaches web through a fault proxy
-- (a second `wtt serve` with the throwaway routes below) that forwards
-- every request to the real web, except that GET /media/<name> follows a
-- plan: "500" answers 500, "stall" sends half the body and then nothing,
-- "truncate" sends half the body and drops the connection (the chunked
-- body never ends: curl reports a partial transfer), "ok" forwards.

local helpers = require "spec.helpers"
local support = require "spec.10-faults.support"
local json = require "wtt.json"
local sys = require "wtt.sys"

local VT = support.VT_MS / 1000

local PROXY_ROUTES = [=[
local http = require "wtt.http"
local httpc = require "wtt.httpc"
local sys = require "wtt.sys"
local DIR, REAL = os.getenv("FAULT_DIR"), os.getenv("FAULT_REAL_URL")

-- The next action of the plan for `name` (plan-<name>: comma-separated,
-- consumed one per request; "ok" once it is used up). Each request appends
-- its action to hits-<name>. Two threads may race on a plan file; the
-- worker downloads one file at a time, so they do not.
local function next_action(name)
    local plan = sys.read_file(DIR .. "/plan-" .. name) or ""
    local first, rest = plan:match("^([^,]+),?(.*)$")
    sys.write_file(DIR .. "/plan-" .. name, rest or "")
    local action = first or "ok"
    local f = io.open(DIR .. "/hits-" .. name, "a")
    f:write(action, "\n")
    f:close()
    return action
end

local function forward_headers(req)
    return { Authorization = req:header("authorization"),
             ["Idempotency-Key"] = req:header("idempotency-key") }
end

return {
    { "GET", "/livez", function() return 200, "ok" end },
    { "GET", "/media/:name", function(req)
        local name = req.params.name
        local action = next_action(name)
        if action == "500" then
            return 500, { error = "fault", detail = "planned 500" }
        end
        local res = assert(httpc.request({ url = REAL .. "/media/" .. name,
            headers = forward_headers(req), timeout = 10 }))
        if res.status ~= 200 or action == "ok" then
            return res.status, res.body,
                   { ["Content-Type"] = "application/octet-stream" }
        end
        local half, sent = res.body:sub(1, math.floor(#res.body / 2)), false
        return 200, http.stream(function()
            if not sent then
                sent = true
                return half
            end
            if action == "stall" then
                return false               -- nothing, ever: asked again
            end
            error("connection dropped on purpose (planned truncation)")
        end, { poll_ms = 100 }), { ["Content-Type"] = "audio/wav" }
    end },
    { "POST", "/transcribe/_result/:id/", function(req)
        local parts = { { name = "claim", value = req.form.claim } }
        for _, f in ipairs(req.files) do
            parts[#parts + 1] = { name = f.field, file = f.path,
                                  filename = f.filename,
                                  content_type = f.content_type }
        end
        local res = assert(httpc.request({ method = "POST",
            url = REAL .. "/transcribe/_result/" .. req.params.id .. "/",
            headers = forward_headers(req), multipart = parts,
            timeout = 10 }))
        return res.status, res.body, { ["Content-Type"] = "application/json" }
    end, { body = "form" } },
}
]=]


describe("worker faults, continued #redis #pg", function()
    local env, proxy, fault_dir

    setup(function()
        env = support.start()
        fault_dir = env.tmp .. "/faults"
        assert(os.execute("mkdir -p '" .. fault_dir .. "/routes'"))
        assert(sys.write_file(fault_dir .. "/routes/proxy.lua",
                              PROXY_ROUTES))
        proxy = helpers.serve({ routes = fault_dir .. "/routes", threads = 4,
                                env = { FAULT_DIR = fault_dir,
                                        FAULT_REAL_URL = env.url } })
    end)

    teardown(function()
        if proxy then
            proxy:stop()
        end
        if env then
            env:stop()
        end
    end)

    after_each(function()
        if env then
            env:kill_workers()
        end
    end)

    local function completed(h)
        return h.status == "completed"
    end

    -- Upload + generate with a download plan for the clip's media name.
    local function submit_planned(clip, plan)
        local id = env:upload(clip)
        local name = env:row(id).audio_path
        assert(sys.write_file(fault_dir .. "/plan-" .. name, plan))
        return id, env:generate(id), name
    end

    local function hits(name)
        local out = {}
        for line in (sys.read_file(fault_dir .. "/hits-" .. name) or "")
                    :gmatch("[^\n]+") do
            out[#out + 1] = line
        end
        return out
    end

    -- A worker that downloads through the proxy with short HTTP timeouts.
    local function proxied_worker(extra)
        local e = { WTT_WEB_URL = proxy.url, WTT_HTTP_TIMEOUT = "1.5",
                    WTT_HTTP_RETRIES = "3", WTT_HTTP_BACKOFF = "0.1",
                    WTT_HTTP_BACKOFF_MAX = "0.3" }
        for k, v in pairs(extra or {}) do
            e[k] = v
        end
        return env:worker(e)
    end


    it("W3: under CPU starvation a slow worker that heartbeats keeps its "
       .. "claim past the visibility timeout; one attempt, one result",
       function()
        local hogs = {}
        for i = 1, 2 do
            hogs[i] = assert(sys.spawn({ "yes" }, { stdout = "/dev/null" }))
        end
        local ok, err = pcall(function()
            local id, tid = env:submit("guitar_strum")
            -- every window sleeps past the visibility timeout
            local w = env:worker({ WTT_WORKER_TEST_WINDOW_SLEEP =
                                       tostring(VT * 1.2) })
            local first = env:wait_task(tid, support.running_on(w, 1), 30,
                                        "first window under load")
            local claims, states, polls = {}, {}, 0
            local h
            local t0 = sys.now()
            repeat
                h = env:task(tid)
                claims[h.claim or "?"] = true
                states[h.status or "?"] = true
                polls = polls + 1
                sys.sleep(0.05)
            until h.status == "completed" or h.status == "failed"
                  or sys.now() - t0 > 60
            local held = sys.now() - t0
            assert.equal("completed", h.status, json.encode(h) .. env:logs())
            -- the run was long enough to matter: several timeouts long
            assert.is_true(held > 2 * VT, ("held %.1f s"):format(held))
            assert.same({ [first.claim] = true }, claims)
            assert.is_nil(states.pending, "went back to pending")
            assert.equal("1", h.attempts)
            assert.equal(first.claim, h.claim)
            assert.is_nil(h.error)
            assert.equal(1, w:await("task.completed id=" .. tid), w:text())
            assert.equal(0, w:count("task.lost"))
            assert.equal(0, w:count("worker.heartbeat_stale"))
            local row = env:wait_row(id, "completed")
            assert.equal(1, #env:media_files("mid"))
            assert.equal(row.midi_path, env:media_files("mid")[1])
            print(("\nW3: %d polls over %.1f s under load, one claim")
                  :format(polls, held))
            w:signal("TERM")
            assert.same({ "exited", 0 }, { w:wait(10) })
        end)
        for _, pid in ipairs(hogs) do
            sys.kill(pid, "KILL")
            sys.wait(pid, 5)
        end
        assert(ok, err)
        env:check_invariants(5)
    end)


    it("a worker whose claim went stale runs the same task again under "
       .. "its next claim (the stale mark names the claim, not the task)",
       function()
        local id, tid = env:submit("guitar_fast_run")
        local w = env:worker({ WTT_WORKER_TEST_WINDOW_SLEEP = "0.5" })
        local h1 = env:wait_task(tid, support.running_on(w, 1), 30,
                                 "first window")
        -- Taken back behind the worker's back (as the reaper or a rebuild
        -- after a Redis loss would): its claim is stale now, and it is the
        -- only worker, so the next claim of the same task is its own.
        local q = require("wtt.queue").new(env.r, { prefix = env.prefix })
        assert(q:release(tid, h1.claim))
        local h = env:wait_task(tid, completed, 30, "completion of the rerun")
        assert.is_true(tonumber(h.claim) > tonumber(h1.claim) + 1)
        assert.equal(1, w:await("task.lost"), w:text())
        assert.equal(1, w:await("task.completed id=" .. tid), w:text())
        assert.equal(0, w:count("task.failed"), w:text())
        env:wait_row(id, "completed")
        env:check_invariants(5)
        w:signal("TERM")
        assert.same({ "exited", 0 }, { w:wait(10) })
    end)


    it("W7: 500 twice, a stalled body, a truncated body -> retried with "
       .. "backoff, each task completes at its first attempt", function()
        local jobs = {}
        for _, plan in ipairs({ "500,500", "stall", "truncate" }) do
            local id, tid, name = submit_planned("guitar_nylon_single", plan)
            jobs[#jobs + 1] = { id = id, tid = tid, name = name, plan = plan }
        end
        local w = proxied_worker()
        for _, j in ipairs(jobs) do
            local h = env:wait_task(j.tid, completed, 30, "completion of "
                                    .. j.plan)
            assert.equal("1", h.attempts, j.plan)
            env:wait_row(j.id, "completed")
        end
        -- each download went as planned, then once more and succeeded
        assert.same({ "500", "500", "ok" }, hits(jobs[1].name))
        assert.same({ "stall", "ok" }, hits(jobs[2].name))
        assert.same({ "truncate", "ok" }, hits(jobs[3].name))
        assert.equal(4, w:count("task.download_retry"), w:text())
        assert.equal(2, w:count("HTTP 500"), w:text())
        assert.equal(3, w:count("task.completed"), w:text())
        assert.equal(0, w:count("task.failed"), w:text())
        -- the stall ended by the timeout, the truncation was noticed
        local text = w:text()
        assert.truthy(text:find("timeout", 1, true), text)
        env:check_invariants(5)
        w:signal("TERM")
        assert.same({ "exited", 0 }, { w:wait(10) })
    end)


    it("W7: a download that always breaks fails the task cleanly after "
       .. "max attempts (no hang, a reason); a body over the size cap fails "
       .. "at once", function()
        local plan = {}
        for i = 1, 9 do                 -- 3 claims x 3 downloads
            plan[i] = i % 2 == 0 and "stall" or "truncate"
        end
        local id, tid, name = submit_planned("guitar_steel_single",
                                             table.concat(plan, ","))
        local w = proxied_worker()
        local h = env:wait_task(tid, function(x)
            return x.status == "failed"
        end, 60, "dead letter")
        assert.equal("3", h.attempts)
        assert.same(plan, hits(name))
        local row = env:wait_row(id, "failed")
        assert.matches("download failed", row.error_message)
        assert.equal(3, w:count("task.failed"), w:text())
        assert.equal(0, w:count("task.completed"))
        assert.is_nil((w:wait(0)), "worker died:\n" .. w:text())
        env:check_invariants(5)
        w:signal("TERM")
        assert.same({ "exited", 0 }, { w:wait(10) })

        -- The size cap: straight from web, no retry, not retryable.
        local big_id, big_tid = env:submit("bass_line")
        local capped = env:worker({ WTT_MAX_DOWNLOAD = "10000" })
        h = env:wait_task(big_tid, function(x)
            return x.status == "failed"
        end, 30, "too large")
        assert.equal("1", h.attempts)
        assert.matches("larger than", env:wait_row(big_id, "failed")
                                          .error_message)
        assert.equal(0, capped:count("task.download_retry"))
        assert.matches("retryable=false", capped:text(), 1, true)
        env:check_invariants(5)
        capped:signal("TERM")
        assert.same({ "exited", 0 }, { capped:wait(10) })
    end)
end)
