-- Prometheus metrics (docs/metrics.md) checked by Prometheus' own tools:
-- `promtool check rules` on docker/prometheus/alerts.yml, the Grafana
-- dashboard is JSON whose panels query metrics wtt exposes, `promtool
-- check metrics` on web's /metrics and a worker's --metrics-listen, and a
-- real Prometheus server (loopback, generated config, temp storage)
-- scraping both while tasks run, whose PromQL answer for completed tasks is
-- what PostgreSQL holds.

local helpers = require "spec.support.server"
local real_stack = require "spec.support.real_stack"
local json = require "wtt.json"
local sys = require "wtt.sys"
local runtime = require "wtt.runtime"

local ROOT = runtime.source_dir
local CLIP = helpers.FIXTURES .. "/clips/guitar_strum.wav"
local TASKS = 3


-- Runs a shell command; returns its exit code and output.
local function sh(cmd)
    local p = assert(io.popen("(" .. cmd .. ") 2>&1; echo \"rc=$?\""))
    local out = p:read("*a")
    p:close()
    local rc = tonumber(out:match("rc=(%d+)%s*$"))
    return rc, out:gsub("rc=%d+%s*$", "")
end


local function need(tool)
    local rc = sh("command -v " .. tool)
    assert(rc == 0, tool .. " is missing: scripts/bootstrap installs the "
                    .. "Debian package prometheus")
end


local function promtool_metrics(text, tmp, name)
    local f = tmp .. "/" .. name .. ".prom"
    assert(sys.write_file(f, text))
    local rc, out = sh("promtool check metrics < '" .. f .. "'")
    assert(rc == 0, "promtool check metrics (" .. name .. "):\n" .. out
                    .. "\n--- text ---\n" .. text)
end


local function http_get(url)
    local rc, out = sh("curl -sS --max-time 5 '" .. url .. "'")
    return rc == 0 and out or nil, out
end


