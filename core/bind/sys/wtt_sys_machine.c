/*
 * wtt_sys_machine.c: `wtt.sys` machine figures: CPUs this process may use
 * and the resident set of a process.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "wtt_sys_private.h"
#include "wtt_luax.h"
#include "wtt_util.h"

#include <lauxlib.h>
#include <lua.h>

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <unistd.h>


/* sys.cpu_count() -> CPUs this process may run on (affinity), at least 1 */
static int
l_cpu_count(lua_State *L)
{
    cpu_set_t set;
    long      n = 0;

    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        n = CPU_COUNT(&set);
    }
    if (n < 1) {
        n = sysconf(_SC_NPROCESSORS_ONLN);
    }
    lua_pushinteger(L, n < 1 ? 1 : (lua_Integer) n);
    return 1;
}


/* sys.rss_kb(pid?) -> resident set in KiB (VmRSS) | nil, err; default self */
static int
l_rss_kb(lua_State *L)
{
    lua_Integer pid = luaL_optinteger(L, 1, (lua_Integer) getpid());
    char        path[64], line[256];
    long long   kb;
    FILE       *f;
    int         saved;

    luaL_argcheck(L, pid > 0, 1, "pid must be > 0");
    snprintf(path, sizeof(path), "/proc/%lld/status", (long long) pid);
    f = fopen(path, "re");
    if (f == NULL) {
        saved = errno;
        return wtt_lua_push_errno(L, "rss_kb",
                                  lua_pushfstring(L, "pid %d", (int) pid),
                                  saved);
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "VmRSS: %lld kB", &kb) == 1) {
            fclose(f);
            lua_pushinteger(L, (lua_Integer) kb);
            return 1;
        }
    }
    fclose(f);
    lua_pushnil(L);
    lua_pushfstring(L, "rss_kb failed: pid %d has no resident set", (int) pid);
    return 2;
}


static const luaL_Reg machine_funcs[] = {
    { "cpu_count", l_cpu_count },
    { "rss_kb",    l_rss_kb },
    { NULL, NULL },
};


void
wtt__sys_open_machine(lua_State *L)
{
    luaL_register(L, NULL, machine_funcs);           /* sys */
}
