/*
 * wtt_sys_private.h: what the parts of the `wtt.sys` module share (not a
 * public header: only core/bind/sys/ includes it).
 *
 * `wtt.sys` is one Lua table assembled from one file per subsystem:
 * processes (wtt_sys_proc.c), trapped signals (wtt_sys_signal.c), clocks and
 * environment (wtt_sys_clock.c), files (wtt_sys_fs.c), free ports and the
 * raw TCP client of protocol tests (wtt_sys_net.c) and machine figures
 * (wtt_sys_machine.c). Each part exports one wtt__sys_open_<part>, which
 * registers its functions into the table on top of the stack; wtt_sys.c
 * calls them in a fixed order. Every runtime failure comes back to Lua as
 * `nil, "<op> failed: <reason>"` (wtt_lua_push_errno); wrong argument types
 * and values raise (house style 13).
 */
#ifndef WTT_SYS_PRIVATE_H
#define WTT_SYS_PRIVATE_H

#include <lua.h>

#define SYS_DEFAULT_TIMEOUT  5.0
#define SYS_MAX_TIMEOUT      1e7          /* seconds; keeps ns math sane */

/*
 * Reads an optional timeout in seconds at stack index `idx`: `def` when
 * absent, raises when negative or not a number, clamps to SYS_MAX_TIMEOUT.
 */
double wtt__sys_opt_timeout(lua_State *L, int idx, double def);

/* Pushes nil and a literal message (no errno). Returns 2. */
int wtt__sys_push_msg(lua_State *L, const char *msg);

/* The number of signal `name` ("TERM" or "SIGTERM"), or -1 when unknown. */
int wtt__sys_signo(const char *name);

/* Each registers its part's functions into the table on top of the stack.
 * Stack: before [sys], after [sys]. */
void wtt__sys_open_proc(lua_State *L);
void wtt__sys_open_signal(lua_State *L);
void wtt__sys_open_clock(lua_State *L);
void wtt__sys_open_fs(lua_State *L);
void wtt__sys_open_net(lua_State *L);
void wtt__sys_open_machine(lua_State *L);

#endif
