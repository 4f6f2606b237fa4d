-- The service routes against real PostgreSQL, Redis and `wtt serve`:
-- upload, generate, status, downloads, /media/ (H3, H5), /_result/ (H6),
-- metrics and readiness. No worker runs: its steps are raw Redis commands.

local S = require "spec.support.service"
local helpers = require "spec.support.server"
local json = require "wtt.json"
local sys = require "wtt.sys"

local AUTH = { Authorization = "Bearer " .. S.TOKEN }

describe("service routes #redis #pg", function()
    local e

    setup(function()
        e = S.start({})
    end)
    teardown(function()
        if e then e:stop() end
    end)

    local function uploaded()
        local res = e:upload(S.wav(0.5))
        assert.equal(201, res.status, res.body)
        return res.json.audio_midi_id
    end

    local function assert_error(res, status, code)
        assert.equal(status, res.status, res.body)
        assert.is_table(res.json, res.body)
        if code then
            assert.equal(code, res.json.error)
        end
        assert.is_string(res.json.detail)
        assert.is_string(res.json.request_id)
    end

    describe("upload", function()
        it("stores a WAV under a generated name and records a row", function()
            local res = e:upload(S.wav(0.5), "../../etc/My Song.wav")
            assert.equal(201, res.status, res.body)
            local row = e:row(res.json.audio_midi_id)
            assert.equal("pending", row.status)
            assert.matches("^[0-9a-f]+%.wav$", row.audio_path)
            assert.equal(32 + 4, #row.audio_path)
            assert.equal(".._.._etc_My Song.wav", row.original_name)
            assert.equal("file", sys.exists(e.media .. "/" .. row.audio_path))
            assert.near(0.5, row.duration_s, 1e-6)
        end)

        it("detects the type by content: HTML sent as audio/mpeg is 415", function()
            assert_error(e:upload("<html><script>alert(1)</script></html>",
                                  "song.mp3", "audio/mpeg"), 415,
                         "unsupported_media_type")
            assert_error(e:upload("<svg xmlns='http://www.w3.org/2000/svg'/>",
                                  "a.wav", "audio/wav"), 415)
            assert_error(e:upload(string.rep("\0", 64), "a.flac"), 415)
        end)

        it("refuses a file that looks like audio but does not probe (422)", function()
            local fake = "RIFF\36\0\0\0WAVEjunkjunkjunkjunkjunk"
            assert_error(e:upload(fake, "a.wav"), 422)
        end)

        it("serves a real WAV named x.html as audio/wav with nosniff (H3)", function()
            local res = e:upload(S.wav(0.2), "x.html", "text/html")
            assert.equal(201, res.status, res.body)
            local row = e:row(res.json.audio_midi_id)
            local got = e.srv:request("GET", "/media/" .. row.audio_path,
                                      { headers = AUTH })
            assert.equal(200, got.status)
            assert.equal("audio/wav", got.headers["content-type"])
            assert.equal("nosniff", got.headers["x-content-type-options"])
            assert.equal(S.wav(0.2), got.body)
        end)

        it("refuses empty, oversized, malformed and fieldless uploads", function()
            assert_error(e:upload(""), 400)
            local big = e:upload(string.rep("x", 3 * 1024 * 1024))
            assert.equal(413, big.status)
            local bad = e.srv:json("POST", "/transcribe/upload/", {
                headers = { ["Content-Type"] = "multipart/form-data; boundary=zzz" },
                body = "--zzz\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nabc",
            })
            assert_error(bad, 400)
            assert_error(e:upload(S.wav(0.1), "a.wav", "audio/wav", "other"), 400)
            local twice = e.srv:json("POST", "/transcribe/upload/", {
                multipart = { { name = "file", data = S.wav(0.1), filename = "a.wav" },
                              { name = "file", data = S.wav(0.1), filename = "b.wav" } },
            })
            assert_error(twice, 400)
            assert_error(e.srv:json("POST", "/transcribe/upload/", {
                headers = { ["Content-Type"] = "application/json" }, body = "{}",
            }), 400)
            local res = e.srv:json("GET", "/transcribe/upload/")
            assert.equal(405, res.status)
            -- the service still serves and nothing was stored for them
            local n = assert(e.db:query("SELECT count(*) AS n FROM audio_midi "
                                        .. "WHERE original_name = 'other'"))
            assert.equal(0, n[1].n)
        end)
    end)

    describe("generate", function()
        it("enqueues a task and records it (202)", function()
            local id = uploaded()
            local res = e:generate(id, { onset_threshold = 0.6, outputs = { "midi" } })
            assert.equal(202, res.status, res.body)
            local task_id = res.json.task_id
            assert.matches("^[0-9a-f]+$", task_id)
            assert.equal(32, #task_id)
            local row = e:row(id)
            assert.equal(task_id, row.task_id)
            assert.equal("pending", row.status)
            assert.same({ onset_threshold = 0.6, outputs = { "midi" } }, row.options)
            local h = e.r:call("HGET", e:key("task:" .. task_id), "payload")
            local payload = json.decode(h)
            assert.equal("/media/" .. row.audio_path, payload.audio_url)
            assert.same({ "midi" }, payload.outputs)
            assert.equal(0.6, payload.options.onset_threshold)
            local q = e.r:call("LRANGE", e:key("task:queue"), 0, -1)
            local p = e.r:call("LRANGE", e:key("task:queue:priority"), 0, -1)
            assert.truthy((table.concat(q, ",") .. table.concat(p, ","))
                          :find(task_id, 1, true))
        end)

        it("answers 409 while a task is pending or processing", function()
            local id = uploaded()
            assert.equal(202, e:generate(id, {}).status)
            assert_error(e:generate(id, {}), 409, "conflict")
            e.db:exec("UPDATE audio_midi SET status = 'processing' WHERE id = $1", id)
            assert_error(e:generate(id, {}), 409, "conflict")
        end)

        it("answers 404 for unknown ids and 422 for bad options", function()
            assert_error(e:generate("7b0c4a3e-1111-4222-8333-944445555666", {}), 404)
            assert_error(e:generate("../../1", {}), 404)
            local id = uploaded()
            for _, bad in ipairs({
                { onset_threshold = 1 }, { onset_threshold = 0 },
                { frame_threshold = -0.1 }, { frame_threshold = "0.3" },
                { min_note_ms = -1 }, { min_freq = 500, max_freq = 100 },
                { outputs = { "tab" } }, { outputs = {} }, { colour = "red" },
            }) do
                assert_error(e:generate(id, bad), 422, "invalid")
            end
            assert_error(e.srv:json("POST", "/transcribe/generate/", {
                body = json.encode({ audio_midi_id = 5 }) }), 422)
            assert_error(e.srv:json("POST", "/transcribe/generate/", {
                body = "{not json" }), 400)
            assert.equal("pending", e:row(id).status)
            assert.equal(json.null, e:row(id).task_id)
        end)
    end)

    describe("status and downloads", function()
        it("reports status, progress from the task hash, and 404s", function()
            local id = uploaded()
            local task_id = e:generate(id, {}).json.task_id
            local st = e.srv:json("GET", "/transcribe/status/" .. id .. "/")
            assert.equal(200, st.status)
            assert.equal("pending", st.json.status)
            assert.is_false(st.json.has_midi)
            e:claim(task_id, 1)
            e.r:call("HSET", e:key("task:" .. task_id), "progress", "3/10")
            e.db:exec("UPDATE audio_midi SET status = 'processing' WHERE id = $1", id)
            st = e.srv:json("GET", "/transcribe/status/" .. id .. "/")
            assert.same({ done = 3, total = 10 }, st.json.progress)
            assert_error(e.srv:json("GET", "/transcribe/status/nope/"), 404)
            assert_error(e.srv:json("GET", "/transcribe/status/"
                                    .. "7b0c4a3e-1111-4222-8333-944445555666/"), 404)
            assert_error(e.srv:json("GET", "/transcribe/midi/" .. id .. "/"), 404, "not_ready")
            assert_error(e.srv:json("GET", "/transcribe/notes/" .. id .. "/"), 404, "not_ready")
        end)
    end)

    describe("the original clients' paths (no trailing slash)", function()
        it("answer 308 to the canonical path, query kept; following it "
           .. "gives the answer", function()
            local id = uploaded()
            for _, what in ipairs({ "status", "midi" }) do
                local bare = "/transcribe/" .. what .. "/" .. id
                local res = e.srv:json("GET", bare .. "?a=1&b=x%20y")
                assert.equal(308, res.status, res.body)
                assert.equal(bare .. "/?a=1&b=x%20y", res.headers.location)
                local followed = e.srv:json("GET", bare, { follow = true })
                local direct = e.srv:json("GET", bare .. "/")
                assert.equal(direct.status, followed.status)
                assert.equal(direct.json.status, followed.json.status)
                assert.equal(direct.json.error, followed.json.error)
            end
            assert.equal("pending", e.srv:json("GET", "/transcribe/status/"
                .. id, { follow = true }).json.status)
        end)

        it("keep the method and the body: POST is redirected with 308, "
           .. "not turned into a GET", function()
            local id = uploaded()
            local res = e.srv:json("POST", "/transcribe/generate", {
                headers = { ["Content-Type"] = "application/json" },
                body = json.encode({ audio_midi_id = id }) })
            assert.equal(308, res.status, res.body)
            assert.equal("/transcribe/generate/", res.headers.location)
            res = e.srv:json("POST", "/transcribe/generate", {
                headers = { ["Content-Type"] = "application/json" },
                body = json.encode({ audio_midi_id = id }), follow = true })
            assert.equal(202, res.status, res.body)
            assert.equal(res.json.task_id, e:row(id).task_id)
        end)

        it("do not turn an unknown path into a redirect", function()
            assert_error(e.srv:json("GET", "/transcribe/nothing/here"), 404)
            assert_error(e.srv:json("GET", "/transcribe/status"), 404)
        end)
    end)

    describe("/media/ (H5)", function()
        it("needs the worker token", function()
            local id = uploaded()
            local name = e:row(id).audio_path
            assert_error(e.srv:json("GET", "/media/" .. name), 401)
            assert_error(e.srv:json("GET", "/media/" .. name,
                { headers = { Authorization = "Bearer wrong" } }), 401)
            assert_error(e.srv:json("GET", "/media/" .. name,
                { headers = { Authorization = "Basic " .. S.TOKEN } }), 401)
            assert.equal(200, e.srv:request("GET", "/media/" .. name,
                                            { headers = AUTH }).status)
        end)

        it("answers 404 (never 500) for any name outside the pattern", function()
            -- a planted symlink with a valid name, and a file outside
            local outside = e.media .. "/../secret-" .. sys.getpid() .. ".wav"
            assert(sys.write_file(outside, "secret"))
            local link = string.rep("b", 32) .. ".wav"
            assert(sys.symlink(outside, e.media .. "/" .. link))
            local corpus = {
                "../" .. "secret-" .. sys.getpid() .. ".wav", "..%2fetc%2fpasswd",
                "%2e%2e/%2e%2e/etc/passwd", "%252e%252e%252f", "..%5c..%5cetc",
                "%c0%ae%c0%ae/etc/passwd", "/etc/passwd", "//etc/passwd",
                "abc%00.mid", string.rep("a", 4096), link,
                string.rep("A", 32) .. ".wav", string.rep("a", 32) .. ".exe",
                string.rep("a", 31) .. ".wav", string.rep("a", 32) .. ".wav/",
                ".", "..", "%2e%2e",
            }
            for _, name in ipairs(corpus) do
                local raw = helpers.raw(e.srv.port, "GET /media/" .. name
                    .. " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " .. S.TOKEN
                    .. "\r\nConnection: close\r\n\r\n")
                local status = helpers.status_of(raw)
                assert.is_true(status == 404 or status == 400 or status == 414,
                               name .. " -> " .. tostring(status))
                assert.is_nil(raw:find("secret", 1, true))
                assert.is_nil(raw:find("root:", 1, true))
            end
            os.remove(outside)
            assert.equal(200, e.srv:json("GET", "/livez").status)
        end)
    end)

    describe("/transcribe/_result/ (H6)", function()
        local function snapshot()
            local rows = assert(e.db:query(
                "SELECT id, status, midi_path, notes_path, task_id, note_count, "
                .. "updated_at FROM audio_midi ORDER BY id"))
            return json.encode(rows)
        end

        local function post(task_id, parts, headers)
            return e.srv:json("POST", "/transcribe/_result/" .. task_id .. "/", {
                headers = headers or AUTH, multipart = parts })
        end

        local function parts(claim, midi, notes)
            local p = { { name = "claim", value = tostring(claim) } }
            if midi then
                p[#p + 1] = { name = "midi", data = midi, filename = "r.mid",
                              content_type = "audio/midi" }
            end
            if notes then
                p[#p + 1] = { name = "notes", data = notes, filename = "n.json" }
            end
            return p
        end

        it("checks token, claim and MIDI; is idempotent; PG never changes", function()
            local id = uploaded()
            local task_id = e:generate(id, {}).json.task_id
            e:claim(task_id, 7)
            local before = snapshot()
            local good_midi = S.midi_bytes(60)
            local notes = '{"notes":[{"pitch_midi":60}]}'
            assert_error(post(task_id, parts(7, good_midi, notes), {}), 401)
            assert_error(post(task_id, parts(7, good_midi, notes),
                              { Authorization = "Bearer " .. S.TOKEN .. "x" }), 401)
            assert_error(post(task_id, parts(6, good_midi, notes)), 409, "stale_claim")
            assert_error(post(task_id, parts(7, "MThd garbage", notes)), 422, "invalid_midi")
            assert_error(post(task_id, parts(7, good_midi, "{nope")), 422, "invalid_notes")
            assert_error(post(task_id, { { name = "claim", value = "7" } }), 400)
            assert_error(post(task_id, parts("", good_midi)), 400)
            assert_error(post(string.rep("f", 32), parts(7, good_midi)), 404)
            assert_error(post("../x", parts(7, good_midi)), 404)
            assert.same({}, sys.listdir(e.media .. "/") and
                (function()
                    local out = {}
                    for _, n in ipairs(sys.listdir(e.media)) do
                        if n:match("%.mid$") then out[#out + 1] = n end
                    end
                    return out
                end)())
            assert.equal(before, snapshot())

            local first = post(task_id, parts(7, good_midi, notes))
            assert.equal(200, first.status, first.body)
            assert.is_true(first.json.stored)
            assert.equal(1, first.json.n_notes)
            local again = post(task_id, parts(7, good_midi, notes))
            assert.equal(200, again.status, again.body)
            assert.is_true(again.json.replay)
            assert.equal(first.json.midi, again.json.midi)
            local mids = 0
            for _, n in ipairs(sys.listdir(e.media)) do
                if n:match("%.mid$") then mids = mids + 1 end
            end
            assert.equal(1, mids)
            assert.equal(S.midi_bytes(60), sys.read_file(e.media .. "/" .. first.json.midi))
            local result = json.decode(e.r:call("HGET", e:key("task:" .. task_id), "result"))
            assert.equal(first.json.midi, result.midi)
            -- different bytes under the same claim: refused, first kept
            local other = post(task_id, parts(7, S.midi_bytes(61), notes))
            assert_error(other, 409, "result_exists")
            assert.equal(first.json.midi, other.json.result.midi)
            -- a reaped claim (new token) is refused
            e.r:call("HSET", e:key("task:" .. task_id), "claim", "8")
            assert_error(post(task_id, parts(7, good_midi, notes)), 409, "stale_claim")
            assert.equal(before, snapshot())
        end)
    end)

    describe("metrics and readiness", function()
        it("reports queue depths and Redis INFO", function()
            local res = e.srv:json("GET", "/transcribe/metrics/")
            assert.equal(200, res.status, res.body)
            assert.is_number(res.json.queue.pending)
            assert.is_number(res.json.queue.processing)
            assert.is_number(res.json.queue.failed)
            assert.is_string(res.json.redis.server.redis_version)
            assert.is_number(res.json.redis.memory.used_memory)
            assert.is_table(res.json.db)
        end)

        it("checks PostgreSQL and Redis in /readyz", function()
            local res = e.srv:json("GET", "/readyz?verbose")
            assert.equal(200, res.status, res.body)
            local names = {}
            for _, c in ipairs(res.json.checks) do
                names[c.name] = c.ok
            end
            assert.is_true(names.database)
            assert.is_true(names.redis)
        end)
    end)
end)
