/*
 * fuzz_posteriors.c: the posteriorgram reader (core.load_posteriors in
 * core/bind/wtt_model.c: the .npy v1.0 header, the shape check, the row
 * store of core/engine/wtt_frame_store.c) and the note extraction that
 * reads what it loaded (post:notes, core/engine/wtt_notes*.c), as a worker
 * does with the posteriors of a re-run task. Through a Lua state, as the
 * reader is only reachable from Lua.
 *
 * Input: one byte of options (bit 0: load into memory instead of reading
 * through the row cache; bits 1-2: mode official, guitar, bass; bit 3:
 * melodia; bit 4: pitch bends; bit 5: infer onsets), then the .npy file,
 * written to a memfd and opened through /proc/self/fd as the worker opens
 * a file. Values in the rows are arbitrary floats, NaN included.
 */
#include "wtt_model.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char SCRIPT[] =
    "local core, path, opt = ...\n"
    "local modes = { 'official', 'guitar', 'bass', 'official' }\n"
    "local mem = opt % 2 == 1 and 64 or 0\n"
    "local p, err = core.load_posteriors(path, { memory_mb = mem })\n"
    "if not p then assert(type(err) == 'string') return end\n"
    "local n = p:n_frames()\n"
    "if n > 0 then\n"
    "  for _, kind in ipairs({ 'frames', 'onsets', 'contours' }) do\n"
    "    assert(p:get(kind, n, 1))\n"
    "    assert(#p:to_string(kind) > 0)\n"
    "  end\n"
    "end\n"
    "local bit = require('bit')\n"
    "local notes, nerr = p:notes({\n"
    "  mode = modes[bit.band(bit.rshift(opt, 1), 3) + 1],\n"
    "  melodia = bit.band(opt, 8) ~= 0,\n"
    "  pitch_bends = bit.band(opt, 16) ~= 0,\n"
    "  infer_onsets = bit.band(opt, 32) ~= 0 })\n"
    "assert(notes or type(nerr) == 'string')\n"
    "p:close()\n";

static lua_State *L;
static int        fd = -1, script_ref;
static char       path[64];

static void
close_state(void)
{
    lua_close(L);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    if (L == NULL) {
        L = luaL_newstate();
        fd = memfd_create("wtt-fuzz-posteriors", MFD_CLOEXEC);
        if (L == NULL || fd < 0) {
            abort();
        }
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        luaL_openlibs(L);
        if (luaL_loadbuffer(L, SCRIPT, sizeof(SCRIPT) - 1, "=fuzz") != 0) {
            fprintf(stderr, "%s\n", lua_tostring(L, -1));
            abort();
        }
        script_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        atexit(close_state);
    }
    if (ftruncate(fd, 0) != 0
        || (size > 1 && pwrite(fd, data + 1, size - 1, 0)
                        != (ssize_t) (size - 1)))
    {
        abort();
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, script_ref);
    luaopen_wtt_model(L);
    lua_pushstring(L, path);
    lua_pushinteger(L, data[0]);
    if (lua_pcall(L, 3, 0, 0) != 0) {
        fprintf(stderr, "posteriors: %s\n", lua_tostring(L, -1));
        abort();
    }
    lua_gc(L, LUA_GCCOLLECT, 0);
    return 0;
}
