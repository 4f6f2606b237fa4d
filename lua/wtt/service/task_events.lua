--- A transcription's progress as events (docs/web.md "The event stream"):
-- their ids, the current state read from PostgreSQL and the task hash,
-- and the queue's pub/sub messages turned into events.
--
-- Ids. Every event has an id that grows within a task, made of the run
-- (the task's claim counter for that run: the `claim` of the task hash and
-- of every `claimed` and `progress` message, `task_claim` of the row) and
-- a phase within the run, written as the run followed by the phase in six
-- digits:
--
--   phase 0            pending (queue position unknown)
--   phase 1..999       queued: 1000 - position (the line shortens, the id
--                      grows)
--   phase 1000         processing
--   phase 1001 + done  progress, `done` windows done
--   phase 999999       completed or failed
--
-- A task waiting for its first claim is run claim + 1 (claim 0: run 1).
-- Claim counters can be large (the reconciler starts them at Redis' clock
-- in ms), so ids are compared as (run, phase) pairs, never as one number.
--
-- Reads go through caches kept per Lua state, that is per serving thread,
-- so a thousand streams of one task cost one query per thread: a caller
-- says how fresh a read must be (`since`: read after that sys.now()
-- instant), and a read started after it serves every caller that asks.

local json = require "wtt.json"
local sys = require "wtt.sys"
local conn = require "wtt.service.conn"
local config = require "wtt.service.config"
local status_doc = require "wtt.service.status"
local tasks = require "wtt.service.tasks"
local sse = require "wtt.sse"

local type = type
local tonumber = tonumber
local tostring = tostring
local floor = math.floor
local str_format = string.format
local str_match = string.match
local str_sub = string.sub
local nonnull = tasks.nonnull
local json_encode = json.encode
local now = sys.now

local _M = {}

local PENDING, PROCESSING, TERMINAL = 0, 1000, 999999
_M.PENDING, _M.PROCESSING, _M.TERMINAL = PENDING, PROCESSING, TERMINAL
local MAX_DONE = TERMINAL - PROCESSING - 2
local CACHE_MAX = 2048             -- entries per cache before it is reset


---------------------------------------------------------------- ids

--- The id of phase `phase` of run `run`.
function _M.id(run, phase)
    return str_format("%d%06d", run, phase)
end


--- The (run, phase) of an id, or nil when `s` is not one.
function _M.parse_id(s)
    if type(s) ~= "string" or #s < 7 or #s > 24 then
        return nil
    end
    local run, phase = str_match(s, "^(%d+)(%d%d%d%d%d%d)$")
    if not run then
        return nil
    end
    return tonumber(run), tonumber(phase)
end


--- Whether (run, phase) comes after (last_run, last_phase); anything
-- comes after nothing (last_run nil).
function _M.after(run, phase, last_run, last_phase)
    if last_run == nil then
        return true
    end
    return run > last_run or (run == last_run and phase > last_phase)
end


--- The phase of a queued task at `position` (1: next in line).
local function queued_phase(position)
    if not position then
        return PENDING
    end
    return 1000 - math.min(math.max(position, 1), 999)
end


---------------------------------------------------------------- caches

-- A cache: key -> { at = sys.now() when the read started, value }.
local function cache()
    return { n = 0, t = {} }
end

local function cache_get(c, key, since)
    local e = c.t[key]
    if e and e.at >= since then
        return e
    end
    return nil
end

local function cache_put(c, key, at, value)
    if c.n >= CACHE_MAX then
        c.t, c.n = {}, 0
    end
    if not c.t[key] then
        c.n = c.n + 1
    end
    local e = { at = at, value = value }
    c.t[key] = e
    return e
end

local rows = cache()        -- upload id -> row | false
local hashes = cache()      -- task id -> { status, claim, progress, position } | false
local messages = {}         -- channel -> payload -> translation
local n_messages = 0
local runs = {}             -- task id .. ":" .. run -> { t0, done0 } (ETA)
local n_runs = 0

_M.ROW_COLUMNS = status_doc.COLUMNS .. ", task_claim"


