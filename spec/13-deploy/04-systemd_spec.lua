-- docker/systemd/: `systemd-analyze verify` accepts every unit (no
-- warning either), web, worker and subscriber are Type=notify with
-- ExecReload, the worker is a
-- template, migrations run before web, every unit is sandboxed under the
-- dedicated user, and the example environment files set only variables
-- wtt reads (the workers' never DATABASE_URL).
--
-- verify checks that ExecStart's binary exists: the units name the
-- installed /opt/wtt/bin/wtt, so the copies verified here name the binary
-- under test instead; nothing else is changed.

local dh = require "spec.support.deploy"
local runtime = require "wtt.runtime"
local sys = require "wtt.sys"

local DIR = dh.ROOT .. "/docker/systemd"
local UNITS = { "wtt-web.service", "wtt-migrate.service",
                "wtt-worker@.service", "wtt-subscriber.service" }
local SANDBOX = { "NoNewPrivileges=yes", "ProtectSystem=strict",
                  "ProtectHome=yes", "PrivateTmp=yes", "User=wtt",
                  "CapabilityBoundingSet=", "SystemCallFilter=@system-service",
                  "RestrictNamespaces=yes" }

local function read(name)
    return assert(sys.read_file(DIR .. "/" .. name), name)
end

-- KEY=VALUE lines of an environment file: { KEY = value }.
local function env_file(name)
    local t = {}
    for line in read(name):gmatch("[^\n]+") do
        local k, v = line:match("^([%u_][%u%d_]*)=(.*)$")
        if k then t[k] = v end
    end
    return t
end


describe("the systemd units", function()
    local tmp

    -- Copies of the units naming the binary under test; @return argv
    local function verify_argv(units, edit)
        tmp = tmp or assert(sys.mkdtemp("wtt-units-"))
        local argv = { "systemd-analyze", "verify" }
        for _, u in ipairs(units) do
            local text = read(u):gsub("/opt/wtt/bin/wtt", runtime.exe)
            if edit then text = edit(u, text) end
            assert(sys.write_file(tmp .. "/" .. u, text))
            -- A template is verified through an instance of it.
            argv[#argv + 1] = tmp .. "/" .. u:gsub("@%.service$", "@0.service")
        end
        return argv
    end

    teardown(function()
        if tmp then sys.rmtree(tmp) end
    end)

    it("pass systemd-analyze verify without a warning", function()
        if not dh.have("systemd-analyze") then
            pending("skipped, because systemd-analyze is not installed (scripts/bootstrap installs systemd)")
            return
        end
        local code, out, err = dh.run(verify_argv(UNITS))
        assert.equals(0, code, out .. err)
        assert.equals("", out .. err)
        -- ... and it catches a mistake, in the template too.
        code, out, err = dh.run(verify_argv(UNITS, function(u, text)
            if u == "wtt-worker@.service" then
                return text:gsub("Type=notify", "Type=notfy")
            end
            return text
        end))
        assert.truthy((out .. err):find("wtt-worker@", 1, true), out .. err)
        assert.truthy((out .. err):find("notfy", 1, true), out .. err)
    end)

    it("make web, the worker and the subscriber Type=notify with a hot "
       .. "reload, and migrate first", function()
        -- spec/08-worker/06-notify_spec.lua checks that the worker and the
        -- subscriber send what these units wait for.
        for _, u in ipairs({ "wtt-web.service", "wtt-worker@.service",
                             "wtt-subscriber.service" }) do
            local text = read(u)
            assert.truthy(text:find("\nType=notify\n", 1, true), u)
            assert.truthy(text:find("\nNotifyAccess=main\n", 1, true), u)
            assert.truthy(text:find("\nExecReload=/bin/kill %-HUP %$MAINPID\n"), u)
        end
        local web = read("wtt-web.service")
        assert.truthy(web:find("\nRequires=wtt%-migrate%.service\n"))
        assert.truthy(web:find("\nAfter=[^\n]*wtt%-migrate%.service"))
        local mig = read("wtt-migrate.service")
        assert.truthy(mig:find("\nType=oneshot\n", 1, true))
        assert.truthy(mig:find("\nExecStart=/opt/wtt/bin/wtt migrate\n", 1, true))
        -- Not RemainAfterExit: every start of web runs the migrations.
        assert.is_nil(mig:find("RemainAfterExit=yes", 1, true))
    end)

    it("give web a TimeoutStopSec longer than its drain", function()
        -- systemd sends SIGKILL after TimeoutStopSec: web must be through
        -- its drain (docs/http.md, "Shutdown") first, with room for the
        -- subscriber's last batch. web.env may change the settings.
        local timeout = tonumber(read("wtt-web.service")
                                 :match("\nTimeoutStopSec=(%d+)\n"))
        assert.is_number(timeout)
        local env = env_file("wtt.env")
        for k, v in pairs(env_file("web.env")) do
            env[k] = v
        end
        local need = dh.web_stop_s(env)
        assert.is_true(timeout >= need + 5,
            ("TimeoutStopSec=%d, drain + grace %g s"):format(timeout, need))
    end)

    it("make the worker a template, one instance per GPU", function()
        local w = read("wtt-worker@.service")
        assert.truthy(w:find("\nExecStart=/opt/wtt/bin/wtt worker %-%-id %%H%-%%i\n"))
        assert.truthy(w:find("\nEnvironment=CUDA_VISIBLE_DEVICES=%%i\n"))
        assert.truthy(w:find("\nRestart=on%-failure\n"))
    end)

    it("sandbox every unit under the dedicated user", function()
        assert.truthy(read("wtt.sysusers.conf"):find("\nu wtt ", 1, true))
        for _, u in ipairs(UNITS) do
            local text = read(u)
            for _, line in ipairs(SANDBOX) do
                assert.truthy(text:find("\n" .. line .. "\n", 1, true), u .. ": no " .. line)
            end
        end
    end)

    it("read example environment files that set only what wtt reads", function()
        local reads = dh.env_read()
        for _, f in ipairs({ "wtt.env", "web.env", "worker.env" }) do
            for k in pairs(env_file(f)) do
                local ok, why = dh.env_known(k, reads)
                assert.is_true(ok, f .. ": " .. tostring(why))
            end
        end
        local shared, web, worker = env_file("wtt.env"), env_file("web.env"),
                                    env_file("worker.env")
        assert.truthy(shared.REDIS_URL and shared.WTT_WORKER_TOKEN)
        assert.truthy(web.DATABASE_URL and web.WTT_LISTEN)
        assert.truthy(worker.WTT_WEB_URL)
        -- Workers read wtt.env and worker.env: never the database.
        assert.is_nil(shared.DATABASE_URL)
        assert.is_nil(worker.DATABASE_URL)
        local w = read("wtt-worker@.service")
        assert.is_nil(w:find("web.env", 1, true))
    end)
end)
