-- `wtt worker` and `wtt subscriber` under systemd's Type=notify
-- (docker/systemd/wtt-worker@.service, wtt-subscriber.service): READY=1
-- once they do their job, RELOADING=1 (with MONOTONIC_USEC) then READY=1
-- around a SIGHUP reload of plugins/, STOPPING=1 on SIGTERM, exit 0. The
-- stand-in for systemd's socket is spec/support/notify.lua; Redis,
-- PostgreSQL and web are real.

local W = require "spec.support.worker"
local S = require "spec.support.service"
local notify = require "spec.support.notify"
local helpers = require "spec.support.server"
local runtime = require "wtt.runtime"
local sys = require "wtt.sys"


-- The states in the order they arrived, one per datagram.
local function states(text)
    local out = {}
    for line in text:gmatch("[^\n]+") do
        out[#out + 1] = line:match("^(%u+=%d)")
    end
    return out
end


describe("wtt worker: systemd notifications #redis", function()
    local s, listener
    setup(function()
        s = W.stack()
    end)
    teardown(function()
        if listener then listener:close() end
        if s then s:stop() end
    end)

    it("sends READY=1 once claiming, RELOADING/READY on SIGHUP and "
       .. "STOPPING=1 on SIGTERM", function()
        listener = notify.listen()
        local w = s:start_worker("nw:", { NOTIFY_SOCKET = listener.socket })
        assert.truthy(listener:wait_for("READY=1"), "no READY=1: " .. w.text())
        -- Ready means claiming: a task enqueued now is done.
        local id = s:enqueue("nw:")
        assert.truthy(helpers.eventually(function()
            return s:task("nw:", id).status == "completed"
        end, 60), w.text())

        sys.kill(w.pid, "HUP")
        assert.truthy(listener:wait_for("READY=1", 2), "no READY=1 after "
                      .. "the reload: " .. listener:text() .. w.text())
        assert.truthy(w.text():find("worker.reloaded", 1, true), w.text())
        sys.kill(w.pid, "TERM")
        assert.same({ "exited", 0 }, { w.wait(30) })
        -- The listener writes what it received on its own time.
        assert.truthy(listener:wait_for("STOPPING=1"), listener:text())
        assert.same({ "READY=1", "RELOADING=1", "READY=1", "STOPPING=1" },
                    states(listener:text()))
        assert.truthy(listener:text():find("RELOADING=1 MONOTONIC_USEC=%d+"))
    end)

    it("reports a plugin set that fails to load and keeps running",
       function()
        local plugins = assert(sys.mkdtemp("wtt-notify-plugins-"))
        os.execute("cp -r '" .. runtime.plugins_dir .. "/.' '" .. plugins
                   .. "/'")
        local l = notify.listen()
        local w = s:start_worker("nw2:", { NOTIFY_SOCKET = l.socket,
                                           WTT_PLUGINS_DIR = plugins })
        assert.truthy(l:wait_for("READY=1"), w.text())
        assert(sys.write_file(plugins .. "/retry.lua", "return {"))
        sys.kill(w.pid, "HUP")
        assert.truthy(l:wait_for("READY=1", 2), l:text() .. w.text())
        assert.truthy(w.text():find("worker.reload_failed", 1, true), w.text())
        local id = s:enqueue("nw2:")
        assert.truthy(helpers.eventually(function()
            return s:task("nw2:", id).status == "completed"
        end, 60), w.text())
        sys.kill(w.pid, "TERM")
        assert.same({ "exited", 0 }, { w.wait(30) })
        l:close()
        sys.rmtree(plugins)
    end)
end)


describe("wtt subscriber: systemd notifications #redis #pg", function()
    local e, listener
    setup(function()
        e = S.start()
    end)
    teardown(function()
        if listener then listener:close() end
        if e then e:stop() end
    end)

    it("sends READY=1 once subscribed, RELOADING/READY on SIGHUP and "
       .. "STOPPING=1 on SIGTERM, then exits 0", function()
        listener = notify.listen()
        local env = {}
        for k, v in pairs(e.env) do
            env[k] = v
        end
        env.NOTIFY_SOCKET = listener.socket
        local log = e.media .. "/../notify-subscriber-" .. sys.getpid() .. ".log"
        local pid = assert(sys.spawn({ runtime.exe, "subscriber" },
                                     { env = env, stdout = log, stderr = log }))
        local function text() return sys.read_file(log) or "" end
        assert.truthy(listener:wait_for("READY=1"), text())
        assert.truthy(text():find("subscriber.ready", 1, true), text())
        sys.kill(pid, "HUP")
        assert.truthy(listener:wait_for("READY=1", 2), listener:text() .. text())
        sys.kill(pid, "TERM")
        local how, code = sys.wait(pid, 30)
        if not how then
            sys.kill(pid, "KILL")
            sys.wait(pid, 5)
        end
        assert.same({ "exited", 0 }, { how, code }, text())
        assert.truthy(listener:wait_for("STOPPING=1"), listener:text())
        assert.same({ "READY=1", "RELOADING=1", "READY=1", "STOPPING=1" },
                    states(listener:text()))
        assert.truthy(text():find("subscriber.reloaded", 1, true), text())
        os.remove(log)
    end)
end)
