--- Spec helpers for the deployment files (docker/, the systemd units):
-- run a command and capture its output, read docker-compose's resolved
-- configuration, and list the environment variables wtt reads.
--
--     local dh = require "spec.support.deploy"
--     local code, out, err = dh.run({ "docker-compose", "config" }, { env = {...} })
--     local cfg = dh.compose_config({ WTT_WORKER_TOKEN = "t", ... })
--     local reads = dh.env_read()        -- { NAME = true } from the code
--     local ok, why = dh.env_known(name) -- read by wtt and documented in docs/

local sys = require "wtt.sys"
local json = require "wtt.json"
local runtime = require "wtt.runtime"

local _M = {}

_M.ROOT = runtime.source_dir
_M.COMPOSE = _M.ROOT .. "/docker/compose.yml"

--- Is `name` a command on PATH?
function _M.have(name)
    return os.execute("command -v '" .. name .. "' >/dev/null 2>&1") == 0
end


--- Runs argv to completion (at most `opts.timeout` s, default 120).
-- opts: env (merged over this environment, false removes), stdin (a
-- string, fed through a file), cwd. Its output goes through a directory
-- of its own, removed before it returns. @return exit code, stdout, stderr
function _M.run(argv, opts)
    opts = opts or {}
    local tmp = assert(sys.mkdtemp("wtt-deploy"))
    local out, err, inp = tmp .. "/stdout", tmp .. "/stderr", nil
    if opts.stdin then
        inp = tmp .. "/stdin"
        assert(sys.write_file(inp, opts.stdin))
    end
    local pid = assert(sys.spawn(argv, { env = opts.env, stdin = inp,
                                         stdout = out, stderr = err,
                                         cwd = opts.cwd }))
    local how, code = sys.wait(pid, opts.timeout or 120)
    if not how then
        sys.kill(pid, "KILL")
        sys.wait(pid, 5)
        sys.rmtree(tmp)
        error(table.concat(argv, " ") .. " did not finish")
    end
    local o, e = sys.read_file(out) or "", sys.read_file(err) or ""
    sys.rmtree(tmp)
    return how == "exited" and code or -1, o, e
end


--- `docker-compose config` of docker/compose.yml with `env` (and the
-- `--profile`s given), as a Lua table (YAML read by python3-yaml, which
-- docker-compose depends on). @return table | nil, stderr
function _M.compose_config(env, profiles)
    local argv = { "docker-compose", "-f", _M.COMPOSE }
    for _, p in ipairs(profiles or {}) do
        argv[#argv + 1] = "--profile"
        argv[#argv + 1] = p
    end
    argv[#argv + 1] = "config"
    local code, out, err = _M.run(argv, { env = env })
    if code ~= 0 then
        return nil, err
    end
    local c, js, jerr = _M.run({ "python3", "-c",
        "import sys, json, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)" },
        { stdin = out })
    assert(c == 0, jerr)
    return json.decode(js)
end


local function files(dirs, pattern)
    local list = {}
    for _, d in ipairs(dirs) do
        local p = io.popen("find '" .. _M.ROOT .. "/" .. d
                           .. "' -type f -name '" .. pattern .. "'")
        for f in p:lines() do
            list[#list + 1] = f
        end
        p:close()
    end
    return list
end


--- The environment variables wtt's code names as string literals
-- (os.getenv, sys.getenv, wtt_env, the flag tables): { NAME = true }.
function _M.env_read()
    local names = {}
    local list = files({ "lua", "routes", "plugins", "core" }, "*.lua")
    for _, f in ipairs(files({ "core" }, "*.c")) do
        list[#list + 1] = f
    end
    for _, f in ipairs(list) do
        local text = sys.read_file(f) or ""
        for n in text:gmatch('"([A-Z][A-Z0-9_]+)"') do
            if n:match("^WTT_") or n == "DATABASE_URL" or n == "REDIS_URL"
                or n == "TMPDIR" then
                names[n] = true
            end
        end
    end
    return names
end


--- Plugin settings WTT_<PLUGIN>_<FIELD> (lua/wtt/plugins.lua): the
-- plugin and field, when `name` is one.
local function plugin_setting(name)
    for dir in io.popen("ls '" .. _M.ROOT .. "/plugins'"):lines() do
        local prefix = "WTT_" .. dir:upper() .. "_"
        if name:sub(1, #prefix) == prefix then
            local field = name:sub(#prefix + 1):lower()
            local schema = sys.read_file(_M.ROOT .. "/plugins/" .. dir
                                         .. "/schema.lua") or ""
            if schema:find('name%s*=%s*"' .. field .. '"') then
                return dir, field
            end
        end
    end
end


local docs
--- Is `name` an environment variable that wtt reads and that docs/ (the
-- operator's tables) mention? @return true | false, why
function _M.env_known(name, reads)
    reads = reads or _M.env_read()
    if not docs then
        docs = {}
        for _, f in ipairs(files({ "docs" }, "*.md")) do
            docs[#docs + 1] = sys.read_file(f) or ""
        end
        docs = table.concat(docs, "\n")
    end
    local plugin = plugin_setting(name)
    if not reads[name] and not plugin then
        return false, name .. " is read nowhere in lua/, routes/, plugins/, core/"
    end
    if not plugin and not docs:find(name, 1, true) then
        return false, name .. " is not documented in docs/"
    end
    return true
end


--- The default docs/http.md gives a server setting in its table
-- (`| `NAME` | 5 | ...`), as a number; raises when the row is missing.
function _M.http_default(name)
    local text = assert(sys.read_file(_M.ROOT .. "/docs/http.md"))
    local v = text:match("\n| `" .. name .. "` | ([%d.]+) |")
    return assert(tonumber(v), name .. ": no numeric default in docs/http.md")
end


--- Seconds `wtt serve` may take to stop after SIGTERM with the environment
-- `env` (unset values take docs/http.md's defaults): the drain period plus
-- the wait for requests in flight (docs/http.md, "Shutdown").
function _M.web_stop_s(env)
    env = env or {}
    local drain = tonumber(env.WTT_DRAIN_S) or _M.http_default("WTT_DRAIN_S")
    local grace = tonumber(env.WTT_SHUTDOWN_GRACE_MS)
                  or _M.http_default("WTT_SHUTDOWN_GRACE_MS")
    return drain + grace / 1000
end

return _M
