--- Private helpers of wtt.queue shared by its parts (lua/wtt/queue.lua and
-- the files beside this one): the queue clock, a script run with its
-- reply mapped to `nil, err`, the argument checks every public method
-- makes, and the preamble of a held claim's transitions. They live here,
-- not in lua/wtt/queue.lua, because the parts need them and wtt.queue
-- requires the parts (a require back would be a cycle). Not an API.

local sys = require "wtt.sys"
local errors = require "queue.errors"

local type = type
local error = error
local tostring = tostring
local floor = math.floor
local now = sys.now

local _M = {}

local CLOCK_REFRESH = 1      -- seconds between Redis TIME reads


-- Redis time for a script: Redis TIME read at most once a second, carried
-- forward on the local monotonic clock in between.
function _M.clock(self)
    local mono = now()
    if self.clock_at and mono - self.clock_at < CLOCK_REFRESH then
        return floor(mono * 1000 + self.clock_offset)
    end
    return self:now_ms()
end


-- The error in one script reply, if any: a Redis error reply ({err =
-- msg} in a pipeline) or a script's negative code.
function _M.reply_error(op, res)
    if type(res) ~= "table" then
        return nil
    end
    if res.err then
        return "could not " .. op .. ": " .. res.err
    end
    local code = res[1]
    if code == errors.WRONGTYPE then
        return errors.text[code] .. " " .. tostring(res[2])
    end
    if type(code) == "number" and code < 0 then
        return errors.text[code] or ("error " .. code)
    end
end
local reply_error = _M.reply_error


-- Runs script `s`; maps negative codes to errors.
-- @return reply | nil, err
function _M.run(self, op, s, keys, args)
    local res, err = self.r:eval(s, keys, args)
    if not res then
        return nil, "could not " .. op .. ": " .. tostring(err)
    end
    err = reply_error(op, res)
    if err then
        return nil, err
    end
    return res
end


-- Ids become key names and are written into the scripts' JSON events
-- without escaping, so they are plain tokens. `level` as error()'s, for
-- the public function's caller (3 when called from that function).
-- valid_id is the same test without raising (for ids from outside).
function _M.valid_id(id)
    return type(id) == "string" and #id <= 128
           and id:match("^[%w_.:-]+$") ~= nil
end
local valid_id = _M.valid_id


function _M.check_id(id, fn, level)
    if not valid_id(id) then
        error("bad argument #1 to '" .. fn .. "' (task id expected: 1-128 "
              .. "letters, digits, _ . : -)", level or 3)
    end
end
local check_id = _M.check_id


function _M.check_claim(claim, fn, level)
    if type(claim) == "number" then
        return tostring(floor(claim))
    end
    if type(claim) ~= "string" then
        error("bad argument #2 to '" .. fn .. "' (claim token expected)",
              level or 3)
    end
    return claim
end
local check_claim = _M.check_claim


function _M.check_worker(worker_id, fn)
    if type(worker_id) ~= "string" then
        error("bad argument #1 to '" .. fn .. "' (worker id expected)", 3)
    end
end


function _M.check_count(n, fn, arg)
    if type(n) ~= "number" or n < 1 or n ~= floor(n) then
        error("bad argument #" .. arg .. " to '" .. fn .. "' (count >= 1 "
              .. "expected)", 3)
    end
end


-- How every transition of a held claim starts: its id and claim token
-- checked (errors name the public function's caller) and, unless
-- `no_clock`, the clock read.
-- @return claim token, now (ms) | nil, nil, err
function _M.begin(self, fn, id, claim, no_clock)
    check_id(id, fn, 4)
    claim = check_claim(claim, fn, 4)
    if no_clock then
        return claim, nil
    end
    local t, err = _M.clock(self)
    if not t then
        return nil, nil, err
    end
    return claim, t
end


-- An HGETALL reply (field, value, field, value...) as a table.
function _M.hash_table(list)
    local h = {}
    for i = 1, #list, 2 do
        h[list[i]] = list[i + 1]
    end
    return h
end


return _M
