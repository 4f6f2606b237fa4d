--- The producer's call of wtt.queue: enqueue, with the task's lane and its
-- client's fair share chosen by the policy. `queue` holds the method
-- wtt.queue puts on every queue (enqueue).

local json = require "cjson.safe"
local internal = require "wtt.queue.internal"
local metrics = require "wtt.metrics"
local S = require("wtt.queue.scripts").scripts

local type = type
local error = error
local tostring = tostring
local tonumber = tonumber
local floor = math.floor
local clock = internal.clock
local run = internal.run
local check_id = internal.check_id

local _M = {}

--- Queue methods; wtt.queue copies them onto its queue method table.
local queue = {}
_M.queue = queue


--- Adds a task.
-- @param task { id, audio_midi_id, payload = { audio_url, options,
--   outputs, duration_s }, claim_floor = ms (optional: a task rebuilt
--   after Redis lost it starts its claim tokens there, see enqueue-5) }
--   The policy's `fair_share(payload)` (priority plugin) names the client
--   and its limit of waiting tasks; over it the task waits in the bulk lane.
-- @return true, lane ("default" | "priority" | "bulk") | nil, "exists"
--   | nil, err
function queue.enqueue(self, task)
    if type(task) ~= "table" then
        error("bad argument #1 to 'enqueue' (table expected)", 2)
    end
    check_id(task.id, "enqueue")
    local payload = task.payload or {}
    local text, jerr = json.encode(payload)
    if not text then
        error("bad argument #1 to 'enqueue' (payload: " .. jerr .. ")", 2)
    end
    local p = self:policy()
    local lane = p.lane(payload) == "priority" and "priority" or "default"
    local client, max_waiting
    if p.fair_share then
        client, max_waiting = p.fair_share(payload)
    end
    if type(client) ~= "string" then
        client, max_waiting = "", 0
    end
    local t, err = clock(self)
    if not t then
        return nil, err
    end
    local res
    res, err = run(self, "enqueue", S.enqueue, {
        lane == "priority" and self.k.priority or self.k.queue,
        self.k.bulk, self.k.task_prefix .. task.id, self.k.failed,
        self.k.clients,
    }, {
        task.id, tostring(task.audio_midi_id or ""), text,
        p.max_attempts(payload), p.timeout_ms(payload), t, self.ch.new,
        lane, json.encode(p.versions),
        task.claim_floor and tostring(floor(task.claim_floor)) or "",
        client, tonumber(max_waiting) or 0,
    })
    if not res then
        return nil, err
    end
    metrics.inc("wtt_tasks_enqueued_total", 1, res[2])
    return true, res[2]
end


return _M
