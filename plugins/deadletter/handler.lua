--- Dead-letter policy: how long the hashes of dead letters and of
-- completed tasks stay in Redis (EXPIRE). PostgreSQL keeps the record.

local _M = {
    VERSION = "1.0.0",
}


--- TTL (s) of a dead letter's hash.
function _M.dead_ttl_s(conf)
    return conf.ttl_s
end


--- TTL (s) of a completed task's hash.
function _M.final_ttl_s(conf)
    return conf.final_ttl_s
end


return _M
