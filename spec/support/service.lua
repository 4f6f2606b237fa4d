--- Shared set-up of the service specs: a real PostgreSQL (migrated), a real
-- redis-server and `wtt serve` with the service routes, plus small builders
-- (WAV bytes, MIDI bytes) and raw-Redis stand-ins for a worker's steps.
--
-- The worker is simulated with plain Redis commands on the queue's keys
-- (task:{id} hash, task:processing, task:results, channels), so these specs
-- do not depend on the worker or on the queue's claim/complete signatures.

local helpers = require "spec.support.server"
local pgh = require "spec.support.pg"
local rh = require "spec.support.redis"
local pg = require "wtt.pg"
local json = require "wtt.json"
local sys = require "wtt.sys"
local midi = require "wtt.midi"
local runtime = require "wtt.runtime"
local migrate = require "wtt.migrate"

local _M = {}

_M.TOKEN = "spec-worker-token-0123456789"
_M.PREFIX = "{svc}:"

local env_mt = {}
env_mt.__index = env_mt


--- Starts PG + Redis (+ `wtt serve` unless opts.serve == false).
-- opts: serve_env (extra env), subscriber (true: in-serve thread on)
function _M.start(opts)
    opts = opts or {}
    local self = setmetatable({}, env_mt)
    self.pgsrv = pgh.start()
    self.db = assert(pg.connect(self.pgsrv.url))
    assert(migrate.run(self.db, { dir = runtime.source_dir .. "/lua/migrations" }))
    self.rsrv = rh.start({ appendonly = opts.appendonly })
    self.r = assert(self.rsrv:client())
    self.media = assert(sys.mkdtemp("wtt-media-"))
    self.env = {
        DATABASE_URL = self.pgsrv.url,
        REDIS_URL = self.rsrv.url,
        WTT_MEDIA_DIR = self.media,
        WTT_WORKER_TOKEN = _M.TOKEN,
        WTT_KEY_PREFIX = _M.PREFIX,
        WTT_SUBSCRIBER = opts.subscriber and "on" or "off",
        WTT_RECONCILE_GRACE_S = "0",
        WTT_RECONCILE_INTERVAL_S = "0.5",
        WTT_SUBSCRIBER_TICK_S = "0.2",
        WTT_MAX_UPLOAD = tostring(opts.max_upload or 2 * 1024 * 1024),
    }
    for k, v in pairs(opts.serve_env or {}) do
        self.env[k] = v
    end
    if opts.serve ~= false then
        self.srv = helpers.serve({ env = self.env })
    end
    return self
end


function env_mt.stop(self)
    if self.srv then self.srv:stop() end
    if self.sub_pid then
        sys.kill(self.sub_pid, "KILL")
        sys.wait(self.sub_pid, 5)
    end
    if self.sub_log then os.remove(self.sub_log) end
    if self.db then self.db:close() end
    if self.r then self.r:close() end
    if self.rsrv then self.rsrv:stop() end
    if self.pgsrv then self.pgsrv:stop() end
    if self.media then sys.rmtree(self.media) end
end


function env_mt.key(self, name)
    return _M.PREFIX .. name
end


--- A standalone `wtt subscriber` process (returns its pid).
function env_mt.start_subscriber(self, log)
    self.sub_log = log or (self.media .. "/../subscriber-" .. sys.getpid() .. ".log")
    local pid = assert(sys.spawn({ runtime.exe, "subscriber" },
                                 { env = self.env, stdout = self.sub_log,
                                   stderr = self.sub_log }))
    self.sub_pid = pid
    -- subscribed (pub/sub messages from now on reach it)
    helpers.eventually(function()
        return (sys.read_file(self.sub_log) or ""):find("subscriber.ready", 1, true)
    end, 10)
    return pid
end


function env_mt.kill_subscriber(self)
    sys.kill(self.sub_pid, "KILL")
    sys.wait(self.sub_pid, 5)
    self.sub_pid = nil
    os.remove(self.sub_log)
end


--- POSTs a multipart upload; returns the decoded response.
function env_mt.upload(self, data, filename, ctype, field)
    return self.srv:json("POST", "/transcribe/upload/", {
        multipart = { { name = field or "file", data = data,
                        filename = filename or "clip.wav",
                        content_type = ctype or "audio/wav" } },
    })
end


--- POSTs a worker's result for `task_id` under `claim`, as the worker
-- does: `files` holds the bytes of midi, notes and (optional) posteriors.
-- Returns the decoded response.
function env_mt.post_result(self, task_id, claim, files)
    local parts = { { name = "claim", value = tostring(claim) } }
    for _, f in ipairs({ { "midi", "a.mid" }, { "notes", "a.json" },
                         { "posteriors", "a.npy" } }) do
        if files[f[1]] then
            parts[#parts + 1] = { name = f[1], data = files[f[1]],
                                  filename = f[2] }
        end
    end
    return self.srv:json("POST", "/transcribe/_result/" .. task_id .. "/", {
        headers = { Authorization = "Bearer " .. _M.TOKEN },
        multipart = parts })
