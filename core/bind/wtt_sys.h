/*
 * wtt_sys.h: the `wtt.sys` Lua module, process and OS plumbing for the
 * server and for test specs: spawning, signalling and reaping children,
 * clocks, environment, temporary directories and files, free ports and a
 * raw TCP client for protocol tests.
 *
 * Signals: sys.trap({"TERM", "INT"}) installs handlers (SA_RESTART) that
 * only count arrivals; sys.signaled("TERM" [, clear]) -> boolean, count
 * polls them from any Lua state on any thread (the counts are process-wide;
 * they are not cleared unless `clear` is true, so every state that polls
 * sees the signal); sys.untrap(names) restores the default disposition.
 * Names are those of sys.kill ("TERM" or "SIGTERM"); KILL and STOP raise.
 * Children started by sys.spawn get default dispositions whatever is trapped.
 *
 * Thread-safety: every function acts on the calling thread's lua_State only,
 * but sys.setenv and sys.spawn (which reads the environment) must not race
 * with another thread changing the environment, a libc-wide rule.
 */
#ifndef WTT_SYS_H
#define WTT_SYS_H

#include <lua.h>

/*
 * Opens the module: registers the "wtt.sys.conn" metatable and pushes the
 * function table. Stack: before [], after [sys]. Returns 1. Never fails short
 * of a Lua memory error.
 */
int luaopen_wtt_sys(lua_State *L);

#endif
