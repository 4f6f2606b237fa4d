--- The start-up check of wtt.redis: a connection error explained when it
-- comes from a URL that does not match the server (TLS, credentials), and
-- a probe that connects once to find such a configuration.
-- `wtt.redis.explain` and `wtt.redis.probe` are this module's.

local pairs = pairs
local tostring = tostring
local require = require
local str_find = string.find
local parse_url = require("wtt.redis.url").parse_url

local _M = {}


--- Says what a connection error means when it comes from a mismatch of the
-- URL and the server, not from an outage: a TLS certificate the client does
-- not trust, a TLS client on a plain port (no TLS answer, or a plain reply
-- where a handshake was expected), a plain client on a TLS-only port (the
-- server drops the connection at the first command).
-- @param err error text of connect or of a first command
-- @param tls whether the URL was rediss://
-- @return err with a hint appended, and true | err, false
function _M.explain(err, tls)
    err = tostring(err)
    if str_find(err, "certificate verify failed", 1, true) then
        return err .. " (the Redis server's certificate is not trusted: set "
               .. "WTT_REDIS_CA_FILE to the CA that signed it, and check "
               .. "that the URL's host is one of its names)", true
    end
    if str_find(err, "tls handshake", 1, true) then
        return err .. " (no TLS answer: is this a plain-TCP Redis port? "
               .. "use redis:// for it, or the server's tls-port)", true
    end
    if str_find(err, "WRONGPASS", 1, true)
       or str_find(err, "NOAUTH", 1, true)
       or str_find(err, "invalid password", 1, true) then
        return err .. " (the server refused the URL's credentials, or "
               .. "needs some: redis://user:password@host:port; check "
               .. "requirepass or the ACL user)", true
    end
    if not tls and (str_find(err, "connection reset", 1, true)
                    or str_find(err, "closed by server", 1, true)
                    or str_find(err, "protocol error", 1, true)) then
        return err .. " (the server dropped a plain connection before "
               .. "answering: a TLS-only port? use rediss://)", true
    end
    return err, false
end


--- Connects once and runs PING, to find at start-up a configuration that
-- can never work (see explain) before a process settles into retrying.
-- @param url as connect
-- @param opts as connect (lazy is ignored)
-- @return true | nil, err (with explain's hint), kind: "config" (the URL
--   and the server do not match: retrying cannot help) or "unreachable"
--   (refused, timed out, down: it may come back)
function _M.probe(url, opts)
    local o = {}
    for k, v in pairs(opts or {}) do
        o[k] = v
    end
    o.lazy = nil
    -- Required here, not at load: wtt.redis requires this module.
    local c, err = require("wtt.redis").connect(url, o)
    local pong
    if c then
        pong, err = c:call("PING")
        c:close()
        if pong == "PONG" then
            return true
        end
    end
    local cfg = parse_url(url)
    if not cfg then
        return nil, err, "config"
    end
    local text, config = _M.explain(err, cfg.tls)
    return nil, text, config and "config" or "unreachable"
end

return _M
