/* Placeholder until the binding lands. */
#include "wtt_pg.h"

int
luaopen_wtt_pg(lua_State *L)
{
    lua_newtable(L);
    return 1;
}