--- The row of upload `id`, read after `since`: row | false (no such row)
-- | nil, err. Also returns the instant the read started.
function _M.row(id, since)
    local e = cache_get(rows, id, since)
    if e then
        return e.value, e.at
    end
    local db, err = conn.pg()
    if not db then
        return nil, err
    end
    local at = now()
    local res, qerr = db:read("SELECT " .. _M.ROW_COLUMNS
                              .. " FROM audio_midi WHERE id = $1", id)
    if not res then
        return nil, qerr
    end
    return cache_put(rows, id, at, res[1] or false).value, at
end


-- The queue position of task `id` (1: next), from the replies of LPOS on
-- the three lanes and LLEN of the first two; nil when it is in none (or
-- Redis has no LPOS).
local function position_of(res)
    local function num(v)
        return type(v) == "number" and v or nil
    end
    local pri, def, bulk = num(res[2]), num(res[3]), num(res[4])
    local npri, ndef = num(res[5]) or 0, num(res[6]) or 0
    if pri then
        return pri + 1
    elseif def then
        return npri + def + 1
    elseif bulk then
        return npri + ndef + bulk + 1
    end
    return nil
end


--- The task hash of `task_id` (status, claim, progress) and its queue
-- position, read after `since`: table | false (no hash) | nil, err.
function _M.task(task_id, since)
    local e = cache_get(hashes, task_id, since)
    if e then
        return e.value
    end
    local q, err = conn.queue()
    if not q then
        return nil, err
    end
    local k = q.k
    local at = now()
    local res, perr = q.r:pipeline(function(p)
        p:call("HMGET", k.task_prefix .. task_id, "status", "claim", "progress")
        p:call("LPOS", k.priority, task_id)
        p:call("LPOS", k.queue, task_id)
        p:call("LPOS", k.bulk, task_id)
        p:call("LLEN", k.priority)
        p:call("LLEN", k.queue)
    end)
    if not res then
        return nil, perr
    end
    local f = res[1]
    if type(f) ~= "table" or f.err then
        return nil, type(f) == "table" and f.err or "unexpected HMGET reply"
    end
    local status = nonnull(f[1])
    local value = false
    if type(status) == "string" then
        value = {
            status = status,
            claim = tonumber(nonnull(f[2])) or 0,
            progress = status_doc.parse_progress(nonnull(f[3])),
            position = status == "pending" and position_of(res) or nil,
        }
    end
    return cache_put(hashes, task_id, at, value).value
end


---------------------------------------------------------------- events

-- An event: { run, phase, text } with its SSE text ready.
local function event(run, phase, name, data)
    return { run = run, phase = phase,
             text = sse.event(name, _M.id(run, phase), json_encode(data)) }
end


local function state_event(run, phase, status, position)
    return event(run, phase, "state", {
        status = status, position = position or json.null,
    })
end


-- The ETA of run `run` of `task` at `done`/`total` windows, seen at
-- `stamp` (s): from the rate since the first progress this thread saw of
-- that run; nil until there are two.
local function eta(task, run, done, total, stamp)
    local key = task .. ":" .. tostring(run)
    local r = runs[key]
    if not r then
        if n_runs >= CACHE_MAX then
            runs, n_runs = {}, 0
        end
        n_runs = n_runs + 1
        runs[key] = { t0 = stamp, done0 = done }
        return nil
    end
    if done <= r.done0 or stamp <= r.t0 then
        return nil
    end
    local left = (stamp - r.t0) / (done - r.done0) * (total - done)
    return floor(left * 10 + 0.5) / 10
end


local function progress_event(task, run, done, total, stamp)
    done = math.min(done, MAX_DONE)
    return event(run, PROCESSING + 1 + done, "progress", {
        done = done, total = total,
        eta_s = eta(task, run, done, total, stamp) or json.null,
    })
end


