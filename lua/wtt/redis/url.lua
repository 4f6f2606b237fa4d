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
        elseif k == "cluster" then
            -- Cluster mode (lua/wtt/redis/cluster.lua): route by slot.
            if v == "1" or v == "yes" or v == "true" then
                cfg.cluster = true
            elseif v ~= "0" and v ~= "no" and v ~= "false" then
                return nil, "bad cluster parameter '" .. v .. "'"
            end
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
-- `db`, `user`, `password` and `cluster=1` (Redis Cluster; then the host
-- part may list several seed nodes: `redis://h1:7000,h2:7001?cluster=1`).
-- IPv6 hosts go in brackets.
-- @param url string
-- @return cfg {scheme, host, port, path, tls, user, password, db, cluster,
--   seeds = { {host, port}... }} | nil, err
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
        -- Several comma-separated hosts are the seed nodes of a cluster;
        -- the first is the one a plain client would use.
        cfg.seeds = {}
        for one in (hostport .. ","):gmatch("([^,]*),") do
            local host, port = str_match(one, "^%[([^%]]+)%]:?(%d*)$")
            if not host then
                host, port = str_match(one, "^([^:]+):?(%d*)$")
            end
            if not host then
                return nil, "bad host in url '" .. url .. "'"
            end
            port = port ~= "" and tonumber(port) or 6379
            if port < 1 or port > 65535 then
                return nil, "bad port in url '" .. url .. "'"
            end
            cfg.seeds[#cfg.seeds + 1] = { host = host, port = port }
        end
        cfg.host = cfg.seeds[1].host
        cfg.port = cfg.seeds[1].port
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
    if cfg.seeds and #cfg.seeds > 1 and not cfg.cluster then
        return nil, "several hosts need cluster=1 in url '" .. url .. "'"
    end
    cfg.db = tonumber(cfg.db)
    if not cfg.db or cfg.db < 0 or cfg.db ~= floor(cfg.db) then
        return nil, "bad database in url '" .. url .. "'"
    end
    if cfg.cluster and (cfg.db ~= 0 or cfg.path) then
        return nil, "cluster mode needs redis:// or rediss:// and "
                    .. "database 0: '" .. url .. "'"
    end
    return cfg
end

return _M
