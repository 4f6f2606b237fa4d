-- The web side of bench/infer.sh --device cuda's worker path: a routes
-- file for `wtt serve` (copied alone into a routes dir) with just what a
-- worker calls, behind the worker token. No PostgreSQL, no subscriber:
-- the bench reads the outcome from the task hashes.
--   GET  /media/<name>               BENCH_MEDIA_DIR/<name>
--   POST /transcribe/_result/<id>/   accepts the result files, keeps none
local http = require "wtt.http"
local sys = require "wtt.sys"

local DIR = assert(os.getenv("BENCH_MEDIA_DIR"), "BENCH_MEDIA_DIR unset")
local TOKEN = assert(os.getenv("BENCH_WORKER_TOKEN"),
                     "BENCH_WORKER_TOKEN unset")

-- The `auth` option: every route under /media/ and /transcribe/_result/
-- must have one.
local function worker_auth(req)
    if req:header("authorization") ~= "Bearer " .. TOKEN then
        http.abort(401, "unauthorized", "bad worker token")
    end
end

return {
    { "GET", "/livez", function() return 200, "ok" end },
    { "GET", "/media/:name", function(req)
        local name = req.params.name
        -- Names the bench made (clipNNN.wav): nothing outside DIR.
        if not name:match("^[%w_.-]+$") or name:find("..", 1, true) then
            return 404, { error = "not_found" }
        end
        local data = sys.read_file(DIR .. "/" .. name)
        if not data then
            return 404, { error = "not_found" }
        end
        return 200, data, { ["Content-Type"] = "application/octet-stream" }
    end, { auth = worker_auth } },
    { "POST", "/transcribe/_result/:id/", function(req)
        local id = req.params.id
        return 200, { midi = "midi/" .. id .. ".mid",
                      notes = "notes/" .. id .. ".json" }
    end, { body = "form", auth = worker_auth } },
}
