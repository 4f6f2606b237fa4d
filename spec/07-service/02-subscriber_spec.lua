-- The subscriber (a separate `wtt subscriber` process, and the thread in
-- `wtt serve`), the reconciler, and the routes that need a completed task
-- (midi, notes, retune). Scenarios S1, S5, R1-R3 of docs/reliability.md,
-- scaled down; worker steps are raw Redis commands (support.lua).

local S = require "spec.support.service"
local helpers = require "spec.support.server"
local json = require "wtt.json"
local pg = require "wtt.pg"
local sys = require "wtt.sys"


local function hex(n)
    return string.format("%032x", n)
end

describe("subscriber and reconciler #redis #pg", function()
    local e

    setup(function()
        e = S.start({ appendonly = true })
    end)
    teardown(function()
        if e then e:stop() end
    end)
    after_each(function()
        if e.sub_pid then e:kill_subscriber() end
    end)

    local function count(status)
        return assert(e.db:query("SELECT count(*) AS n FROM audio_midi "
                                 .. "WHERE status = $1", status))[1].n
    end

    it("records the backlog, completed and failed, at start", function()
        local ok_id, bad_id = hex(1001), hex(1002)
        local row_ok = e:insert_row(ok_id, "processing")
        local row_bad = e:insert_row(bad_id, "pending")
        local midi_name = string.rep("c", 32) .. ".mid"
        e:complete(ok_id, { midi = midi_name, notes = "not a valid name.json",
                            n_notes = 12, duration_s = 3.5,
                            provenance = { engine = "wtt test" } }, false)
        e:fail(bad_id, "decode failed: bad audio")
        e:start_subscriber()
        assert.truthy(S.eventually(function()
            return e:row(row_ok).status == "completed"
                and e:row(row_bad).status == "failed"
        end, 10), sys.read_file(e.sub_log))
        local r = e:row(row_ok)
        assert.equal(midi_name, r.midi_path)
        assert.equal(json.null, r.notes_path)      -- invalid names are dropped
        assert.equal(12, r.note_count)
        assert.equal("wtt test", r.provenance.engine)
        assert.equal("decode failed: bad audio", e:row(row_bad).error_message)
        assert.truthy(S.eventually(function()
            return e.r:call("LLEN", e:key("task:results")) == 0
                and e.r:call("LLEN", e:key("task:results:processing")) == 0
        end, 5))
    end)

    it("is monotonic: late claimed/progress/failed never regress completed (S5)", function()
        local id = hex(2001)
        local row = e:insert_row(id, "pending")
        e:start_subscriber()
        e:claim(id, 1)
        assert.truthy(S.eventually(function()
            return e:row(row).status == "processing"
        end, 10), sys.read_file(e.sub_log))
        e.r:call("PUBLISH", e:key("task:progress:" .. id), json.encode({
            id = id, status = "processing", progress = { done = 2, total = 4 } }))
        assert.truthy(S.eventually(function() return e:row(row).progress == "2/4" end, 5))
        e:complete(id, { midi = string.rep("d", 32) .. ".mid", n_notes = 3 })
        assert.truthy(S.eventually(function()
            return e:row(row).status == "completed"
        end, 10))
        local before = e:row(row)
        -- late and duplicate events
        e.r:call("PUBLISH", e:key("task:claimed"), id)
        e.r:call("PUBLISH", e:key("task:progress:" .. id), "1/4")
        e:complete(id, { midi = string.rep("e", 32) .. ".mid", n_notes = 9 })
        e:fail(id, "late failure")
        -- A sentinel's claim, published after the late events on the same
        -- channels' connection: once its row is processing, the subscriber
        -- has handled every earlier message, and with task:results drained
        -- it has had its chance to regress the row.
        local sentinel = hex(2002)
        local srow = e:insert_row(sentinel, "pending")
        e:claim(sentinel, 1)
        assert.truthy(S.eventually(function()
            return e:row(srow).status == "processing"
                and e.r:call("LLEN", e:key("task:results")) == 0
                and e.r:call("LLEN", e:key("task:results:processing")) == 0
        end, 10), sys.read_file(e.sub_log))
        local after = e:row(row)
        assert.equal("completed", after.status)
        assert.equal(before.midi_path, after.midi_path)
        assert.equal(3, after.note_count)
        assert.equal(before.updated_at, after.updated_at)
    end)

    it("loses nothing when killed -9 while 100 results are queued (S1)", function()
        local ids, rows, by_id = {}, {}, {}
        for i = 1, 100 do
            ids[i] = hex(3000 + i)
            rows[i] = e:insert_row(ids[i], "processing")
            by_id[ids[i]] = i
        end
        for i = 1, 100 do
            e:complete(ids[i], { midi = string.format("%032x", i) .. ".mid",
                                 n_notes = i }, false)
        end
        -- a predecessor died holding ten of them
        for _ = 1, 10 do
            e.r:call("LMOVE", e:key("task:results"), e:key("task:results:processing"),
                     "LEFT", "RIGHT")
        end
        local before = count("completed")    -- rows of the earlier tests
        -- The reconciler would record a row whose results entry was lost
        -- (R1); kept off these fresh rows, only task:results can save them.
        local grace = e.env.WTT_RECONCILE_GRACE_S
        e.env.WTT_RECONCILE_GRACE_S = "3600"
        finally(function() e.env.WTT_RECONCILE_GRACE_S = grace end)
        -- Row 50 is locked, so the subscriber records 1..49 (the ten held
        -- ones first, moved back in order) and then blocks on row 50 with
        -- its id taken: the kill lands mid-drain, every time.
        local lock = assert(pg.connect(e.pgsrv.url))
        local logs = { e.media .. "/../sub-s1-a-" .. sys.getpid() .. ".log",
                       e.media .. "/../sub-s1-b-" .. sys.getpid() .. ".log" }
        local ok, err = pcall(function()
            assert(lock:exec("BEGIN"))
            assert(lock:query("SELECT id FROM audio_midi WHERE task_id = $1 "
                              .. "FOR UPDATE", ids[50]))
            e:start_subscriber(logs[1])
            assert.truthy(S.eventually(function()
                return assert(e.db:query(
                    "SELECT count(*) AS n FROM pg_stat_activity WHERE "
                    .. "application_name = 'wtt subscriber' AND "
                    .. "wait_event_type = 'Lock'"))[1].n == 1
            end, 10), "the subscriber never blocked on row 50\n"
                      .. tostring(sys.read_file(logs[1])))
            assert.same({ ids[50] }, e.r:call("LRANGE",
                e:key("task:results:processing"), 0, -1))
            assert.equal(50, e.r:call("LLEN", e:key("task:results")))
            assert.equal(before + 49, count("completed"))
            sys.kill(e.sub_pid, "KILL")
            sys.wait(e.sub_pid, 5)
            e.sub_pid = nil
            -- The dead client's backend would finish its UPDATE once the
            -- lock goes; end it, as PostgreSQL does when it notices.
            assert(e.db:query("SELECT pg_terminate_backend(pid) FROM "
                              .. "pg_stat_activity WHERE application_name = "
                              .. "'wtt subscriber'"))
            assert.truthy(S.eventually(function()
                return assert(e.db:query(
                    "SELECT count(*) AS n FROM pg_stat_activity WHERE "
                    .. "application_name = 'wtt subscriber'"))[1].n == 0
            end, 5))
            assert(lock:exec("ROLLBACK"))
        end)
        lock:close()
        assert(ok, err)
        assert.equal(before + 49, count("completed"))

        e:start_subscriber(logs[2])
        assert.truthy(S.eventually(function()
            return count("completed") >= before + 100
                and e.r:call("LLEN", e:key("task:results")) == 0
                and e.r:call("LLEN", e:key("task:results:processing")) == 0
        end, 15), "recorded " .. count("completed") .. "\n"
                  .. tostring(sys.read_file(logs[2])))
        for i = 1, 100 do
            local r = e:row(rows[i])
            assert.equal("completed", r.status)
            assert.equal(i, r.note_count)
            assert.equal(string.format("%032x", i) .. ".mid", r.midi_path)
        end
        -- Each row recorded exactly once over both lives: 1..49 by the
        -- first subscriber, 50..100 by the second.
        local seen = {}
        for n, log in ipairs(logs) do
            for id in (sys.read_file(log) or ""):gmatch(
                    "event=subscriber.recorded[^\n]*task=(%x+)") do
                if by_id[id] then
                    assert.is_nil(seen[id], "recorded twice: " .. id)
                    seen[id] = n
                end
            end
        end
        for i = 1, 100 do
            assert.equal(i < 50 and 1 or 2, seen[ids[i]], "row " .. i)
        end
        e:kill_subscriber()
        os.remove(logs[1])
    end)

    it("answers 503 with Retry-After while Redis is down; the reconciler enqueues later (R3)", function()
        if e.srv then e.srv:stop() end     -- setup's, or it would outlive us
        e.srv = helpers.serve({ env = e.env })
        local up = e:upload(S.wav(0.3))
        assert.equal(201, up.status, up.body)
        local id = up.json.audio_midi_id
        e.rsrv:kill()
        local res = e:generate(id, {})
        assert.equal(503, res.status, res.body)
        assert.equal("5", res.headers["retry-after"])
        assert.equal("unavailable", res.json.error)
        local task_id = res.json.task_id
        local row = e:row(id)
        assert.equal("pending", row.status)
        assert.equal(task_id, row.task_id)
        assert.equal(409, e:generate(id, {}).status)   -- recorded: no second task
        assert.equal(503, e.srv:json("GET", "/readyz").status)
        assert.equal(200, e.srv:json("GET", "/transcribe/status/" .. id .. "/").status)
        e.rsrv:restart()
        e.r:close()
        e.r = assert(e.rsrv:client())
        assert.is_nil(e.r:call("EXISTS", e:key("task:" .. task_id)) == 1 or nil)
        e:start_subscriber()
        assert.truthy(S.eventually(function()
            return e.r:call("EXISTS", e:key("task:" .. task_id)) == 1
        end, 10), sys.read_file(e.sub_log))
        local q = e.r:call("LRANGE", e:key("task:queue"), 0, -1)
        for _, v in ipairs(e.r:call("LRANGE", e:key("task:queue:priority"), 0, -1)) do
            q[#q + 1] = v
        end
        local n = 0
        for _, v in ipairs(q) do
            if v == task_id then n = n + 1 end
        end
        assert.equal(1, n)
        local payload = json.decode(e.r:call("HGET", e:key("task:" .. task_id), "payload"))
        assert.equal("/media/" .. row.audio_path, payload.audio_url)
        -- Redis lost it again (restart without the data): re-enqueued again
        e.r:call("DEL", e:key("task:" .. task_id))
        e.r:call("LREM", e:key("task:queue"), 0, task_id)
        assert.truthy(S.eventually(function()
            return e.r:call("EXISTS", e:key("task:" .. task_id)) == 1
        end, 10))
        assert.equal(200, e.srv:json("GET", "/readyz").status)
        e.srv:stop()
        e.srv = nil
    end)

    it("serves a completed result (midi, notes) and retunes it; in-serve subscriber", function()
        local env = {}
        for k, v in pairs(e.env) do env[k] = v end
        env.WTT_SUBSCRIBER = "on"
        e.srv = helpers.serve({ env = env })
        local up = e:upload(S.wav(0.3))
        local id = up.json.audio_midi_id
        local task_id = e:generate(id, {}).json.task_id
        assert.equal(409, e.srv:json("POST", "/transcribe/retune/" .. id .. "/",
                                     { body = "{}" }).status)
        e:claim(task_id, 1)
        local midi = S.midi_bytes(64)
        local notes = '{"notes":[{"pitch_midi":64}]}'
        local res = e:post_result(task_id, 1, { midi = midi, notes = notes,
                                                 posteriors = S.npy() })
        assert.equal(200, res.status, res.body)
        e:complete(task_id, { midi = res.json.midi, notes = res.json.notes, n_notes = 1 })
        assert.truthy(S.eventually(function()
            return e:row(id).status == "completed"
        end, 10), e.srv:log_text())
        local st = e.srv:json("GET", "/transcribe/status/" .. id .. "/")
        assert.is_true(st.json.has_midi)
        local m = e.srv:request("GET", "/transcribe/midi/" .. id .. "/")
        assert.equal(200, m.status)
        assert.equal(midi, m.body)
        assert.equal("audio/midi", m.headers["content-type"])
        assert.equal("nosniff", m.headers["x-content-type-options"])
        assert.matches("^attachment", m.headers["content-disposition"])
        local n = e.srv:json("GET", "/transcribe/notes/" .. id .. "/")
        assert.equal(200, n.status)
        assert.equal(64, n.json.notes[1].pitch_midi)

        assert.equal(422, e.srv:json("POST", "/transcribe/retune/" .. id .. "/",
            { body = json.encode({ onset_threshold = 2 }) }).status)
        assert.equal(422, e.srv:json("POST", "/transcribe/retune/" .. id .. "/",
            { body = json.encode({ outputs = { "midi" } }) }).status)
        local rt = e.srv:json("POST", "/transcribe/retune/" .. id .. "/",
            { body = json.encode({ onset_threshold = 0.5, frame_threshold = 0.3,
                                   min_note_ms = 50 }) })
        assert.equal(200, rt.status, rt.body)
        assert.is_number(rt.json.n_notes)
        assert.is_true(rt.json.n_notes >= 1)
        local row = e:row(id)
        assert.equal(rt.json.n_notes, row.note_count)
        local m2 = e.srv:request("GET", "/transcribe/midi/" .. id .. "/")
        assert.equal(200, m2.status)
        assert.is_true(require("wtt.midi").validate(m2.body))
        assert.equal(404, e.srv:json("POST", "/transcribe/retune/"
            .. "7b0c4a3e-1111-4222-8333-944445555666/", { body = "{}" }).status)
        e.srv:stop()
        e.srv = nil
    end)
end)
