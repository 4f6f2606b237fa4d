-- The page in a real browser: Debian's chromium, driven by puppeteer-core
-- (tools/browser/page_check.js), against a real stack with nothing
-- simulated: redis-server, PostgreSQL, `wtt migrate`, `wtt serve` with the
-- repository's routes and its subscriber, and a `wtt worker` that
-- transcribes the clip. The browser opens the page, uploads the clip,
-- watches the progress bar move, waits for the tab and the piano roll,
-- moves a threshold slider until the note count changes (a retune, no new
-- task), picks another tuning (another tab), downloads the MIDI (the bytes
-- of /transcribe/midi/{id}/) and reloads to find the upload in its
-- history. Any console error, failed request, HTTP error answer or CSP
-- violation fails it. Screenshots of every stage are kept in
-- <build dir>/spec-out/12-web/ (WTT_SPEC_OUT overrides).
--
-- The worker sleeps a little per window (WTT_WORKER_TEST_WINDOW_SLEEP) so
-- that the short clip's three windows take long enough for the page to see
-- the bar between its ends, whether it hears SSE events or polls.

local helpers = require "spec.support.server"
local real_stack = require "spec.support.real_stack"
local sys = require "wtt.sys"
local json = require "wtt.json"
local runtime = require "wtt.runtime"

local CLIP = helpers.FIXTURES .. "/clips/guitar_strum.wav"
local RUN = runtime.source_dir .. "/tools/browser/run.sh"
local CHROMIUM = os.getenv("CHROMIUM") or "/usr/bin/chromium"


local function out_dir()
    local dir = os.getenv("WTT_SPEC_OUT")
    if not dir or dir == "" then
        dir = runtime.exe:match("^(.*)/[^/]+$") .. "/spec-out"
    end
    return dir .. "/12-web"
end


