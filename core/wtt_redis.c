/* Placeholder until the binding lands. */
#include "wtt_redis.h"

int
luaopen_wtt_redis(lua_State *L)
{
    lua_newtable(L);
    return 1;
}
