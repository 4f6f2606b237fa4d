/* Placeholder until the module lands. */
#include "wtt_midi.h"

int
luaopen_wtt_midi(lua_State *L)
{
    lua_newtable(L);
    return 1;
}