describe("Prometheus rules and dashboard", function()
    it("promtool check rules accepts docker/prometheus/alerts.yml", function()
        need("promtool")
        local rc, out = sh("promtool check rules '" .. ROOT
                           .. "/docker/prometheus/alerts.yml'")
        assert(rc == 0, out)
        for _, alert in ipairs { "WttQueueBackingUp", "WttNoLiveWorkers",
                                 "WttDeadLettersGrowing",
                                 "WttSubscriberLagging" } do
            assert.truthy(sys.read_file(ROOT .. "/docker/prometheus/alerts.yml")
                          :find(alert, 1, true), alert)
        end
    end)

    it("the Grafana dashboard is JSON whose panels query wtt metrics",
       function()
        local text = assert(sys.read_file(ROOT .. "/docker/grafana/wtt.json"))
        local dash = json.decode(text)
        assert.is_table(dash.panels)
        assert.is_true(#dash.panels >= 8)
        local names = require("wtt.metrics").FAMILIES
        for _, p in ipairs(dash.panels) do
            assert.is_string(p.title)
            assert.is_table(p.targets)
            for _, t in ipairs(p.targets) do
                assert.truthy(t.expr:find("wtt_", 1, true), t.expr)
            end
        end
        assert.is_table(names.wtt_tasks_completed_total)
    end)
end)


describe("Prometheus scrapes web and a worker #redis #pg", function()
    local stack, tmp, prom_pid, prom_port, wport

    setup(function()
        need("promtool")
        need("prometheus")
        stack = real_stack.start({ name = "prom" })
        tmp = stack.tmp
        wport = assert(sys.free_port())
        stack:start_worker({ WTT_METRICS_LISTEN = "127.0.0.1:" .. wport })
        -- The generated config: both targets, scraped every second.
        prom_port = assert(sys.free_port())
        local web = stack.srv.url:match("^https?://([^/]+)")
        assert(sys.write_file(tmp .. "/prometheus.yml", table.concat({
            "global:",
            "  scrape_interval: 1s",
            "  evaluation_interval: 1s",
            "rule_files:",
            "  - " .. ROOT .. "/docker/prometheus/alerts.yml",
            "scrape_configs:",
            "  - job_name: wtt-web",
            "    static_configs:",
            "      - targets: ['" .. web .. "']",
            "  - job_name: wtt-worker",
            "    static_configs:",
            "      - targets: ['127.0.0.1:" .. wport .. "']",
            "",
        }, "\n")))
        assert(os.execute("mkdir -p '" .. tmp .. "/prom-data'"))
        prom_pid = assert(sys.spawn({ "prometheus",
            "--config.file=" .. tmp .. "/prometheus.yml",
            "--storage.tsdb.path=" .. tmp .. "/prom-data",
            "--web.listen-address=127.0.0.1:" .. prom_port,
        }, { stdout = tmp .. "/prometheus.log",
             stderr = tmp .. "/prometheus.log" }))
    end)

    teardown(function()
        if prom_pid then
            helpers.terminate(prom_pid)
        end
        if stack then stack:stop() end
    end)

    local function logs()
        return stack:logs() .. "\n--- prometheus ---\n"
               .. (sys.read_file(tmp .. "/prometheus.log") or "")
    end

    local function query(expr)
        local body = http_get("http://127.0.0.1:" .. prom_port
                              .. "/api/v1/query?query="
                              .. expr:gsub("[^%w_]", function(c)
                                  return string.format("%%%02X", c:byte())
                              end))
        local doc = body and json.decode(body)
        if type(doc) ~= "table" or doc.status ~= "success" then
            return nil
        end
        return doc.data.result
    end

    local function pg_completed()
        local rc, out = sh("psql '" .. stack.pg.url .. "' -Atc "
            .. "\"SELECT count(*) FROM audio_midi WHERE status = 'completed'\"")
        assert(rc == 0, out)
        return tonumber(out:match("%d+"))
    end

    it("scrapes both while tasks run; PromQL's completed count is "
       .. "PostgreSQL's", function()
        local srv = stack.srv
        for _ = 1, TASKS do
            local res = assert(srv:json("POST", "/transcribe/upload/", {
                multipart = { { name = "file", file = CLIP,
                                filename = "guitar_strum.wav",
                                content_type = "audio/wav" } },
            }))
            assert.equal(201, res.status, res.body)
            local g = assert(srv:json("POST", "/transcribe/generate/", {
                headers = { ["Content-Type"] = "application/json" },
                body = json.encode({ audio_midi_id = res.json.audio_midi_id,
                                     options = {} }),
            }))
            assert.equal(202, g.status, g.body)
        end

        -- Both outputs pass promtool while tasks are in flight.
        local web_text = srv:request("GET", "/metrics")
        assert.equal(200, web_text.status)
        assert.truthy(web_text.headers["content-type"]:find("text/plain", 1,
                                                            true))
        promtool_metrics(web_text.body, tmp, "web")
        local wtext = assert(http_get("http://127.0.0.1:" .. wport
                                      .. "/metrics"))
        promtool_metrics(wtext, tmp, "worker")
        assert.truthy(wtext:find("wtt_worker_windows_total", 1, true))

        -- Prometheus sees both targets up.
        assert(helpers.eventually(function()
            local r = query("up")
            if not r or #r < 2 then
                return false
            end
            for _, s in ipairs(r) do
                if s.value[2] ~= "1" then
                    return false
                end
            end
            return true
        end, 20), "targets not up:\n" .. logs())

        -- Every task completes (recorded in PostgreSQL)...
        assert(helpers.eventually(function()
            return pg_completed() == TASKS
        end, 120), "tasks not completed:\n" .. logs())
        -- ...and PromQL, after a scrape, says as much.
        local n = pg_completed()
        local got
        assert(helpers.eventually(function()
            local r = query("sum(wtt_tasks_completed_total)")
            got = r and r[1] and tonumber(r[1].value[2])
            return got == n
        end, 20), "PromQL says " .. tostring(got) .. ", PostgreSQL " .. n
                  .. "\n" .. logs())
        local rows = query('wtt_task_rows{status="completed"}')
        assert.equal(n, tonumber(rows[1].value[2]))

        -- The worker's own metrics reached Prometheus too, on the worker
        -- target's own scrape (web's count says nothing of when that was).
        local wgot
        assert(helpers.eventually(function()
            local w = query("sum(wtt_worker_tasks_total{outcome=\"completed\"})")
            wgot = w and w[1] and tonumber(w[1].value[2])
            return wgot == n
        end, 20), "PromQL says the worker completed " .. tostring(wgot)
                  .. ", PostgreSQL " .. n .. "\n" .. logs())
        -- HTTP requests carry the route pattern, not the raw path.
        local h = query('wtt_http_requests_total{route="/transcribe/upload/"}')
        assert.is_true(h ~= nil and #h >= 1)
    end)
end)
