--- The plugins of the running generation.
--
-- A plugin is a directory `plugins/<name>/` with `handler.lua` (a table with
-- VERSION "x.y.z", PRIORITY integer and the plugin's functions) and
-- optionally `schema.lua` (declarative config fields with defaults). Every
-- Lua file of a plugin is requirable as `plugins.<name>.<file>`. Each Lua
-- state holds one generation, so this module's table is that generation's.

local _M = {}

local loaded = {}
local order = {}

local ERR_VERSION = "VERSION must be a string like \"1.2.3\""
local ERR_PRIORITY = "PRIORITY must be an integer"


--- Validates and registers plugin `name` (called by wtt.app).
-- @return true | nil, err
function _M.register(name, handler, schema)
    if type(handler) ~= "table" then
        return nil, "handler.lua must return a table"
    end
    if type(handler.VERSION) ~= "string"
        or not handler.VERSION:match("^%d+%.%d+%.%d+$") then
        return nil, ERR_VERSION
    end
    local p = handler.PRIORITY
    if type(p) ~= "number" or p % 1 ~= 0 then
        return nil, ERR_PRIORITY
    end
    if schema ~= nil and type(schema) ~= "table" then
        return nil, "schema.lua must return a table"
    end
    loaded[name] = { name = name, handler = handler, schema = schema,
                     version = handler.VERSION, priority = p }
    order[#order + 1] = loaded[name]
    table.sort(order, function(a, b)
        if a.priority ~= b.priority then
            return a.priority > b.priority
        end
        return a.name < b.name
    end)
    return true
end


--- The handler table of plugin `name`, or nil.
function _M.get(name)
    local p = loaded[name]
    return p and p.handler
end


--- Plugins by descending PRIORITY: { {name, version, priority, handler} }.
function _M.list()
    return order
end


return _M
