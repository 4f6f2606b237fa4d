-- W6 (docs/reliability.md): a worker crashes after its /_result/ POST was
-- stored, before `complete`. The rerun's result differs (another device, or
-- here: a real transcription instead of a one-note stand-in). The rerun's
-- POST gets 409 `result_exists`, and the task ends completed exactly once
-- with the FIRST stored result: its files, its note count.
local support = require "spec.support.faults"
local inv = require "spec.support.invariants"
local json = require "wtt.json"
local midi = require "wtt.midi"
local queue = require "wtt.queue"
local sys = require "wtt.sys"

-- Log lines of `text` with event `event` that name task `tid` (the
-- fields' order within a line is not fixed).
local function count(text, event, tid)
    local n = 0
    for line in text:gmatch("[^\n]+") do
        if line:find("event=" .. event .. " ", 1, true)
           and line:find("=" .. tid, 1, true)
        then
            n = n + 1
        end
    end
    return n
end

describe("W6 #redis #pg", function()
    local env
    setup(function() env = support.start() end)
    teardown(function() if env then env:stop() end end)

    it("crash after the result was stored: the rerun gets 409 and the first "
       .. "result is the one kept, completed once", function()
        local id, tid = env:submit("guitar_nylon_single")
        -- Worker A (this spec) claims and posts a one-note result that no
        -- real transcription of the clip produces, then "crashes".
        local q = queue.new(env.r, { prefix = env.prefix })
        local t = assert(q:claim("spec-a"))
        assert.equal(tid, t.id)
        local a_midi = assert(midi.encode({ { start_s = 0, end_s = 0.5,
                                              pitch = 64, velocity = 90 } }))
        local a_notes = json.encode({ notes = { { pitch = 64, marker = "A" } } })
        local res = assert(env:http("POST", "/transcribe/_result/" .. tid .. "/", {
            headers = { Authorization = "Bearer " .. support.TOKEN },
            multipart = {
                { name = "claim", value = tostring(t.claim) },
                { name = "midi", data = a_midi, filename = "a.mid",
                  content_type = "audio/midi" },
                { name = "notes", data = a_notes, filename = "a.json",
                  content_type = "application/json" },
            } }))
        assert.equal(200, res.status, res.body)
        assert.is_true(res.json.stored)
        local first = res.json
        assert.equal(1, first.n_notes)

        -- Every `task:completed` message for this task, from before worker
        -- B exists until the row is recorded and the backlog drained.
        local completed_msgs, b = 0, nil
        local channel = q:channel("task:completed")
        local deadline = sys.now() + 30
        local done_ok, serr = env.r:subscribe(channel, nil,
            function(_, _, payload)
                if payload:find(tid, 1, true) then
                    completed_msgs = completed_msgs + 1
                end
            end, {
                tick = 0.1,
                -- A real worker B picks the task up after the visibility
                -- timeout, transcribes it (13 notes) and POSTs that.
                on_ready = function() b = env:worker() end,
                on_tick = function()
                    if sys.now() > deadline then
                        return false
                    end
                    -- Stop once B logged its completion, the row is
                    -- recorded and task:results is drained: a second
                    -- completion or record would have shown by then.
                    if b and count(b:text(), "task.completed", tid) >= 1
                       and env:row(id).status == "completed"
                       and env.r:call("LLEN", env:key("task:results")) == 0
                       and env.r:call("LLEN",
                                      env:key("task:results:processing")) == 0
                    then
                        return false
                    end
                end,
            })
        assert.is_nil(serr)
        assert.is_true(done_ok)
        local blog = b:text()
        assert(sys.now() <= deadline, "no completion within 30 s" .. env:logs())

        -- B's POST was refused with 409 result_exists (the only path that
        -- logs task.result_exists) and B completed the task once.
        assert.equal(1, count(blog, "task.result_exists", tid), blog)
        assert.equal(1, count(blog, "task.completed", tid), blog)
        assert.equal(0, count(blog, "task.lost", tid), blog)
        assert.equal(1, completed_msgs)

        -- The task hash and the row keep A's files, not B's.
        local h = env:task(tid)
        assert.equal("completed", h.status)
        local up = json.decode(h.uploads)
        assert.equal(first.midi, up.midi)
        assert.equal(first.notes, up.notes)
        assert.equal(tostring(t.claim), up.claim)
        local row = env:wait_row(id, "completed")
        assert.equal(first.midi, row.midi_path)
        assert.equal(first.notes, row.notes_path)
        assert.equal(1, row.note_count)
        assert.equal(a_midi, sys.read_file(env.media .. "/" .. row.midi_path))
        assert.equal(a_notes, sys.read_file(env.media .. "/" .. row.notes_path))
        -- B's own transcription was never stored in the media dir.
        assert.same({ first.midi }, env:media_files("mid"))
        assert.same({ first.notes }, env:media_files("json"))

        -- Recorded into PostgreSQL once.
        assert.equal(1, count(env:serve_text(), "subscriber.recorded", tid))
        inv.check({ r = env.r, prefix = env.prefix, db = env.db, url = env.url,
                    media = env.media })
    end)
end)