--- The events that say where upload `id` stands now, read after `since`:
-- { events = {...}, task_id, terminal, waiting, queued, gone } | nil, err.
--   terminal  the last event ends the stream (completed or failed)
--   queued    the task waits in a lane: its position may change
--   waiting   the task ended in Redis but the row does not say so yet
--             (the subscriber records it in a moment): look again soon
--   gone      there is no such row (any more)
function _M.snapshot(id, since)
    local row, at = _M.row(id, since)
    if row == false then
        return { events = {}, gone = true }
    end
    if not row then
        return nil, at
    end
    local claim = tonumber(nonnull(row.task_claim)) or 0
    local task_id = nonnull(row.task_id)
    if row.status == "completed" then
        return { task_id = task_id, terminal = true, at = at, events = {
            event(claim, TERMINAL, "completed", status_doc.doc(row, nil)) } }
    elseif row.status == "failed" then
        return { task_id = task_id, terminal = true, at = at, events = {
            event(claim, TERMINAL, "failed", {
                error = nonnull(row.error_message) or "failed" }) } }
    end
    local out = { task_id = task_id, at = at, events = {} }
    local ev = out.events
    local t = task_id and _M.task(task_id, since)
    if type(t) == "table" then
        if t.status == "processing" then
            ev[1] = state_event(t.claim, PROCESSING, "processing")
            if t.progress then
                ev[2] = progress_event(task_id, t.claim, t.progress.done,
                                       t.progress.total, now())
            end
        elseif t.status == "pending" then
            ev[1] = state_event(t.claim + 1, queued_phase(t.position),
                                t.position and "queued" or "pending",
                                t.position)
            out.queued = t.position ~= nil
        else
            -- completed or failed in Redis: the row follows.
            out.waiting = true
        end
        return out
    end
    -- No hash (not enqueued yet, expired, or Redis unreachable): the row.
    if row.status == "processing" then
        ev[1] = state_event(claim, PROCESSING, "processing")
        local p = status_doc.parse_progress(nonnull(row.progress))
        if p then
            ev[2] = progress_event(task_id, claim, p.done, p.total, now())
        end
    else
        ev[1] = state_event(claim + 1, PENDING, "pending")
    end
    return out
end


--- The channels a stream of task `task_id` follows, as fan-out routes:
-- its own progress channel, and the queue's shared channels keyed by its
-- id (claimed, completed, failed, new: a requeue).
function _M.routes(task_id)
    local prefix = config.get().key_prefix
    return {
        { prefix .. "task:progress:" .. task_id },
        { prefix .. "task:claimed", task_id },
        { prefix .. "task:completed", task_id },
        { prefix .. "task:failed", task_id },
        { prefix .. "task:new", task_id },
    }
end


local function decode(payload)
    local ok, v = pcall(json.decode, payload)
    return ok and type(v) == "table" and v or nil
end


--- What a message of task `task_id` on `channel` (received at `stamp`)
-- means for its streams, the same for each of them (cached per thread):
--   { events = {...} }   events to send (progress; claimed)
--   { resync = true }    read the state again (a completion, a failure,
--                        a requeue, or a message that says too little)
function _M.message(task_id, channel, payload, stamp)
    local by_payload = messages[channel]
    local m = by_payload and by_payload[payload]
    if m then
        return m
    end
    if not by_payload or n_messages >= CACHE_MAX then
        if n_messages >= CACHE_MAX then
            messages, n_messages = {}, 0
        end
        by_payload = {}
        messages[channel] = by_payload
    end
    local prefix = config.get().key_prefix
    local name = str_sub(channel, #prefix + 1)
    m = { resync = true }
    if name == "task:claimed" then
        local doc = decode(payload)
        local run = doc and tonumber(doc.claim)
        if run then
            m = { events = { state_event(run, PROCESSING, "processing") } }
        end
    elseif str_sub(name, 1, 14) == "task:progress:" then
        local doc = decode(payload)
        local p = doc and type(doc.progress) == "table" and doc.progress
        local run = doc and tonumber(doc.claim)
        local done = p and tonumber(p.done)
        local total = p and tonumber(p.total)
        if run and done and total then
            m = { events = {
                state_event(run, PROCESSING, "processing"),
                progress_event(task_id, run, done, total, stamp),
            } }
        end
    end
    by_payload[payload] = m
    n_messages = n_messages + 1
    return m
end

return _M
