-- wtt.queue is one module over several files (lua/wtt/queue.lua and the
-- parts under lua/wtt/queue/): this pins its public surface, the module's
-- functions and values and a queue object's methods and fields, so a part
-- whose export is dropped (or a private helper that leaks out) in an edit
-- fails here rather than in whichever caller happens to use it. No Redis
-- is needed: nothing here sends a command.

local queue = require "wtt.queue"
local surface = require("spec.support.surface").of


describe("wtt.queue public surface", function()
    it("exports the module functions and values, and nothing else",
       function()
        assert.same({
            "ORPHAN_SCAN:number", "REAP_BATCH:number", "REAP_CALLS:number",
            "REAP_SCAN:number", "eviction_warning:function",
            "keys:function", "new:function", "scripts:table",
            "valid_id:function",
        }, surface(queue))
    end)

    it("names one script value per transition", function()
        assert.same({
            "claim", "complete", "complete_many", "enqueue", "fail",
            "heartbeat", "progress", "purge", "reap", "release", "requeue",
            "stats", "store",
        }, (function()
            local names = {}
            for name, s in pairs(queue.scripts) do
                assert.is_true(require("wtt.redis").is_script(s), name)
                names[#names + 1] = name
            end
            table.sort(names)
            return names
        end)())
    end)

    it("gives a queue object every producer, worker and admin method",
       function()
        local q = queue.new({ eval = function() end }, { prefix = "p:" })
        assert.same({
            "attempts:table", "ch:table", "k:table", "prefix:string",
            "r:table",
        }, surface(q))
        assert.same({
            "channel:function", "claim:function", "claim_many:function",
            "complete:function", "complete_and_claim:function",
            "complete_many:function", "complete_many_and_claim:function",
            "dead:function", "enqueue:function", "fail:function",
            "get:function", "has_task:function", "heartbeat:function",
            "now_ms:function", "pause:function", "policy:function",
            "progress:function", "purge_dead:function", "reap:function",
            "reap_batch:function", "release:function",
            "requeue_all_dead:function", "requeue_dead:function",
            "results_ack:function", "results_recover:function",
            "results_take:function", "resume:function", "stats:function",
            "store_result:function", "worker_beat:function",
            "worker_gone:function", "workers:function",
        }, surface(getmetatable(q).__index))
        assert.equal("p:task:new", q.ch.new)
        assert.equal("p:task:queue", q.k.queue)
        assert.same(queue.keys("p:"), q.k)
    end)
end)
