/*
 * wtt_sys_machine.c: `wtt.sys` machine figures: CPUs this process may use,
 * the resident set of a process, the CPU time this process used, and its
 * resource limits (the worker's bounds on a task, docs/worker.md "Limits").
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "wtt_sys_private.h"
#include "wtt_luax.h"
#include "wtt_util.h"
#include "wtt_cpus.h"
#include "wtt_heap.h"

#include <lauxlib.h>
#include <lua.h>

#include <errno.h>
#include <sched.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>


/* sys.cpu_count() -> CPUs this process may use (affinity, cgroup quota;
 * wtt_cpus.h), at least 1 */
static int
l_cpu_count(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer) wtt_cpu_count());
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


/* sys.cpu_s() -> CPU seconds this process used, all threads (user + system) */
static int
l_cpu_s(lua_State *L)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0) {
        return wtt_lua_push_errno(L, "cpu_s", NULL, errno);
    }
    lua_pushnumber(L, (double) ts.tv_sec + (double) ts.tv_nsec / 1e9);
    return 1;
}


static const struct {
    const char *name;
    int         resource;
} rlimit_names[] = {
    { "as",     RLIMIT_AS },
    { "data",   RLIMIT_DATA },
    { "fsize",  RLIMIT_FSIZE },
    { "cpu",    RLIMIT_CPU },
    { "nofile", RLIMIT_NOFILE },
    { "core",   RLIMIT_CORE },
    { NULL, 0 },
};


static int
check_resource(lua_State *L, int idx)
{
    const char *name = luaL_checkstring(L, idx);
    int         i;

    for (i = 0; rlimit_names[i].name; i++) {
        if (strcmp(rlimit_names[i].name, name) == 0) {
            return rlimit_names[i].resource;
        }
    }
    return luaL_argerror(L, idx, "unknown resource");
}


/* An rlim_t for Lua: math.huge for RLIM_INFINITY. */
static void
push_rlim(lua_State *L, rlim_t v)
{
    lua_pushnumber(L, v == RLIM_INFINITY ? HUGE_VAL : (double) v);
}


static rlim_t
check_rlim(lua_State *L, int idx)
{
    double v = luaL_checknumber(L, idx);

    if (!(v >= 0)) {
        luaL_argerror(L, idx, "limit must be a number >= 0");
    }
    return v >= 1.8e19 ? RLIM_INFINITY : (rlim_t) v;
}


/* sys.getrlimit(name) -> soft, hard (math.huge: unlimited) | nil, err.
 * name: "as", "data", "fsize", "cpu", "nofile", "core". */
static int
l_getrlimit(lua_State *L)
{
    struct rlimit rl;

    if (getrlimit(check_resource(L, 1), &rl) != 0) {
        return wtt_lua_push_errno(L, "getrlimit", lua_tostring(L, 1), errno);
    }
    push_rlim(L, rl.rlim_cur);
    push_rlim(L, rl.rlim_max);
    return 2;
}


/* sys.setrlimit(name, soft [, hard]) -> true | nil, err. Without hard the
 * hard limit stays; a soft limit above the hard one is an error (EINVAL)
 * rather than silently lowered, so the caller knows its bound holds. */
static int
l_setrlimit(lua_State *L)
{
    int           res = check_resource(L, 1);
    struct rlimit rl;

    if (getrlimit(res, &rl) != 0) {
        return wtt_lua_push_errno(L, "setrlimit", lua_tostring(L, 1), errno);
    }
    rl.rlim_cur = check_rlim(L, 2);
    if (!lua_isnoneornil(L, 3)) {
        rl.rlim_max = check_rlim(L, 3);
    }
    if (setrlimit(res, &rl) != 0) {
        return wtt_lua_push_errno(L, "setrlimit", lua_tostring(L, 1), errno);
    }
    lua_pushboolean(L, 1);
    return 1;
}


/* sys.heap_trim() -> released (boolean) | nil, err: malloc's free pages
 * back to the kernel now. */
static int
l_heap_trim(lua_State *L)
{
    int r = wtt_heap_trim();

    if (r < 0) {
        lua_pushnil(L);
        lua_pushliteral(L, "heap trim: not available in this build");
        return 2;
    }
    lua_pushboolean(L, r);
    return 1;
}


/* sys.heap_trim_every(seconds) -> true | nil, err: trims on a thread of
 * its own every `seconds` (0 pauses). A build that cannot trim accepts
 * the call and does nothing, as heap_trim says. */
static int
l_heap_trim_every(lua_State *L)
{
    char err[128];

    if (wtt_heap_trim_every(luaL_checknumber(L, 1), err, sizeof(err)) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}


static const luaL_Reg machine_funcs[] = {
    { "heap_trim",       l_heap_trim },
    { "heap_trim_every", l_heap_trim_every },
    { "cpu_s",     l_cpu_s },
    { "getrlimit", l_getrlimit },
    { "setrlimit", l_setrlimit },
    { "cpu_count", l_cpu_count },
    { "rss_kb",    l_rss_kb },
    { NULL, NULL },
};


void
wtt__sys_open_machine(lua_State *L)
{
    luaL_register(L, NULL, machine_funcs);           /* sys */
}
