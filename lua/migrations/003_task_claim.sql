-- 003_task_claim: which run of its task a row last recorded.
--
-- task_claim is the task's claim counter (its fencing token, docs/queue.md)
-- as of the last event or hash the subscriber recorded. Every run of a task
-- has a higher claim than the runs before it (a claim, a reap, a release and
-- a requeued dead letter each raise it), so "a newer run wins" is one
-- comparison: an update for claim c applies to a row with a lower
-- task_claim, even a terminal one (a requeued dead letter leaves `failed`),
-- and to one with the same task_claim only while it is not terminal (a late
-- `failed` after `completed` changes nothing).

ALTER TABLE audio_midi
    ADD COLUMN task_claim bigint NOT NULL DEFAULT 0;

-- A new task for the row (generate) starts counting again: its claims start
-- from its own hash's counter, which has nothing to do with the last task's.
CREATE FUNCTION audio_midi_reset_task_claim() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.task_id IS DISTINCT FROM OLD.task_id THEN
        NEW.task_claim := 0;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER audio_midi_reset_task_claim
    BEFORE UPDATE OF task_id ON audio_midi
    FOR EACH ROW EXECUTE FUNCTION audio_midi_reset_task_claim();
