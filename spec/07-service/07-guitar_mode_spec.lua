-- The decoding mode through the service (docs/api.md): generate records
-- `mode` and `rules`, retune re-decodes the stored posteriorgram in the
-- mode asked for, and an unknown mode or rule is refused (422 invalid, as
-- every bad option) before anything is recorded. The worker's side is raw
-- Redis commands (spec/support/service.lua).

local S = require "spec.support.service"
local helpers = require "spec.support.server"
local json = require "wtt.json"


-- A2 plucked, with an octave ghost (A3 at under half its activation,
-- attacked with it): the official decoding keeps both, the guitar mode's
-- ghost rule only A2.
local function ghost_npy()
    return S.npy_with(200, function(buf)
        local function sound(from, to, col, level, onset)
            for f = from, to - 1 do
                buf[f * 440 + col] = level
            end
            buf[(from - 1) * 440 + 88 + col] = onset * 0.3
            buf[from * 440 + 88 + col] = onset
            buf[(from + 1) * 440 + 88 + col] = onset * 0.5
        end
        sound(20, 120, 45 - 21, 0.8, 0.9)
        sound(20, 80, 57 - 21, 0.35, 0.8)
    end)
end


describe("decoding modes in the service #redis #pg", function()
    local e

    setup(function()
        local env = {}
        e = S.start({ serve = false })
        for k, v in pairs(e.env) do env[k] = v end
        env.WTT_SUBSCRIBER = "on"
        e.srv = helpers.serve({ env = env })
    end)
    teardown(function()
        if e then e:stop() end
    end)

    local function refused(res, pattern)
        assert.equal(422, res.status, res.body)
        assert.equal("invalid", res.json.error)
        assert.matches(pattern, res.json.detail)
    end

    it("generate records mode and rules, and refuses unknown ones",
       function()
        local id = e:upload(S.wav(0.3)).json.audio_midi_id
        refused(e:generate(id, { mode = "jazz" }),
                "mode must be official, guitar or bass")
        refused(e:generate(id, { rules = "ghost" }),
                "rules needs mode guitar or bass")
        refused(e:generate(id, { mode = "guitar", rules = "ghost,nope" }),
                "unknown rule 'nope'")
        assert.equal("pending", e:row(id).status)
        assert.equal(json.null, e:row(id).task_id)
        local res = e:generate(id, { mode = "guitar", rules = "ghost,bend" })
        assert.equal(202, res.status, res.body)
        local row = e:row(id)
        assert.equal("guitar", row.options.mode)
        assert.equal("ghost,bend", row.options.rules)
        local task = e.r:call("HGET", e:key("task:" .. res.json.task_id),
                              "payload")
        assert.equal("guitar", json.decode(task).options.mode)
    end)

    it("retune decodes the posteriorgram in the mode asked for", function()
        local id = e:upload(S.wav(0.3)).json.audio_midi_id
        local task_id = e:generate(id, { outputs = { "midi", "notes",
                                                     "posteriors" } })
                         .json.task_id
        e:claim(task_id, 1)
        local res = e:post_result(task_id, 1, {
            midi = S.midi_bytes(45), notes = '{"notes":[]}',
            posteriors = ghost_npy() })
        assert.equal(200, res.status, res.body)
        e:complete(task_id, { midi = res.json.midi, notes = res.json.notes,
                              posteriors = res.json.posteriors, n_notes = 0 })
        assert.truthy(S.eventually(function()
            return e:row(id).status == "completed"
        end, 10), e.srv:log_text())

        local function retune(body)
            return e.srv:json("POST", "/transcribe/retune/" .. id .. "/",
                              { body = json.encode(body) })
        end
        local function pitches()
            local n = e.srv:json("GET", "/transcribe/notes/" .. id .. "/")
            local out = {}
            for i, note in ipairs(n.json.notes) do out[i] = note.pitch_midi end
            table.sort(out)
            return out
        end
        local r = retune({})
        assert.equal(200, r.status, r.body)
        assert.equal(2, r.json.n_notes)
        assert.same({ 45, 57 }, pitches())
        r = retune({ mode = "official" })
        assert.equal(2, r.json.n_notes)
        r = retune({ mode = "guitar" })
        assert.equal(200, r.status, r.body)
        assert.equal(1, r.json.n_notes)
        assert.same({ 45 }, pitches())
        assert.equal("guitar", r.json.options.mode)
        -- the ghost rule switched off keeps the ghost
        r = retune({ mode = "guitar", rules = "bend,range" })
        assert.equal(2, r.json.n_notes)
        r = retune({ mode = "bass", rules = { "ghost" } })
        assert.equal(1, r.json.n_notes)
        assert.equal(1, e:row(id).note_count)

        refused(retune({ mode = "jazz" }), "mode must be official, guitar or bass")
        refused(retune({ mode = "guitar", rules = "ghost,bogus" }),
                "unknown rule 'bogus'")
        refused(retune({ rules = "ghost" }), "rules needs mode guitar or bass")
        assert.equal(1, e:row(id).note_count)
    end)
end)
