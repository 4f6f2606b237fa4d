--- Runs the `wtt` binary under test as a child process, for specs of the
-- command line.
--
--     local cli = require "spec.support.cli"
--     local code, out, err = cli.wtt({ "tab", "x.notes.csv" }, dir)

local sys = require "wtt.sys"
local runtime = require "wtt.runtime"

local _M = {}


--- Runs `wtt ARGS...`, its output captured in files under `dir`, killed
-- when it runs past `timeout` seconds (default 120), which fails the spec.
-- @return exit code, stdout, stderr
function _M.wtt(args, dir, timeout)
    timeout = timeout or 120
    local out, err = dir .. "/.stdout", dir .. "/.stderr"
    local argv = { runtime.exe }
    for _, a in ipairs(args) do
        argv[#argv + 1] = a
    end
    local pid = assert(sys.spawn(argv, { stdout = out, stderr = err }))
    local how, code = sys.wait(pid, timeout)
    if not how then
        sys.kill(pid, "KILL")
        sys.wait(pid, 5)
        error("wtt " .. table.concat(args, " ") .. " did not finish in "
              .. timeout .. " s")
    end
    if how ~= "exited" then
        error("wtt " .. table.concat(args, " ") .. " ended by " .. tostring(how)
              .. " " .. tostring(code))
    end
    local o, e = sys.read_file(out) or "", sys.read_file(err) or ""
    os.remove(out)
    os.remove(err)
    return code, o, e
end


return _M
