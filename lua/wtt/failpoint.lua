--- Kill points for the fault specs (docs/reliability.md W6, W8): in the
-- test program `wtt_failpoint`, `hit(name)` ends the process by SIGKILL
-- when WTT_FAILPOINT names that point (core/app/wtt_failpoint.c). The
-- product `wtt` has no such C module, and here `hit` does nothing: no
-- environment or request can make it kill itself.

-- Built-in C modules sit in package.preload (core/base/wtt_vm.c); a Lua
-- file of that name elsewhere on the path is never looked at.
local open = package.preload["wtt.core.failpoint"]

local _M = {}

--- True in the test program (the kill points can fire).
_M.compiled = open ~= nil

if _M.compiled then
    _M.hit = require("wtt.core.failpoint").hit
else
    function _M.hit()
    end
end

return _M
