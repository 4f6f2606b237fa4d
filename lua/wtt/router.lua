--- Method + path router with captures.
--
-- Paths are literal except for `:name` segments (one path segment, captured)
-- and a trailing `*name` (the rest of the path, captured). Static paths are
-- a table lookup; patterned paths are tried in the order they were added.
-- `match` also tells apart "no such path" (404) from "path exists, method
-- does not" (405, with the Allow list).

local type = type
local pairs = pairs
local concat = table.concat
local sort = table.sort
local str_match = string.match
local str_gsub = string.gsub

local _M = {}
local mt = { __index = _M }

local METHODS = {
    GET = true, HEAD = true, POST = true, PUT = true, PATCH = true,
    DELETE = true, OPTIONS = true,
}
_M.METHODS = METHODS


--- A new, empty router.
function _M.new()
    return setmetatable({ static = {}, dynamic = {}, by_path = {} }, mt)
end


local function compile(path)
    local names = {}
    local pat = str_gsub(path, "([%^%$%(%)%%%.%[%]%+%-%?])", "%%%1")
    pat = str_gsub(pat, "/:([%a_][%w_]*)", function(name)
        names[#names + 1] = name
        return "/([^/]+)"
    end)
    pat = str_gsub(pat, "/%*([%a_][%w_]*)$", function(name)
        names[#names + 1] = name
        return "/(.*)"
    end)
    return "^" .. pat .. "$", names
end


local function allow_list(methods)
    local list = {}
    for m in pairs(methods) do
        list[#list + 1] = m
    end
    if methods.GET and not methods.HEAD then
        list[#list + 1] = "HEAD"
    end
    if not methods.OPTIONS then
        list[#list + 1] = "OPTIONS"
    end
    sort(list)
    return concat(list, ", ")
end


--- Adds `route` for `method` at `path`.
-- @return true, or nil and an error when the pair is already taken
function _M.add(self, method, path, route)
    if not METHODS[method] then
        return nil, "unknown method " .. tostring(method)
    end
    local entry = self.by_path[path]
    if not entry then
        entry = { methods = {} }
        if str_match(path, "/[:*]") then
            entry.pattern, entry.names = compile(path)
            self.dynamic[#self.dynamic + 1] = entry
        else
            self.static[path] = entry
        end
        self.by_path[path] = entry
    end
    if entry.methods[method] then
        return nil, method .. " " .. path .. " is defined twice"
    end
    entry.methods[method] = route
    entry.allow = allow_list(entry.methods)
    return true
end


local function captures(entry, path)
    local caps = { str_match(path, entry.pattern) }
    if caps[1] == nil then
        return nil
    end
    local params = {}
    for i, name in ipairs(entry.names) do
        params[name] = caps[i]
    end
    return params
end


--- Finds the route for `method` and `path`.
-- @return route, params | nil, nil, allow (path known, method not) | nil
function _M.match(self, method, path)
    local entry, params = self.static[path], nil
    if not entry then
        local dyn = self.dynamic
        for i = 1, #dyn do
            params = captures(dyn[i], path)
            if params then
                entry = dyn[i]
                break
            end
        end
        if not entry then
            return nil
        end
    end
    local methods = entry.methods
    local route = methods[method]
    if not route and method == "HEAD" then
        route = methods.GET
    end
    if route then
        return route, params
    end
    return nil, nil, entry.allow
end


return _M
