/*
 * wtt_midi.c: the `wtt.midi` Lua module (see wtt_midi.h, docs/midi.md): the
 * table its parts fill. The parts are listed in wtt_midi_private.h.
 */
#include "wtt_midi.h"
#include "wtt_midi_private.h"

#include <lauxlib.h>


/* The Lua functions of the writer and of the reader, in this order. */
static const luaL_Reg *const midi_parts[] = {
    wtt__midi_write_funcs,
    wtt__midi_read_funcs,
    NULL,
};


/*
 * Opens `wtt.midi`. Stack: before [], after [midi]. The functions share
 * one upvalue, a private copy of PROGRAMS. Returns 1.
 */
int
luaopen_wtt_midi(lua_State *L)
{
    const luaL_Reg *f;
    int             i, p;

    lua_newtable(L);                                          /* midi */

    wtt__midi_push_programs(L);                               /* midi P */

    /* encode and write resolve program names through PROGRAMS, their
     * upvalue, so a caller editing midi.PROGRAMS cannot change them. */
    lua_createtable(L, 0, 140);                               /* midi P up */
    lua_pushnil(L);
    while (lua_next(L, -3) != 0) {                            /* .. up k v */
        lua_pushvalue(L, -2);                                 /* .. up k v k */
        lua_insert(L, -2);                                    /* .. up k k v */
        lua_rawset(L, -4);                                    /* .. up k */
    }                                                         /* midi P up */
    for (p = 0; midi_parts[p] != NULL; p++) {
        for (f = midi_parts[p]; f->name != NULL; f++) {
            lua_pushvalue(L, -1);                             /* .. up up */
            lua_pushcclosure(L, f->func, 1);                  /* .. up f */
            lua_setfield(L, -4, f->name);                     /* .. up */
        }
    }
    lua_pop(L, 1);                                            /* midi P */
    lua_setfield(L, -2, "PROGRAMS");                          /* midi */

    lua_createtable(L, 128, 0);                               /* midi N */
    for (i = 0; i < 128; i++) {
        lua_pushstring(L, wtt__midi_gm_names[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "PROGRAM_NAMES");                     /* midi */

    lua_pushnumber(L, DEFAULT_TEMPO);
    lua_setfield(L, -2, "DEFAULT_TEMPO");
    lua_pushinteger(L, DEFAULT_DIVISION);
    lua_setfield(L, -2, "DEFAULT_DIVISION");
    lua_pushinteger(L, DEFAULT_PROGRAM);
    lua_setfield(L, -2, "DEFAULT_PROGRAM");
    lua_pushinteger(L, DEFAULT_BEND_RANGE);
    lua_setfield(L, -2, "DEFAULT_BEND_RANGE");
    return 1;
}