end


function env_mt.generate(self, id, options)
    return self.srv:json("POST", "/transcribe/generate/", {
        headers = { ["Content-Type"] = "application/json" },
        body = json.encode({ audio_midi_id = id, options = options }),
    })
end


function env_mt.row(self, id)
    return assert(self.db:query("SELECT * FROM audio_midi WHERE id = $1", id))[1]
end


function env_mt.row_by_task(self, task_id)
    return assert(self.db:query("SELECT * FROM audio_midi WHERE task_id = $1",
                                task_id))[1]
end


--- Inserts a row directly (no upload) with a task id; returns id.
function env_mt.insert_row(self, task_id, status)
    local rows = assert(self.db:query(
        "INSERT INTO audio_midi (original_name, audio_path, status, task_id) "
        .. "VALUES ('x.wav', $1, $2, $3) RETURNING id",
        string.rep("a", 32) .. ".wav", status or "pending", task_id))
    return rows[1].id
end


-- Worker stand-ins on raw Redis (docs/queue.md keys).

--- Claims task `id` by hand: status processing, claim token.
function env_mt.claim(self, id, claim)
    local r = self.r
    assert(r:call("LREM", self:key("task:queue"), 0, id))
    assert(r:call("LREM", self:key("task:queue:priority"), 0, id))
    assert(r:call("RPUSH", self:key("task:processing"), id))
    assert(r:call("HSET", self:key("task:" .. id), "id", id, "status",
                  "processing", "claim", tostring(claim or 1)))
    assert(r:call("PUBLISH", self:key("task:claimed"), id))
end


--- Completes task `id` by hand with `result` (table).
function env_mt.complete(self, id, result, publish)
    local r = self.r
    assert(r:call("HSET", self:key("task:" .. id), "id", id, "status",
                  "completed", "result", json.encode(result or {})))
    assert(r:call("LREM", self:key("task:processing"), 0, id))
    assert(r:call("RPUSH", self:key("task:results"), id))
    if publish ~= false then
        assert(r:call("PUBLISH", self:key("task:completed"), id))
    end
end


function env_mt.fail(self, id, err)
    local r = self.r
    assert(r:call("HSET", self:key("task:" .. id), "id", id, "status",
                  "failed", "error", err or "boom"))
    assert(r:call("LREM", self:key("task:processing"), 0, id))
    assert(r:call("RPUSH", self:key("task:results"), id))
    assert(r:call("PUBLISH", self:key("task:failed"), json.encode({ id = id, final = true })))
end


--- A 16-bit mono PCM WAV of a sine (bytes).
function _M.wav(seconds, rate, freq)
    rate = rate or 22050
    local n = math.floor((seconds or 0.5) * rate)
    local samples = {}
    for i = 0, n - 1 do
        local v = math.floor(math.sin(2 * math.pi * (freq or 440) * i / rate) * 12000)
        if v < 0 then v = v + 65536 end
        samples[#samples + 1] = string.char(v % 256, math.floor(v / 256))
    end
    local data = table.concat(samples)
    local function u32(x)
        return string.char(x % 256, math.floor(x / 256) % 256,
                           math.floor(x / 65536) % 256, math.floor(x / 16777216))
    end
    local function u16(x) return string.char(x % 256, math.floor(x / 256)) end
    return "RIFF" .. u32(36 + #data) .. "WAVE" .. "fmt " .. u32(16) .. u16(1)
        .. u16(1) .. u32(rate) .. u32(rate * 2) .. u16(2) .. u16(16)
        .. "data" .. u32(#data) .. data
end


function _M.midi_bytes(pitch)
    return assert(midi.encode({ { start_s = 0, end_s = 0.5, pitch = pitch or 60,
                                  velocity = 100 } }))
end


--- A posteriorgram .npy ([frames, 440] float32) with one clear note.
function _M.npy(frames, pitch_index)
    local p = pitch_index or 39
    return _M.npy_with(frames, function(buf)
        for f = 20, 120 do
            buf[f * 440 + p] = 0.9              -- frame posterior
            if f >= 20 and f <= 22 then
                buf[f * 440 + 88 + p] = 0.9     -- onset
            end
        end
    end)
end


--- A posteriorgram .npy of `frames` rows (default 200) that fill(buf)
-- writes: buf is the zeroed float[frames * 440], row-major.
function _M.npy_with(frames, fill)
    local ffi = require "ffi"
    frames = frames or 200
    local buf = ffi.new("float[?]", frames * 440)
    fill(buf)
    local header = "{'descr': '<f4', 'fortran_order': False, 'shape': ("
        .. frames .. ", 440), }"
    local total = 10 + #header + 1
    local pad = (64 - total % 64) % 64
    header = header .. string.rep(" ", pad) .. "\n"
    local hl = #header
    return "\147NUMPY\1\0" .. string.char(hl % 256, math.floor(hl / 256))
        .. header .. ffi.string(buf, frames * 440 * 4)
end


_M.eventually = helpers.eventually

return _M
