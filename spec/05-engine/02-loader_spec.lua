-- The model loader refuses files it cannot run exactly, and says why.

local core = require "wtt.core.model"
local model = require "wtt.model"
local json = require "wtt.json"
local sys = require "wtt.sys"

local SRC = model.default_dir()

-- A copy of the model folder whose model.json `edit` may change.
local function variant(edit, keep_sums)
    local dir = assert(sys.mkdtemp("wtt-model-"))
    local doc = json.decode((assert(sys.read_file(SRC .. "/model.json"))))
    if edit then
        edit(doc)
    end
    assert(sys.write_file(dir .. "/model.json", json.encode(doc)))
    assert(sys.write_file(dir .. "/group1-shard1of1.bin",
                          (assert(sys.read_file(SRC .. "/group1-shard1of1.bin")))))
    if keep_sums then
        assert(sys.write_file(dir .. "/SHA256SUMS",
                              (assert(sys.read_file(SRC .. "/SHA256SUMS")))))
    end
    return dir
end

local function node(doc, op)
    for _, n in ipairs(doc.modelTopology.node) do
        if n.op == op then
            return n
        end
    end
end

describe("model loader", function()
    local dirs = {}
    after_each(function()
        for _, d in ipairs(dirs) do
            sys.rmtree(d)
        end
        dirs = {}
    end)

    local function load(edit, keep_sums)
        local dir = variant(edit, keep_sums)
        dirs[#dirs + 1] = dir
        return core.load(dir, { threads = 1 })
    end

    it("loads the official files with their checksums", function()
        local m = assert(core.load(SRC, { threads = 1 }))
        assert.matches("^%x+$", m:hash())
    end)

    it("names an unknown op and its node", function()
        local m, err = load(function(doc)
            local n = node(doc, "Sigmoid")
            n.op = "Softplus"
        end)
        assert.is_nil(m)
        assert.matches("unsupported op 'Softplus' at node '", err, 1, true)
    end)

    it("refuses a file that does not match SHA256SUMS", function()
        local m, err = load(function(doc)
            doc.generatedBy = "edited"
        end, true)
        assert.is_nil(m)
        assert.matches("model.json: checksum mismatch", err, 1, true)
    end)

    it("refuses weights whose manifest does not match the shard", function()
        local m, err = load(function(doc)
            local w = doc.weightsManifest[1].weights
            w[#w].shape = { 9999 }
        end)
        assert.is_nil(m)
        assert.matches("weights: shards hold", err, 1, true)
    end)

    it("refuses quantized weights", function()
        local m, err = load(function(doc)
            doc.weightsManifest[1].weights[1].quantization = { dtype = "uint8" }
        end)
        assert.is_nil(m)
        assert.matches("quantized weights are not supported", err, 1, true)
    end)

    it("refuses a graph without the expected outputs", function()
        local m, err = load(function(doc)
            local n = node(doc, "Identity")
            n.name = "Renamed"
        end)
        assert.is_nil(m)
        assert.matches("no output 'Identity'", err, 1, true)
    end)

    it("refuses an input that names no node", function()
        local m, err = load(function(doc)
            local n = node(doc, "Sigmoid")
            n.input[1] = "nowhere"
        end)
        assert.is_nil(m)
        assert.matches("unknown input 'nowhere'", err, 1, true)
    end)

    -- Found by spec/fuzz/fuzz_model.c: an Identity without an input made
    -- the constant folding read a NULL source.
    it("refuses a node with fewer or more inputs than its op takes", function()
        local m, err = load(function(doc)
            node(doc, "Identity").input = {}
        end)
        assert.is_nil(m)
        assert.matches("Identity takes 1 to 1 inputs, not 0", err, 1, true)
        m, err = load(function(doc)
            local n = node(doc, "Sigmoid")
            n.input[2] = n.input[1]
        end)
        assert.is_nil(m)
        assert.matches("Sigmoid takes 1 to 1 inputs, not 2", err, 1, true)
    end)

    it("reports a missing folder", function()
        local m, err = core.load("/nonexistent/model", { threads = 1 })
        assert.is_nil(m)
        assert.matches("model.json", err, 1, true)
    end)

    it("gives zero frames and no notes for audio under 257 samples", function()
        local m = assert(model.load(nil, { threads = 1 }))
        local pcm = require("wtt.audio").pcm_from_string(string.rep("\0", 4 * 200), 22050)
        local post = assert(m:infer(pcm))
        assert.equal(0, post:n_frames())
        assert.same({}, assert(post:notes({})))
    end)
end)

describe("the untranscribed tail", function()
    it("is cut like the official code by default, kept with full_tail",
       function()
        local m = assert(model.load(nil, { threads = 1 }))
        local n = 22050 * 3
        local pcm = require("wtt.audio").pcm_from_string(string.rep("\0", 4 * n), 22050)
        local cut = assert(m:infer(pcm))
        assert.equal(math.floor(n * 86 / 22050), cut:n_frames())
        local full = assert(m:infer(pcm, nil, { full_tail = true }))
        assert.truthy(full:n_frames() > cut:n_frames())
        -- The official time base of the last frame reaches the end.
        local offset = 256 / 22050 * (172 - 43844 / 256) + 0.0018
        local function t(f) return f * 256 / 22050 - offset * math.floor(f / 172) end
        assert.truthy(t(full:n_frames()) >= 3.0)
        assert.truthy(t(full:n_frames() - 1) < 3.0)
    end)
end)
