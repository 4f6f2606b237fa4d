/*
 * wtt_pg.h: the C half of wtt.pg (Lua module wtt.core.pg; lua/wtt/pg.lua
 * is the public API).
 */
#ifndef WTT_PG_H
#define WTT_PG_H

#include <lua.h>

int luaopen_wtt_pg(lua_State *L);

#endif
