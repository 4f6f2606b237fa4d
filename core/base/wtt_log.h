/*
 * wtt_log.h: structured logging, one line per event on stderr.
 *
 * A line carries a timestamp, the level, the event name, the request or task
 * id of the calling thread (when one is set) and key/value pairs. The format
 * is `key=value` (default) or one JSON object per line (WTT_LOG_FORMAT=json);
 * the threshold comes from WTT_LOG_LEVEL (debug|info|warn|error, default
 * info). Each line is written with a single write(2), so lines from several
 * threads never interleave.
 */
#ifndef WTT_LOG_H
#define WTT_LOG_H

#include <lua.h>

enum wtt_log_level {
    WTT_LOG_DEBUG = 0,
    WTT_LOG_INFO  = 1,
    WTT_LOG_WARN  = 2,
    WTT_LOG_ERROR = 3,
};

/* Reads WTT_LOG_LEVEL and WTT_LOG_FORMAT. Safe to call more than once. */
void wtt_log_init(void);

/* Returns 1 when a line at `level` would be written. */
int wtt_log_enabled(int level);

/*
 * Sets the id attached to every line this thread logs until the next call;
 * NULL clears it. The string is copied (up to 63 bytes).
 */
void wtt_log_set_id(const char *id);

/*
 * Logs `event` with key/value string pairs given as varargs and ended by
 * NULL: wtt_log(WTT_LOG_INFO, "http.listen", "addr", "127.0.0.1:8008", NULL).
 * A NULL value logs the key with an empty value.
 */
void wtt_log(int level, const char *event, ...);

/* Lua module `wtt.log`: debug/info/warn/error(event, fields), set_id, level. */
int luaopen_wtt_log(lua_State *L);

#endif
