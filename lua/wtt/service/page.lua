--- The web page's settings and headers (routes/web.lua, docs/web.md).
--
-- | variable | default | meaning |
-- |---|---|---|
-- | WTT_WEB_DIR | <routes dir>/web | the page's static files |
-- | WTT_ALPHATAB_DIR | <source>/tools/alphatab/node_modules/@coderline/alphatab/dist | alphaTab's dist/ (served under /vendor/alphatab/) |
-- | WTT_WEB_HISTORY | on | off: the page keeps and shows no history of uploads |

local runtime = require "wtt.runtime"
local sys = require "wtt.sys"
local config = require "wtt.service.config"

local _M = {}

_M.VENDOR_PREFIX = "/vendor/alphatab/"

-- What the page may load (docs/web.md "Content-Security-Policy"): scripts
-- only from this origin, never inline; alphaTab's render worker and audio
-- worklet are module files of this origin (worker-src 'self'). alphaTab
-- adds two <style> elements (the music font's @font-face, its own classes)
-- and writes the score's SVG with style attributes, which needs style-src
-- 'unsafe-inline' (styles only: scripts stay strict).
_M.CSP = table.concat({
    "default-src 'self'",
    "script-src 'self'",
    "worker-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self'",
    "font-src 'self'",
    "media-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
}, "; ")

-- Headers of every page and asset answer.
function _M.headers()
    return {
        ["Content-Security-Policy"] = _M.CSP,
        ["Referrer-Policy"] = "no-referrer",
        ["X-Frame-Options"] = "DENY",
        ["Cross-Origin-Opener-Policy"] = "same-origin",
    }
end


local function env(name)
    local v = os.getenv(name)
    if v == nil or v == "" then
        return nil
    end
    return v
end


--- The directory of the page's static files.
function _M.web_dir()
    return env("WTT_WEB_DIR") or (runtime.routes_dir .. "/web")
end


--- alphaTab's dist/ directory, or nil when it is not installed (the page
-- then shows the ASCII tab instead of the rendered one).
function _M.alphatab_dir()
    local dir = env("WTT_ALPHATAB_DIR") or (runtime.source_dir
        .. "/tools/alphatab/node_modules/@coderline/alphatab/dist")
    if sys.exists(dir .. "/alphaTab.mjs") ~= "file" then
        return nil
    end
    return dir
end


--- True unless the operator turned the page's history off.
function _M.history_on()
    local v = (env("WTT_WEB_HISTORY") or "on"):lower()
    return not (v == "off" or v == "0" or v == "false" or v == "no")
end


-- Instruments and their named tunings (lowest string first), for the
-- page's selects.
local function instruments()
    local profiles = require("wtt.tab.instrument").PROFILES
    local out = {}
    for name, p in pairs(profiles) do
        local tunings = {}
        for tname, notes in pairs(p.tunings) do
            tunings[tname] = notes
        end
        out[name] = { strings = p.strings, max_fret = p.max_fret,
                      tunings = tunings }
    end
    return out
end


--- What the page needs to know about this server.
-- @param has_route function(method, path) -> bool (wtt.server.has_route)
function _M.config(has_route)
    local cfg = config.get()
    return {
        max_upload_bytes = cfg.max_upload,
        max_audio_s = cfg.max_audio_s,
        formats = { "wav", "mp3", "flac", "ogg" },
        history = _M.history_on(),
        events = has_route("GET", "/transcribe/events/x/") and true or false,
        alphatab = _M.alphatab_dir() and _M.VENDOR_PREFIX or false,
        modes = { "official", "guitar", "bass" },
        instruments = instruments(),
    }
end


return _M
