--- One client's event stream of an upload (GET /transcribe/events/{id}/,
-- docs/web.md): the `next_chunk` and `on_close` of its http.stream.
--
-- Life of a stream, all on the serving thread that owns it:
--
--   first call   `retry:`, then it opens a fan-out client on the task's
--                channels (wtt.fanout) with the request's waker, so a
--                message resumes the parked stream at once;
--   sync         all channels are subscribed: the current state is read
--                (task_events.snapshot, fresher than the subscription),
--                sent first, then what arrived meanwhile; nothing
--                published from then on is missed;
--   messages     progress and claims become events directly; completions,
--                failures and requeues read the state again;
--   the end      `completed` or `failed` (once the row says so, so the
--                downloads the page then fetches exist), and the stream
--                ends; a client that leaves ends it too (on_close closes
--                the fan-out client, which unsubscribes with the last).
--
-- Events carry ids (task_events) and an event the client already has
-- (Last-Event-ID, or sent already on this stream) is never sent again.
-- Heartbeat comments go out every WTT_SSE_HEARTBEAT_S, each with a light
-- re-read of the state, so even a message Redis dropped is made up for.

local fanout = require "wtt.fanout"
local httpd = require "wtt.core.http_server"
local log = require "wtt.log"
local sys = require "wtt.sys"
local config = require "wtt.service.config"
local task_events = require "wtt.service.task_events"
local sse = require "wtt.sse"

local after = task_events.after
local now = sys.now
local concat = table.concat
local ceil = math.ceil
local min = math.min

local _M = {}

_M.RETRY_MS = 2000        -- the client's reconnection delay
_M.WAIT_SYNC_S = 1        -- without a sync by then, the state is read anyway
_M.POLL_S = 1             -- re-read period with no fan-out (no task yet)
_M.FINISH_POLL_S = 0.1    -- re-read period while the row catches up
_M.POSITION_S = 2         -- re-read period of a queued task's position

local stream = {}
local stream_mt = { __index = stream }


--- A stream of upload `id` for the request `ctx` (req._ctx), whose row
-- named task `task_id` (or none yet), resuming after event (last_run,
-- last_phase) when the client sent Last-Event-ID.
function _M.new(ctx, id, task_id, last_run, last_phase)
    local cfg = config.get()
    return setmetatable({
        ctx = ctx, id = id, first_task = task_id,
        last_run = last_run, last_phase = last_phase,
        heartbeat_s = cfg.sse_heartbeat_s,
        capacity = cfg.sse_buffer,
        started = false, done = false,
        synced = false, waiting = false,
        held = nil,            -- records taken before the first sync
        seen_at = -math.huge,  -- the read the last state came from
    }, stream_mt)
end


