--- Tab fingering policy: the weights and limits of the Viterbi search
-- (lua/wtt/tab/finger.lua). An operator tunes them in schema.lua (or the
-- WTT_TAB_* environment) and hot-reloads; a handler may also compute them,
-- for example per instrument.

local _M = {
    VERSION = "1.0.0",
}


--- Cost weights of the search.
-- @param instrument the profile name ("guitar", "bass", ...)
function _M.fingering_weights(conf, instrument)
    return {
        move = conf.move, move_line = conf.move_line, stretch = conf.stretch, height = conf.height,
        open = conf.open, string = conf.string, ring = conf.ring,
        skip = conf.skip, cross = conf.cross, bass = conf.bass,
        home = conf.home,
    }
end


--- Hard limits of the search.
function _M.fingering_limits(conf, instrument)
    return {
        span = conf.span, span_open = conf.span_open,
        chord_gap_ms = conf.chord_gap_ms,
        chord_window_ms = conf.chord_window_ms,
        candidates = conf.candidates,
    }
end


return _M