describe("the page in chromium #redis #pg #browser", function()
    local missing
    if sys.exists(CHROMIUM) ~= "file" then
        missing = CHROMIUM .. " is not installed (scripts/bootstrap installs "
                  .. "Debian's chromium)"
    elseif os.execute("command -v node >/dev/null 2>&1") ~= 0
           and os.execute("command -v node >/dev/null 2>&1") ~= true then
        missing = "node is not installed (scripts/bootstrap installs nodejs)"
    end
    if missing then
        it("runs", function()
            pending("skipped, because " .. missing)
        end)
        return
    end

    local stack, srv, out

    setup(function()
        out = out_dir()
        sys.rmtree(out)
        assert(os.execute("mkdir -p '" .. out .. "'"))
        stack = real_stack.start({ name = "web-e2e", serve_env = { WTT_ACCESS_LOG = "off" } })
        srv = stack.srv
        stack:start_worker({ WTT_POLL_INTERVAL = "0.2", WTT_WORKER_TEST_WINDOW_SLEEP = "1" })
    end)

    teardown(function()
        if stack then stack:stop() end
    end)

    it("upload, progress, tab and piano roll, retune, tuning, download, history",
       function()
        local stdout, stderr = out .. "/page_check.json", out .. "/page_check.log"
        local pid = assert(sys.spawn({ RUN, "page_check.js", srv.url .. "/", CLIP, out },
                                     { stdout = stdout, stderr = stderr,
                                       env = { CHROMIUM = CHROMIUM } }))
        local how, code = sys.wait(pid, 240)
        if not how then
            sys.kill(pid, "KILL")
            sys.wait(pid, 5)
        end
        local text = sys.read_file(stdout) or ""
        local facts = text ~= "" and json.decode(text:match("[^\n]+")) or {}
        local context = "\n--- page_check ---\n" .. (sys.read_file(stderr) or "")
            .. "\n" .. text .. "\n--- worker ---\n"
            .. (sys.read_file(stack.worker_log) or "")
            .. "\n--- serve ---\n" .. srv:log_text():sub(-4000)
        assert(how == "exited" and code == 0, "page_check failed (" .. tostring(how)
               .. " " .. tostring(code) .. "): " .. tostring(facts.error) .. context)

        -- nothing went wrong in the browser
        assert.same({}, facts.console_errors, context)
        assert.same({}, facts.page_errors, context)
        assert.same({}, facts.failed_requests, context)
        assert.same({}, facts.http_errors, context)
        assert.same({}, facts.csp_violations, context)

        -- 1-2. the page, its limit, the chosen file
        assert.matches("up to 256 MB", facts.limit_text)
        assert.matches("guitar_strum%.wav", facts.chosen_text)
        assert.equal(1, facts.generate_requests)
        -- a text file offered as a recording: refused in plain words
        assert.matches("not audio the server can read", facts.refusal_text)
        -- the page listens to the event stream (polling is only its fallback)
        local cfg = assert(srv:json("GET", "/transcribe/config/")).json
        assert.is_true(cfg.events)
        assert.is_true(facts.events_requests >= 1, context)

        -- 3. the bar moved: a progress update between its ends
        assert.is_true(facts.progress_events >= 1, context)
        local between = false
        for _, v in ipairs(facts.bar_values) do
            local d, t = v:match("^([%d.]+)/([%d.]+)$")
            if tonumber(d) > 0 and tonumber(d) < tonumber(t) then
                between = true
            end
        end
        assert.is_true(between, "the bar never stood between its ends: "
                       .. table.concat(facts.bar_values, " "))
        assert.matches("^Window %d+ of %d+", facts.progress_text)
        local states = {}
        for _, s in ipairs(facts.states) do
            states[s] = true
        end
        assert.is_true(states.processing and states.completed, context)

        -- 4. the tab (alphaTab's SVG) and the piano roll (inked canvas)
        local id = facts.id
        assert.matches("^%x+%-%x+%-%x+%-%x+%-%x+$", id)
        assert.is_true(facts.note_count > 0)
        assert.is_true(facts.tab_svg > 0)
        assert.is_true(facts.roll_inked > 100)
        assert.equal("/transcribe/audio/" .. id .. "/", facts.audio_src)
        local status = assert(srv:json("GET", "/transcribe/status/" .. id .. "/")).json

        -- 5. the slider changed the count, through retune only: the same
        -- task, and the row's count is the page's
        assert.are_not.equal(facts.note_count, facts.note_count_after)
        assert.is_true(facts.retune_requests >= 1)
        assert.equal(facts.task_id_before, facts.task_id_after)
        assert.equal(status.task_id, facts.task_id_after)
        assert.equal(facts.note_count_after, status.note_count)
        assert.equal(1, facts.generate_requests)

        -- 6. another tuning, another tab
        assert.equal("guitar/half_step_down/0", facts.tab_key)
        assert.is_true(facts.tab_changed)

        -- the recording: a click on the piano roll seeks it and moves the
        -- tab's cursor; playing it moves the cursor too
        assert.is_true(facts.seek.to > facts.seek.from + 0.5, context)
        assert.is_true(facts.seek.cursor_moved, context)
        assert.is_true(facts.played.to > 0.3, context)
        assert.is_true(facts.played.cursor_moved, context)

        -- 7. the downloaded MIDI is the route's
        local midi = assert(srv:request("GET", "/transcribe/midi/" .. id .. "/"))
        assert.equal(200, midi.status)
        assert.equal(midi.body, sys.read_file(facts.midi_file))

        -- 8. the history after a reload
        assert.matches("guitar_strum%.wav", facts.history_text)
        assert.matches("done", facts.history_text)

        -- phone width: nothing wider than the screen
        assert.is_true(facts.phone_overflow <= 0, "wider than a phone by "
                       .. tostring(facts.phone_overflow) .. " px")

        -- 9. a screenshot of each stage
        for _, name in ipairs({ "01-open", "01b-refused", "02-progress", "03-result", "04-retuned",
                                "05-tuning", "06-history", "07-phone" }) do
            assert.equal("file", sys.exists(out .. "/" .. name .. ".png"), name)
        end
    end)
end)
