-- 001_audio_midi: one row per uploaded recording and its transcription, as
-- the original system's audio_midi table (docs/pg.md explains the choices).
--
-- id is a random uuid, not a serial: ids appear in public URLs
-- (/transcribe/status/{id}/, /transcribe/midi/{id}/) and the API has no
-- per-user authorisation, so ids must not be guessable or enumerable.
-- gen_random_uuid() is built into PostgreSQL 13+.

CREATE TABLE audio_midi (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    original_name text,
    audio_path    text,
    midi_path     text,
    status        text NOT NULL DEFAULT 'pending'
                  CONSTRAINT audio_midi_status_check
                  CHECK (status IN ('pending', 'processing', 'completed',
                                    'failed')),
    error_message text,
    task_id       text CONSTRAINT audio_midi_task_id_key UNIQUE,
    options       jsonb NOT NULL DEFAULT '{}'
                  CONSTRAINT audio_midi_options_check
                  CHECK (jsonb_typeof(options) = 'object'),
    duration_s    double precision
                  CONSTRAINT audio_midi_duration_s_check
                  CHECK (duration_s >= 0),
    note_count    integer
                  CONSTRAINT audio_midi_note_count_check
                  CHECK (note_count >= 0),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- "Which tasks are pending/processing, oldest first" (subscriber catch-up,
-- metrics) and status-only lookups use the composite index; listings by
-- upload time use created_at.
CREATE INDEX audio_midi_status_created_at_idx
    ON audio_midi (status, created_at);
CREATE INDEX audio_midi_created_at_idx ON audio_midi (created_at);

-- updated_at follows every UPDATE, so no caller can forget it.
CREATE FUNCTION audio_midi_touch_updated_at() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

CREATE TRIGGER audio_midi_touch_updated_at
    BEFORE UPDATE ON audio_midi
    FOR EACH ROW EXECUTE FUNCTION audio_midi_touch_updated_at();
