-- What the build reports about its backends comes from the engine's
-- registry (core/engine/wtt_backend_reg.c): `wtt version`,
-- wtt.core.model.backends() and the device a model runs on all say what is
-- compiled in, never what the build machine had installed.

local core = require "wtt.core.model"
local model = require "wtt.model"
local sys = require "wtt.sys"
local runtime = require "wtt.runtime"


local function version_line()
    local dir = assert(sys.mkdtemp("wtt-version-"))
    local out = dir .. "/out"
    local pid = assert(sys.spawn({ runtime.exe, "version" }, { stdout = out }))
    local how, code = sys.wait(pid, 30)
    local text = sys.read_file(out) or ""
    sys.rmtree(dir)
    assert.equal("exited", how)
    assert.equal(0, code)
    return text
end


local function has(list, name)
    for _, v in ipairs(list) do
        if v == name then
            return true
        end
    end
    return false
end


describe("backends", function()
    it("lists the CPU backend first, each name once", function()
        local list = core.backends()
        assert.equal("cpu", list[1])
        local seen = {}
        for _, b in ipairs(list) do
            assert.is_nil(seen[b])
            seen[b] = true
        end
        assert.same(list, model.backends())
    end)

    it("are what `wtt version` prints", function()
        local line = version_line()
        local printed = line:match("backends: ([%w ]+)%)")
        assert.is_not_nil(printed)
        local names = {}
        for name in printed:gmatch("%S+") do
            names[#names + 1] = name
        end
        assert.same(core.backends(), names)
        assert.is_nil(line:find("cuda on", 1, true))
    end)

    it("are not guessed in wtt.runtime", function()
        assert.is_nil(runtime.cuda)
    end)

    it("give the device a model reports", function()
        local m = assert(model.load(nil, { threads = 1, device = "cpu" }))
        assert.equal("cpu", m.device)
        assert.equal("cpu", m.core:backend())
        assert.equal("cpu", m:provenance({}).device)
        local auto = assert(model.load(nil, { threads = 1 }))
        assert.equal(core.backends()[1], auto.device)
    end)

    it("refuses a backend this build does not have", function()
        local m, err = core.load(model.default_dir(),
                                 { threads = 1, backend = "tpu" })
        assert.is_nil(m)
        assert.matches("this build has no 'tpu' backend", err, 1, true)
    end)

    it("refuses device cuda unless the CUDA backend is compiled in",
       function()
        local m, err = model.load(nil, { threads = 1, device = "cuda" })
        if has(core.backends(), "cuda") then
            assert.is_not_nil(m, err)
            assert.equal("cuda", m.device)
        else
            assert.is_nil(m)
            assert.matches("this build has no CUDA backend", err, 1, true)
        end
    end)
end)
