-- Configuration of dead letters and finished tasks. Defaults can be
-- overridden per process with WTT_DEADLETTER_<FIELD>.
return {
    fields = {
        { name = "ttl_s", type = "integer", default = 86400,
          min = 1, max = 31536000,
          doc = "how long a dead letter's hash is kept" },
        { name = "final_ttl_s", type = "integer", default = 604800,
          min = 1, max = 31536000,
          doc = "how long a completed task's hash is kept" },
    },
}
