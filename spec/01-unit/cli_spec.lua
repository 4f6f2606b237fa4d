-- The wtt binary's own command line: run, version, help, errors.
local sys = require "wtt.sys"
local runtime = require "wtt.runtime"

local function wtt(args, dir, env)
    local argv = { runtime.exe }
    for _, a in ipairs(args) do
        argv[#argv + 1] = a
    end
    local out = dir .. "/out"
    local pid = assert(sys.spawn(argv, { stdout = out, stderr = out,
                                         env = env }))
    local how, code = sys.wait(pid, 30)
    local text = sys.read_file(out) or ""
    os.remove(out)
    return how, code, text
end

describe("the wtt command line", function()
    local dir
    before_each(function() dir = assert(sys.mkdtemp("wtt-cli-")) end)
    after_each(function() sys.rmtree(dir) end)

    it("runs a script with its arguments and every module", function()
        assert(sys.write_file(dir .. "/s.lua", [[
            local json = require "wtt.json"
            local a, b = ...
            io.write(json.encode({ arg[0] ~= nil, a, b, arg[2] }), "\n")
            os.exit(tonumber(b) or 0)
        ]]))
        local how, code, text = wtt({ "run", dir .. "/s.lua", "x", "7" }, dir)
        assert.equal("exited", how)
        assert.equal(7, code)
        assert.matches('%[true,"x","7","7"%]', text)
    end)

    it("exits 1 with the traceback when a script fails", function()
        assert(sys.write_file(dir .. "/bad.lua", "local t = nil\nreturn t.x"))
        local _, code, text = wtt({ "run", dir .. "/bad.lua" }, dir)
        assert.equal(1, code)
        assert.matches("bad.lua:2:", text)
        assert.matches("stack traceback", text)
    end)

    it("prints its version and help", function()
        local _, code, text = wtt({ "version" }, dir)
        assert.equal(0, code)
        assert.matches("^wtt %d+%.%d+%.%d+", text)
        _, code, text = wtt({ "--help" }, dir)
        assert.equal(0, code)
        for _, c in ipairs({ "serve", "run", "spec", "transcribe", "migrate" }) do
            assert.matches("\n  " .. c .. " ", text)
        end
        _, code, text = wtt({ "serve", "--help" }, dir)
        assert.equal(0, code)
        assert.matches("WTT_LISTEN", text)
    end)

    it("lets every Lua-backed command print its own --help", function()
        -- Each usage names an option only the command's own text has; the
        -- C one-liner would not, and ends with the path flags.
        local own = {
            migrate = "%-%-dir DIR", queue = "COMMAND",
            worker = "%-%-web%-url",
            subscriber = "%-%-reconcile", transcribe = "%-%-notes%-json",
            tab = "%-%-tab%-format",
        }
        for cmd, marker in pairs(own) do
            local _, code, text = wtt({ cmd, "--help" }, dir)
            assert.equal(0, code, cmd)
            assert.matches("^usage: wtt " .. cmd, text, nil, false, cmd)
            assert.matches(marker, text, nil, false, cmd)
            assert.is_nil(text:find("path flags:", 1, true), cmd)
        end
    end)

    it("runs a script's finalizers when it calls os.exit", function()
        -- os.exit closes the state first, so __gc runs (connections end,
        -- temporary files go, and C memory is freed for LeakSanitizer).
        assert(sys.write_file(dir .. "/gc.lua", ([[
            local sys = require "wtt.sys"
            local p = newproxy(true)
            getmetatable(p).__gc = function()
                sys.write_file(%q, "collected")
            end
            os.exit(3)
        ]]):format(dir .. "/mark")))
        local _, code = wtt({ "run", dir .. "/gc.lua" }, dir)
        assert.equal(3, code)
        assert.equal("collected", sys.read_file(dir .. "/mark"))
    end)

    it("refuses unknown commands and arguments with exit code 2", function()
        local _, code, text = wtt({ "frobnicate" }, dir)
        assert.equal(2, code)
        assert.matches("unknown command", text)
        _, code = wtt({ "serve", "--bogus" }, dir)
        assert.equal(2, code)
        _, code = wtt({ "run" }, dir)
        assert.equal(2, code)
    end)

    it("refuses a bad WTT_HEAP_TRIM_INTERVAL_S in every service, before "
       .. "anything starts", function()
        for _, cmd in ipairs({ "serve", "worker", "subscriber" }) do
            for _, bad in ipairs({ "soon", "-1", "1e9" }) do
                local _, code, text = wtt({ cmd }, dir,
                    { WTT_HEAP_TRIM_INTERVAL_S = bad,
                      WTT_LISTEN = "127.0.0.1:1" })
                assert.equal(2, code, cmd .. " " .. bad)
                assert.matches("WTT_HEAP_TRIM_INTERVAL_S", text)
            end
        end
        -- Commands that end soon never trim and ignore it.
        local _, code = wtt({ "version" }, dir,
                            { WTT_HEAP_TRIM_INTERVAL_S = "soon" })
        assert.equal(0, code)
    end)
end)
