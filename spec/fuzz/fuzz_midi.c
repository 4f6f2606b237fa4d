/*
 * fuzz_midi.c: the Standard MIDI File reader (core/bind/midi/), as the
 * routes call it: wtt.midi.validate(bytes) and wtt.midi.decode(bytes) on a
 * file a client uploaded or a worker sent. The reader's only entry points
 * are those two Lua functions, so the target calls them through a Lua
 * state (one for the whole run, collected after each input so a leak or a
 * bad __gc shows up at once). Both must answer nil, err or a value: a Lua
 * error raised by the reader is a bug too (it would be a 500).
 */
#include "wtt_midi.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static lua_State *L;

static void
close_state(void)
{
    lua_close(L);
}

/* Calls midi[fn](bytes); aborts on a raised error. */
static void
call(const char *fn, const uint8_t *data, size_t size)
{
    lua_getfield(L, -1, fn);
    lua_pushlstring(L, (const char *) data, size);
    if (lua_pcall(L, 1, 2, 0) != 0) {
        fprintf(stderr, "midi.%s raised: %s\n", fn, lua_tostring(L, -1));
        abort();
    }
    if (lua_isnil(L, -2) && !lua_isstring(L, -1)) {
        fprintf(stderr, "midi.%s returned nil without a reason\n", fn);
        abort();
    }
    lua_pop(L, 2);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (L == NULL) {
        L = luaL_newstate();
        if (L == NULL) {
            abort();
        }
        luaL_openlibs(L);
        luaopen_wtt_midi(L);                 /* stays at index 1 */
        atexit(close_state);
    }
    call("validate", data, size);
    call("decode", data, size);
    lua_gc(L, LUA_GCCOLLECT, 0);
    return 0;
}
