-- Worker faults against the real stack, continued (docs/reliability.md W3,
-- W7): real PostgreSQL, redis-server, `wtt serve` and `wtt worker` processes
-- on real clips, the invariant checker after every scenario.
--
-- W3: a slow but healthy worker (CPU starved by two `yes` processes,
-- every inference window stretched past the visibility timeout) keeps its
-- claim through heartbeats: never reaped, one attempt, one completion. The
-- negative twins are W1 and W2 (01-worker_crash_spec.lua): a worker that stops
-- heartbeating is reaped.
--
-- W7: audio download faults. The worker reaches web through a fault proxy
-- (below) that forwards every request to the real web, except that GET
-- /media/<name> follows a plan: "500" answers 500, "stall" announces the
-- whole length, sends half the body and then nothing, "truncate" sends
-- half and closes the connection, "ok" forwards.

local support = require "spec.support.faults"
local json = require "wtt.json"
local sys = require "wtt.sys"

local VT = support.VT_MS / 1000

-- The fault proxy (python3, installed by scripts/bootstrap for the specs):
-- a raw HTTP server, so a truncation really closes the socket mid-body.
-- argv: port file, fault dir, real web URL. It writes its port to the
-- port file and exits by itself after 10 minutes.
local PROXY = [=[
import os, socket, sys, threading, time, http.client
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

PORT_FILE, DIR, REAL = sys.argv[1], sys.argv[2], urlsplit(sys.argv[3])
LOCK = threading.Lock()

def next_action(name):
    # plan-<name>: comma-separated actions, one per request ("ok" after)
    with LOCK:
        path = os.path.join(DIR, "plan-" + name)
        plan = open(path).read() if os.path.exists(path) else ""
        parts = [p for p in plan.split(",") if p]
        action = parts[0] if parts else "ok"
        open(path, "w").write(",".join(parts[1:]))
        with open(os.path.join(DIR, "hits-" + name), "a") as f:
            f.write(action + "\n")
        return action

def forward(method, path, headers, body=None):
    c = http.client.HTTPConnection(REAL.hostname, REAL.port, timeout=20)
    c.request(method, path, body=body, headers=headers)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, r.getheader("Content-Type") or "application/json", data

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, ctype, data):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def pass_headers(self, *names):
        return {n: self.headers[n] for n in names if self.headers[n]}

    def do_GET(self):
        if self.path == "/livez":
            return self.answer(200, "text/plain", b"ok")
        name = self.path.rsplit("/", 1)[-1]
        action = next_action(name)
        if action == "500":
            return self.answer(500, "application/json", b'{"error":"fault"}')
        status, ctype, data = forward("GET", self.path,
                                      self.pass_headers("Authorization"))
        if status != 200 or action == "ok":
            return self.answer(status, ctype, data)
        # whole length announced, half sent
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[:len(data) // 2])
        self.wfile.flush()
        if action == "stall":
            time.sleep(30)                 # the client gives up first
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"] or 0))
        status, ctype, data = forward("POST", self.path, self.pass_headers(
            "Authorization", "Idempotency-Key", "Content-Type"), body)
        self.answer(status, ctype, data)

srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
srv.daemon_threads = True
open(PORT_FILE + ".tmp", "w").write(str(srv.server_address[1]))
os.rename(PORT_FILE + ".tmp", PORT_FILE)
threading.Timer(600, lambda: os._exit(0)).start()
srv.serve_forever()
]=]


describe("worker faults, continued #redis #pg", function()
    local env, proxy, fault_dir

    setup(function()
        env = support.start()
        fault_dir = env.tmp .. "/faults"
        assert(os.execute("mkdir -p '" .. fault_dir .. "'"))
        assert(sys.write_file(fault_dir .. "/proxy.py", PROXY))
        local port_file = fault_dir .. "/port"
        local log = fault_dir .. "/proxy.log"
        proxy = { pid = assert(sys.spawn({ "python3", fault_dir .. "/proxy.py",
                                           port_file, fault_dir, env.url },
                                         { stdout = log, stderr = log })) }
        local port = support.eventually(function()
            return sys.read_file(port_file)
        end, 10)
        assert(port, "fault proxy did not start: "
                     .. tostring(sys.read_file(log)))
        proxy.url = "http://127.0.0.1:" .. port
    end)

    teardown(function()
        if proxy then
            sys.kill(proxy.pid, "KILL")
            sys.wait(proxy.pid, 5)
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
        -- The log line follows the state it reports: wait for it.
        assert.equal(3, w:await("task.completed", 3), w:text())
        assert.equal(0, w:count("task.failed"), w:text())
        -- the stall ended by the timeout, the truncation was noticed as
        -- such (not waited out)
        local text = w:text()
        assert.equal(1, w:count("operation timed out"), text)
        assert.equal(1, w:count("incomplete body"), text)
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
