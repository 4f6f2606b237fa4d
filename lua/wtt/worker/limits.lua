--- The worker's bounds on one task (docs/worker.md "Limits"; the audio
-- bombs of docs/reliability.md H4): the audio's duration, the time and
-- memory a task may use and the size of any file it writes. Each is
-- enforced, not only reported:
--
-- - duration: the engine's decoder stops at `max_audio_s` (a known length
--   over it is refused before decoding), which bounds the work of a task;
-- - time: every inference window checks the task's wall time against
--   `max_task_s`, and the kernel backs it up: the soft RLIMIT_CPU is set at
--   each task's start to the CPU time used so far plus what twice
--   `max_task_s` (and the grace) of every thread can burn, so a task stuck
--   between windows (in a decoder) is killed with SIGXCPU; its claim then
--   expires and the reaper charges it like any crash, so it is
--   dead-lettered at max_attempts rather than retried forever;
-- - memory: every window checks the resident set against `max_rss_mb`.
--   The engine bounds a task's memory by design (decoding is streamed in
--   blocks of at most 4 Mi samples whatever the rate or channel count; the
--   posteriorgram goes to a temp file beyond `memory_mb`), so the check is
--   the backstop. No RLIMIT_AS/RLIMIT_DATA: the engine reports a failed
--   allocation as a device fault (released uncharged, for a GPU out of
--   memory), so a process-wide cap would hand a hungry task back forever
--   instead of charging it, and CUDA maps the device into the address
--   space, which RLIMIT_AS would count;
-- - temp disk: RLIMIT_FSIZE caps every file the worker writes (download,
--   the posteriorgram's spill file, results) at `max_file_mb`; SIGXFSZ is
--   trapped, so a write past it fails with EFBIG ("File too large") and
--   the task fails, not retryable, while the worker goes on.
--
-- A task over a limit fails not retryable with a reason naming the limit
-- ("limit: ..."), so it goes to the dead letters at once.

local log = require "wtt.log"
local sys = require "wtt.sys"

local _M = {}

local worker = {}
_M.worker = worker

local MIB = 1024 * 1024


--- True when `err` (a task's failure) came from a limit of this module or
-- the file size limit, so no retry can help.
function _M.over_limit(err)
    return type(err) == "string"
        and (err:find("limit: ", 1, true) ~= nil
             or err:lower():find("file too large", 1, true) ~= nil)
end


--- Applies the process-wide limits once, at start. @return true | nil, err
function worker.apply_limits(self)
    local cfg = self.cfg
    if (cfg.max_file_mb or 0) > 0 then
        local bytes = math.floor(cfg.max_file_mb * MIB)
        if cfg.max_download and cfg.max_download > bytes then
            return nil, string.format("max download (%d bytes) over the "
                .. "file size limit (%d bytes, WTT_WORKER_MAX_FILE_MB)",
                cfg.max_download, bytes)
        end
        -- Trapped rather than left to kill the process: a write past the
        -- limit then fails with EFBIG and only the task fails.
        sys.trap("XFSZ")
        local ok, err = sys.setrlimit("fsize", bytes)
        if not ok then
            return nil, "file size limit: " .. tostring(err)
        end
        -- The limit holds for every file the process writes, a log file
        -- its output is appended to included (the journal or a pipe is
        -- not a file): say so, as lines past it would be lost.
        local seen = {}
        for fd = 1, 2 do
            local path = sys.realpath("/proc/self/fd/" .. fd)
            if path and path:sub(1, 5) ~= "/dev/" and not seen[path] then
                seen[path] = true
                log.warn("worker.log_file_limited", { path = path,
                    max_file_mb = cfg.max_file_mb })
            end
        end
    end
    log.info("worker.limits", {
        max_audio_s = cfg.max_audio_s, max_task_s = cfg.max_task_s,
        max_rss_mb = cfg.max_rss_mb, max_file_mb = cfg.max_file_mb,
    })
    return true
end


-- What the worker's CPU time can grow by per second of wall time: its
-- inference threads and one for the rest (decoding, the heartbeat thread).
local function cpu_width(cfg)
    return (cfg.threads or sys.cpu_count()) + 1
end


--- Arms the kernel's per-task CPU bound (see above) before a task or
-- batch; disarm_task undoes it.
function worker.arm_task(self)
    local cfg = self.cfg
    if (cfg.max_task_s or 0) <= 0 then
        return
    end
    local used = sys.cpu_s() or 0
    -- Twice the wall limit of every thread, plus the grace: the window
    -- check fires long before unless the task is stuck between windows.
    local budget = (2 * cfg.max_task_s + cfg.grace) * cpu_width(cfg)
    local ok, err = sys.setrlimit("cpu", math.ceil(used + budget))
    if not ok then
        log.warn("worker.cpu_limit_failed", { error = err })
    end
end


function worker.disarm_task(self)
    if (self.cfg.max_task_s or 0) <= 0 then
        return
    end
    local _, hard = sys.getrlimit("cpu")
    sys.setrlimit("cpu", hard or math.huge)
end


--- The limit a task whose inference started at `started` is over, as a
-- failure reason, or nil. Called from every window.
function worker.over_limits(self, started)
    local cfg = self.cfg
    if (cfg.max_task_s or 0) > 0 and sys.now() - started > cfg.max_task_s
    then
        return string.format("limit: the task ran past the worker's time "
                             .. "limit of %g s (WTT_WORKER_MAX_TASK_S)",
                             cfg.max_task_s)
    end
    if (cfg.max_rss_mb or 0) > 0 then
        local kb = sys.rss_kb()
        if kb and kb > cfg.max_rss_mb * 1024 then
            return string.format("limit: the worker's resident memory "
                                 .. "(%d MiB) went over its limit of %g MiB "
                                 .. "(WTT_WORKER_MAX_RSS_MB)",
                                 math.floor(kb / 1024), cfg.max_rss_mb)
        end
    end
    return nil
end


return _M
