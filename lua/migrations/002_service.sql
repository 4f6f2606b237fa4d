-- 002_service: what the transcription service records beyond 001.
--
-- notes_path / posteriors_path: result files in WTT_MEDIA_DIR (generated
-- names), beside midi_path. progress: "done/total" windows, written by the
-- subscriber from task:progress events. provenance: what produced the
-- result (model hash, engine version, options, plugin versions).

ALTER TABLE audio_midi
    ADD COLUMN notes_path      text,
    ADD COLUMN posteriors_path text,
    ADD COLUMN progress        text,
    ADD COLUMN provenance      jsonb;

-- The reconciler's sweep: non-terminal rows that have a task.
CREATE INDEX audio_midi_task_open_idx
    ON audio_midi (updated_at)
    WHERE status IN ('pending', 'processing') AND task_id IS NOT NULL;
