-- Q6 (reliability.md): an enqueue flood and idempotent submits, against
-- the real stack (PostgreSQL, redis-server, `wtt serve`). Four client
-- processes (`wtt run`, each its own HTTP connections) POST
-- /transcribe/generate/ for 1,700 rows at once, some rows shared by every
-- client under the same Idempotency-Key, with retries of the same key,
-- repeats without a key and one key reused for another request. No worker
-- runs, so every task stays pending: PostgreSQL and the queue must then
-- agree one to one (the invariant checker).

local support = require "spec.10-faults.support"
local idem = require "wtt.service.idempotency"
local json = require "wtt.json"
local runtime = require "wtt.runtime"
local sys = require "wtt.sys"

local CLIENTS = 4
local OWN = 400               -- rows per client
local SHARED = 100            -- rows every client generates, same keys
local TTL_S = 600

-- One flood client: generates the rows of its list, writes one line per
-- row ("row task_id replays"), and a line "bad ..." for any answer it did
-- not expect. Its checks mirror docs/api.md.
local CLIENT = [=[
local httpc = require "wtt.httpc"
local json = require "wtt.json"
local sys = require "wtt.sys"
local URL, LIST, OUT = os.getenv("FLOOD_URL"), os.getenv("FLOOD_LIST"),
                       os.getenv("FLOOD_OUT")
local out = assert(io.open(OUT, "w"))
local function bad(...)
    out:write("bad ", table.concat({ ... }, " "), "\n")
end
local function post(id, key, options)
    local headers = { ["Content-Type"] = "application/json" }
    if key then
        headers["Idempotency-Key"] = key
    end
    for _ = 1, 200 do
        local res, err = httpc.request({ url = URL .. "/transcribe/generate/",
            method = "POST", headers = headers, timeout = 10,
            body = json.encode({ audio_midi_id = id,
                                 options = options or {} }) })
        if not res then
            return nil, err
        end
        local doc = (pcall(json.decode, res.body)) and json.decode(res.body)
                    or {}
        -- the same key still running in another client: try again
        if not (res.status == 409 and doc.error == "idempotency_in_progress")
        then
            return res, doc
        end
        sys.sleep(0.01)
    end
    return nil, "in progress for too long"
end
local n = 0
for line in io.lines(LIST) do
    n = n + 1
    local id = line
    local key = "flood-" .. id
    local res, doc = post(id, key)
    if not res or res.status ~= 202 or type(doc.task_id) ~= "string" then
        bad(id, "first", res and res.status or doc, res and res.body or "")
    else
        local tid = doc.task_id
        local replays = res.headers["idempotency-replayed"] and 1 or 0
        if n % 4 == 0 then         -- a retry with the same key
            local r2, d2 = post(id, key)
            if not r2 or r2.status ~= 202 or d2.task_id ~= tid
               or r2.headers["idempotency-replayed"] ~= "true" then
                bad(id, "retry", r2 and r2.status or d2, r2 and r2.body or "")
            end
            replays = replays + 1
        end
        if n % 10 == 0 then        -- a repeat without a key: a conflict
            local r3, d3 = post(id, nil)
            if not r3 or r3.status ~= 409 or d3.error ~= "conflict" then
                bad(id, "nokey", r3 and r3.status or d3, r3 and r3.body or "")
            end
        end
        if n % 25 == 0 then        -- the key reused for another request
            local r4, d4 = post(id, key, { onset_threshold = 0.7 })
            if not r4 or r4.status ~= 422
               or d4.error ~= "idempotency_key_reused" then
                bad(id, "reuse", r4 and r4.status or d4, r4 and r4.body or "")
            end
        end
        out:write(id, " ", tid, " ", replays, "\n")
    end
end
out:close()
]=]


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


    it("4 clients, 1,700 rows, retries and conflicts -> one task per row, "
       .. "PostgreSQL and the queue agree", function()
        local shared = rows(SHARED)
        local script = env.tmp .. "/flood-client.lua"
        assert(sys.write_file(script, CLIENT))
        local procs = {}
        for c = 1, CLIENTS do
            local list = {}
            -- shared rows first, so the clients race on them
            for _, id in ipairs(shared) do
                list[#list + 1] = id
            end
            for _, id in ipairs(rows(OWN)) do
                list[#list + 1] = id
            end
            local lf = env.tmp .. "/flood-" .. c .. ".list"
            assert(sys.write_file(lf, table.concat(list, "\n") .. "\n"))
            local out = env.tmp .. "/flood-" .. c .. ".out"
            local log = env.tmp .. "/flood-" .. c .. ".log"
            procs[c] = { out = out, log = log, pid = assert(sys.spawn(
                { runtime.exe, "run", script },
                { env = { FLOOD_URL = env.url, FLOOD_LIST = lf,
                          FLOOD_OUT = out },
                  stdout = log, stderr = log })) }
        end
        local t0 = sys.now()
        for c, p in ipairs(procs) do
            local how, code = sys.wait(p.pid, 120)
            if not how then
                sys.kill(p.pid, "KILL")
                sys.wait(p.pid, 5)
            end
            assert.same({ "exited", 0 }, { how, code }, "client " .. c
                        .. ": " .. (sys.read_file(p.log) or ""))
        end
        local elapsed = sys.now() - t0

        -- Every client got one task id per row; shared rows the same one.
        local task_of, answers, replays = {}, 0, 0
        for c, p in ipairs(procs) do
            for line in io.lines(p.out) do
                assert.is_nil(line:match("^bad "), "client " .. c .. ": "
                              .. line)
                local id, tid, n = line:match("^(%S+) (%x+) (%d+)$")
                assert.truthy(id, line)
                assert.is_true(task_of[id] == nil or task_of[id] == tid,
                               "row " .. id .. " got two task ids")
                task_of[id] = tid
                answers = answers + 1
                replays = replays + tonumber(n)
            end
        end
        local n_rows = SHARED + CLIENTS * OWN
        assert.equal(CLIENTS * (SHARED + OWN), answers)
        -- the shared rows were answered from the key three times in four
        assert.is_true(replays >= (CLIENTS - 1) * SHARED, replays .. "")
        print(("\nQ6: %d clients, %d rows, %d first answers (%d replayed) "
               .. "in %.1f s"):format(CLIENTS, n_rows, answers, replays,
                                      elapsed))

        -- PostgreSQL == queue, one entry per task, no stray.
        local pending = assert(env.db:query(
            "SELECT count(*) AS n, count(DISTINCT task_id) AS d FROM "
            .. "audio_midi WHERE status = 'pending' AND task_id IS NOT NULL"))
        assert.equal(n_rows, pending[1].n)
        assert.equal(n_rows, pending[1].d)
        local queued = env.r:call("LLEN", env:key("task:queue"))
                       + env.r:call("LLEN", env:key("task:queue:priority"))
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
