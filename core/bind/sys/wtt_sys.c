/*
 * wtt_sys.c: the `wtt.sys` Lua module (see wtt_sys.h): one table, filled by
 * the parts in core/bind/sys/ (see wtt_sys_private.h), and the argument
 * helpers they share.
 */
#include "wtt_sys.h"
#include "wtt_sys_private.h"

#include <lauxlib.h>
#include <lua.h>


double
wtt__sys_opt_timeout(lua_State *L, int idx, double def)
{
    double t;

    if (lua_isnoneornil(L, idx)) {
        return def;
    }
    t = luaL_checknumber(L, idx);
    if (!(t >= 0)) {
        luaL_argerror(L, idx, "timeout must be a number >= 0");
    }
    return t > SYS_MAX_TIMEOUT ? SYS_MAX_TIMEOUT : t;
}


int
wtt__sys_push_msg(lua_State *L, const char *msg)
{
    lua_pushnil(L);                                  /* nil */
    lua_pushstring(L, msg);                          /* nil msg */
    return 2;
}


/*
 * Opens `wtt.sys`. Stack: before [], after [sys]. Registers the metatable
 * "wtt.sys.conn" in the registry. Returns 1.
 */
int
luaopen_wtt_sys(lua_State *L)
{
    lua_newtable(L);                                 /* sys */
    wtt__sys_open_proc(L);
    wtt__sys_open_signal(L);
    wtt__sys_open_clock(L);
    wtt__sys_open_fs(L);
    wtt__sys_open_net(L);
    wtt__sys_open_machine(L);
    return 1;                                        /* sys */
}
