-- docker/Dockerfile.web and docker/Dockerfile.worker, checked without a
-- container engine: their base image is the Debian 12 release pinned
-- here, every Debian package they install (through scripts/bootstrap, the
-- groups of scripts/packages) exists in this machine's Debian 12 apt
-- cache, the run-time group covers every library build/wtt links, and the
-- images run as a non-root user with a HEALTHCHECK.
--
-- The CUDA and cuDNN packages of the worker come from NVIDIA's CUDA
-- repository for Debian 12, which is not in this apt cache (and no spec
-- reaches the network): their names are checked against the CUDA and
-- cuDNN versions the binary under test links (or the nvcc CI builds with),
-- so that the image installs the runtime of the toolkit CI proves.

local dh = require "spec.support.deploy"
local runtime = require "wtt.runtime"
local sys = require "wtt.sys"

local DOCKERFILES = { web = dh.ROOT .. "/docker/Dockerfile.web",
                      worker = dh.ROOT .. "/docker/Dockerfile.worker" }

-- Variables an image may set that are not wtt's, with the reason.
local FOREIGN_ENV = {
    PATH = "finds /opt/wtt/bin/wtt",
    LD_LIBRARY_PATH = "finds the CUDA runtime under /usr/local/cuda-N",
    NVIDIA_VISIBLE_DEVICES = "read by the NVIDIA Container Toolkit",
    NVIDIA_DRIVER_CAPABILITIES = "read by the NVIDIA Container Toolkit",
}

-- Libraries the binary under test may link that the images do not
-- need: the sanitizers of the ASan build (the images build without).
local NOT_SHIPPED = { "^libasan%.", "^libubsan%.", "^liblsan%." }


