-- The fan-out hub's thread (started by wtt.fanout on first use, inside
-- `wtt serve`): runs the hub loop until the server stops it. A failure is
-- logged and the loop starts over, so the streams never lose their hub
-- for good; what they missed meanwhile they read again at the next sync.

local core = require "wtt.core.fanout"
local hub = require "wtt.fanout.hub"
local log = require "wtt.log"

local redis_url = ...

while not core.hub_stopping() do
    local ok, err = pcall(hub.run, redis_url)
    if core.hub_stopping() then
        break
    end
    log.error("fanout.hub_failed", { error = tostring(ok and err or err) })
    core.hub_wait(nil, 1)
end
log.info("fanout.hub_stopped", {})