-- Appends an event unless the client has it already; a terminal event is
-- always sent (the route answers 204 to a client that had it) and ends
-- the stream.
local function emit(self, out, ev, terminal)
    if terminal or after(ev.run, ev.phase, self.last_run, self.last_phase) then
        out[#out + 1] = ev.text
        if after(ev.run, ev.phase, self.last_run, self.last_phase) then
            self.last_run, self.last_phase = ev.run, ev.phase
        end
    end
end


-- Follows task `task_id` (or none): closes the fan-out client of the
-- previous task, opens one for this one.
local function follow(self, task_id)
    if task_id == self.task_id and (self.client or not task_id) then
        return
    end
    if self.client then
        self.client:close()
        self.client = nil
    end
    self.task_id = task_id
    self.synced = false
    self.held = nil
    if not task_id then
        return
    end
    local c, err = fanout.open(task_events.routes(task_id), {
        capacity = self.capacity, waker = self.waker,
        redis_url = config.get().redis_url,
    })
    if not c then
        -- Not fatal: the stream polls the state instead.
        log.warn("events.fanout_failed", { error = tostring(err) })
        return
    end
    self.client = c
    self.sync_by = now() + _M.WAIT_SYNC_S
end


-- Reads the state (fresher than `since`) and sends what the client lacks.
local function resync(self, out, since)
    local s, err = task_events.snapshot(self.id, since)
    self.check_at = now() + _M.POLL_S
    if not s then
        log.warn("events.state_failed", { id = self.id, error = tostring(err) })
        return
    end
    self.seen_at = s.at or now()
    if s.gone then
        self.done = true
        return
    end
    local n = #s.events
    for i = 1, n do
        emit(self, out, s.events[i], s.terminal and i == n)
    end
    if s.terminal then
        self.done = true
        return
    end
    self.waiting = s.waiting or false
    if self.waiting then
        self.check_at = now() + _M.FINISH_POLL_S
    end
    -- The line moves without a message for this task: look again now
    -- and then (reads a second old serve every stream of the thread).
    self.position_at = s.queued and now() + _M.POSITION_S or nil
    follow(self, s.task_id)
end


local function on_message(self, out, stamp, channel, payload)
    local m = task_events.message(self.task_id, channel, payload, stamp)
    if m.resync then
        resync(self, out, stamp)
        return
    end
    for i = 1, #m.events do
        emit(self, out, m.events[i], false)
    end
end


-- Handles what the fan-out client holds. Returns false when it was
-- dropped (fell behind: the server has cut the connection already).
local function drain(self, out)
    while self.client and not self.done do
        local kind, stamp, channel, payload = self.client:take()
        if not kind then
            return true
        end
        if kind == "dropped" then
            return false
        end
        if kind == "sync" then
            -- Everything published from `stamp` on is in the buffer: a
            -- state read after it, then the held messages, miss nothing.
            self.synced = true
            resync(self, out, stamp)
            local held = self.held
            self.held = nil
            for i = 1, held and #held or 0 do
                if self.done then
                    break
                end
                local h = held[i]
                on_message(self, out, h[1], h[2], h[3])
            end
        elseif not self.synced then
            -- The state goes first: messages wait for the sync.
            self.held = self.held or {}
            self.held[#self.held + 1] = { stamp, channel, payload }
        else
            on_message(self, out, stamp, channel, payload)
        end
    end
    return true
end


local function start(self, out)
    self.started = true
    self.waker = httpd.waker(self.ctx)
    out[#out + 1] = sse.retry(_M.RETRY_MS)
    local t = now()
    self.heartbeat_at = t + self.heartbeat_s
    -- The task the route found; the state is read once its channels are
    -- subscribed (the sync), or now when there is nothing to follow.
    follow(self, self.first_task)
    if not self.client then
        resync(self, out, t)
    end
end


--- The stream's next_chunk: `text, ms` (send, then park), `false, ms`
-- (park; a message resumes it sooner), or nil at the end.
function stream.next(self)
    if self.done then
        return nil
    end
    local out = {}
    if not self.started then
        start(self, out)
    end
    if not drain(self, out) then
        self.done = true
        return nil
    end
    local t = now()
    if not self.done then
        if self.client and not self.synced and t >= self.sync_by then
            -- No confirmation yet (Redis slow or down): say what the
            -- database knows rather than nothing.
            self.sync_by = t + _M.POLL_S
            resync(self, out, t)
        elseif (self.waiting or not self.client) and self.check_at
               and t >= self.check_at
        then
            -- Polling: the row catching up with the end, or no task to
            -- follow yet. Only a read newer than the last one helps.
            resync(self, out, self.seen_at + 1e-6)
        end
    end
    if not self.done and self.synced and self.position_at
       and t >= self.position_at then
        resync(self, out, t - 1)
    end
    if not self.done and t >= self.heartbeat_at then
        out[#out + 1] = ": hb\n\n"
        self.heartbeat_at = t + self.heartbeat_s
        if self.synced then
            resync(self, out, t - self.heartbeat_s)
        end
    end
    if self.done then
        return #out > 0 and concat(out) or nil
    end
    -- Until the next heartbeat, poll or sync deadline, unless a message
    -- wakes it sooner; with text, that wait follows the text at once.
    local wake = self.heartbeat_at
    if self.client and not self.synced then
        wake = min(wake, self.sync_by)
    end
    if (self.waiting or not self.client) and self.check_at then
        wake = min(wake, self.check_at)
    end
    if self.synced and self.position_at then
        wake = min(wake, self.position_at)
    end
    local ms = ceil(math.max(0, wake - t) * 1000)
    if #out > 0 then
        return concat(out), ms
    end
    return false, ms
end


--- The stream's on_close: leaves the fan-out (the last client of a
-- channel unsubscribes it).
function stream.close(self)
    self.done = true
    if self.client then
        self.client:close()
        self.client = nil
    end
end

return _M
