--- Results for wtt.queue: the result files a worker uploaded, recorded
-- once per task under its claim (web, POST /transcribe/_result/), and the
-- backlog of finished ids the subscriber moves into the database
-- (take, ack after the COMMIT, recover at start). `queue` holds the
-- methods wtt.queue puts on every queue.

local json = require "cjson.safe"
local internal = require "wtt.queue.internal"
local S = require("wtt.queue.scripts").scripts

local error = error
local tostring = tostring
local reply_error = internal.reply_error
local check_id = internal.check_id
local check_claim = internal.check_claim

local _M = {}

--- Queue methods; wtt.queue copies them onto its queue method table.
local queue = {}
_M.queue = queue


--- Moves the oldest id of the results backlog to results:processing.
-- @return id | nil | nil, err
function queue.results_take(self)
    return self.r:call("LMOVE", self.k.results, self.k.results_processing,
                       "LEFT", "RIGHT")
end


--- Drops `id` from results:processing (after the DB COMMIT).
-- @return true | nil, err
function queue.results_ack(self, id)
    check_id(id, "results_ack")
    local n, err = self.r:call("LREM", self.k.results_processing, 1, id)
    if not n then
        return nil, err
    end
    return true
end


--- Moves everything in results:processing back to the front of the
-- backlog, in order (subscriber start).
-- @return n | nil, err
function queue.results_recover(self)
    local n = 0
    while true do
        local id, err = self.r:call("LMOVE", self.k.results_processing,
                                    self.k.results, "RIGHT", "LEFT")
        if err then
            return nil, err
        end
        if not id then
            return n
        end
        n = n + 1
    end
end


--- Records the result files a worker uploaded for task `id` under its
-- claim (POST /transcribe/_result/, script store-1): once per task; a
-- replay of the same upload gets the stored names back.
-- @param fingerprint text naming the upload (same files, same text)
-- @param uploads table of the stored names (kept as JSON)
-- @return "stored" | "replay", uploads JSON
--   | nil, "result exists", the stored uploads JSON
--   | nil, "stale" | "not processing" | "not found" | nil, "WRONGTYPE..."
--   | nil, err
function queue.store_result(self, id, claim, fingerprint, uploads)
    check_id(id, "store_result")
    claim = check_claim(claim, "store_result")
    local text, jerr = json.encode(uploads or {})
    if not text then
        error("bad argument #4 to 'store_result' (" .. jerr .. ")", 2)
    end
    local res, err = self.r:eval(S.store, { self.k.task_prefix .. id },
                                 { claim, tostring(fingerprint), text })
    if not res then
        return nil, "could not store the result: " .. tostring(err)
    end
    err = reply_error("store the result", res)
    if err then
        return nil, err, res[2]
    end
    return res[1] == 2 and "replay" or "stored", res[2]
end


return _M
