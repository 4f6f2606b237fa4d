--- Jitter for retry delays: uniform numbers in (0, 1) from a Park-Miller
-- "minimal standard" generator (multiplier 16807, modulus 2^31 - 1; exact
-- in doubles). The shared one is seeded per Lua state from the clock and
-- the pid, so that processes restarted together do not retry in step;
-- math.random and its global sequence are left alone.
--
--     local jitter = require "wtt.jitter"
--     local delay = base / 2 + jitter.random() * base / 2

local sys = require "wtt.sys"

local floor = math.floor

local _M = {}

local M = 2147483647     -- 2^31 - 1
local A = 16807


--- A generator from `seed` (an integer; reduced into 1 .. M - 1).
-- @return function() -> number in (0, 1), and the raw state after the draw
function _M.new(seed)
    local s = floor(tonumber(seed) or 0) % (M - 1) + 1
    return function()
        s = (s * A) % M
        return s / M, s
    end
end


--- The shared generator of this Lua state.
_M.random = _M.new(floor(sys.now() * 1e6) + sys.getpid() * 7919)


return _M
