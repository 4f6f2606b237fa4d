-- Route file for bench/http.sh: copied to $TMP/routes/bench.lua and served by
-- `wtt serve --routes-dir $TMP/routes`.
--
-- BODY is the single source of truth for the benchmark payload: bench/http.sh
-- extracts the single-quoted string on the `local BODY = '...'` line and
-- pastes it into the nginx+lua peer's config, so both servers send the same
-- 100 bytes. Keep it on one line, single-quoted, without ' or \ inside.
--
-- The reload phase of bench/http.sh rewrites the next line on every reload
-- so the file's bytes (and hence the loaded code) really change.
-- bench reload marker: 0
local BODY = '{"message":"hello from wtt","items":[1,2,3,4,5],"ok":true,"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}'
local HEADERS = { ["Content-Type"] = "application/json" }

return {
    { "GET", "/bench/json", function(req) return 200, BODY, HEADERS end },
}
