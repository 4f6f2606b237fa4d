--- The transcription service's configuration, from the environment
-- (docs/system-design.md §8: 12-factor). Read once per Lua state.
--
-- | variable | default | meaning |
-- |---|---|---|
-- | DATABASE_URL | unset | PostgreSQL (the system of record) |
-- | REDIS_URL | redis://127.0.0.1:6379 | the queue |
-- | WTT_MEDIA_STORE | dir | where media live: dir (WTT_MEDIA_DIR, one web host) or pg (PostgreSQL large objects, shared by every web replica; docs/operations.md) |
-- | WTT_MEDIA_DIR | ./media | dir: uploads and results, flat, generated names; pg: this replica's local cache (cache/) |
-- | WTT_MEDIA_CACHE_MB | 1024 | the most the local cache holds: rendered tabs (dir: WTT_MEDIA_DIR/tab), and with pg copies for path readers and large downloads; least recently used out |
-- | WTT_WORKER_TOKEN | unset | bearer token for /media/ and /_result/ (unset: refused) |
-- | WTT_KEY_PREFIX | "" | queue key prefix ("{wtt}:" on Redis Cluster) |
-- | WTT_MAX_UPLOAD | 256 MiB | largest upload: the server's multipart cap, read from it (docs/http.md) |
-- | WTT_DRAIN_S | 5 | after SIGTERM: seconds of /readyz 503 while still serving, before accepting stops; read by the server (docs/http.md, docs/operations.md) |
-- | WTT_MAX_RESULT | 64 MiB | largest body of POST /transcribe/_result/ |
-- | WTT_MAX_AUDIO_S | 14400 | longest accepted recording (seconds) |
-- | WTT_RECONCILE_INTERVAL_S | 30 | reconciler period in the subscriber |
-- | WTT_RECONCILE_GRACE_S | 5 | rows younger than this are left to the route |
-- | WTT_SUBSCRIBER_TICK_S | 1 | poll fallback: the subscriber drains at least this often |
-- | WTT_IDEMPOTENCY_TTL_S | 86400 | how long an Idempotency-Key's answer is kept |
-- | WTT_CLIENT_ID_HEADER | unset | request header naming the client (fairness); unset: the peer address |
-- | WTT_RETUNE_CACHE_MB | 128 | posteriorgrams kept in memory for re-tunes, per serving thread (wtt.service.posteriors) |
-- | WTT_SSE_HEARTBEAT_S | 15 | event streams: seconds between heartbeat comments (docs/web.md) |
-- | WTT_SSE_BUFFER_KB | 64 | event streams: each client's buffer; a client that falls this far behind is dropped |
-- | WTT_RETAIN_COMPLETED_S | 2592000 (30 days) | media retention: a completed transcription not updated for this long is deleted, row and files; 0 keeps them forever |
-- | WTT_RETAIN_FAILED_S | 604800 (7 days) | the same for a failed one |
-- | WTT_RETAIN_UNUSED_S | 86400 (1 day) | the same for an upload never sent to generate |
-- | WTT_MEDIA_GRACE_S | 86400 (1 day) | a media file no row names is removed once this old (covers uploads being written and results the subscriber has not recorded yet) |
-- | WTT_MEDIA_SWEEP_INTERVAL_S | 3600 | how often web's subscriber runs the retention sweep (wtt.service.media_sweep); 0: never |
-- | WTT_MEDIA_SWEEP_BATCH | 500 | the most files and rows one sweep removes |

local http_server = require "wtt.core.http_server"

local _M = {}

local function num(name, default)
    local v = tonumber(os.getenv(name) or "")
    if v == nil then
        return default
    end
    return v
end


local function positive(v, default)
    if v ~= v or v <= 0 or v == math.huge then
        return default
    end
    return v
end


-- A duration where 0 means "never" (a negative or NaN one: the default).
local function nonneg(v, default)
    if v ~= v or v < 0 or v == math.huge then
        return default
    end
    return v
end


local function str(name, default)
    local v = os.getenv(name)
    if v == nil or v == "" then
        return default
    end
    return v
end


-- The media store backends (wtt.service.media): anything else is refused
-- at startup, not at the first upload.
local MEDIA_STORES = { dir = true, pg = true }


function _M.load()
    local media_store = str("WTT_MEDIA_STORE", "dir")
    if not MEDIA_STORES[media_store] then
        error("WTT_MEDIA_STORE must be 'dir' or 'pg', not '"
              .. media_store .. "'", 0)
    end
    return {
        database_url = str("DATABASE_URL"),
        redis_url = str("REDIS_URL", "redis://127.0.0.1:6379"),
        redis_configured = str("REDIS_URL") ~= nil,
        media_store = media_store,
        media_dir = str("WTT_MEDIA_DIR", "media"),
        media_cache_bytes = positive(num("WTT_MEDIA_CACHE_MB", 1024), 1024)
                            * 1048576,
        worker_token = str("WTT_WORKER_TOKEN"),
        key_prefix = os.getenv("WTT_KEY_PREFIX") or "",
        -- One source: the server's own limit and default, so the route
        -- and the multipart cap cannot disagree.
        max_upload = http_server.limits().max_upload,
        max_result = num("WTT_MAX_RESULT", 64 * 1024 * 1024),
        max_audio_s = num("WTT_MAX_AUDIO_S", 14400),
        reconcile_interval_s = num("WTT_RECONCILE_INTERVAL_S", 30),
        reconcile_grace_s = num("WTT_RECONCILE_GRACE_S", 5),
        tick_s = num("WTT_SUBSCRIBER_TICK_S", 1),
        idempotency_ttl_s = num("WTT_IDEMPOTENCY_TTL_S", 86400),
        client_id_header = str("WTT_CLIENT_ID_HEADER"),
        sse_heartbeat_s = positive(num("WTT_SSE_HEARTBEAT_S", 15), 15),
        sse_buffer = positive(num("WTT_SSE_BUFFER_KB", 64), 64) * 1024,
        retain_completed_s = nonneg(num("WTT_RETAIN_COMPLETED_S", 2592000),
                                    2592000),
        retain_failed_s = nonneg(num("WTT_RETAIN_FAILED_S", 604800), 604800),
        retain_unused_s = nonneg(num("WTT_RETAIN_UNUSED_S", 86400), 86400),
        media_grace_s = nonneg(num("WTT_MEDIA_GRACE_S", 86400), 86400),
        media_sweep_interval_s = nonneg(num("WTT_MEDIA_SWEEP_INTERVAL_S",
                                            3600), 3600),
        media_sweep_batch = positive(num("WTT_MEDIA_SWEEP_BATCH", 500), 500),
    }
end

local cached

--- The configuration of this Lua state (read on first use).
function _M.get()
    if not cached then
        cached = _M.load()
    end
    return cached
end

return _M
