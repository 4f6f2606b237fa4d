--- The outside tools the MusicXML specs judge wtt's MusicXML with
-- (spec/11-tab/30-musicxml, 31-render): xmllint against the MusicXML 4.0
-- schema in spec/fixtures/musicxml, and a runner that bounds every command
-- with a timeout and kills its whole process group when it runs over.

local runtime = require "wtt.runtime"
local sys = require "wtt.sys"

local _M = {}

_M.SCHEMA_DIR = runtime.source_dir .. "/spec/fixtures/musicxml"
_M.SCHEMA = _M.SCHEMA_DIR .. "/musicxml.xsd"
_M.CATALOG = _M.SCHEMA_DIR .. "/catalog.xml"

local seq = 0


--- Runs `argv` in `dir` with its output in files there.
-- @param argv command and arguments (argv[1] searched in PATH)
-- @param dir a scratch directory (the command's cwd)
-- @param opts { timeout = seconds (default 60), env = { NAME = value } }
-- @return exit code, stdout, stderr; raises when the command cannot start,
--   is killed by a signal, or runs past the timeout (then it is killed)
function _M.run(argv, dir, opts)
    opts = opts or {}
    local timeout = opts.timeout or 60
    seq = seq + 1
    local out = ("%s/.out%d"):format(dir, seq)
    local err = ("%s/.err%d"):format(dir, seq)
    local pid = assert(sys.spawn(argv, { stdout = out, stderr = err,
                                         env = opts.env, cwd = dir,
                                         setsid = true }))
    local how, code = sys.wait(pid, timeout)
    if not how then
        sys.kill(-pid, "KILL")
        sys.wait(pid, 5)
        error(("%s did not finish in %d s"):format(argv[1], timeout), 2)
    end
    local o, e = sys.read_file(out) or "", sys.read_file(err) or ""
    os.remove(out)
    os.remove(err)
    if how ~= "exited" then
        error(("%s was killed by signal %s: %s"):format(argv[1],
                                                        tostring(code), e), 2)
    end
    return code, o, e
end


--- The first of `paths` that is not an installed file, or nil.
function _M.missing(paths)
    for _, p in ipairs(paths) do
        if sys.exists(p) ~= "file" then
            return p
        end
    end
    return nil
end


--- Validates MusicXML files against the MusicXML 4.0 schema, offline.
-- @param paths the files
-- @param dir a scratch directory
-- @param catalog the XML catalog (default spec/fixtures/musicxml's)
-- @return exit code, stdout, stderr of xmllint
function _M.validate(paths, dir, catalog)
    local argv = { "/usr/bin/xmllint", "--noout", "--nonet", "--schema",
                   _M.SCHEMA }
    for _, p in ipairs(paths) do
        argv[#argv + 1] = p
    end
    return _M.run(argv, dir, { timeout = 60,
                               env = { XML_CATALOG_FILES = catalog
                                       or _M.CATALOG } })
end

return _M
