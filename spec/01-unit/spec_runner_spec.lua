-- `wtt spec` (lua/wtt/cli/spec.lua): a module of this repository that
-- fails to load fails the run, even when a spec hides the error behind a
-- pcall and a pending. Each case runs `wtt spec` on a throwaway spec file.
local runtime = require "wtt.runtime"
local sys = require "wtt.sys"

local dir

-- Runs `wtt spec` on a directory holding one spec file with `source`;
-- returns the exit code and the output (stdout and stderr).
local function run_spec(name, source)
    local d = dir .. "/" .. name
    assert(os.execute("mkdir -p '" .. d .. "'"))
    assert(sys.write_file(d .. "/case_spec.lua", source))
    local out = d .. ".out"
    local pid = assert(sys.spawn({ runtime.exe, "spec", d }, {
        cwd = runtime.source_dir, stdout = out, stderr = out }))
    local how, code = sys.wait(pid, 30)
    if not how then
        sys.kill(pid, "KILL")
        sys.wait(pid, 5)
    end
    assert.equal("exited", how)
    return code, sys.read_file(out) or ""
end

describe("wtt spec", function()
    setup(function() dir = assert(sys.mkdtemp("wtt-spec-runner-")) end)
    teardown(function() if dir then sys.rmtree(dir) end end)

    it("fails when a spec file cannot require a module", function()
        local code, out = run_spec("plain", [[
local m = require "wtt.no_such_module_plain"
describe("x", function() it("uses it", function() assert(m) end) end)
]])
        assert.not_equal(0, code, out)
        assert.matches("wtt.no_such_module_plain", out, 1, true)
    end)

    it("fails when a spec hides a missing module behind pcall and pending",
       function()
        local code, out = run_spec("hidden", [[
local ok = pcall(require, "wtt.no_such_module_hidden")
describe("x", function()
    if not ok then
        pending("not there yet")
        return
    end
    it("uses it", function() end)
end)
]])
        assert.not_equal(0, code, out)
        assert.matches("wtt.no_such_module_hidden: not found", out, 1, true)
    end)

    it("fails when a module raises while it loads, even under pcall",
       function()
        local code, out = run_spec("raises", [[
package.preload["spec.raises_on_load"] = function() error("boom") end
local ok = pcall(require, "spec.raises_on_load")
describe("x", function() it("saw it fail", function()
    assert.is_false(ok)
end) end)
]])
        assert.not_equal(0, code, out)
        assert.matches("spec.raises_on_load: raised while loading", out, 1,
                       true)
    end)

    it("passes a run whose only pending is not a module", function()
        local code, out = run_spec("fine", [[
pcall(require, "some_optional_tool")   -- not ours: no failure
local json = require "wtt.json"
describe("x", function()
    it("works", function() assert.equal("[1]", json.encode({ 1 })) end)
    it("probes a tool", function() pending("tool missing") end)
end)
]])
        assert.equal(0, code, out)
        assert.matches("1 success / 0 failures / 0 errors / 1 pending", out,
                       1, true)
    end)
end)
