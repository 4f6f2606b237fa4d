--- Delivery for wtt.worker: a transcribed task's result files (MIDI,
-- notes JSON, posteriors when asked) written and uploaded, giving the
-- result table `complete` stores. `worker` holds the method wtt.worker
-- puts on every worker (deliver).

local log = require "wtt.log"
local metrics = require "wtt.metrics"
local notes_io = require "wtt.notes_io"
local options_of = require("wtt.worker.steps").options_of
local local_error = require("wtt.worker.device").local_error
local over_limit = require("wtt.worker.limits").over_limit

local _M = {}

--- Worker methods; wtt.worker copies them onto its module table, which is
-- every worker's method table.
local worker = {}
_M.worker = worker


local function wants(outputs, name)
    if type(outputs) ~= "table" then
        return false
    end
    if outputs[name] then
        return true
    end
    for _, v in ipairs(outputs) do
        if v == name then
            return true
        end
    end
    return false
end


--- The outcome of a task whose result file could not be written into its
-- temp dir: the disk's fault (full, read-only, gone) sends it back
-- uncharged as a local failure (docs/reliability.md W9); anything else,
-- such as notes MIDI cannot hold, fails the task.
function worker.not_written(self, task, err, retryable)
    if local_error(err) then
        return self:local_failure(err, { task })
    end
    -- A file over the worker's size limit (EFBIG) fails the same way on
    -- every retry.
    return self:fail(task, err, retryable and not over_limit(err))
end


--- Files and upload of a transcribed task: the result table for
-- `complete`, or nil and the task's outcome.
function worker.deliver(self, job, notes, post, infer_s)
    local task, dir = job.task, job.dir
    local payload = task.payload
    local options = options_of(task)
    local duration_s = tonumber(payload.duration_s)
                       or post:n_frames() / 86
    if infer_s > 0 then
        metrics.observe("wtt_inference_realtime_factor", duration_s / infer_s)
    end
    log.info("task.transcribed", { n_notes = #notes,
                                   infer_s = string.format("%.3f", infer_s),
                                   duration_s = duration_s })

    -- Files.
    local provenance = self.model:provenance(job.opts)
    local files = {}
    local midi_path = dir .. "/" .. task.id .. ".mid"
    local ok, werr = notes_io.write_midi(midi_path, notes, {
        instrument = options.instrument or (options.program == nil
                                            and "guitar" or nil),
        program = options.program,
        tempo = options.tempo,
        multiple_pitch_bends = options.multiple_pitch_bends,
    })
    if not ok then
        post:close()
        return nil, self:not_written(task, "midi: " .. tostring(werr), false)
    end
    files[#files + 1] = { name = "midi", path = midi_path,
                          filename = task.id .. ".mid",
                          content_type = "audio/midi" }
    local notes_path = dir .. "/" .. task.id .. ".notes.json"
    ok, werr = notes_io.write(notes_path, notes_io.to_json(notes, {
        task_id = task.id, duration_s = duration_s, provenance = provenance,
    }))
    if not ok then
        post:close()
        return nil, self:not_written(task, werr, true)
    end
    files[#files + 1] = { name = "notes", path = notes_path,
                          filename = task.id .. ".notes.json",
                          content_type = "application/json" }
    if wants(payload.outputs, "posteriors") then
        local npy = dir .. "/" .. task.id .. ".posteriors.npy"
        ok, werr = post:save(npy)
        if not ok then
            post:close()
            return nil, self:not_written(task, "posteriors: "
                                         .. tostring(werr), true)
        end
        files[#files + 1] = { name = "posteriors", path = npy,
                              filename = task.id .. ".posteriors.npy",
                              content_type = "application/octet-stream" }
    end
    post:close()

    -- Upload.
    local how, doc, retry = self:upload(task, files)
    if how == "lost" then
        return nil, self:lost("result refused (409): the claim is stale")
    elseif how == "cancelled" then
        return nil, self:release(task, "shutdown during upload")
    elseif how ~= "ok" then
        return nil, self:fail(task, doc, retry)
    end
    local result = {
        midi = doc.midi or (task.id .. ".mid"),
        notes = doc.notes or (task.id .. ".notes.json"),
        n_notes = tonumber(doc.n_notes) or #notes, duration_s = duration_s,
        provenance = provenance,
        -- seconds of inference, so web can chart the realtime factor too
        infer_s = infer_s,
    }
    if wants(payload.outputs, "posteriors") then
        result.posteriors = doc.posteriors or (task.id .. ".posteriors.npy")
    end
    return result
end


return _M
