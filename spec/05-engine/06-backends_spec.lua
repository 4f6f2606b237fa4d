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

    it("are what `wtt version` prints, with what each device backend found",
       function()
        local text = version_line()
        local printed = text:match("backends: ([%w ]+)%)")
        assert.is_not_nil(printed)
        local names = {}
        for name in printed:gmatch("%S+") do
            names[#names + 1] = name
        end
        assert.same(core.backends(), names)
        if has(names, "cuda") then
            local gpus = core.devices("cuda")
            if #gpus == 0 then
                assert.matches("\ncuda: compiled in; no usable device found",
                               text)
            else
                for _, g in ipairs(gpus) do
                    assert.truthy(text:find("cuda:" .. g.index .. ": "
                                            .. g.name, 1, true))
                end
            end
        else
            assert.matches("\ncuda: not compiled in\n", text)
        end
    end)

    it("are in wtt.runtime as the registry has them", function()
        assert.same(core.backends(), runtime.backends)
        assert.equal(has(core.backends(), "cuda"), runtime.cuda.compiled)
        if runtime.cuda.compiled then
            assert.same(core.devices("cuda"), runtime.cuda.devices)
        else
            assert.is_nil(runtime.cuda.devices)
        end
    end)

    it("say in wtt.runtime.sanitized whether the build has ASan", function()
        -- The build directory's cache is the independent witness.
        local dir = runtime.exe:match("^(.*)/[^/]+$")
        local cache = sys.read_file(dir .. "/CMakeCache.txt")
        if not cache then
            pending("skipped, because " .. dir .. " has no CMakeCache.txt "
                    .. "(an installed binary)")
            return
        end
        local on = cache:match("\nWTT_SANITIZE:BOOL=(%u+)")
        assert.equal(on == "ON", runtime.sanitized)
    end)

    it("list the CPU as one device", function()
        local devs = core.devices("cpu")
        assert.equal(1, #devs)
        assert.equal(0, devs[1].index)
        assert.truthy(devs[1].memory > 0)
        local none, err = core.devices("tpu")
        assert.is_nil(none)
        assert.matches("no 'tpu' backend", err, 1, true)
    end)

    it("give the device a model reports", function()
        local m = assert(model.load(nil, { threads = 1, device = "cpu" }))
        assert.equal("cpu", m.device)
        assert.equal("cpu", m.core:backend())
        assert.equal("cpu", m:provenance({}).device)
        local auto = assert(model.load(nil, { threads = 1 }))
        if #model.gpus() > 0 then
            assert.equal("cuda:0", auto.device)
        else
            assert.equal("cpu", auto.device)
        end
    end)

    it("parse auto, cpu, cuda and cuda:N, and nothing else", function()
        assert.same({ "auto", 0 }, { model.parse_device("auto") })
        assert.same({ "cpu", 0 }, { model.parse_device("cpu") })
        assert.same({ "cuda", 0 }, { model.parse_device("cuda") })
        assert.same({ "cuda", 3 }, { model.parse_device("cuda:3") })
        assert.is_nil(model.parse_device("cuda:"))
        assert.is_nil(model.parse_device("gpu"))
        local m, err = model.load(nil, { device = "tpu" })
        assert.is_nil(m)
        assert.matches("unknown device 'tpu' (auto, cpu, cuda or cuda:N)",
                       err, 1, true)
    end)

    it("refuses a backend this build does not have", function()
        local m, err = core.load(model.default_dir(),
                                 { threads = 1, backend = "tpu" })
        assert.is_nil(m)
        assert.matches("this build has no 'tpu' backend", err, 1, true)
    end)

    it("refuses device cuda without a CUDA build or a usable GPU, clearly",
       function()
        for _, spec in ipairs({ "cuda", "cuda:7" }) do
            local m, err = model.load(nil, { threads = 1, device = spec })
            if not has(core.backends(), "cuda") then
                assert.is_nil(m)
                assert.matches("device " .. spec
                               .. ": this build has no CUDA backend", err, 1,
                               true)
            elseif #model.gpus() == 0 then
                assert.is_nil(m)
                assert.matches("device " .. spec .. ": no usable CUDA "
                               .. "device on this host", err, 1, true)
            elseif spec == "cuda" then
                assert.is_not_nil(m, err)
                assert.equal("cuda:0", m.device)
            end
        end
    end)

    it("refuses a device index the backend lacks, as a device failure",
       function()
        local m, err, kind = core.load(model.default_dir(),
                                       { threads = 1, backend = "cpu",
                                         device = 1 })
        assert.is_nil(m)
        assert.matches("no device 1", err, 1, true)
        assert.equal("device", kind)
    end)
end)
