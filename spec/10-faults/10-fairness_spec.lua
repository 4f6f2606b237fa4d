-- Fairness across clients end to end (the priority plugin's
-- fair_max_waiting, docs/plugins.md): real PostgreSQL, redis-server,
-- `wtt serve` (clients named by the X-Client-Id header) and a real
-- `wtt worker`. Client A floods generate over HTTP, then client B sends
-- one; B's task must complete while most of A's backlog still waits.

local support = require "spec.support.faults"
local json = require "wtt.json"
local sys = require "wtt.sys"

local LIMIT = 2
local FLOOD = 12

describe("fairness across clients #redis #pg", function()
    local env

    setup(function()
        env = support.start({ env = {
            WTT_PRIORITY_FAIR_MAX_WAITING = tostring(LIMIT),
            WTT_CLIENT_ID_HEADER = "X-Client-Id",
        } })
    end)

    teardown(function()
        if env then
            env:stop()
        end
    end)

    after_each(function()
        if env then
            env:kill_workers()
        end
    end)

    -- A row for a copy of an uploaded clip (as an upload leaves it).
    local function row_like(src_id)
        local res = assert(env.db:query(
            "INSERT INTO audio_midi (original_name, audio_path, duration_s) "
            .. "SELECT original_name, audio_path, duration_s FROM audio_midi "
            .. "WHERE id = $1 RETURNING id", src_id))
        return res[1].id
    end

    local function generate(id, client)
        local res = assert(env:http("POST", "/transcribe/generate/", {
            headers = { ["Content-Type"] = "application/json",
                        ["X-Client-Id"] = client },
            body = json.encode({ audio_midi_id = id, options = {} }),
        }))
        assert.equal(202, res.status, res.body)
        return res.json.task_id
    end


    it("a second client's task is claimed before the flooding client's "
       .. "backlog drains", function()
        local first = env:upload("guitar_nylon_single")
        local a = {}
        for i = 1, FLOOD do
            local id = i == 1 and first or row_like(first)
            a[i] = { id = id, tid = generate(id, "client-a") }
        end
        local b_id = row_like(first)
        local b_tid = generate(b_id, "client-b")
        -- Where they wait: A's first LIMIT in the default lane, the rest
        -- in bulk; B's in the default lane.
        for i, j in ipairs(a) do
            assert.equal(i <= LIMIT and "default" or "bulk",
                         env:task(j.tid).lane, "task " .. i)
        end
        assert.equal("default", env:task(b_tid).lane)
        env:check_invariants(5)

        local w = env:worker()
        env:wait_row(b_id, "completed", 60)
        local done_a = 0
        for _, j in ipairs(a) do
            if env:row(j.id).status == "completed" then
                done_a = done_a + 1
            end
        end
        print(("\nfairness: B completed after %d of A's %d tasks")
              :format(done_a, FLOOD))
        -- B waited behind A's share (and at most the task running when B
        -- came), not behind the flood.
        assert.is_true(done_a <= LIMIT + 1, done_a .. " of A's tasks first")
        local b = env:task(b_tid)
        for i = LIMIT + 1, FLOOD do
            local h = env:task(a[i].tid)
            assert.is_true(h.claimed_at == nil
                           or tonumber(h.claimed_at) > tonumber(b.claimed_at),
                           "A's bulk task " .. i .. " was claimed before B's")
        end
        w:signal("TERM")
        assert.same({ "exited", 0 }, { w:wait(15) }, w:text())
        env:check_invariants(8)
    end)


    it("a bulk task handed back by a stopping worker returns to the bulk "
       .. "lane", function()
        local first = env:upload("guitar_nylon_single")
        local c = {}
        for i = 1, LIMIT + 1 do
            local id = i == 1 and first or row_like(first)
            c[i] = { id = id, tid = generate(id, "client-c") }
        end
        local bulk = c[LIMIT + 1]
        assert.equal("bulk", env:task(bulk.tid).lane)
        -- Slow windows, no grace: SIGTERM while the bulk task runs hands
        -- it back at the next window (release).
        local w = env:worker({ WTT_WORKER_TEST_WINDOW_SLEEP = "0.3" },
                             { "--grace", "0" })
        -- Generous: the worker loads the model and transcribes the
        -- client's first tasks before this one, several times slower
        -- under ASan on a busy 2-core runner.
        env:wait_task(bulk.tid, support.running_on(w, 1), 240,
                      "the bulk task running")
        w:signal("TERM")
        assert.same({ "exited", 0 }, { w:wait(15) }, w:text())
        assert.equal(1, w:count("task.released"), w:text())
        local h = env:task(bulk.tid)
        assert.same({ "pending", "bulk" }, { h.status, h.lane })
        assert.same({ bulk.tid }, env.r:call("LRANGE",
            env:key("task:queue:bulk"), 0, -1))
        assert.equal(0, env.r:call("LLEN", env:key("task:queue")))
        env:check_invariants(5)

        local w2 = env:worker()
        env:wait_row(bulk.id, "completed", 180)
        w2:signal("TERM")
        assert.same({ "exited", 0 }, { w2:wait(15) })
        env:check_invariants(8)
    end)
end)
