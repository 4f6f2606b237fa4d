-- docker/compose.yml, checked without a container engine (none runs on
-- CI machines): Debian's docker-compose validates and resolves it, then
-- the resolved services are checked against what wtt reads and needs.

local dh = require "spec.support.deploy"

local ENV = { WTT_WORKER_TOKEN = "spec-token", POSTGRES_PASSWORD = "spec-pw",
              WTT_ADMIN_TOKEN = false, WTT_KEY_PREFIX = false,
              COMPOSE_PROFILES = false }

-- What each wtt service cannot run without in a container, and why.
local REQUIRED = {
    migrate = { DATABASE_URL = "the database it migrates" },
    web = {
        DATABASE_URL = "the system of record",
        REDIS_URL = "the default (127.0.0.1) is the web container itself",
        WTT_WORKER_TOKEN = "unset, web refuses every worker request",
        WTT_LISTEN = "the default (127.0.0.1) is unreachable from other containers",
        WTT_MEDIA_DIR = "must be the volume's mount point",
    },
    worker = {
        REDIS_URL = "the queue", WTT_WEB_URL = "where audio and results go",
        WTT_WORKER_TOKEN = "web's bearer token",
    },
}
REQUIRED["worker-cpu"] = REQUIRED.worker
local WTT_SERVICES = { "migrate", "web", "worker", "worker-cpu" }

local function without(name)
    local e = {}
    for k, v in pairs(ENV) do e[k] = v end
    e[name] = false
    return e
end


