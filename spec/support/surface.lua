-- What a module (or an object's method table) exposes, for the specs that
-- pin a public surface split over several files (spec/06-queue/
-- 12-surface_spec.lua, spec/08-worker/04-surface_spec.lua).

local _M = {}


--- "name:type" of every key of `t`, sorted: one list to compare whole, so
-- a dropped export and a leaked private helper both show.
function _M.of(t)
    local list = {}
    for k, v in pairs(t) do
        list[#list + 1] = tostring(k) .. ":" .. type(v)
    end
    table.sort(list)
    return list
end

return _M
