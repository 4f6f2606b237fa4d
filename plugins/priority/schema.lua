-- Configuration of the priority lanes. Defaults can be overridden per
-- process with WTT_PRIORITY_<FIELD>.
return {
    fields = {
        { name = "short_clip_s", type = "number", default = 0,
          min = 0, max = 86400,
          doc = "clips up to this many seconds go to the priority lane; "
                .. "0 keeps one FIFO lane" },
        { name = "fair_max_waiting", type = "integer", default = 0,
          min = 0, max = 1000000,
          doc = "waiting tasks a client may have before its next ones go "
                .. "to the bulk lane (claimed last); 0 turns fairness off" },
    },
}