describe("docker/compose.yml", function()
    local cfg

    setup(function()
        if not dh.have("docker-compose") then
            error("docker-compose is not installed (scripts/bootstrap installs it)")
        end
        local err
        cfg, err = dh.compose_config(ENV, { "cpu" })
        assert(cfg, "docker-compose config failed:\n" .. tostring(err))
    end)

    it("validates with docker-compose config, with and without the cpu profile", function()
        local code, _, err = dh.run({ "docker-compose", "-f", dh.COMPOSE,
                                      "config", "--quiet" }, { env = ENV })
        assert.equals(0, code, err)
        local plain = assert(dh.compose_config(ENV))
        local names, default = {}, {}
        for n, svc in pairs(plain.services) do
            names[#names + 1] = n
            if not svc.profiles then default[#default + 1] = n end
        end
        table.sort(names)
        table.sort(default)
        assert.same({ "migrate", "postgres", "redis", "web", "worker",
                      "worker-cpu" }, names)
        -- A plain `up` starts these; worker-cpu only with --profile cpu
        -- (docker-compose 1.29 lists profiled services in `config` anyway).
        assert.same({ "migrate", "postgres", "redis", "web", "worker" }, default)
    end)

    it("refuses to resolve without the worker token or the database password", function()
        for _, name in ipairs({ "WTT_WORKER_TOKEN", "POSTGRES_PASSWORD" }) do
            local code, _, err = dh.run({ "docker-compose", "-f", dh.COMPOSE,
                                          "config", "--quiet" },
                                        { env = without(name) })
            assert.is_not.equals(0, code)
            assert.truthy(err:find(name, 1, true), err)
        end
    end)

    it("runs postgres:15 and redis:7 with health checks, Redis as the queue needs it", function()
        local s = cfg.services
        assert.equals("postgres:15", s.postgres.image)
        assert.equals("redis:7", s.redis.image)
        for _, n in ipairs({ "postgres", "redis", "web" }) do
            assert.is_table(s[n].healthcheck, n .. " has no healthcheck")
        end
        local cmd = table.concat(s.redis.command, " ")
        assert.truthy(cmd:find("--maxmemory-policy noeviction", 1, true))
        assert.truthy(cmd:find("--appendonly yes", 1, true))
    end)

    it("orders startup: databases healthy, migrate done once, then web, then workers", function()
        local s = cfg.services
        assert.same({ condition = "service_healthy" }, s.migrate.depends_on.postgres)
        assert.same({ condition = "service_completed_successfully" },
                    s.web.depends_on.migrate)
        assert.same({ condition = "service_healthy" }, s.web.depends_on.postgres)
        assert.same({ condition = "service_healthy" }, s.web.depends_on.redis)
        assert.same({ "migrate" }, s.migrate.command)
        assert.equals("no", s.migrate.restart)
        for _, w in ipairs({ "worker", "worker-cpu" }) do
            assert.same({ condition = "service_healthy" }, s[w].depends_on.redis)
            assert.same({ condition = "service_healthy" }, s[w].depends_on.web)
        end
        -- web waits to be ready, not only alive.
        assert.truthy(table.concat(s.web.healthcheck.test, " "):find("/readyz", 1, true))
    end)

    it("shares no volume between web and the workers, and workers never get the database", function()
        local s = cfg.services
        assert.is_table(s.web.volumes)
        for _, w in ipairs({ "worker", "worker-cpu" }) do
            assert.is_nil(s[w].volumes, w .. " mounts a volume")
            assert.is_nil(s[w].volumes_from, w .. " mounts web's volumes")
            assert.is_nil(s[w].environment.DATABASE_URL, w .. " gets DATABASE_URL")
        end
    end)

    it("lets the worker scale: a GPU reservation each, no fixed name or port; a cpu profile", function()
        local s = cfg.services
        for _, w in ipairs({ "worker", "worker-cpu" }) do
            assert.is_nil(s[w].container_name, w .. ": a fixed name cannot scale")
            assert.is_nil(s[w].ports, w .. ": a published port cannot scale")
        end
        local dev = s.worker.deploy.resources.reservations.devices[1]
        assert.equals("nvidia", dev.driver)
        assert.same({ "gpu" }, dev.capabilities)
        assert.is_nil(s["worker-cpu"].deploy)
        assert.same({ "cpu" }, s["worker-cpu"].profiles)
        assert.equals("cpu", s["worker-cpu"].environment.WTT_DEVICE)
    end)

    it("sets only variables wtt reads and documents, for web, migrate and the workers", function()
        local reads = dh.env_read()
        local bad = {}
        for _, n in ipairs(WTT_SERVICES) do
            for name in pairs(cfg.services[n].environment or {}) do
                local ok, why = dh.env_known(name, reads)
                if not ok then
                    bad[#bad + 1] = n .. ": " .. why
                end
            end
        end
        table.sort(bad)
        assert.same({}, bad)
    end)

    it("sets every variable each wtt service requires", function()
        local missing = {}
        for _, n in ipairs(WTT_SERVICES) do
            local env = cfg.services[n].environment or {}
            for name, why in pairs(REQUIRED[n]) do
                if env[name] == nil or env[name] == "" then
                    missing[#missing + 1] = n .. ": " .. name .. " (" .. why .. ")"
                end
            end
        end
        table.sort(missing)
        assert.same({}, missing)
        -- Workers reach the services by their compose names.
        assert.equals("http://web:8008", cfg.services.worker.environment.WTT_WEB_URL)
        assert.equals("redis://redis:6379", cfg.services.worker.environment.REDIS_URL)
        assert.truthy(cfg.services.web.environment.DATABASE_URL:find("@postgres:5432/", 1, true))
    end)

    it("gives web a stop_grace_period longer than its drain", function()
        -- docker stop sends SIGTERM, then SIGKILL after the grace period:
        -- web must be through its drain and its requests in flight first,
        -- with room for the subscriber's last batch.
        local web = cfg.services.web
        local grace = web.stop_grace_period
        local n, unit = tostring(grace):match("^(%d+)(%a*)$")
        local scale = ({ s = 1, m = 60, [""] = 1 })[unit]
        assert(n and scale, "stop_grace_period: " .. tostring(grace))
        local need = dh.web_stop_s(web.environment)
        assert.is_true(tonumber(n) * scale >= need + 5,
            ("stop_grace_period %s, drain + grace %g s"):format(grace, need))
    end)

    it("notices a variable wtt does not read", function()
        -- The check above is only worth something if it can fail.
        assert.is_false((dh.env_known("WTT_NO_SUCH_SETTING")))
        assert.is_true((dh.env_known("WTT_RETRY_MAX_ATTEMPTS")))
        assert.is_false((dh.env_known("WTT_RETRY_NO_SUCH_FIELD")))
    end)
end)
