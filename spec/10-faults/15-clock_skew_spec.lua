-- P1: clock skew between machines (docs/reliability.md). Web (with its
-- subscriber and reaper) runs with its wall clock 3 minutes slow, one
-- worker 5 minutes fast and one 5 minutes slow: libfaketime (Debian's
-- faketime package) shifts CLOCK_REALTIME, time() and gettimeofday() of
-- each process, as a host with a wrong clock would; the monotonic clock is
-- left alone (DONT_FAKE_MONOTONIC), as it is per machine anyway.
--
-- Deadlines are on one clock, Redis `TIME`, passed into the scripts
-- (docs/system-design.md). So, whatever the skew:
-- - no healthy task is reaped early (a claim's deadline computed on a slow
--   clock would already be past, minutes early): every task completes on
--   its first attempt, no worker is told its claim was lost;
-- - a killed worker's task is handed on after the visibility timeout, not
--   minutes late (a deadline on a fast clock, or a reaper comparing on a
--   slow one, would hold it for minutes): wait_task's bound is 20 s;
-- - and not early: no sooner than the visibility timeout after the kill.
-- The invariant checker runs after each scenario.

local support = require "spec.support.faults"
local httpc = require "wtt.http_client"
local sys = require "wtt.sys"

local VT = support.VT_MS / 1000
local LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"


-- The environment that runs a process with its wall clock `offset` off
-- ("+5m", "-3m"). ASan wants its runtime first among the libraries; the
-- preload comes before it, which is harmless here, so the check is off.
local function skewed(offset)
    return {
        LD_PRELOAD = LIBFAKETIME,
        FAKETIME = offset,
        DONT_FAKE_MONOTONIC = "1",
        ASAN_OPTIONS = (os.getenv("ASAN_OPTIONS") or "")
                       .. ":verify_asan_link_order=0",
    }
end


-- Seconds between the server's clock (its Date header) and ours.
local function skew_of(url)
    local res = assert(httpc.request({ url = url .. "/livez", timeout = 5 }))
    local date = res.headers and (res.headers["date"] or res.headers["Date"])
    assert(date, "no Date header")
    local d, mon, y, h, mi, s = date:match(
        "%a+, (%d+) (%a+) (%d+) (%d+):(%d+):(%d+) GMT")
    local months = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6,
                     Jul = 7, Aug = 8, Sep = 9, Oct = 10, Nov = 11, Dec = 12 }
    -- os.time reads a local time; TZ=UTC is not assumed, so the UTC
    -- offset of this host is taken out the same way for both sides.
    local t = os.time({ year = tonumber(y), month = months[mon],
                        day = tonumber(d), hour = tonumber(h),
                        min = tonumber(mi), sec = tonumber(s) })
    local now = os.time(os.date("!*t"))
    return t - now
end


-- Seconds between the newest log line's timestamp of `text` (a worker's
-- log) and our clock.
local function log_skew(text)
    local y, mo, d, h, mi, s
    for a, b, c, e, f, g in text:gmatch(
            "ts=(%d+)%-(%d+)%-(%d+)T(%d+):(%d+):(%d+)") do
        y, mo, d, h, mi, s = a, b, c, e, f, g
    end
    assert(y, "no timestamp in the log")
    local t = os.time({ year = tonumber(y), month = tonumber(mo),
                        day = tonumber(d), hour = tonumber(h),
                        min = tonumber(mi), sec = tonumber(s) })
    return t - os.time(os.date("!*t"))
end


describe("P1: clock skew #redis #pg", function()
    local env

    setup(function()
        if sys.exists(LIBFAKETIME) ~= "file" then
            return
        end
        env = support.start({ env = skewed("-3m") })
    end)

    teardown(function()
        if env then
            env:stop()
        end
    end)

    after_each(function()
        if env then
            env:kill_workers()
        end
    end)

    local function need_faketime()
        if not env then
            pending("skipped, because " .. LIBFAKETIME .. " is missing "
                    .. "(scripts/bootstrap installs faketime)")
            return false
        end
        return true
    end

    local function completed(h)
        return h.status == "completed"
    end

    it("web's clock really is 3 minutes slow", function()
        if not need_faketime() then return end
        local skew = skew_of(env.url)
        assert.is_true(skew < -150 and skew > -210, "skew " .. skew .. " s")
    end)

    it("workers 5 minutes fast and 5 minutes slow: every task completes on "
       .. "its first attempt, no claim is lost", function()
        if not need_faketime() then return end
        -- Tasks of a few seconds (a worker claims none while it runs one),
        -- so the second goes to whichever worker is free: both take part.
        local function worker(offset)
            local e = skewed(offset)
            e.WTT_WORKER_TEST_WINDOW_SLEEP = "0.3"
            local w = env:worker(e)
            assert.equal(1, w:await("worker.started"), w:text())
            return w
        end
        local fast, slow = worker("+5m"), worker("-5m")
        local tasks = {}
        for i = 1, 6 do
            local _, tid = env:submit(support.CLIP_NAMES[(i - 1) % 3 + 1])
            tasks[#tasks + 1] = tid
        end
        for _, tid in ipairs(tasks) do
            local h = env:wait_task(tid, completed, 60, "completion")
            assert.equal("1", h.attempts, tid)
        end
        -- The preload took: their logs are stamped 5 minutes off.
        local f, sl = log_skew(fast:text()), log_skew(slow:text())
        assert.is_true(f > 240 and f < 360, "fast worker skew " .. f)
        assert.is_true(sl < -240 and sl > -360, "slow worker skew " .. sl)
        -- Both took part, and neither was ever told it held a claim no
        -- longer its own.
        assert.is_true(fast:count("task.completed") >= 1, fast:text())
        assert.is_true(slow:count("task.completed") >= 1, slow:text())
        assert.equal(0, fast:count("task.lost"), fast:text())
        assert.equal(0, slow:count("task.lost"), slow:text())
        env:check_invariants(5)
    end)

    it("a killed fast-clock worker's task goes on after the visibility "
       .. "timeout, not minutes later and not sooner", function()
        if not need_faketime() then return end
        local _, tid = env:submit("guitar_nylon_single")
        local fast = skewed("+5m")
        fast.WTT_WORKER_TEST_WINDOW_SLEEP = "1"
        local a = env:worker(fast)
        env:wait_task(tid, support.running_on(a, 1), 20,
                      "first progress on the fast worker")
        a:kill()
        local killed_at = sys.now()
        local b = env:worker(skewed("-5m"))
        local h = env:wait_task(tid, completed, 20, "completion by the "
                                .. "slow worker")
        assert.is_true(sys.now() - killed_at >= VT - 0.5,
                       "handed on after only " .. (sys.now() - killed_at)
                       .. " s")
        assert.equal("2", h.attempts)
        assert.equal(1, b:await("task.completed id=" .. tid), b:text())
        env:check_invariants(5)
    end)
end)
