/*
 * wtt_thread.h: Lua module `wtt.thread` (background Lua threads with their
 * own states, and a process-wide table of shared strings).
 */
#ifndef WTT_THREAD_H
#define WTT_THREAD_H

#include <lua.h>
#include <stddef.h>

int luaopen_wtt_thread(lua_State *L);

/* A background Lua thread started from C. */
struct wtt_thread;

/*
 * Runs the Lua file `path` with `arg` (copied; `...` and arg[1]) on a new
 * thread in a fresh state, for work that runs beside the program (the
 * subscriber inside `wtt serve`). Returns the thread, which the caller
 * must hand to wtt_thread_join exactly once, or NULL with `err`.
 */
struct wtt_thread *wtt_thread_start_file(const char *path, const char *arg,
                                         char *err, size_t errlen);

/*
 * Asks every background Lua thread of the process to stop: from now on
 * thread.stopping() is true in all of them, and their code decides when to
 * return. Callable from any thread; not async-signal-safe.
 */
void wtt_thread_request_stop(void);

/*
 * Waits at most `timeout` seconds (negative: no limit) for `t`'s Lua code
 * to return and its state to close, then releases `t`. Returns 0, or -1
 * when it is still running: it is then detached and runs on until the
 * process exits.
 */
int wtt_thread_join(struct wtt_thread *t, double timeout);

#endif
