-- `wtt worker [options]`: claims transcription tasks from Redis, runs them
-- and posts the results to web (lua/wtt/worker.lua does the work; see
-- docs/worker.md). Every option has an environment twin; the flag wins.
--
-- Exit status: 0 after a clean stop (SIGTERM/SIGINT, or --once after one
-- task or batch), 1 when the worker cannot start (model, heartbeat thread),
-- 2 usage, 3 (worker.EXIT_DEVICE) after --max-device-faults device faults
-- in a row (the device is broken: a supervisor restarts the worker).
-- It never reads DATABASE_URL: workers have no database access.

local args = require "wtt.cli.args"
local worker = require "wtt.worker"

local USAGE = [[
usage: wtt worker [options]

Claims tasks from the Redis queue, downloads their audio from web,
transcribes it and posts MIDI + notes JSON back to web. SIGTERM or SIGINT:
stop claiming, let a running task finish within the grace period, else
cancel it and hand it back to the queue; exit 0.

  --redis-url URL        REDIS_URL (redis://127.0.0.1:6379)
  --web-url URL          WTT_WEB_URL (http://127.0.0.1:8008)
  --token TOKEN          WTT_WORKER_TOKEN (required unless --noop)
  --key-prefix P         WTT_KEY_PREFIX ("")
  --device D             WTT_DEVICE: auto|cpu|cuda|cuda:N (auto)
  --threads N            WTT_WORKER_THREADS: inference threads (engine default)
  --id ID                WTT_WORKER_ID (host-pid)
  --max-download BYTES   WTT_MAX_DOWNLOAD (536870912)
  --grace S              WTT_SHUTDOWN_GRACE: seconds a running task gets
                         after SIGTERM (30)
  --poll S               WTT_POLL_INTERVAL: poll fallback period (5)
  --heartbeat S          WTT_HEARTBEAT_INTERVAL: claim and worker heartbeat
                         period (10)
  --worker-ttl S         WTT_WORKER_TTL: TTL of worker:{id} (30, at least
                         3 heartbeats)
  --reap-interval S      WTT_REAP_INTERVAL: reap at most this often (1)
  --retries N            WTT_HTTP_RETRIES: download/upload attempts (5)
  --backoff S            WTT_HTTP_BACKOFF: first retry delay, doubling (0.5)
  --backoff-max S        WTT_HTTP_BACKOFF_MAX (15)
  --http-timeout S       WTT_HTTP_TIMEOUT: per download/upload (120)
  --batch-tasks N        WTT_BATCH_TASKS: claim up to N tasks at once and
                         run their windows in shared batches (1)
  --max-device-faults M  WTT_MAX_DEVICE_FAULTS: device faults in a row
                         before exiting with status 3 (3)
  --device-fault-backoff S
                         WTT_DEVICE_FAULT_BACKOFF: seconds without
                         claiming after a device fault or a local
                         failure, doubling (5)
  --max-local-failures M WTT_WORKER_MAX_LOCAL_FAILURES: tasks in a row
                         that fail on this machine's disk (no temp dir,
                         result files not written) before exiting with
                         status 4 (3)
  --max-audio-s S        WTT_WORKER_MAX_AUDIO_S: audio decoded per task;
                         longer fails the task (14400; 0: the engine's
                         own cap, 4 h)
  --max-task-s S         WTT_WORKER_MAX_TASK_S: wall time of a task's
                         inference, with a CPU-time RLIMIT behind it
                         (3600; 0: off)
  --max-rss-mb M         WTT_WORKER_MAX_RSS_MB: resident memory checked
                         every window (4096; 0: off)
  --max-file-mb M        WTT_WORKER_MAX_FILE_MB: RLIMIT_FSIZE, the largest
                         file the worker writes (3072; 0: off)
  --metrics-listen ADDR  WTT_METRICS_LISTEN: serve Prometheus metrics on
                         HOST:PORT at /metrics (off; docs/metrics.md)
  --noop                 WTT_WORKER_NOOP=1: no download or inference;
                         complete at once (queue benchmarks)
  --once                 process one task (or one batch), then exit (tests)

Exit status: 0 clean stop, 1 cannot start, 2 usage, 3 too many device
faults in a row, 4 too many local failures in a row (restart the worker
after a backoff; the tasks it held are back in the queue, uncharged).
]]

-- flag -> { cfg field, env name, kind }
local OPTIONS = {
    ["--redis-url"] = { "redis_url", "REDIS_URL" },
    ["--web-url"] = { "web_url", "WTT_WEB_URL" },
    ["--token"] = { "token", "WTT_WORKER_TOKEN" },
    ["--key-prefix"] = { "prefix", "WTT_KEY_PREFIX" },
    ["--device"] = { "device", "WTT_DEVICE" },
    ["--threads"] = { "threads", "WTT_WORKER_THREADS", "int" },
    ["--id"] = { "id", "WTT_WORKER_ID" },
    ["--metrics-listen"] = { "metrics_listen", "WTT_METRICS_LISTEN" },
    ["--max-download"] = { "max_download", "WTT_MAX_DOWNLOAD", "int" },
    ["--grace"] = { "grace", "WTT_SHUTDOWN_GRACE", "num" },
    ["--poll"] = { "poll", "WTT_POLL_INTERVAL", "pos" },
    ["--heartbeat"] = { "heartbeat", "WTT_HEARTBEAT_INTERVAL", "pos" },
    ["--worker-ttl"] = { "worker_ttl", "WTT_WORKER_TTL", "pos" },
    ["--reap-interval"] = { "reap_interval", "WTT_REAP_INTERVAL", "num" },
    ["--retries"] = { "retries", "WTT_HTTP_RETRIES", "int" },
    ["--backoff"] = { "backoff", "WTT_HTTP_BACKOFF", "num" },
    ["--backoff-max"] = { "backoff_max", "WTT_HTTP_BACKOFF_MAX", "num" },
    ["--http-timeout"] = { "http_timeout", "WTT_HTTP_TIMEOUT", "pos" },
    ["--batch-tasks"] = { "batch_tasks", "WTT_BATCH_TASKS", "int" },
    ["--max-device-faults"] = { "max_device_faults", "WTT_MAX_DEVICE_FAULTS",
                                "int" },
    ["--max-local-failures"] = { "max_local_failures",
                                 "WTT_WORKER_MAX_LOCAL_FAILURES", "int" },
    ["--max-audio-s"] = { "max_audio_s", "WTT_WORKER_MAX_AUDIO_S", "num" },
    ["--max-task-s"] = { "max_task_s", "WTT_WORKER_MAX_TASK_S", "num" },
    ["--max-rss-mb"] = { "max_rss_mb", "WTT_WORKER_MAX_RSS_MB", "num" },
    ["--max-file-mb"] = { "max_file_mb", "WTT_WORKER_MAX_FILE_MB", "num" },
    ["--device-fault-backoff"] = { "device_fault_backoff",
                                   "WTT_DEVICE_FAULT_BACKOFF", "num" },
}
local SWITCHES = {
    ["--noop"] = { "noop", "WTT_WORKER_NOOP" },
    ["--once"] = { "once" },
}


local fail = args.failer("worker")


local function convert(flag, kind, value)
    if not kind then
        return value
    end
    local n = tonumber(value)
    if not n or n ~= n or n < 0 or n == math.huge
       or (kind == "int" and (n ~= math.floor(n) or n < 1))
       or (kind == "pos" and n <= 0)
    then
        fail(2, "%s: bad value '%s'", flag, tostring(value))
    end
    return n
end


local function parse(argv)
    local cfg = {}
    -- Environment first, flags over it.
    for flag, o in pairs(OPTIONS) do
        local v = os.getenv(o[2])
        if v and v ~= "" then
            cfg[o[1]] = convert(o[2], o[3], v)
        end
    end
    for _, o in pairs(SWITCHES) do
        local v = o[2] and os.getenv(o[2])
        if v and v ~= "" and v ~= "0" then
            cfg[o[1]] = true
        end
    end
    -- Tests only: seconds slept after every inference window.
    local s = os.getenv("WTT_WORKER_TEST_WINDOW_SLEEP")
    if s and s ~= "" then
        cfg.test_window_sleep = convert("WTT_WORKER_TEST_WINDOW_SLEEP",
                                        "num", s)
    end
    -- Tests only: a task whose audio is this media name kills the worker
    -- (SIGKILL) once downloaded, as a file that crashes the decoder would.
    s = os.getenv("WTT_WORKER_TEST_CRASH_ON")
    if s and s ~= "" then
        cfg.test_crash_on = s
    end
    -- Tests only: a task whose audio is this media name spins the CPU once
    -- downloaded, as a decoder stuck in a loop would (the RLIMIT_CPU
    -- backstop of docs/worker.md "Limits").
    s = os.getenv("WTT_WORKER_TEST_SPIN_ON")
    if s and s ~= "" then
        cfg.test_spin_on = s
    end
    -- Tests only: engine runs (batches of windows) after this many (>= 1)
    -- fail as device faults.
    s = os.getenv("WTT_TEST_DEVICE_FAULT_AFTER")
    if s and s ~= "" then
        cfg.test_device_fault_after = convert("WTT_TEST_DEVICE_FAULT_AFTER",
                                              "int", s)
    end
    local switches, options = {}, {}
    for flag, o in pairs(SWITCHES) do
        switches[flag] = function() cfg[o[1]] = true end
    end
    for flag, o in pairs(OPTIONS) do
        options[flag] = function(v) cfg[o[1]] = convert(flag, o[3], v) end
    end
    args.parse(argv, { usage = USAGE, fail = fail, switches = switches,
                       options = options })
    if cfg.device and cfg.device ~= "auto" and cfg.device ~= "cpu"
       and cfg.device ~= "cuda" and not cfg.device:match("^cuda:%d+$")
    then
        fail(2, "--device: expected auto, cpu, cuda or cuda:N, got '%s'",
             cfg.device)
    end
    return cfg
end


local cfg = parse({ ... })
local w, err = worker.new(cfg)
if not w then
    fail(2, "%s", err)
end
if cfg.metrics_listen then
    -- Before the first claim, so the families show at zero; a listener
    -- that cannot bind is a start failure, not a silent gap in the graphs.
    local metrics = require "wtt.metrics"
    metrics.declare({ "wtt_worker_tasks_total", "wtt_worker_windows_total",
                      "wtt_worker_task_run_seconds",
                      "wtt_worker_device_faults_total",
                      "wtt_worker_local_failures_total",
                      "wtt_worker_batch_tasks",
                      "wtt_inference_realtime_factor",
                      "wtt_tasks_retried_total",
                      "wtt_tasks_dead_lettered_total" })
    local port, lerr = metrics.listen(cfg.metrics_listen)
    if not port then
        fail(1, "--metrics-listen: %s", lerr)
    end
    require("wtt.log").info("worker.metrics_listening",
                            { addr = cfg.metrics_listen, port = port })
end
os.exit(w:run())
