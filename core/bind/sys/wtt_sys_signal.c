/*
 * wtt_sys_signal.c: `wtt.sys` trapped signals: handlers that only count,
 * polled from Lua (sys.trap, sys.untrap, sys.signaled; see wtt_sys.h), and
 * the signal names every part of the module accepts.
 */
#include "wtt_sys_private.h"
#include "wtt_luax.h"
#include "wtt_util.h"

#include <lauxlib.h>
#include <lua.h>

#include <errno.h>
#include <signal.h>
#include <string.h>


static const struct {
    const char *name;
    int         signo;
} signal_names[] = {
    { "HUP",   SIGHUP },
    { "INT",   SIGINT },
    { "QUIT",  SIGQUIT },
    { "ABRT",  SIGABRT },
    { "KILL",  SIGKILL },
    { "USR1",  SIGUSR1 },
    { "USR2",  SIGUSR2 },
    { "PIPE",  SIGPIPE },
    { "ALRM",  SIGALRM },
    { "TERM",  SIGTERM },
    { "CHLD",  SIGCHLD },
    { "CONT",  SIGCONT },
    { "STOP",  SIGSTOP },
    { "TSTP",  SIGTSTP },
    { "WINCH", SIGWINCH },
    { "XCPU",  SIGXCPU },
    { "XFSZ",  SIGXFSZ },
    { NULL, 0 },
};


int
wtt__sys_signo(const char *name)
{
    int i;

    if (strncmp(name, "SIG", 3) == 0) {
        name += 3;
    }
    for (i = 0; signal_names[i].name != NULL; i++) {
        if (strcmp(name, signal_names[i].name) == 0) {
            return signal_names[i].signo;
        }
    }
    return -1;
}


/* Arrivals per signal since it was trapped (or last cleared). The handler
 * only increments (lock-free atomics are async-signal-safe); any thread may
 * run it, any thread may poll. */
#define SYS_NSIG 65
static int sig_counts[SYS_NSIG];


static void
on_trapped_signal(int sig)
{
    if (sig > 0 && sig < SYS_NSIG) {
        __atomic_add_fetch(&sig_counts[sig], 1, __ATOMIC_SEQ_CST);
    }
}


/* The signal number named by the string at `idx` ("TERM" or "SIGTERM");
 * raises on an unknown name. */
static int
check_signal_name(lua_State *L, int idx)
{
    int signo = wtt__sys_signo(luaL_checkstring(L, idx));

    if (signo < 0) {
        return luaL_argerror(L, idx, lua_pushfstring(L,
                             "unknown signal '%s'", lua_tostring(L, idx)));
    }
    return signo;
}


/* Applies `fn` to every name of the string-or-list argument 1. */
static void
each_signal(lua_State *L, void (*fn)(lua_State *, int))
{
    int i, n;

    if (lua_type(L, 1) == LUA_TSTRING) {
        fn(L, check_signal_name(L, 1));
        return;
    }
    luaL_checktype(L, 1, LUA_TTABLE);
    n = (int) lua_objlen(L, 1);
    for (i = 1; i <= n; i++) {
        lua_rawgeti(L, 1, i);                        /* ... name */
        fn(L, check_signal_name(L, lua_gettop(L)));
        lua_pop(L, 1);                               /* ... */
    }
}


static void
trap_one(lua_State *L, int signo)
{
    struct sigaction sa;

    if (signo == SIGKILL || signo == SIGSTOP) {
        luaL_error(L, "bad argument #1 to 'trap' (SIGKILL and SIGSTOP "
                   "cannot be trapped)");
        return;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_trapped_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    __atomic_store_n(&sig_counts[signo], 0, __ATOMIC_SEQ_CST);
    if (sigaction(signo, &sa, NULL) != 0) {
        luaL_error(L, "trap failed: %s", strerror(errno));
    }
}


static void
untrap_one(lua_State *L, int signo)
{
    struct sigaction sa;

    (void) L;
    if (signo == SIGKILL || signo == SIGSTOP) {
        return;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    sigaction(signo, &sa, NULL);
    __atomic_store_n(&sig_counts[signo], 0, __ATOMIC_SEQ_CST);
}


/* sys.trap(names) -> true: names is "TERM" or { "TERM", "INT" }. */
static int
l_trap(lua_State *L)
{
    each_signal(L, trap_one);
    lua_pushboolean(L, 1);
    return 1;
}


/* sys.untrap(names) -> true: back to the default disposition. */
static int
l_untrap(lua_State *L)
{
    each_signal(L, untrap_one);
    lua_pushboolean(L, 1);
    return 1;
}


/* sys.signaled(name [, clear]) -> boolean, count */
static int
l_signaled(lua_State *L)
{
    int signo = check_signal_name(L, 1);
    int n;

    if (lua_toboolean(L, 2)) {
        n = __atomic_exchange_n(&sig_counts[signo], 0, __ATOMIC_SEQ_CST);
    } else {
        n = __atomic_load_n(&sig_counts[signo], __ATOMIC_SEQ_CST);
    }
    lua_pushboolean(L, n > 0);
    lua_pushinteger(L, n);
    return 2;
}


static const luaL_Reg signal_funcs[] = {
    { "trap",     l_trap },
    { "untrap",   l_untrap },
    { "signaled", l_signaled },
    { NULL, NULL },
};


void
wtt__sys_open_signal(lua_State *L)
{
    luaL_register(L, NULL, signal_funcs);            /* sys */
}
