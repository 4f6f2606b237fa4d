-- The web page (docs/web.md): GET / and its static files (routes/web/,
-- plain HTML, CSS and ES modules, no build step), alphaTab's files from
-- the same origin under /vendor/alphatab/, and GET /transcribe/config/
-- (the upload limit and what this server offers, for the page).
--
-- The reload loader reads only the .lua files under routes/ (core/base/
-- wtt_reload.c), so routes/web/ holds no .lua file; its files are read
-- from disk on each request, so an edit shows without a reload.

local page = require "wtt.service.page"
local static = require "wtt.service.static"

local abort = require("wtt.http").abort

local NOT_FOUND = "no such file"

-- Our own files: revalidated on every load (ETag), so an edit is never
-- hidden behind a cache.
local WEB_TYPES = { html = true, js = true, css = true, svg = true,
                    ico = true, png = true, webmanifest = true }

-- alphaTab's dist: the module, its worker and worklet entry points, the
-- music font, the soundfont. Pinned (tools/alphatab/package.json), so a
-- day's cache is safe; the ETag catches an upgrade after that.
local VENDOR_TYPES = { mjs = true, woff2 = true, woff = true, otf = true,
                       eot = true, svg = true, sf2 = true, sf3 = true }
local VENDOR_CACHE = "public, max-age=86400"


local function with_page_headers(status, body, headers)
    for k, v in pairs(page.headers()) do
        headers[k] = v
    end
    return status, body, headers
end


local function index(req)
    local path, ext = static.resolve(page.web_dir(), "index.html")
    if not path then
        abort(404, "not_found", "the page's files are missing (WTT_WEB_DIR)")
    end
    return with_page_headers(static.serve(req, path, ext))
end


local function asset(req)
    local path, ext = static.resolve(page.web_dir(), req.params.name, WEB_TYPES)
    if not path then
        abort(404, "not_found", NOT_FOUND)
    end
    return with_page_headers(static.serve(req, path, ext))
end


local function vendor(req)
    local dir = page.alphatab_dir()
    if not dir then
        abort(404, "not_found", "alphaTab is not installed (WTT_ALPHATAB_DIR)")
    end
    local path, ext = static.resolve(dir, req.params.path, VENDOR_TYPES)
    if not path then
        abort(404, "not_found", NOT_FOUND)
    end
    return with_page_headers(static.serve(req, path, ext, {
        cache_control = VENDOR_CACHE, immutable_read = true }))
end


local function page_config()
    return 200, page.config(require("wtt.server").has_route),
           { ["Cache-Control"] = "no-cache" }
end


return {
    { "GET", "/", index },
    { "GET", "/static/:name", asset },
    { "GET", "/vendor/alphatab/*path", vendor },
    { "GET", "/transcribe/config/", page_config },
}
