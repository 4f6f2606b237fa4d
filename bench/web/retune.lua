-- bench/web/retune.sh's driver (run by `wtt run`): a real stack (PostgreSQL,
-- redis-server, `wtt migrate`, `wtt serve`, one `wtt worker`), a
-- recording of SECONDS made of the fixture clips one after another, and
-- tools/browser/retune_bench.js on the page. Prints its JSON.
--
--   wtt run bench/web/retune.lua SECONDS MOVES

local helpers = require "spec.support.server"
local pgh = require "spec.support.pg"
local rh = require "spec.support.redis"
local sys = require "wtt.sys"
local runtime = require "wtt.runtime"

local SECONDS = tonumber(arg[1]) or 180
local MOVES = tonumber(arg[2]) or 10
local TOKEN = "bench-web-worker-token-0123456789"
local CLIPS = { "guitar_strum", "guitar_fast_run", "guitar_bend",
                "guitar_nylon_single", "guitar_steel_single" }

-- The fixture clips share one format (22050 Hz mono 16-bit PCM): their
-- data chunks, one after another, make one longer WAV.
local function long_wav(path, seconds)
    local parts, bytes, rate = {}, 0, 22050
    local i = 0
    while bytes < seconds * rate * 2 do
        local name = CLIPS[i % #CLIPS + 1]
        local w = assert(sys.read_file(helpers.FIXTURES .. "/clips/" .. name .. ".wav"))
        local at = w:find("data", 13, true)
        local data = w:sub(at + 8)
        parts[#parts + 1] = data
        bytes = bytes + #data
        i = i + 1
    end
    local data = table.concat(parts)
    local function u32(x)
        return string.char(x % 256, math.floor(x / 256) % 256,
                           math.floor(x / 65536) % 256, math.floor(x / 16777216))
    end
    local function u16(x) return string.char(x % 256, math.floor(x / 256)) end
    assert(sys.write_file(path, "RIFF" .. u32(36 + #data) .. "WAVE" .. "fmt "
        .. u32(16) .. u16(1) .. u16(1) .. u32(rate) .. u32(rate * 2) .. u16(2)
        .. u16(16) .. "data" .. u32(#data) .. data))
end

local tmp = assert(sys.mkdtemp("wtt-bench-web-"))
local pgsrv, rsrv, srv, worker
local ok, err = pcall(function()
    os.execute("mkdir -p '" .. tmp .. "/media'")
    pgsrv = pgh.start()
    rsrv = rh.start({ args = { "--maxmemory-policy", "noeviction" } })
    local pid = assert(sys.spawn({ runtime.exe, "migrate" }, {
        env = { DATABASE_URL = pgsrv.url }, stdout = tmp .. "/m.log", stderr = tmp .. "/m.log" }))
    assert(select(2, sys.wait(pid, 60)) == 0, "wtt migrate failed")
    srv = helpers.serve({
        routes = runtime.source_dir .. "/routes",
        env = { DATABASE_URL = pgsrv.url, REDIS_URL = rsrv.url,
                WTT_MEDIA_DIR = tmp .. "/media", WTT_WORKER_TOKEN = TOKEN,
                WTT_KEY_PREFIX = false, WTT_ACCESS_LOG = "off",
                WTT_SUBSCRIBER_TICK_S = "0.2" },
    })
    assert(helpers.eventually(function()
        local res = srv:request("GET", "/readyz")
        return res and res.status == 200
    end, 20), "not ready")
    worker = assert(sys.spawn({ runtime.exe, "worker" }, {
        env = { REDIS_URL = rsrv.url, WTT_WEB_URL = srv.url, WTT_WORKER_TOKEN = TOKEN,
                WTT_DEVICE = "cpu", WTT_POLL_INTERVAL = "0.2", DATABASE_URL = false,
                WTT_KEY_PREFIX = false },
        stdout = tmp .. "/worker.log", stderr = tmp .. "/worker.log" }))
    local clip = tmp .. "/long.wav"
    long_wav(clip, SECONDS)
    local out = tmp .. "/out.json"
    pid = assert(sys.spawn({ runtime.source_dir .. "/tools/browser/run.sh",
                             "retune_bench.js", srv.url .. "/", clip, tostring(MOVES) },
                           { stdout = out }))
    local how, code = sys.wait(pid, 900)
    assert(how == "exited" and code == 0, "retune_bench.js failed")
    io.write(assert(sys.read_file(out)))
end)
if worker then
    sys.kill(worker, "TERM")
    sys.wait(worker, 30)
end
if srv then srv:stop() end
if rsrv then rsrv:stop() end
if pgsrv then pgsrv:stop() end
sys.rmtree(tmp)
if not ok then
    io.stderr:write("bench/web/retune.lua: " .. tostring(err) .. "\n")
    os.exit(1)
end
