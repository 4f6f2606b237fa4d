--- Error codes of the queue scripts (lua/queue/scripts/*.lua).
--
-- A script that refuses returns a fixed-shape reply whose first element is
-- one of these negative integers, followed by a short text. wtt.queue maps
-- them to the `nil, err` strings below (WRONGTYPE with the script's text
-- appended: which key holds what).

local _M = {
    EXISTS = -1,          -- enqueue: a non-terminal task with this id exists
    STALE = -2,           -- the claim token is not the current one
    NOT_PROCESSING = -3,  -- complete: claim matches, task not processing
    BAD_TASK = -4,        -- the task key holds something that is not a hash
    NOT_FOUND = -5,       -- no such task (or dead letter)
    RESULT_EXISTS = -6,   -- store: another upload is stored for the task
    WRONGTYPE = -7,       -- a key holds another type than the script
                          -- expects (includes/check_types): nothing written
}

--- Code -> the error string wtt.queue returns.
_M.text = {
    [-1] = "exists",
    [-2] = "stale",
    [-3] = "not processing",
    [-4] = "bad task",
    [-5] = "not found",
    [-6] = "result exists",
    [-7] = "WRONGTYPE",
}

return _M
