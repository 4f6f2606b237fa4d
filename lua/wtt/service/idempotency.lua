--- Idempotency keys for the service's POST routes (docs/reliability.md Q6;
-- the shape of the IETF draft "The Idempotency-Key HTTP Header Field" and
-- of Stripe's API): a client that retries a request with the same
-- `Idempotency-Key` header gets the first answer again, and the request's
-- side effects happen once.
--
--     local slot, replay = idempotency.begin(req, "generate", fingerprint)
--     if replay then return replay.status, replay.body, replay.headers end
--     ... do the work, then idempotency.finish(slot, status, body)
--     ... or, on a 5xx or an error, idempotency.release(slot)
--
-- Records live in Redis (the queue's Redis, under WTT_KEY_PREFIX) at
-- `idempotency:<scope>:<sha1 of the key>`: first a short "in progress"
-- marker (SET NX, IN_PROGRESS_TTL_S, so a web that dies mid-request does
-- not block the key for long), then the answer for WTT_IDEMPOTENCY_TTL_S.
-- The same key with another request (another fingerprint) is 422; a
-- second request while the first still runs is 409 with Retry-After.
-- Answers under 500 are kept (a 404 or 409 replays as such); a 5xx or an
-- error releases the key so a retry runs again. Without Redis nothing
-- can be promised, so a keyed request is answered 503 before any side
-- effect.

local http = require "wtt.http"
local json = require "wtt.json"
local conn = require "wtt.service.conn"
local config = require "wtt.service.config"
local sha1hex = require("wtt.redis").sha1hex

local type = type
local pairs = pairs
local tostring = tostring
local concat = table.concat
local sort = table.sort

local _M = {}

_M.HEADER = "Idempotency-Key"
_M.MAX_KEY_LEN = 255
-- Short: a generate takes milliseconds, and a marker whose request was cut
-- off (web killed, or a SET that timed out but reached Redis) holds the
-- key only this long. A second run past it still cannot enqueue twice:
-- the row lock and its status check refuse it (409).
_M.IN_PROGRESS_TTL_S = 10

local RETRY_AFTER = "1"


--- A canonical text of a JSON-like value: object keys sorted, so two
-- requests that mean the same have the same fingerprint.
local function canonical(v, out)
    local t = type(v)
    if t == "table" then
        if v[1] ~= nil or next(v) == nil then
            out[#out + 1] = "["
            for i = 1, #v do
                if i > 1 then out[#out + 1] = "," end
                canonical(v[i], out)
            end
            out[#out + 1] = "]"
        else
            local keys = {}
            for k in pairs(v) do
                keys[#keys + 1] = tostring(k)
            end
            sort(keys)
            out[#out + 1] = "{"
            for i, k in ipairs(keys) do
                if i > 1 then out[#out + 1] = "," end
                out[#out + 1] = json.encode(k) .. ":"
                canonical(v[k], out)
            end
            out[#out + 1] = "}"
        end
    else
        out[#out + 1] = json.encode(v)
    end
    return out
end


--- The fingerprint of a request's meaning (any JSON-like value).
function _M.fingerprint(v)
    return sha1hex(concat(canonical(v, {})))
end


--- The Redis key of `key` in `scope` (under `prefix`, default
-- WTT_KEY_PREFIX).
function _M.redis_key(scope, key, prefix)
    return (prefix or config.get().key_prefix or "") .. "idempotency:"
           .. scope .. ":" .. sha1hex(key)
end


local function unavailable(err)
    http.abort(503, "unavailable", "idempotency store unavailable: "
               .. tostring(err), { ["Retry-After"] = "5" })
end


--- Starts a keyed request. Without the header: nil (no idempotency).
-- Aborts with 400 (malformed key), 409 (the same key is in progress),
-- 422 (the same key was used for another request) or 503 (no Redis).
-- @return slot | nil, replay { status, body, headers } for a repeat
function _M.begin(req, scope, fingerprint)
    local key = req:header(_M.HEADER)
    if key == nil then
        return nil
    end
    if #key == 0 or #key > _M.MAX_KEY_LEN or key:find("[^\32-\126]") then
        http.abort(400, "bad_request", _M.HEADER .. " must be 1 to "
                   .. _M.MAX_KEY_LEN .. " printable ASCII characters")
    end
    local r, err = conn.redis()
    if not r then
        unavailable(err)
    end
    local rkey = _M.redis_key(scope, key)
    local marker = json.encode({ state = "in_progress", fp = fingerprint })
    -- Twice: a record may expire between the SET NX and the GET.
    for _ = 1, 2 do
        local set
        set, err = r:call("SET", rkey, marker, "NX", "EX",
                          _M.IN_PROGRESS_TTL_S)
        if set then
            return { r = r, key = rkey, fp = fingerprint }
        end
        if err then
            unavailable(err)
        end
        local text
        text, err = r:call("GET", rkey)
        if err then
            unavailable(err)
        end
        if text then
            local ok, rec = pcall(json.decode, text)
            if not ok or type(rec) ~= "table" then
                rec = {}
            end
            if rec.fp ~= fingerprint then
                http.abort(422, "idempotency_key_reused", "this "
                           .. _M.HEADER .. " was used for another request")
            end
            if rec.state ~= "done" then
                http.abort(409, "idempotency_in_progress", "a request with "
                           .. "this " .. _M.HEADER .. " is still running",
                           { ["Retry-After"] = RETRY_AFTER })
            end
            local body = rec.body
            if type(body) == "table" and body.request_id then
                body.request_id = req.id      -- errors name this request
            end
            return nil, { status = rec.status, body = body,
                          headers = { ["Idempotency-Replayed"] = "true" } }
        end
    end
    unavailable("the key record keeps vanishing")
end


--- Records the answer of a keyed request (status < 500) for the TTL.
-- Best effort: if Redis fails now, the marker expires and a retry runs
-- again (then answering from the state the first run left).
function _M.finish(slot, status, body)
    if not slot then
        return
    end
    if status >= 500 then
        return _M.release(slot)
    end
    slot.r:call("SET", slot.key, json.encode({
        state = "done", fp = slot.fp, status = status, body = body,
    }), "EX", config.get().idempotency_ttl_s)
end


--- Forgets a keyed request that did not get a final answer.
function _M.release(slot)
    if slot then
        slot.r:call("DEL", slot.key)
    end
end


--- Runs `fn()` (returning status, body, headers) as the keyed request
-- `slot`: records its answer, or releases the key on a 5xx or an error
-- (raised again). An `http.abort` under 500 is recorded as its JSON error.
function _M.run(slot, req, fn)
    if not slot then
        return fn()
    end
    local ok, status, body, headers = pcall(fn)
    if ok then
        _M.finish(slot, status, body)
        return status, body, headers
    end
    local err = status
    if http.is_abort(err) and err.status < 500 then
        _M.finish(slot, err.status, { error = err.error, detail = err.detail,
                                      request_id = req.id })
    else
        _M.release(slot)
    end
    error(err, 0)
end

return _M
