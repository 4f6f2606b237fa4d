-- Configuration of the retry policy. Defaults can be overridden per
-- process with WTT_RETRY_<FIELD> (for example WTT_RETRY_MAX_ATTEMPTS=5).
return {
    fields = {
        { name = "max_attempts", type = "integer", default = 3,
          min = 1, max = 100,
          doc = "claims a task may get before it is dead-lettered" },
        { name = "backoff_base_ms", type = "integer", default = 2000,
          min = 0, max = 86400000,
          doc = "delay before the first retry (doubles per attempt)" },
        { name = "backoff_max_ms", type = "integer", default = 300000,
          min = 0, max = 86400000,
          doc = "cap of the delay" },
        { name = "never_retry", type = "array", default = {},
          doc = "Lua patterns: an error text matching one is final" },
    },
}
