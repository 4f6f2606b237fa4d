--- The media store in one local directory (WTT_MEDIA_STORE=dir, the
-- default): each name is a file of that directory, written atomically (temp
-- file + rename in the same directory) and opened with O_NOFOLLOW. Only the
-- process that wrote a file can serve it, so this store suits one web host;
-- replicas share the PostgreSQL store (wtt.service.media.pg).
--
-- Callers pass names that wtt.service.media validated; every method checks
-- again, since a name is the only thing between a request and a path.

local http = require "wtt.http"
local sys = require "wtt.sys"
local cache = require "wtt.service.media.cache"

local io_open = io.open
local os_remove = os.remove
local os_rename = os.rename

local _M = {}
local mt = { __index = _M }

local COPY_CHUNK = 1048576


-- A directory that cannot be made shows as the write's own error next.
local function mkdir_p(dir)
    sys.mkdirs(dir)
    return dir
end


--- A store in `opts.dir` (created on first write).
-- @param opts { dir = path, valid = function(name) -> bool,
--   random_hex = function(n) -> 2n hex digits (temp file names),
--   cache_bytes = the most the tab cache (dir/tab) holds }
function _M.new(opts)
    assert(type(opts.dir) == "string", "media dir expected")
    assert(type(opts.valid) == "function", "name check expected")
    assert(type(opts.random_hex) == "function", "random_hex expected")
    return setmetatable({ root = opts.dir, valid = opts.valid,
                          random_hex = opts.random_hex,
                          cache = cache.new(opts.dir .. "/tab",
                                            opts.cache_bytes) }, mt)
end


_M.kind = "dir"


function _M.path(self, name)
    assert(self.valid(name), "invalid media name")
    return self.root .. "/" .. name
end


--- Stores `bytes` under `name`. A name that exists already keeps its
-- bytes (names are never reused: content names hold the same bytes).
-- @return true | nil, err
function _M.put(self, name, bytes)
    local path = self:path(name)
    if sys.exists(path) == "file" then
        return true
    end
    mkdir_p(self.root)
    return sys.write_file(path, bytes)
end


--- Stores the file at `src` under `name`, copied in chunks to a temp file
-- beside the final one and renamed: the name appears only when complete.
-- `src` is left in place.
-- @return true | nil, err
function _M.put_file(self, name, src)
    local path = self:path(name)
    if sys.exists(path) == "file" then
        return true
    end
    mkdir_p(self.root)
    local input, err = io_open(src, "rb")
    if not input then
        return nil, "cannot read " .. src .. ": " .. tostring(err)
    end
    local tmp = path .. ".part" .. self.random_hex(8)
    local out
    out, err = io_open(tmp, "wb")
    if not out then
        input:close()
        return nil, "cannot write " .. tmp .. ": " .. tostring(err)
    end
    local ok = true
    while ok do
        local chunk = input:read(COPY_CHUNK)
        if not chunk then
            break
        end
        ok, err = out:write(chunk)
    end
    input:close()
    local closed, cerr = out:close()
    if ok and closed then
        ok, err = os_rename(tmp, path)
    else
        ok, err = nil, err or cerr
    end
    if not ok then
        os_remove(tmp)
        return nil, "cannot store " .. name .. ": " .. tostring(err)
    end
    return true
end


--- Moves an uploaded temp file (a req.files entry) under `name`. The
-- rename is atomic when the temp dir is on the same file system;
-- otherwise the bytes are copied (put_file). The temp file is gone after.
-- @return true | nil, err
function _M.keep_upload(self, req, file, name)
    local dest = self:path(name)
    mkdir_p(self.root)
    local ok, err = req:keep(file, dest)
    if ok then
        return true
    end
    -- keep() took ownership but the rename failed (EXDEV): copy instead.
    ok, err = self:put_file(name, file.path)
    os_remove(file.path)
    return ok, err
end


function _M.exists(self, name)
    return sys.exists(self:path(name)) == "file"
end


--- The size of `name` in bytes | nil, "not found".
function _M.size(self, name)
    local n = sys.file_size(self:path(name))
    if not n then
        return nil, "not found"
    end
    return n
end


--- All of `name`'s bytes | nil, "not found" | nil, err.
function _M.read(self, name)
    local path = self:path(name)
    if sys.exists(path) ~= "file" then
        return nil, "not found"
    end
    return sys.read_file(path)
end


--- `len` bytes of `name` from byte `off` (fewer at the end) | nil, err.
function _M.read_range(self, name, off, len)
    local path = self:path(name)
    if sys.exists(path) ~= "file" then
        return nil, "not found"
    end
    local f, err = io_open(path, "rb")
    if not f then
        return nil, err
    end
    f:seek("set", off)
    local s = f:read(len) or ""
    f:close()
    return s
end


--- Removes `name`; removing a missing name is not an error.
function _M.remove(self, name)
    os_remove(self:path(name))
    return true
end


--- A local file holding `name`, for C code that reads paths (the MIDI
-- writer's readers, the posteriorgram loader) | nil, "not found".
function _M.local_path(self, name)
    local path = self:path(name)
    if sys.exists(path) ~= "file" then
        return nil, "not found"
    end
    return path
end


--- Calls `fn(path)` with the file of `name` and returns what it returns
-- | nil, "not found".
function _M.with_local_path(self, name, fn)
    local path, err = self:local_path(name)
    if not path then
        return nil, err
    end
    return fn(path)
end


--- Answers a GET for `name` (Range included) from the file.
-- @return status, body, headers | nil when there is no such name
function _M.serve(self, req, name, opts)
    local path = self:path(name)
    if sys.exists(path) ~= "file" then
        return nil
    end
    opts = opts or {}
    opts.nofollow = true
    return http.file(req, path, opts)
end


--- The directory of the local tab cache (created on first use).
function _M.cache_dir(self)
    return mkdir_p(self.root .. "/tab")
end


--- Keeps the tab cache within its budget after `keep` was added
-- (lua/wtt/service/media/cache.lua).
function _M.cache_added(self, keep)
    self.cache:added(keep)
end


return _M
