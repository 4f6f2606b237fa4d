/* Placeholder until the module lands. */
#include "wtt_audio.h"

int
luaopen_wtt_audio(lua_State *L)
{
    lua_newtable(L);
    return 1;
}
