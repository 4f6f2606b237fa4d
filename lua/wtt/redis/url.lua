--- Redis URLs for wtt.redis: `redis://`, `rediss://` (TLS) and `unix://`,
-- with credentials and a database in the URL or its query. Pure string
-- work, no connection; `wtt.redis.parse_url` is this module's parse_url.

local type = type
local tonumber = tonumber
local floor = math.floor
local str_char = string.char
local str_gsub = string.gsub
local str_match = string.match
local str_sub = string.sub

local _M = {}


local function unescape(s)
    return (str_gsub(s, "%%(%x%x)", function(h)
        return str_char(tonumber(h, 16))
    end))
end


local function parse_query(cfg, q)
    for pair in q:gmatch("[^&]+") do
        local k, v = str_match(pair, "^([^=]*)=(.*)$")
        if not k then
            return nil, "bad query parameter '" .. pair .. "'"
        end
        v = unescape(v)
        if k == "db" then
            cfg.db = v
        elseif k == "user" or k == "username" then
            cfg.user = v
        elseif k == "password" then
            cfg.password = v
        else
            return nil, "unknown query parameter '" .. k .. "'"
        end
    end
    return true
end


-- Splits `s` by `pattern` (captures: the userinfo, the rest of `s`),
-- records the user and password in `cfg`, and returns the rest: all of
-- `s` when the pattern finds no userinfo.
local function take_userinfo(cfg, s, pattern)
    local info, rest = str_match(s, pattern)
    if not info then
        return s
    end
    local user, pass = str_match(info, "^([^:]*):(.*)$")
    if user then
        cfg.user = user ~= "" and unescape(user) or nil
        cfg.password = unescape(pass)
    elseif info ~= "" then
        -- "redis://secret@host": a bare userinfo is a password (no ACL
        -- user is ever sent without one).
        cfg.password = unescape(info)
    end
    return rest
end


--- Parses a Redis URL.
-- Forms: `redis://[[user]:password@]host[:port][/db]`, `rediss://...` (TLS),
-- `unix://[[user]:password@]/path/to.sock[?db=N]`; a query may also give
-- `db`, `user`, `password`. IPv6 hosts go in brackets.
-- @param url string
-- @return cfg {scheme, host, port, path, tls, user, password, db} | nil, err
function _M.parse_url(url)
    if type(url) ~= "string" then
        return nil, "url must be a string"
    end
    local scheme, rest = str_match(url, "^(%a[%w+.-]*)://(.*)$")
    if not scheme then
        return nil, "bad url '" .. url .. "'"
    end
    local cfg = { scheme = scheme, db = 0 }
    local query
    rest, query = str_match(rest, "^([^?]*)%??(.*)$")

    if scheme == "unix" then
        local path = take_userinfo(cfg, rest, "^([^/]*)@(/.*)$")
        if str_sub(path, 1, 1) ~= "/" or #path < 2 then
            return nil, "unix url needs an absolute path: '" .. url .. "'"
        end
        cfg.path = unescape(path)
    elseif scheme == "redis" or scheme == "rediss" then
        cfg.tls = scheme == "rediss"
        local authority, path = str_match(rest, "^([^/]*)(.*)$")
        local hostport = take_userinfo(cfg, authority, "^(.*)@([^@]*)$")
        local host, port = str_match(hostport, "^%[([^%]]+)%]:?(%d*)$")
        if not host then
            host, port = str_match(hostport, "^([^:]+):?(%d*)$")
        end
        if not host then
            return nil, "bad host in url '" .. url .. "'"
        end
        cfg.host = host
        cfg.port = port ~= "" and tonumber(port) or 6379
        if cfg.port < 1 or cfg.port > 65535 then
            return nil, "bad port in url '" .. url .. "'"
        end
        if path ~= "" and path ~= "/" then
            local db = str_match(path, "^/(%d+)$")
            if not db then
                return nil, "bad database in url '" .. url .. "'"
            end
            cfg.db = db
        end
    else
        return nil, "unsupported url scheme '" .. scheme .. "'"
    end

    if query ~= "" then
        local ok, err = parse_query(cfg, query)
        if not ok then
            return nil, err
        end
    end
    cfg.db = tonumber(cfg.db)
    if not cfg.db or cfg.db < 0 or cfg.db ~= floor(cfg.db) then
        return nil, "bad database in url '" .. url .. "'"
    end
    return cfg
end

return _M