--- A Dockerfile as instructions: { stages = { {from, lines = {...}} },
-- args = { NAME = default } }, continuation lines joined.
local function parse(path)
    local text = assert(sys.read_file(path))
    text = text:gsub("\\\n", " ")
    local df = { stages = {}, args = {} }
    for line in text:gmatch("[^\n]+") do
        if not line:match("^%s*#") and line:match("%S") then
            local op, rest = line:match("^%s*(%u+)%s+(.*)$")
            if op == "ARG" and #df.stages == 0 then
                local k, v = rest:match("^(%S-)=(%S+)")
                if k then df.args[k] = v end
            elseif op == "FROM" then
                local from = rest:match("^(%S+)")
                from = from:gsub("%${([%w_]+)}", df.args)
                df.stages[#df.stages + 1] = { from = from, lines = {} }
            end
            if op and #df.stages > 0 then
                local st = df.stages[#df.stages]
                st.lines[#st.lines + 1] = { op = op, rest = rest }
            end
        end
    end
    return df
end


--- The scripts/packages groups a stage installs (`bootstrap --only G...`).
local function groups_of(stage)
    local groups = {}
    for _, l in ipairs(stage.lines) do
        if l.op == "RUN" then
            local g = l.rest:match("bootstrap%s+%-%-only%s+([%w%s%-]+)")
            for name in (g or ""):gmatch("[%w%-]+") do
                groups[#groups + 1] = name
            end
        end
    end
    return groups
end


local function packages(groups)
    local argv = { dh.ROOT .. "/scripts/bootstrap", "--print" }
    for _, g in ipairs(groups) do argv[#argv + 1] = g end
    local code, out, err = dh.run(argv)
    assert(code == 0, err)
    local list = {}
    for p in out:gmatch("%S+") do list[#list + 1] = p end
    return list
end


--- `apt-cache policy` of each package: { pkg = { candidate, bookworm } }.
local function policy(list)
    local argv = { "apt-cache", "policy" }
    for _, p in ipairs(list) do argv[#argv + 1] = p end
    local _, out = dh.run(argv)
    local res, cur = {}, nil
    for line in out:gmatch("[^\n]+") do
        local name = line:match("^(%S+):$")
        if name then
            cur = { }
            res[name] = cur
        elseif cur then
            local cand = line:match("^%s+Candidate:%s+(%S+)")
            if cand then cur.candidate = cand end
            if line:match("%sbookworm[%-/%w]*%s") or line:match("%sbookworm/") then
                cur.bookworm = true
            end
        end
    end
    return res
end


local function debian12()
    local os_release = sys.read_file("/etc/os-release") or ""
    return os_release:find('VERSION_CODENAME=bookworm', 1, true) ~= nil
end


-- The libraries build/wtt links (readelf -d: NEEDED).
local function needed()
    local code, out, err = dh.run({ "readelf", "-d", runtime.exe })
    assert(code == 0, err)
    local libs = {}
    for so in out:gmatch("%(NEEDED%)%s+Shared library: %[([^%]]+)%]") do
        libs[#libs + 1] = so
    end
    return libs
end


describe("the container images", function()
    local df = {}

    setup(function()
        for name, path in pairs(DOCKERFILES) do
            df[name] = parse(path)
        end
    end)

    it("are multi-stage builds on the pinned Debian 12 release", function()
        for name, d in pairs(df) do
            assert.is_true(#d.stages >= 2, name .. " is not multi-stage")
            local base = d.args.DEBIAN_IMAGE
            assert.truthy(base and base:match("^debian:12%.%d+%-slim$"),
                          name .. ": base " .. tostring(base))
            for _, st in ipairs(d.stages) do
                -- Every stage starts from that image or from an earlier stage.
                local ok = st.from == base
                for _, other in ipairs(d.stages) do
                    for _, l in ipairs(other.lines) do
                        if l.op == "FROM" and l.rest:match("%sAS%s+" .. st.from:gsub("%-", "%%-") .. "%s*$") then
                            ok = true
                        end
                    end
                end
                assert.is_true(ok, name .. ": stage from " .. st.from)
            end
        end
        assert.equals(df.web.args.DEBIAN_IMAGE, df.worker.args.DEBIAN_IMAGE)
    end)

    it("compile with the bootstrap's build group and ship only run-time packages", function()
        -- Build-only packages (compilers, headers): in build, not in run.
        local build = {}
        for _, p in ipairs(packages({ "build", "cuda-build" })) do build[p] = true end
        for _, p in ipairs(packages({ "run", "cuda-run" })) do build[p] = nil end
        assert.is_true(build["build-essential"])
        for name, d in pairs(df) do
            local first, final = d.stages[#d.stages - 1], d.stages[#d.stages]
            local bg = table.concat(groups_of(first), " ")
            assert.truthy(bg:find("build"), name .. ": build stage installs " .. bg)
            local fg = groups_of(final)
            assert.truthy(#fg > 0, name .. ": the final stage installs nothing with bootstrap")
            for _, g in ipairs(fg) do
                assert.truthy(g == "run" or g == "cuda-run", name .. ": ships group " .. g)
            end
            for _, p in ipairs(packages(fg)) do
                assert.is_nil(build[p], name .. " ships the build package " .. p)
            end
        end
        -- No CUDA in web.
        for _, st in ipairs(df.web.stages) do
            for _, g in ipairs(groups_of(st)) do
                assert.is_nil(g:match("^cuda"), "web installs " .. g)
            end
        end
        assert.same({ "run", "cuda-run" }, groups_of(df.worker.stages[#df.worker.stages]))
    end)

    it("install only packages that exist at the pinned Debian 12 release", function()
        if not debian12() then
            pending("skipped, because this machine is not Debian 12 (bookworm): its apt cache cannot vouch for the images' packages")
            return
        end
        local groups = {}
        for _, d in pairs(df) do
            for _, st in ipairs(d.stages) do
                for _, g in ipairs(groups_of(st)) do
                    if not g:match("^cuda") then groups[g] = true end
                end
            end
        end
        local list = {}
        for g in pairs(groups) do list[#list + 1] = g end
        table.sort(list)
        local pkgs = packages(list)
        assert.is_true(#pkgs > 20)
        local pol = policy(pkgs)
        local bad = {}
        for _, p in ipairs(pkgs) do
            local r = pol[p]
            if not r or not r.candidate or r.candidate == "(none)" then
                bad[#bad + 1] = p .. ": no candidate"
            elseif not r.bookworm then
                bad[#bad + 1] = p .. ": not from bookworm"
            end
        end
        assert.same({}, bad)
        -- The check can fail: a name that does not exist has no candidate.
        assert.is_nil((policy({ "wtt-no-such-package" }))["wtt-no-such-package"])
    end)

    it("ship every Debian library build/wtt links", function()
        local run = {}
        for _, p in ipairs(packages({ "run" })) do run[p] = true end
        local missing = {}
        for _, so in ipairs(needed()) do
            local skip = so:match("^libcudart%.") or so:match("^libcudnn%.")
            for _, pat in ipairs(NOT_SHIPPED) do
                skip = skip or so:match(pat)
            end
            if not skip then
                local code, out = dh.run({ "dpkg", "-S", "*/" .. so })
                local owners = {}
                for pkg in out:gmatch("([^\n,:]+)[,:]") do
                    owners[#owners + 1] = pkg:match("^%s*(.-)%s*$")
                end
                local found = false
                for _, o in ipairs(owners) do
                    if run[o] then found = true end
                end
                if code ~= 0 or not found then
                    missing[#missing + 1] = so .. " (" .. table.concat(owners, ",") .. ")"
                end
            end
        end
        assert.same({}, missing)
    end)

    it("install the CUDA runtime and cuDNN of the toolkit CI builds with", function()
        local cuda, cudnn
        for _, so in ipairs(needed()) do
            cuda = cuda or so:match("^libcudart%.so%.(%d+)")
            cudnn = cudnn or so:match("^libcudnn%.so%.(%d+)")
        end
        local from = "build/wtt"
        if not cuda then
            local _, out = dh.run({ "sh", "-c",
                "for n in /usr/local/cuda*/bin/nvcc; do [ -x \"$n\" ] && \"$n\" --version && break; done" })
            cuda = out:match("release (%d+)%.")
            from = "nvcc"
            local _, h = dh.run({ "sh", "-c",
                "cat /usr/local/cuda*/include/cudnn_version.h /usr/include/cudnn_version*.h 2>/dev/null" })
            cudnn = h:match("#define CUDNN_MAJOR (%d+)")
        end
        if not cuda or not cudnn then
            pending("skipped, because neither build/wtt nor an nvcc here names a CUDA and cuDNN version to compare the worker image's packages with")
            return
        end
        local run = table.concat(packages({ "cuda-run" }), " ")
        local bld = table.concat(packages({ "cuda-build" }), " ")
        assert.truthy(run:find("cuda%-cudart%-" .. cuda .. "%-%d+"), from .. ": CUDA " .. cuda .. " vs " .. run)
        assert.truthy(run:find("libcudnn" .. cudnn .. "%-cuda%-" .. cuda), from .. ": cuDNN " .. cudnn .. " vs " .. run)
        assert.truthy(bld:find("cuda%-nvcc%-" .. cuda .. "%-%d+"), bld)
        assert.truthy(bld:find("libcudnn" .. cudnn .. "%-dev%-cuda%-" .. cuda), bld)
        -- The compiler path the worker build names is that toolkit's.
        local nvcc = sys.read_file(DOCKERFILES.worker):match("CMAKE_CUDA_COMPILER=(%S+)")
        assert.truthy(nvcc and nvcc:find("/cuda%-" .. cuda .. "%.%d+/"), tostring(nvcc))
    end)

    it("run as a non-root user with a HEALTHCHECK, and set only variables wtt reads", function()
        local reads = dh.env_read()
        for name, d in pairs(df) do
            local final = d.stages[#d.stages]
            local user, health
            for _, l in ipairs(final.lines) do
                if l.op == "USER" then user = l.rest:match("^(%S+)") end
                if l.op == "HEALTHCHECK" then health = l.rest end
                if l.op == "ENV" then
                    for k in l.rest:gmatch("([%u_][%u%d_]*)=") do
                        if not FOREIGN_ENV[k] then
                            local ok, why = dh.env_known(k, reads)
                            assert.is_true(ok, name .. ": " .. tostring(why))
                        end
                    end
                end
            end
            assert.truthy(user and user ~= "root" and user ~= "0", name .. ": USER " .. tostring(user))
            assert.truthy(health and health:find("CMD"), name .. ": no HEALTHCHECK")
        end
    end)
end)
