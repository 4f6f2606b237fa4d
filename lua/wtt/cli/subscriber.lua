-- `wtt subscriber [--database-url URL] [--redis-url URL] [--key-prefix P]`:
-- records the queue's results in PostgreSQL (lua/wtt/subscriber.lua does
-- the work) and runs the reconciler. `wtt serve` runs this same script on
-- a background thread with the argument "--in-serve" (then it never exits
-- the process: every failure is logged and retried, and it returns when
-- serve stops).
--
-- Exit status: 0 after SIGTERM or SIGINT, 1 when it cannot start, 2 usage.

local argv = { ... }
local in_serve = argv[1] == "--in-serve"

local USAGE = [[
usage: wtt subscriber [options]

SUBSCRIBEs to task:claimed/progress/completed/failed, drains the durable
task:results backlog into PostgreSQL (an id leaves the backlog only after
its row is committed), and re-enqueues tasks PostgreSQL says are pending or
processing that Redis lost. Runs until SIGTERM or SIGINT (it stops at its
next message or tick); SIGHUP reloads plugins/. Killing it at any point
loses nothing.

  --database-url URL   DATABASE_URL (required)
  --redis-url URL      REDIS_URL (redis://127.0.0.1:6379)
  --key-prefix P       WTT_KEY_PREFIX ("")
  --tick S             WTT_SUBSCRIBER_TICK_S: poll fallback period (1)
  --reconcile S        WTT_RECONCILE_INTERVAL_S: reconciler period (30)
]]

local FLAGS = {
    ["--database-url"] = "DATABASE_URL", ["--redis-url"] = "REDIS_URL",
    ["--key-prefix"] = "WTT_KEY_PREFIX", ["--tick"] = "WTT_SUBSCRIBER_TICK_S",
    ["--reconcile"] = "WTT_RECONCILE_INTERVAL_S",
}

local args = require "wtt.cli.args"
local fail = args.failer("subscriber")

if not in_serve then
    local sys = require "wtt.sys"
    local options = {}
    for flag, env in pairs(FLAGS) do
        options[flag] = function(v) sys.setenv(env, v) end
    end
    args.parse(argv, { usage = USAGE, fail = fail, options = options })
end

local log = require "wtt.log"
local subscriber = require "wtt.subscriber"

if in_serve then
    -- Never take the server down: log and start over, until serve stops
    -- (it sets thread.stopping() on SIGTERM and waits for this to return).
    local sys = require "wtt.sys"
    local stopping = require("wtt.thread").stopping
    while not stopping() do
        local ok, err = pcall(subscriber.run, { stop = stopping })
        if stopping() then
            break
        end
        log.error("subscriber.stopped", { error = tostring(ok and err or err) })
        local resume = sys.now() + 2
        while sys.now() < resume and not stopping() do
            sys.sleep(0.1)
        end
    end
    log.info("subscriber.stopped_by_serve", {})
    return
end

-- Standalone (wtt-subscriber.service, Type=notify): READY=1 once subscribed
-- and the first sweep is done; SIGTERM or SIGINT ends the loop at its next
-- message or tick (STOPPING=1, exit 0); SIGHUP reloads plugins/ at once.
local sys = require "wtt.sys"
local notify = require "wtt.notify"
sys.trap({ "TERM", "INT" })
local poll_hup = notify.on_hup("subscriber", require("wtt.policy").reload)
local stopping = false
local ok, err = pcall(subscriber.run, {
    on_ready = function() notify.ready("subscribed") end,
    stop = function()
        if not stopping and (sys.signaled("TERM") or sys.signaled("INT")) then
            stopping = true
            notify.stopping()
            log.info("subscriber.stopping", {})
        end
        poll_hup()
        return stopping
    end,
})
if not ok or not err then
    fail(1, "%s", tostring(err))
end
os.exit(0)
