-- Redis round trips through wtt.redis, for bench/data.sh.
-- usage: wtt run redis_rt.lua URL N PIPELINE
-- Prints "set_rps=<x> get_rps=<y> ops_rps=<z>" (one SET then one GET per key,
-- PIPELINE commands per round trip).
local redis = require "wtt.redis"
local sys = require "wtt.sys"

local url, n, depth = arg[1], tonumber(arg[2]), tonumber(arg[3] or 1)
local r = assert(redis.connect(url))
local VALUE = "xxx"     -- redis-benchmark's default 3-byte payload

local function phase(cmd)
    local t0 = sys.now()
    if depth == 1 then
        for i = 1, n do
            local key = "key:" .. (i % 100000)
            local ok, err
            if cmd == "SET" then
                ok, err = r:call("SET", key, VALUE)
            else
                ok, err = r:call("GET", key)
            end
            if err then
                error(cmd .. " failed: " .. err)
            end
        end
    else
        for base = 0, n - 1, depth do
            local res, err = r:pipeline(function(p)
                for j = base, math.min(base + depth, n) - 1 do
                    local key = "key:" .. (j % 100000)
                    if cmd == "SET" then
                        p:call("SET", key, VALUE)
                    else
                        p:call("GET", key)
                    end
                end
            end)
            if not res then
                error(cmd .. " pipeline failed: " .. tostring(err))
            end
        end
    end
    return n / (sys.now() - t0)
end

local set_rps = phase("SET")
local get_rps = phase("GET")
-- Harmonic combination: total operations over total time.
local ops = 2 / (1 / set_rps + 1 / get_rps)
io.write(string.format("set_rps=%.0f get_rps=%.0f ops_rps=%.0f\n",
                       set_rps, get_rps, ops))
