--- The worker's and the standalone subscriber's side of systemd's
-- Type=notify protocol (sd_notify(3); docs/operations.md, "systemd"):
-- READY=1 once the process does its job, RELOADING=1 then READY=1 around a
-- reload asked for with SIGHUP (`systemctl reload`, ExecReload), and
-- STOPPING=1 when a stop signal arrives. `wtt serve` sends the same states
-- from C (its HTTP server and reload code). Without NOTIFY_SOCKET (not
-- under systemd) every call is a no-op.

local log = require "wtt.log"
local sys = require "wtt.sys"

local _M = {}


local function send(state)
    local ok, err = sys.notify(state)
    if ok == nil then
        -- The manager is gone or the socket refuses: the process still does
        -- its work; systemd's start timeout says the rest.
        log.warn("notify.failed", { state = state:match("^[^\n]*"),
                                    error = err })
    end
end


--- The process does its job now (connected, subscribed, model loaded).
function _M.ready(status)
    send("READY=1" .. (status and ("\nSTATUS=" .. status) or ""))
end


--- A stop signal arrived: the process finishes what it holds and exits.
function _M.stopping()
    send("STOPPING=1")
end


--- A poller for SIGHUP reloads: traps HUP, and returns a function that,
-- each time it finds new HUPs, tells systemd RELOADING=1 (with the
-- monotonic time systemd asks for), runs `reload()` (true | nil, err),
-- logs the outcome and says READY=1 again. A failed reload leaves the
-- process as it was (reload's own contract), so READY=1 follows either way.
function _M.on_hup(what, reload)
    sys.trap({ "HUP" })
    local seen = select(2, sys.signaled("HUP"))
    return function()
        local _, n = sys.signaled("HUP")
        if n == seen then
            return
        end
        seen = n
        send(string.format("RELOADING=1\nMONOTONIC_USEC=%d",
                           math.floor(sys.now() * 1e6)))
        local ok, err = reload()
        if ok then
            log.info(what .. ".reloaded", { reason = "SIGHUP" })
        else
            log.error(what .. ".reload_failed", { reason = "SIGHUP",
                                                  error = tostring(err) })
        end
        send("READY=1")
    end
end

return _M
