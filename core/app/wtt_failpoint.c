/*
 * wtt_failpoint.c: the `wtt.core.failpoint` module of the test-only
 * program `wtt_failpoint` (docs/reliability.md W6, W8, "Test bed").
 *
 * A fault spec kills `wtt serve` at an exact point of a request (result
 * files written, the result stored in Redis, the row committed) to show
 * that the worker's retry converges. The kill switch is compiled only into
 * that second program, built beside `wtt` by the test build
 * (WTT_BUILD_TESTS) and never installed: the product binary has no such
 * module, so no environment, request or file can make `wtt` kill itself.
 * Lua reaches it through lua/wtt/failpoint.lua, which is a no-op where the
 * module is missing.
 */
#include "wtt_modules.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>

/*
 * failpoint.hit(name): when WTT_FAILPOINT names this point, the process
 * ends at once by SIGKILL, as a crash would: no handler, no cleanup, no
 * response. Any other name (or none) returns nothing.
 * Stack: before [name], after [name].
 */
static int
l_hit(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    const char *armed = getenv("WTT_FAILPOINT");

    if (armed == NULL || strcmp(armed, name) != 0) {
        return 0;
    }
    fprintf(stderr, "failpoint %s: SIGKILL\n", name);
    fflush(stderr);
    kill(getpid(), SIGKILL);
    /* SIGKILL cannot be caught; should it return, end the same way. */
    _exit(137);
}


/* failpoint.armed() -> WTT_FAILPOINT or nil. Stack: after [name|nil]. */
static int
l_armed(lua_State *L)
{
    const char *armed = getenv("WTT_FAILPOINT");

    if (armed == NULL || armed[0] == '\0') {
        lua_pushnil(L);
    } else {
        lua_pushstring(L, armed);
    }
    return 1;
}


int
luaopen_wtt_failpoint(lua_State *L)
{
    static const luaL_Reg fns[] = {
        { "hit",   l_hit },
        { "armed", l_armed },
        { NULL, NULL },
    };

    lua_newtable(L);
    luaL_register(L, NULL, fns);
    return 1;
}
