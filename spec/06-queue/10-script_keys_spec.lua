-- Every key a queue script touches is declared (docs/queue.md "Keys a
-- script may touch"): the key argument of every redis.call / redis.pcall
-- (through any local alias) must be
--
--   - `KEYS[...]`, or a name whose every binding is a key expression;
--   - the one derivation rule: `<prefix> .. <name>`, where <prefix> is a
--     local bound to a KEYS entry its header calls a "task key prefix";
--   - a call of a local function whose every `return` is a key expression.
--
-- A name counts as bound by `local N = E`, `N = E`, or as parameter k of a
-- local function (then every call of that function must pass a key
-- expression there); any other binding (`for`, several names at once, a
-- parameter of an anonymous function) makes it no key. Bindings are
-- collected over the whole script (scopes ignored): strict, not clever.
-- The script text is parsed as `wtt.queue` loads it (includes expanded).

local runtime = require "wtt.runtime"
local sys = require "wtt.sys"
local qh = require "spec.support.queue"

local SCRIPT_DIR = runtime.lua_dir .. "/queue/scripts"

-- Commands whose first argument is not a key.
local NO_KEY = { PUBLISH = true, TIME = true }


local function expand(src)
    return (src:gsub('%-%-%- @include "([%w_]+)"', function(inc)
        return assert(sys.read_file(SCRIPT_DIR .. "/includes/" .. inc
                                    .. ".lua"), "include " .. inc)
    end))
end


-- The text with comments blanked (strings kept: commands are literals).
local function strip_comments(src)
    src = src:gsub("%-%-%[(=*)%[.-%]%1%]", function(c)
        return (c:gsub("[^\n]", " "))
    end)
    return (src:gsub("%-%-[^\n]*", ""))
end


-- Splits the text after an opening parenthesis into top-level arguments;
-- returns them and the position after the closing parenthesis.
local function args_at(src, pos)
    local out, depth, start, i = {}, 0, pos, pos
    while i <= #src do
        local c = src:sub(i, i)
        if c == '"' or c == "'" then
            local j = i + 1
            while src:sub(j, j) ~= c do
                if src:sub(j, j) == "\\" then
                    j = j + 1
                end
                j = j + 1
                assert(j <= #src, "unterminated string")
            end
            i = j
        elseif c == "(" or c == "{" or c == "[" then
            depth = depth + 1
        elseif c == ")" or c == "}" or c == "]" then
            if depth == 0 then
                local last = src:sub(start, i - 1):match("^%s*(.-)%s*$")
                if last ~= "" or #out > 0 then
                    out[#out + 1] = last
                end
                return out, i + 1
            end
            depth = depth - 1
        elseif c == "," and depth == 0 then
            out[#out + 1] = src:sub(start, i - 1):match("^%s*(.-)%s*$")
            start = i + 1
        end
        i = i + 1
    end
    error("unbalanced parentheses")
end


local function escape(s)
    return (s:gsub("%p", "%%%0"))
end


-- Checks one script; returns a list of violations.
local function lint(file)
    local raw = assert(sys.read_file(SCRIPT_DIR .. "/" .. file))
    local prefix_index = qh.prefix_keys(raw)
    local src = strip_comments(expand(raw))
    local problems = {}

    -- Bindings: name -> list of { kind, ... }.
    local binds = {}
    local function bind(name, b)
        binds[name] = binds[name] or {}
        table.insert(binds[name], b)
    end
    local functions = {}        -- name -> { params = {...}, body = text }
    for line in (src .. "\n"):gmatch("([^\n]*)\n") do
        local names, expr = line:match("^%s*local%s+([%w_,%s]+)=%s*(.-)%s*$")
        if not names then
            names, expr = line:match("^%s*([%w_]+)%s*=%s*(.-)%s*$")
        end
        if names then
            local list = {}
            for n in names:gmatch("[%w_]+") do
                list[#list + 1] = n
            end
            for _, n in ipairs(list) do
                bind(n, #list == 1 and { kind = "expr", expr = expr }
                                   or { kind = "other" })
            end
        end
        for vars in line:gmatch("^%s*for%s+([%w_,%s]+)[=%s]") do
            for n in vars:gmatch("[%w_]+") do
                if n ~= "in" then
                    bind(n, { kind = "other" })
                end
            end
        end
        for params in line:gmatch("[^%w_]function%s*(%b())") do
            for n in params:gmatch("[%w_]+") do
                bind(n, { kind = "other" })      -- anonymous function
            end
        end
    end
    -- Local functions: parameters and bodies (top level: `end` at column 0).
    for name, params, body in src:gmatch(
            "\nlocal function ([%w_]+)(%b())(.-)\nend") do
        local list = {}
        for n in params:gmatch("[%w_]+") do
            list[#list + 1] = n
            bind(n, { kind = "param", fn = name, pos = #list })
        end
        functions[name] = { params = list, body = body }
    end

    local is_key, name_is_key

    -- Every call of local function `fn` (not its definition) passes a key
    -- expression as argument `pos`.
    local function calls_pass_keys(fn, pos, seen)
        for at in src:gmatch("()[^%w_.:]" .. escape(fn) .. "%s*%(") do
            local before = src:sub(math.max(1, at - 15), at)
            if not before:match("function%s*$") then
                local open = src:find("(", at, true)
                local args = args_at(src, open + 1)
                if not args[pos] or not is_key(args[pos], seen) then
                    return false
                end
            end
        end
        return true
    end

    function name_is_key(name, seen)
        if seen[name] then
            -- back on a name being checked: the cycle brings in no value
            -- of its own, the other bindings decide
            return true
        end
        seen[name] = true
        local list = binds[name]
        if not list then
            return false
        end
        for _, b in ipairs(list) do
            local ok
            if b.kind == "expr" then
                local idx = b.expr:match("^KEYS%[(%d+)%]$")
                if idx then
                    ok = not prefix_index[tonumber(idx)]
                else
                    ok = is_key(b.expr, seen)
                end
            elseif b.kind == "param" then
                ok = calls_pass_keys(b.fn, b.pos, seen)
            end
            if not ok then
                seen[name] = nil
                return false
            end
        end
        seen[name] = nil
        return true
    end

    -- A name bound only to a prefix entry of KEYS.
    local function is_prefix(name)
        local list = binds[name]
        if not list or #list ~= 1 or list[1].kind ~= "expr" then
            return false
        end
        local idx = list[1].expr:match("^KEYS%[(%d+)%]$")
        return idx and prefix_index[tonumber(idx)] or false
    end

    function is_key(expr, seen)
        seen = seen or {}
        expr = expr:match("^%s*(.-)%s*$")
        if expr:match("^KEYS%[[%w_]+%]$") then
            return true
        end
        if expr:match("^[%a_][%w_]*$") then
            return name_is_key(expr, seen)
        end
        local p = expr:match("^([%a_][%w_]*)%s*%.%.%s*[%a_][%w_]*$")
        if p then
            return is_prefix(p)                    -- the derivation rule
        end
        local fn, rest = expr:match("^([%a_][%w_]*)%s*(%b())$")
        if fn and functions[fn] and rest then
            local any = false
            for ret in functions[fn].body:gmatch("[^%w_]return%s+([^\n]-)%s*\n") do
                any = true
                if not is_key(ret, seen) then
                    return false
                end
            end
            return any
        end
        return false
    end

    -- The call sites: redis.call, redis.pcall and their local aliases.
    local callers = { ["redis.call"] = true, ["redis.pcall"] = true }
    for alias in src:gmatch("local%s+([%w_]+)%s*=%s*redis%.p?call%f[^%w_]") do
        callers[alias] = true
    end
    for at, what in src:gmatch("()redis%.(p?call)") do
        local after = src:sub(at + 6 + #what)
        local before = src:sub(1, at - 1)
        if not after:match("^%s*%(")
           and not before:match("local%s+[%w_]+%s*=%s*$") then
            problems[#problems + 1] = "redis." .. what
                .. " used other than called or aliased once"
        end
    end
    local calls = 0
    for caller in pairs(callers) do
        for at in src:gmatch("()" .. escape(caller) .. "%s*%(") do
            local prev = src:sub(at - 1, at - 1)
            if not prev:match("[%w_.]") then
                local open = src:find("(", at, true)
                local args = args_at(src, open + 1)
                local cmd = args[1] and args[1]:match('^"([%u%a]+)"$')
                calls = calls + 1
                if not cmd then
                    problems[#problems + 1] = ("%s(%s): the command is not "
                        .. "a string literal"):format(caller,
                                                      tostring(args[1]))
                elseif not NO_KEY[cmd:upper()] then
                    if not args[2] or not is_key(args[2]) then
                        problems[#problems + 1] = ("%s(\"%s\", %s): not a "
                            .. "declared key nor <task key prefix> .. id")
                            :format(caller, cmd, tostring(args[2]))
                    end
                end
            end
        end
    end
    if calls == 0 then
        problems[#problems + 1] = "no redis.call found (parser out of date?)"
    end
    return problems
end


describe("queue scripts touch only declared keys", function()
    local files = {}
    for _, name in ipairs(assert(sys.listdir(SCRIPT_DIR))) do
        if name:match("%.lua$") then
            files[#files + 1] = name
        end
    end
    table.sort(files)

    it("finds the scripts", function()
        assert.is_true(#files >= 11)
    end)

    for _, file in ipairs(files) do
        it(file, function()
            local problems = lint(file)
            assert(#problems == 0, file .. ":\n  "
                   .. table.concat(problems, "\n  "))
        end)
    end

    -- Negative twins: the lint is not a rubber stamp.
    describe("rejects", function()
        local tmp
        local saved = SCRIPT_DIR
        setup(function()
            tmp = assert(sys.mkdtemp("wtt-keylint-"))
        end)
        teardown(function()
            if tmp then
                sys.rmtree(tmp)
            end
        end)

        local BAD = {
            ["a key built another way"] = "--[[\n  KEYS[1] task key prefix"
                .. "\n]]\n" .. [[
local rcall = redis.call
local taskPrefix = KEYS[1]
local other = taskPrefix .. "x" .. ARGV[1]
rcall("DEL", other)
]],
            ["the prefix itself"] = "--[[\n  KEYS[1] task key prefix"
                .. "\n]]\n" .. [[
local rcall = redis.call
local taskPrefix = KEYS[1]
rcall("DEL", taskPrefix)
]],
            ["a declared key that is no prefix, extended"] = [[
local queueKey = KEYS[1]
redis.call("DEL", queueKey .. ARGV[1])
]],
            ["an ARGV"] = [[
redis.call("DEL", ARGV[1])
]],
            ["a loop variable"] = [[
for _, k in ipairs(KEYS) do redis.pcall("DEL", k) end
]],
            ["a helper called with a non-key"] = [[
local rcall = redis.call
local function drop(key)
    rcall("DEL", key)
end
drop(KEYS[1])
drop(ARGV[1])
]],
            ["redis.call passed around"] = [[
local f = { redis.call }
f[1]("DEL", KEYS[1])
]],
        }
        for what, text in pairs(BAD) do
            it(what, function()
                assert(sys.write_file(tmp .. "/bad-1.lua", text))
                SCRIPT_DIR = tmp               -- lint reads it at each call
                local ok, problems = pcall(lint, "bad-1.lua")
                SCRIPT_DIR = saved
                assert(ok, problems)
                assert.is_true(#problems > 0, what .. " passed the lint")
            end)
        end
    end)
end)
