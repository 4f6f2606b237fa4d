-- `wtt queue COMMAND`: inspect and manage the task queue (docs/queue.md).
--
-- Exit status: 0 done, 1 a failure or a refusal (unknown id, missing
-- --yes), 2 usage.

local args = require "wtt.cli.args"
local redis = require "wtt.redis"
local queue = require "wtt.queue"

local USAGE = [[
usage: wtt queue [--redis-url URL] [--prefix P] COMMAND [ARGS]

Commands:
  stats              depths of the queue, processing, dead letters, results
                     backlog; paused or not; live workers
  list-dead [N]      the oldest N dead letters (default 20): id, attempts, error
  inspect ID         every field of task ID
  requeue ID         put dead letter ID back in the queue (attempts reset)
  requeue-all --yes  put every dead letter back
  purge-dead --yes   delete every dead letter and its task hash
  pause              stop workers from claiming tasks
  resume             let them claim again
  reap               recover claims past their deadline now

  --redis-url URL    default: REDIS_URL, else redis://127.0.0.1:6379
  --prefix P         key prefix; default: WTT_KEY_PREFIX, else none
]]


local say = args.say
local fail = args.failer("queue")


local function parse(argv)
    local opts = { args = {} }
    args.parse(argv, {
        usage = USAGE, fail = fail,
        switches = { ["--yes"] = function() opts.yes = true end },
        options = {
            ["--redis-url"] = function(v) opts.url = v end,
            ["--prefix"] = function(v) opts.prefix = v end,
        },
        positional = function(a) opts.args[#opts.args + 1] = a end,
    })
    return opts
end


local opts = parse({ ... })
local cmd = opts.args[1]
if not cmd then
    io.stderr:write(USAGE)
    os.exit(2)
end

local url = opts.url or os.getenv("REDIS_URL") or "redis://127.0.0.1:6379"
local r, err = redis.connect(url)
if not r then
    fail(1, "%s", (redis.explain(err, url:match("^rediss:") ~= nil)))
end
local q = queue.new(r, { prefix = opts.prefix or os.getenv("WTT_KEY_PREFIX")
                                  or "" })


local function need_id()
    local id = opts.args[2]
    if not id then
        fail(2, "%s needs a task id", cmd)
    end
    return id
end


local function need_yes()
    if not opts.yes then
        fail(1, "%s changes every dead letter: run it again with --yes", cmd)
    end
end


local function check(v, e)
    if v == nil and e ~= nil then
        fail(1, "%s: %s", cmd, e)
    end
    return v
end


local COMMANDS = {}

function COMMANDS.stats()
    local s = check(q:stats())
    say("pending     %d", s.pending)
    say("processing  %d", s.processing)
    say("failed      %d", s.failed)
    say("results     %d", s.results)
    say("paused      %s", s.paused and "yes" or "no")
    say("workers     %d", s.workers)
end

COMMANDS["list-dead"] = function()
    local n = tonumber(opts.args[2] or "20")
    if not n or n < 1 then
        fail(2, "list-dead: N must be a positive number")
    end
    local ids = check(q:dead(0, n))
    for _, id in ipairs(ids) do
        local h = q:get(id)
        if h then
            say("%s  attempts=%s  %s", id, h.attempts or "?",
                (h.error or ""):gsub("\n", " "))
        else
            say("%s  (hash expired)", id)
        end
    end
    say("%d shown", #ids)
end

function COMMANDS.inspect()
    local id = need_id()
    local h = q:get(id)
    if not h then
        fail(1, "inspect: no task %s", id)
    end
    local names = {}
    for k in pairs(h) do
        names[#names + 1] = k
    end
    table.sort(names)
    for _, k in ipairs(names) do
        say("%-14s %s", k, h[k])
    end
end

function COMMANDS.requeue()
    local id = need_id()
    check(q:requeue_dead(id))
    say("requeued %s", id)
end

COMMANDS["requeue-all"] = function()
    need_yes()
    say("requeued %d", check(q:requeue_all_dead()))
end

COMMANDS["purge-dead"] = function()
    need_yes()
    say("purged %d", check(q:purge_dead()))
end

function COMMANDS.pause()
    check(q:pause())
    say("paused")
end

function COMMANDS.resume()
    check(q:resume())
    say("resumed")
end

function COMMANDS.reap()
    -- Reaping applies the timeout and dead-letter policy: a broken plugin
    -- set is a configuration error to report, not a traceback.
    check(require("wtt.policy").reload())
    local requeued, dead = q:reap()
    check(requeued, dead)
    say("requeued %d, dead %d", requeued, dead)
end

local fn = COMMANDS[cmd]
if not fn then
    fail(2, "unknown command '%s' (see --help)", cmd)
end
fn()
r:close()
os.exit(0)
