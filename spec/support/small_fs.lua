--- Small file systems of their own for the disk-full specs
-- (docs/reliability.md H10): a tmpfs with a size limit mounted on a fresh
-- directory, filled to the last byte by a filler file and freed again by
-- deleting it. Needs root (CAP_SYS_ADMIN); `unavailable()` says why not.
--
-- Mount points are unique directories under a temp dir of their own; every
-- mount made here is unmounted by `unmount_all()` (a spec's teardown),
-- also after a failure, lazily when something still holds it open.

local sys = require "wtt.sys"

local _M = {}

local live = {}        -- mounts of this Lua state not yet unmounted

local fs_mt = {}
fs_mt.__index = fs_mt


local run = require("spec.support.server").run


--- Mounts a tmpfs of `size` (mount's syntax: "32m") on a new directory
-- named after `label`. `owner` ("postgres:postgres") is given the root of
-- it. Returns the handle { dir, ... } or raises.
function _M.mount(label, size, owner)
    local base = assert(sys.mkdtemp("wtt-smallfs-"))
    local dir = base .. "/" .. label
    sys.mkdirs(dir)
    local ok, out = run({ "mount", "-t", "tmpfs", "-o",
                          "size=" .. size .. ",mode=0755",
                          "wtt-" .. label, dir })
    if not ok then
        sys.rmtree(base)
        error(out, 2)
    end
    local self = setmetatable({ base = base, dir = dir, label = label,
                                filler = base .. "/" .. label
                                         .. "/.filler" }, fs_mt)
    live[#live + 1] = self
    if owner then
        -- The owner must reach it through the temp dir (mkdtemp's 0700).
        assert(run({ "chmod", "0755", base }))
        assert(run({ "chown", owner, dir }))
    end
    return self
end


--- nil when a tmpfs can be mounted here, else the reason (a sentence for
-- "skipped, because ...").
function _M.unavailable()
    local f = io.open("/proc/self/status", "r")
    local text = f and f:read("*a") or ""
    if f then
        f:close()
    end
    local uid = tonumber(text:match("\nUid:%s+(%d+)"))
    if uid ~= 0 then
        return "the specs do not run as root (uid " .. tostring(uid)
            .. "): mounting a small file system needs CAP_SYS_ADMIN"
    end
    local ok, err = pcall(_M.mount, "probe", "1m")
    if not ok then
        return "a tmpfs cannot be mounted here (a container without "
            .. "CAP_SYS_ADMIN?): " .. tostring(err)
    end
    live[#live]:unmount()
    return nil
end


--- Fills the file system to the last byte (the filler grows until
-- ENOSPC). Returns the filler's size.
function fs_mt.fill(self)
    local out = assert(io.open(self.filler, "wb"))
    local chunk = string.rep("\0", 65536)
    local ok = true
    while ok do
        ok = out:write(chunk)
        if ok then
            ok = out:flush()
        end
    end
    out:close()
    -- Pages half used by the last chunk: fill them byte by byte.
    out = assert(io.open(self.filler, "ab"))
    for _ = 1, 65536 do
        if not out:write("\0") or not out:flush() then
            break
        end
    end
    out:close()
    return sys.file_size(self.filler)
end


--- Frees the space the filler took.
function fs_mt.free(self)
    os.remove(self.filler)
end


--- The names in the mount point, the filler left out, sorted.
function fs_mt.names(self, sub)
    local out = {}
    for _, name in ipairs(sys.listdir(self.dir .. (sub or "")) or {}) do
        if name ~= ".filler" then
            out[#out + 1] = name
        end
    end
    table.sort(out)
    return out
end


--- Unmounts (lazily when busy) and removes the directories; safe twice.
function fs_mt.unmount(self)
    if self.gone then
        return true
    end
    local ok, out = run({ "umount", self.dir })
    if not ok then
        ok, out = run({ "umount", "-l", self.dir })
    end
    if not ok then
        return nil, out
    end
    self.gone = true
    for i, m in ipairs(live) do
        if m == self then
            table.remove(live, i)
            break
        end
    end
    sys.rmtree(self.base)
    return true
end


--- Unmounts every mount this Lua state made; returns the failures' text
-- or nil.
function _M.unmount_all()
    local errs = {}
    for i = #live, 1, -1 do
        local ok, err = live[i]:unmount()
        if not ok then
            errs[#errs + 1] = err
            table.remove(live, i)
        end
    end
    return #errs > 0 and table.concat(errs, "\n") or nil
end


return _M
