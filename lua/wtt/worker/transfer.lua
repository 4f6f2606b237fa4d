--- Transfers for wtt.worker: the task's audio downloaded from web and its
-- result files POSTed back (worker token), each retried with backoff on
-- errors worth retrying, and cancelled when the shutdown grace runs out.
-- `worker` holds the methods wtt.worker puts on every worker
-- (backoff_delay, download, upload).

local httpc = require "wtt.http_client"
local json = require "wtt.json"
local log = require "wtt.log"

local _M = {}

--- Worker methods; wtt.worker copies them onto its module table, which is
-- every worker's method table.
local worker = {}
_M.worker = worker


--- Backoff before attempt n+1: min(max, base * 2^(n-1)), drawn in [d/2, d].
function worker.backoff_delay(self, n)
    local d = math.min(self.cfg.backoff_max, self.cfg.backoff * 2 ^ (n - 1))
    return d / 2 + math.random() * d / 2
end


local function auth(self)
    return { Authorization = "Bearer " .. (self.cfg.token or "") }
end


-- A status worth retrying: server errors, timeouts, rate limits.
local function transient(status)
    return status >= 500 or status == 408 or status == 429
end


-- Waits out the backoff after failed attempt `attempt` of a transfer,
-- logged as `event` with the attempt's error.
-- @return false when the grace ran out meanwhile (the task is cancelled)
local function wait_retry(self, event, attempt, err)
    local d = self:backoff_delay(attempt)
    log.warn(event, { attempt = attempt, error = err,
                      retry_in_s = string.format("%.3f", d) })
    return self:nap(d)
end


--- Downloads the task's audio into `dir`.
-- @return path | nil, err, retryable | nil, "cancelled"
function worker.download(self, task, dir)
    local url = task.payload.audio_url
    if type(url) ~= "string" or url == "" then
        return nil, "payload has no audio_url", false
    end
    if not url:match("^https?://") then
        url = self.cfg.web_url .. (url:sub(1, 1) == "/" and "" or "/") .. url
    end
    local ext = (task.payload.audio_url:match("%.([%w]+)$") or "audio")
    local path = dir .. "/input." .. ext:lower()
    local last
    for attempt = 1, self.cfg.retries do
        local res, err = httpc.request({
            url = url, headers = auth(self), output = path,
            max_size = self.cfg.max_download,
            timeout = self.cfg.http_timeout,
            connect_timeout = self.cfg.connect_timeout,
        })
        if res and res.status == 200 then
            log.info("task.downloaded", { bytes = res.size,
                                          time_s = string.format("%.3f",
                                                                 res.time) })
            return path
        end
        if res then
            os.remove(path)
            last = "download failed: HTTP " .. res.status .. " for " .. url
            if not transient(res.status) then
                return nil, last, false
            end
        else
            last = "download failed: " .. tostring(err)
            if err and err:find("larger than", 1, true) then
                return nil, last, false
            end
        end
        if attempt < self.cfg.retries
           and not wait_retry(self, "task.download_retry", attempt, last)
        then
            return nil, "cancelled"
        end
    end
    return nil, last, true
end


--- POSTs the result files. @return "ok", doc | "lost" | "cancelled" |
-- nil, err, retryable
function worker.upload(self, task, files)
    local url = self.cfg.web_url .. "/transcribe/_result/" .. task.id .. "/"
    local parts = { { name = "claim", value = tostring(task.claim) } }
    for _, f in ipairs(files) do
        parts[#parts + 1] = { name = f.name, file = f.path,
                              filename = f.filename,
                              content_type = f.content_type }
    end
    local headers = auth(self)
    headers["Idempotency-Key"] = task.id .. ":" .. tostring(task.claim)
    local last
    for attempt = 1, self.cfg.retries do
        local res, err = httpc.request({
            url = url, method = "POST", headers = headers,
            multipart = parts, timeout = self.cfg.http_timeout,
            connect_timeout = self.cfg.connect_timeout,
            max_size = 1024 * 1024,
        })
        if res then
            if res.status >= 200 and res.status < 300 then
                local ok, doc = pcall(json.decode, res.body or "")
                return "ok", ok and type(doc) == "table" and doc or {}
            elseif res.status == 409 then
                -- A result from an earlier run of this task (one that died
                -- before completing) is already stored: the task ends
                -- with that first result (reliability W6). Any other 409
                -- means this claim is stale.
                local ok, doc = pcall(json.decode, res.body or "")
                if ok and type(doc) == "table"
                   and doc.error == "result_exists"
                   and type(doc.result) == "table"
                then
                    log.info("task.result_exists", {})
                    return "ok", doc.result
                end
                return "lost"
            end
            last = "result upload failed: HTTP " .. res.status .. " "
                   .. tostring(res.body or ""):sub(1, 200)
            if not transient(res.status) then
                return nil, last, true
            end
        else
            last = "result upload failed: " .. tostring(err)
        end
        if attempt < self.cfg.retries
           and not wait_retry(self, "task.upload_retry", attempt, last)
        then
            return "cancelled"
        end
    end
    return nil, last, true
end


return _M
