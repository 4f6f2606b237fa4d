/*
 * wtt_redis.h: the C half of wtt.redis (Lua module wtt.core.redis; lua/wtt/redis.lua
 * is the public API).
 */
#ifndef WTT_REDIS_H
#define WTT_REDIS_H

#include <lua.h>

int luaopen_wtt_redis(lua_State *L);

#endif
