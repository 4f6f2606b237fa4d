-- wtt.worker is one module over several files (lua/wtt/worker.lua and the
-- parts under lua/wtt/worker/): this pins its public surface, the module's
-- functions and values (which are also every worker's methods) and what
-- a new worker holds, so a part whose export is dropped (or a private
-- helper that leaks out) in an edit fails here rather than in whichever
-- caller happens to use it. Nothing here connects or loads a model.

local worker = require "wtt.worker"
local surface = require("spec.support.surface").of


describe("wtt.worker public surface", function()
    it("exports the module functions and values, and nothing else",
       function()
        assert.same({
            "DEFAULTS:table", "EXIT_DEVICE:number", "EXIT_LOCAL:number",
            "apply_limits:function", "arm_task:function",
            "backoff_delay:function",
            "deliver:function", "device_fault:function", "device_ok:function",
            "disarm_task:function", "download:function", "drain:function", "fail:function",
            "fetch:function", "handle:function", "handle_batch:function",
            "hostname:function", "local_failure:function",
            "local_ok:function", "log_completed:function", "lost:function",
            "maybe_reap:function", "nap:function", "nap_idle:function",
            "new:function", "not_inferred:function", "not_written:function",
            "on_window:function", "over_limits:function",
            "past_grace:function", "process:function",
            "process_batch:function", "release:function", "run:function",
            "stale:function", "start:function", "stop:function",
            "stopping:function", "task_opts:function", "upload:function",
        }, surface(worker))
        assert.equal(3, worker.EXIT_DEVICE)
        assert.equal(4, worker.EXIT_LOCAL)
    end)

    it("keeps the defaults of every option", function()
        assert.same({
            redis_url = "redis://127.0.0.1:6379",
            web_url = "http://127.0.0.1:8008",
            prefix = "", device = "auto",
            max_download = 512 * 1024 * 1024,
            grace = 30, poll = 5, heartbeat = 10, worker_ttl = 30,
            reap_interval = 1, retries = 5, backoff = 0.5, backoff_max = 15,
            http_timeout = 120, connect_timeout = 5,
            noop = false, once = false, batch_tasks = 1,
            max_device_faults = 3, device_fault_backoff = 5,
            device_fault_backoff_max = 60, max_local_failures = 3,
            max_audio_s = 14400, max_task_s = 3600, max_rss_mb = 4096,
            max_file_mb = 3072, test_window_sleep = 0,
        }, worker.DEFAULTS)
    end)

    it("makes a worker whose methods are the module's", function()
        local w = assert(worker.new({ noop = true, id = "w-1" }))
        assert.equal(worker, getmetatable(w).__index)
        assert.same({
            "cfg:table", "device_faults:number", "done:number",
            "key:string", "last_drain:number", "last_reap:number",
            "local_failures:number",
        }, surface(w))
        assert.equal("wtt.worker.w-1", w.key)
        assert.is_nil(worker.new({}))
    end)
end)
