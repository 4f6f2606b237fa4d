/*
 * wtt_log.c: structured log lines (see wtt_log.h).
 */
#include "wtt_log.h"
#include "wtt_util.h"

#include <lauxlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define LINE_MAX_BYTES 8192

static int level_threshold = WTT_LOG_INFO;
static int json_format = 0;
static __thread char thread_id[64];

static const char *level_names[] = { "debug", "info", "warn", "error" };


void
wtt_log_init(void)
{
    const char *lvl = wtt_env("WTT_LOG_LEVEL", "info");
    const char *fmt = wtt_env("WTT_LOG_FORMAT", "kv");

    level_threshold = WTT_LOG_INFO;
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(lvl, level_names[i]) == 0) {
            level_threshold = i;
        }
    }
    json_format = strcasecmp(fmt, "json") == 0;
}


int
wtt_log_enabled(int level)
{
    return level >= level_threshold;
}


void
wtt_log_set_id(const char *id)
{
    if (id == NULL) {
        thread_id[0] = '\0';
        return;
    }
    size_t n = strlen(id);

    /* Called several times per request: no printf machinery here. */
    if (n >= sizeof(thread_id)) {
        n = sizeof(thread_id) - 1;
    }
    memcpy(thread_id, id, n);
    thread_id[n] = '\0';
}


/* ---------------------------------------------------------------------------
 * Line building
 * ------------------------------------------------------------------------- */

typedef struct {
    char   buf[LINE_MAX_BYTES];
    size_t len;
} line_t;


static void
put(line_t *l, const char *s, size_t n)
{
    /* Keep room for the closing brace and newline. */
    if (l->len + n > sizeof(l->buf) - 4) {
        n = sizeof(l->buf) - 4 - l->len;
    }
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}


static void
puts_(line_t *l, const char *s)
{
    put(l, s, strlen(s));
}


/* A kv value needs quotes when it holds a space, quote, '=' or control. */
static int
needs_quotes(const char *v)
{
    if (*v == '\0') {
        return 1;
    }
    for (; *v; v++) {
        unsigned char c = (unsigned char) *v;
        if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 127) {
            return 1;
        }
    }
    return 0;
}


static void
put_escaped(line_t *l, const char *v, int quote)
{
    char tmp[8];

    if (quote) {
        put(l, "\"", 1);
    }
    for (; *v; v++) {
        unsigned char c = (unsigned char) *v;
        if (c == '"' || c == '\\') {
            tmp[0] = '\\';
            tmp[1] = (char) c;
            put(l, tmp, 2);
        } else if (c == '\n') {
            put(l, "\\n", 2);
        } else if (c == '\t') {
            put(l, "\\t", 2);
        } else if (c < ' ' || c == 127) {
            snprintf(tmp, sizeof(tmp), "\\u%04x", c);
            put(l, tmp, 6);
        } else {
            put(l, (const char *) &c, 1);
        }
    }
    if (quote) {
        put(l, "\"", 1);
    }
}


static void
add_field(line_t *l, const char *key, const char *val)
{
    if (val == NULL) {
        val = "";
    }
    if (json_format) {
        put(l, ",", 1);
        put_escaped(l, key, 1);
        put(l, ":", 1);
        put_escaped(l, val, 1);
    } else {
        put(l, " ", 1);
        puts_(l, key);
        put(l, "=", 1);
        put_escaped(l, val, needs_quotes(val));
    }
}


static void
begin_line(line_t *l, int level, const char *event)
{
    char ts[40];

    l->len = 0;
    wtt_iso_time(wtt_wall_time(), ts, sizeof(ts));
    if (json_format) {
        puts_(l, "{\"ts\":\"");
        puts_(l, ts);
        puts_(l, "\",\"level\":\"");
        puts_(l, level_names[level]);
        puts_(l, "\",\"event\":");
        put_escaped(l, event, 1);
    } else {
        puts_(l, "ts=");
        puts_(l, ts);
        puts_(l, " level=");
        puts_(l, level_names[level]);
        puts_(l, " event=");
        put_escaped(l, event, needs_quotes(event));
    }
    if (thread_id[0] != '\0') {
        add_field(l, "id", thread_id);
    }
}


static void
end_line(line_t *l)
{
    if (json_format) {
        put(l, "}", 1);
    }
    l->buf[l->len++] = '\n';
    /* One write per line; a short write on stderr is not worth retrying. */
    ssize_t rc = write(STDERR_FILENO, l->buf, l->len);
    (void) rc;
}


void
wtt_log(int level, const char *event, ...)
{
    line_t      l;
    va_list     ap;
    const char *key;

    if (level < level_threshold) {
        return;
    }
    begin_line(&l, level, event);
    va_start(ap, event);
    while ((key = va_arg(ap, const char *)) != NULL) {
        add_field(&l, key, va_arg(ap, const char *));
    }
    va_end(ap);
    end_line(&l);
}


/* ---------------------------------------------------------------------------
 * Lua bindings
 * ------------------------------------------------------------------------- */

/* Text of the value at `idx` for a log field (no metamethods called). */
static const char *
field_text(lua_State *L, int idx)
{
    switch (lua_type(L, idx)) {
    case LUA_TSTRING:
    case LUA_TNUMBER:
        return lua_tostring(L, idx);
    case LUA_TBOOLEAN:
        return lua_toboolean(L, idx) ? "true" : "false";
    case LUA_TNIL:
        return "";
    default:
        return lua_typename(L, lua_type(L, idx));
    }
}


/* log.<level>(event, fields?): fields is a table of key -> value. */
static int
log_at(lua_State *L, int level)
{
    const char *event = luaL_checkstring(L, 1);
    line_t      l;

    if (level < level_threshold) {
        return 0;
    }
    begin_line(&l, level, event);
    if (lua_type(L, 2) == LUA_TTABLE) {
        lua_pushnil(L);                              /* fields nil */
        while (lua_next(L, 2) != 0) {                /* fields k v */
            if (lua_type(L, -2) == LUA_TSTRING) {
                lua_pushvalue(L, -1);                /* fields k v v */
                add_field(&l, lua_tostring(L, -3), field_text(L, -1));
                lua_pop(L, 1);                       /* fields k v */
            }
            lua_pop(L, 1);                           /* fields k */
        }
    }
    end_line(&l);
    return 0;
}


static int l_debug(lua_State *L) { return log_at(L, WTT_LOG_DEBUG); }
static int l_info(lua_State *L)  { return log_at(L, WTT_LOG_INFO); }
static int l_warn(lua_State *L)  { return log_at(L, WTT_LOG_WARN); }
static int l_error(lua_State *L) { return log_at(L, WTT_LOG_ERROR); }


/* log.set_id(id | nil): the id attached to this thread's lines. */
static int
l_set_id(lua_State *L)
{
    wtt_log_set_id(luaL_optstring(L, 1, NULL));
    return 0;
}


/* log.enabled(level_name) -> boolean */
static int
l_enabled(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    for (int i = 0; i < 4; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            lua_pushboolean(L, wtt_log_enabled(i));
            return 1;
        }
    }
    return luaL_argerror(L, 1, "unknown log level");
}


static const luaL_Reg log_funcs[] = {
    { "debug",   l_debug },
    { "info",    l_info },
    { "warn",    l_warn },
    { "error",   l_error },
    { "set_id",  l_set_id },
    { "enabled", l_enabled },
    { NULL, NULL },
};


int
luaopen_wtt_log(lua_State *L)
{
    lua_newtable(L);
    luaL_register(L, NULL, log_funcs);
    return 1;
}
