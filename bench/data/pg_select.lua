-- Primary-key SELECTs through wtt.pg, for bench/data.sh.
-- usage: wtt run pg_select.lua URL N ROWS
-- Prints "tps=<x>" for the same query pgbench -S runs.
local pg = require "wtt.pg"
local sys = require "wtt.sys"

local url, n, rows = arg[1], tonumber(arg[2]), tonumber(arg[3])
local db = assert(pg.connect(url))
local SQL = "SELECT abalance FROM pgbench_accounts WHERE aid = $1"

math.randomseed(42)
local t0 = sys.now()
for _ = 1, n do
    local res, err = db:query(SQL, math.random(1, rows))
    if not res then
        error("select failed: " .. tostring(err))
    end
    assert(#res == 1)
end
io.write(string.format("tps=%.0f\n", n / (sys.now() - t0)))
