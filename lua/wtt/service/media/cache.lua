--- A directory of derived files (rendered tabs; with the pg store, local
-- copies of stored objects too) kept within a byte budget, least recently
-- used first out. Entries are safe to lose: each can be made again from
-- the store. Both media stores own one (lua/wtt/service/media/dir.lua,
-- pg.lua), so neither lets its disk fill with renders (docs/operations.md,
-- "Media retention").
--
--     local c = cache.new(root, bytes)
--     c:touch(name)          -- a hit
--     c:added(name)          -- after writing root/name; evicts others

local sys = require "wtt.sys"

local os_remove = os.remove

local _M = {}
local cache = {}
local mt = { __index = cache }


--- A cache in `root` holding at most `bytes` (default 1 GiB).
function _M.new(root, bytes)
    assert(type(root) == "string", "cache dir expected")
    return setmetatable({ root = root, bytes = bytes or 1024 * 1048576,
                          used = {}, clock = 0 }, mt)
end


--- Records a use of `name`, for the eviction order.
function cache.touch(self, name)
    self.clock = self.clock + 1
    self.used[name] = self.clock
end


--- Keeps the cache within its budget after `keep` was added: entries this
-- state never used go first (another thread's or an earlier run's), then
-- the least recently used. Temp files of writes in progress are left
-- alone.
function cache.added(self, keep)
    self:touch(keep)
    local names = sys.listdir(self.root)
    if not names then
        return
    end
    local entries, total = {}, 0
    for _, n in ipairs(names) do
        if not n:find(".part", 1, true) then
            local size = sys.file_size(self.root .. "/" .. n)
            if size then
                total = total + size
                if n ~= keep then
                    entries[#entries + 1] = { name = n, size = size,
                                              used = self.used[n] or 0 }
                end
            end
        end
    end
    if total <= self.bytes then
        return
    end
    table.sort(entries, function(a, b) return a.used < b.used end)
    for _, e in ipairs(entries) do
        if total <= self.bytes then
            break
        end
        os_remove(self.root .. "/" .. e.name)
        self.used[e.name] = nil
        total = total - e.size
    end
end


return _M
