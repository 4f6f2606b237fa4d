-- Configuration of the visibility timeout. Defaults can be overridden per
-- process with WTT_TIMEOUT_<FIELD>.
return {
    fields = {
        { name = "base_ms", type = "integer", default = 60000,
          min = 1, max = 86400000,
          doc = "fixed part: download, model load, upload" },
        { name = "per_audio_s_ms", type = "number", default = 2000,
          min = 0, max = 3600000,
          doc = "ms of timeout per second of audio" },
        { name = "unknown_ms", type = "integer", default = 600000,
          min = 1, max = 86400000,
          doc = "timeout when the payload has no duration_s" },
        { name = "min_ms", type = "integer", default = 30000,
          min = 1, max = 86400000 },
        { name = "max_ms", type = "integer", default = 3600000,
          min = 1, max = 86400000 },
    },
}
