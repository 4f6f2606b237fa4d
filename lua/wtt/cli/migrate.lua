-- `wtt migrate [--status] [--database-url URL] [--dir DIR]`: applies
-- lua/migrations/NNN_name.sql to DATABASE_URL (wtt.migrate does the work).
--
-- Exit status: 0 applied or up to date (--status: nothing wrong), 1 a
-- failure or a refusal (edited or missing applied migration), 2 usage.

local args = require "wtt.cli.args"
local pg = require "wtt.pg"
local migrate = require "wtt.migrate"

local USAGE = [[
usage: wtt migrate [--status] [--database-url URL] [--dir DIR]

Applies the pending migrations NNN_name.sql of DIR in numeric order, each in
its own transaction, under a PostgreSQL advisory lock; records them in
schema_migrations. Refuses to run when an applied migration was edited or
removed.

  --status            list applied and pending migrations, change nothing
  --database-url URL  default: DATABASE_URL
  --dir DIR           default: WTT_MIGRATIONS_DIR, else lua/migrations
]]


local say = args.say
local fail = args.failer("migrate")


local function parse(argv)
    local opts = {}
    args.parse(argv, {
        usage = USAGE, fail = fail,
        switches = { ["--status"] = function() opts.status = true end },
        options = {
            ["--database-url"] = function(v) opts.url = v end,
            ["--dir"] = function(v) opts.dir = v end,
        },
    })
    return opts
end


local function print_status(db, dir)
    local report, err = migrate.inspect(db, dir)
    if not report then
        return fail(1, "%s", err)
    end
    say("migrations in %s", dir)
    local n_applied = 0
    for _, m in ipairs(report.files) do
        local row = report.applied[m.version]
        if row then
            n_applied = n_applied + 1
            local mark = row.checksum == m.checksum and "applied"
                         or "EDITED"
            say("  %-8s %-40s %s", mark, m.file, row.applied_at)
        else
            say("  %-8s %s", "pending", m.file)
        end
    end
    for _, problem in ipairs(report.problems) do
        io.stderr:write("wtt migrate: ", problem, "\n")
    end
    say("%d applied, %d pending", n_applied, #report.pending)
    return #report.problems == 0
end


local opts = parse({ ... })
local url = opts.url or os.getenv("DATABASE_URL")
if not url or url == "" then
    fail(2, "DATABASE_URL is not set (or pass --database-url)")
end
local dir = opts.dir or migrate.default_dir()

-- No reconnects: a new session would run without the advisory lock.
local db, err = pg.connect(url, { application_name = "wtt migrate",
                                  reconnect = false })
if not db then
    fail(1, "%s", err)
end

if opts.status then
    local ok = print_status(db, dir)
    db:close()
    os.exit(ok and 0 or 1)
end

local done, rerr, partial = migrate.run(db, {
    dir = dir,
    on_applied = function(m, seconds)
        say("applied %s (%.0f ms)", m.file, seconds * 1000)
    end,
})
db:close()
if not done then
    if partial and #partial > 0 then
        say("applied %d migration(s) before the failure", #partial)
    end
    fail(1, "%s", rerr)
end
if #done == 0 then
    say("up to date")
else
    say("%d migration(s) applied", #done)
end
