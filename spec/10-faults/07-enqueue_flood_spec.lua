-- Q6 (docs/reliability.md): an enqueue flood and idempotent submits, against
-- the real stack (PostgreSQL, redis-server, `wtt serve`). Four client
-- processes of 25 threads each (spec/support/flood_client.lua: one
-- keep-alive connection per thread, so 100 requests in flight at once)
-- POST /transcribe/generate/ for 1,650 rows, some rows shared by ten
-- threads under the same Idempotency-Key, with retries of the same key,
-- repeats without a key and one key reused for another request. No worker
-- runs, so every task stays pending: PostgreSQL and the queue must then
-- agree one to one (the invariant checker). The full size of
-- docs/reliability.md (10,000 POSTs at 100 concurrency, web's RSS) is
-- bench/flood.sh.

local support = require "spec.support.faults"
local idem = require "wtt.service.idempotency"
local json = require "wtt.json"
local runtime = require "wtt.runtime"
local sys = require "wtt.sys"

local PROCS = 4
local THREADS = 25            -- per process: 100 connections in all
local OWN = 16                -- rows per thread
local SHARED = 50             -- rows every tenth thread generates, same keys
local SHARERS = math.floor(PROCS * THREADS / 10)
local TTL_S = 600
local CLIENT = runtime.source_dir .. "/spec/support/flood_client.lua"


describe("Q6: enqueue flood and Idempotency-Key #redis #pg", function()
    local env

    setup(function()
        env = support.start({ env = {
            WTT_IDEMPOTENCY_TTL_S = tostring(TTL_S),
            WTT_THREADS = "4",
        } })
    end)

    teardown(function()
        if env then
            env:stop()
        end
    end)

    -- n rows as an upload would leave them (no task yet); their ids.
    local function rows(n)
        local res = assert(env.db:query(
            "INSERT INTO audio_midi (original_name, audio_path, duration_s) "
            .. "SELECT 'flood.wav', md5(random()::text) || '.wav', 4.0 "
            .. "FROM generate_series(1, $1::int) RETURNING id", n))
        local ids = {}
        for i, row in ipairs(res) do
            ids[i] = row.id
        end
        return ids
    end

    local function generate(id, key, options)
        return env:http("POST", "/transcribe/generate/", {
            headers = { ["Content-Type"] = "application/json",
                        ["Idempotency-Key"] = key },
            body = json.encode({ audio_midi_id = id,
                                 options = options or {} }),
        })
    end


    it("100 connections, 1,650 rows, retries and conflicts -> one task "
       .. "per row, PostgreSQL and the queue agree", function()
        local shared = rows(SHARED)
        local own = rows(PROCS * THREADS * OWN)
        local k, n_own, answers_expected = 0, 0, 0
        local procs = {}
        for p = 1, PROCS do
            local job = { url = env.url, mode = "spec", client = CLIENT,
                          threads = {} }
            for t = 1, THREADS do
                local g = (p - 1) * THREADS + t
                local lines = {}
                -- shared rows first, so the sharing threads race on them
                if g % 10 == 1 then
                    for _, id in ipairs(shared) do
                        lines[#lines + 1] = id .. " flood-" .. id
                    end
                end
                for _ = 1, OWN do
                    n_own = n_own + 1
                    local id = own[n_own]
                    k = k + 1
                    lines[#lines + 1] = id .. " flood-" .. id .. " "
                        .. (k % 4 == 0 and "r" or "")
                        .. (k % 10 == 0 and "n" or "")
                        .. (k % 25 == 0 and "u" or "")
                end
                answers_expected = answers_expected + #lines
                local base = ("%s/flood-%d-%d"):format(env.tmp, p, t)
                assert(sys.write_file(base .. ".list",
                                      table.concat(lines, "\n") .. "\n"))
                job.threads[t] = { list = base .. ".list",
                                   out = base .. ".out" }
            end
            local jf = ("%s/flood-%d.json"):format(env.tmp, p)
            assert(sys.write_file(jf, json.encode(job)))
            local log = ("%s/flood-%d.log"):format(env.tmp, p)
            procs[p] = { job = job, log = log, pid = assert(sys.spawn(
                { runtime.exe, "run", CLIENT, jf },
                { stdout = log, stderr = log })) }
        end
        local t0 = sys.now()
        for p, proc in ipairs(procs) do
            local how, code = sys.wait(proc.pid, 120)
            if not how then
                sys.kill(proc.pid, "KILL")
                sys.wait(proc.pid, 5)
            end
            assert.same({ "exited", 0 }, { how, code }, "client " .. p
                        .. ": " .. (sys.read_file(proc.log) or ""))
        end
        local elapsed = sys.now() - t0

        -- Every thread got one task id per row; shared rows the same one.
        local task_of, answers, replays, posts = {}, 0, 0, 0
        for p, proc in ipairs(procs) do
            for t, th in ipairs(proc.job.threads) do
                local finished = false
                for line in io.lines(th.out) do
                    local where = ("client %d thread %d: "):format(p, t)
                    assert.is_nil(line:match("^bad "), where .. line)
                    assert.is_nil(line:match("^rej "), where .. line)
                    local n = line:match("^posts (%d+)")
                    if n then
                        posts = posts + tonumber(n)
                        finished = true
                    else
                        local id, tid, r = line:match("^ok (%S+) (%x+) (%d+)$")
                        assert.truthy(id, where .. line)
                        assert.is_true(task_of[id] == nil
                                       or task_of[id] == tid,
                                       "row " .. id .. " got two task ids")
                        task_of[id] = tid
                        answers = answers + 1
                        replays = replays + tonumber(r)
                    end
                end
                assert.is_true(finished, "thread output cut short")
            end
        end
        local n_rows = SHARED + PROCS * THREADS * OWN
        assert.equal(answers_expected, answers)
        -- the shared rows were answered from the key to all but one thread
        assert.is_true(replays >= (SHARERS - 1) * SHARED, replays .. "")
        print(("\nQ6: %d connections, %d rows, %d POSTs, %d first answers "
               .. "(%d replayed) in %.1f s"):format(PROCS * THREADS, n_rows,
                                                    posts, answers, replays,
                                                    elapsed))

        -- PostgreSQL == queue, one entry per task, no stray.
        local pending = assert(env.db:query(
            "SELECT count(*) AS n, count(DISTINCT task_id) AS d FROM "
            .. "audio_midi WHERE status = 'pending' AND task_id IS NOT NULL"))
        assert.equal(n_rows, pending[1].n)
        assert.equal(n_rows, pending[1].d)
        local queued = env.r:call("LLEN", env:key("task:queue"))
                       + env.r:call("LLEN", env:key("task:queue:priority"))
                       + env.r:call("LLEN", env:key("task:queue:bulk"))
        assert.equal(n_rows, queued)
        for id, tid in pairs(task_of) do
            assert.equal(tid, env:row(id).task_id)
        end
        -- The answers are kept under the prefix for the TTL.
        local any = next(task_of)
        local ttl = env.r:call("TTL", idem.redis_key("generate", "flood-"
                                                      .. any, env.prefix))
        assert.is_true(ttl > 0 and ttl <= TTL_S, "TTL " .. tostring(ttl))
        env:check_invariants(5)
    end)


    it("a malformed key is 400; without Redis a keyed generate is 503 "
       .. "and changes nothing", function()
        if support.needs_single_redis("it SIGSTOPs the one redis-server") then
            return
        end
        local id = rows(1)[1]
        local res = assert(generate(id, string.rep("k", 256)))
        assert.equal(400, res.status, res.body)
        res = assert(generate(id, "tab\tinside"))
        assert.equal(400, res.status, res.body)
        assert.equal("pending", env:row(id).status)

        env.rsrv:pause()                    -- SIGSTOP: Redis answers nothing
        local ok, err = pcall(function()
            res = assert(generate(id, "no-redis-1", nil))
        end)
        env.rsrv:resume()
        assert(ok, err)
        assert.equal(503, res.status, res.body)
        -- no task was recorded: the row is as the upload left it
        local row = env:row(id)
        assert.is_true(row.task_id == nil or row.task_id == require("wtt.pg").null,
                       tostring(row.task_id))
        -- once Redis is back a retry runs normally (with another key: the
        -- SET of the cut-off request may have reached Redis after all, and
        -- then holds its key for up to 10 s, answered 409 meanwhile)
        res = assert(generate(id, "no-redis-2"))
        assert.equal(202, res.status, res.body)
        env:check_invariants(5)
    end)


    it("a key expires after WTT_IDEMPOTENCY_TTL_S: the request then runs "
       .. "again", function()
        env:serve_kill("TERM")
        env.serve_env.WTT_IDEMPOTENCY_TTL_S = "1"
        local ok, err = pcall(env.serve_start, env)
        env.serve_env.WTT_IDEMPOTENCY_TTL_S = tostring(TTL_S)
        assert(ok, err)
        local id = rows(1)[1]
        local res = assert(generate(id, "short-lived"))
        assert.equal(202, res.status, res.body)
        local again = assert(generate(id, "short-lived"))
        assert.equal(202, again.status, again.body)
        assert.equal(res.json.task_id, again.json.task_id)
        assert.truthy(support.eventually(function()
            return env.r:call("EXISTS", idem.redis_key("generate",
                "short-lived", env.prefix)) == 0
        end, 5), "the key did not expire")
        -- gone: the request runs again and meets the pending row (409)
        local late = assert(generate(id, "short-lived"))
        assert.equal(409, late.status, late.body)
        assert.equal("conflict", late.json.error)
        assert.equal(res.json.task_id, env:row(id).task_id)
        env:check_invariants(5)
    end)
end)
