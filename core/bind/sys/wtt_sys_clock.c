/*
 * wtt_sys_clock.c: `wtt.sys` clocks and environment: sleep, now, time,
 * getenv, setenv.
 */
#include "wtt_sys_private.h"
#include "wtt_luax.h"
#include "wtt_util.h"

#include <lauxlib.h>
#include <lua.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


/* sys.sleep(sec): sleeps the whole interval, across signals. */
static int
l_sleep(lua_State *L)
{
    double          sec = luaL_checknumber(L, 1);
    struct timespec ts, rem;

    if (!(sec > 0)) {
        return 0;
    }
    if (sec > SYS_MAX_TIMEOUT) {
        sec = SYS_MAX_TIMEOUT;
    }
    ts.tv_sec = (time_t) sec;
    ts.tv_nsec = (long) ((sec - (double) ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &rem) != 0 && errno == EINTR) {
        ts = rem;
    }
    return 0;
}


/* sys.now() -> monotonic seconds (float) */
static int
l_now(lua_State *L)
{
    lua_pushnumber(L, (lua_Number) wtt_now_ns() / 1e9);
    return 1;
}


/* sys.time() -> wall-clock seconds since the epoch (float) */
static int
l_time(lua_State *L)
{
    lua_pushnumber(L, wtt_wall_time());
    return 1;
}


/* Checks an environment variable name: non-empty, without '='. */
static const char *
check_env_name(lua_State *L, int idx)
{
    const char *name = luaL_checkstring(L, idx);

    luaL_argcheck(L, name[0] != '\0' && strchr(name, '=') == NULL, idx,
                  "bad environment variable name");
    return name;
}


/* sys.getenv(name) -> value | nil */
static int
l_getenv(lua_State *L)
{
    const char *v = getenv(check_env_name(L, 1));

    if (v == NULL) {
        lua_pushnil(L);
    } else {
        lua_pushstring(L, v);
    }
    return 1;
}


/* sys.setenv(name, value | nil) -> true | nil, err; nil unsets. */
static int
l_setenv(lua_State *L)
{
    const char *name = check_env_name(L, 1);
    int         rc;

    if (lua_isnoneornil(L, 2)) {
        rc = unsetenv(name);
    } else {
        rc = setenv(name, luaL_checkstring(L, 2), 1);
    }
    if (rc != 0) {
        return wtt_lua_push_errno(L, "setenv", name, errno);
    }
    lua_pushboolean(L, 1);
    return 1;
}


static const luaL_Reg clock_funcs[] = {
    { "sleep",  l_sleep },
    { "now",    l_now },
    { "time",   l_time },
    { "getenv", l_getenv },
    { "setenv", l_setenv },
    { NULL, NULL },
};


void
wtt__sys_open_clock(lua_State *L)
{
    luaL_register(L, NULL, clock_funcs);             /* sys */
}
