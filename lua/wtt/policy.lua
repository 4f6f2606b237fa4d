--- The queue's policy in force, from the plugins `retry`, `timeout`,
-- `priority` and `deadletter` (docs/plugins.md).
--
--     local policy = require "wtt.policy"
--     local p = policy.current()
--     p.max_attempts(payload), p.backoff_ms(attempts, rand),
--     p.retryable(err, flag), p.timeout_ms(payload), p.lane(payload),
--     p.fair_share(payload) (optional), p.dead_ttl_s(), p.final_ttl_s(),
--     p.versions, p.source
--
-- Both cases load through the one loader, wtt.plugins:
-- - inside a `wtt serve` generation, the set that generation built and
--   validated before it was swapped in (wtt.plugins.active());
-- - elsewhere (worker, subscriber, `wtt queue`), the files of plugins/
--   (WTT_PLUGINS_DIR), reloaded when a file's name or text changes
--   (checked at most every `check_interval` seconds) or on
--   `policy.reload()`. A set that fails to load leaves the previous one in
--   force; `policy.last_error()` tells why. With no valid set yet (a
--   broken plugins/ at start), current() raises: there is no policy to
--   apply, and the worker refuses to start (lua/wtt/worker/start.lua).

local sys = require "wtt.sys"
local runtime = require "wtt.runtime"
local plugins = require "wtt.plugins"

local tostring = tostring

local _M = {}

local state = {
    dir = nil,             -- plugins dir (default runtime.plugins_dir)
    check_interval = 1,    -- seconds between file checks
    checked_at = nil,
    signature = nil,       -- of the files the current policy came from
    bad_signature = nil,   -- of files that failed (not loaded again)
    current = nil,         -- policy built from the files
    last_error = nil,
}


--- Sets where plugins are read from and how often files are checked.
-- @param opts { dir = path, check_interval = seconds }
function _M.configure(opts)
    if opts.dir ~= nil then
        state.dir = opts.dir
        state.signature, state.current, state.checked_at = nil, nil, nil
        state.bad_signature, state.last_error = nil, nil
    end
    if opts.check_interval ~= nil then
        state.check_interval = opts.check_interval
    end
end


--- Reloads the plugins from their files now (unchanged files: nothing).
-- @return true | nil, err (the previous policy stays in force)
function _M.reload()
    state.checked_at = sys.now()
    local files, sig, err = plugins.read_dir(state.dir or runtime.plugins_dir)
    if not files then
        err = "could not read plugins: " .. tostring(err)
        state.last_error = err
        return nil, err
    end
    if sig == state.signature and state.current then
        return true
    end
    if sig == state.bad_signature then
        return nil, state.last_error
    end
    local set, failure = plugins.load(files, { source = "files" })
    if not set then
        -- Logged once per broken text; the same text is not loaded again.
        err = plugins.describe(failure)
        state.last_error, state.bad_signature = err, sig
        io.stderr:write("wtt.policy: plugins not reloaded: ", err, "\n")
        return nil, err
    end
    state.current, state.signature = set.policy, sig
    state.last_error, state.bad_signature = nil, nil
    return true
end


--- The policy in force. Raises when no plugin set ever loaded.
-- @return policy table (see the module comment)
function _M.current()
    local set = plugins.active()
    if set then
        return set.policy
    end
    local t = sys.now()
    if not state.checked_at or t - state.checked_at >= state.check_interval
    then
        _M.reload()
    end
    if not state.current then
        error("no valid plugin set: " .. tostring(state.last_error), 2)
    end
    return state.current
end


--- The error of the last failed reload, or nil.
function _M.last_error()
    return state.last_error
end


return _M
