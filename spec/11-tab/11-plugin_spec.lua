-- The fingering's weights are the `tab` plugin's settings: an operator
-- edits plugins/tab/ and the next tab uses them, with no restart; a broken
-- edit keeps the previous settings (docs/tab.md, "Fingering").

local policy = require "wtt.policy"
local tab = require "wtt.tab"
local sys = require "wtt.sys"
local runtime = require "wtt.runtime"

local copy_dir = require("spec.support.server").copy_dir

-- A line up the B string: near the nut it is cheapest on its own string;
-- with a high cost per string crossed and none for height it stays there.
local NOTES = {}
for i, p in ipairs({ 59, 60, 62, 64, 65, 67 }) do
    NOTES[i] = { start_s = i * 0.5, end_s = i * 0.5 + 0.4, pitch = p, amplitude = 0.7 }
end

local function strings_of(placed)
    local s = {}
    for i, n in ipairs(placed) do
        s[i] = n.string .. "/" .. n.fret
    end
    return table.concat(s, " ")
end

describe("tab plugin", function()
    local dir
    before_each(function()
        dir = assert(sys.mkdtemp("wtt-tabplugin-"))
        copy_dir(runtime.source_dir .. "/plugins", dir)
        policy.configure({ dir = dir, check_interval = 0 })
    end)
    after_each(function()
        policy.configure({ dir = runtime.plugins_dir })
        sys.rmtree(dir)
    end)

    local function edit(path, from, to)
        local src = assert(sys.read_file(dir .. "/" .. path))
        local new, n = src:gsub(from, to)
        assert.equal(1, n)
        assert(sys.write_file(dir .. "/" .. path, new))
    end

    it("hot-reloads edited weights into the next tab", function()
        local opts = assert(tab.options{})
        local before = strings_of(assert(tab.finger(NOTES, opts)))
        local sig = tab.signature()
        assert.equal("2/0 2/1 2/3 1/0 1/1 1/3", before)
        -- Crossing strings now costs a lot, height nothing: stay on B.
        edit("tab/schema.lua", '(name = "string", type = "number", default = )[%d.]+', "%1 50")
        edit("tab/schema.lua", '(name = "open", type = "number", default = )[%d.]+', "%1 0")
        local after = strings_of(assert(tab.finger(NOTES, opts)))
        assert.is_nil(policy.last_error())
        assert.equal("2/0 2/1 2/3 2/5 2/6 2/8", after)
        assert.is_not.equal(sig, tab.signature())
    end)

    it("keeps the previous settings when an edit is broken, naming the file", function()
        local opts = assert(tab.options{})
        local sig = tab.signature()
        edit("tab/schema.lua", '(name = "move", type = "number", default = )[%d.]+', "%1 -3")
        local placed = assert(tab.finger(NOTES, opts))
        assert.equal(#NOTES, #placed)
        assert.equal(sig, tab.signature())
        assert.matches("plugins/tab/schema.lua", policy.last_error(), 1, true)
        assert.matches("out of range", policy.last_error(), 1, true)
    end)

    it("takes WTT_TAB_<FIELD> from the environment, checked", function()
        local plugins = require "wtt.plugins"
        local files = assert(plugins.read_dir(dir))
        local env = function(v) return ({ WTT_TAB_SPAN = "3" })[v] end
        local set = assert(plugins.load(files, { env = env }))
        assert.equal(3, set.policy.fingering_limits("guitar").span)
        env = function(v) return ({ WTT_TAB_SPAN = "99" })[v] end
        local bad, failure = plugins.load(files, { env = env })
        assert.is_nil(bad)
        assert.matches("WTT_TAB_SPAN", plugins.describe(failure), 1, true)
    end)
end)
