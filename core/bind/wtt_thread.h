/*
 * wtt_thread.h: Lua module `wtt.thread` (background Lua threads with their
 * own states, and a process-wide table of shared strings).
 */
#ifndef WTT_THREAD_H
#define WTT_THREAD_H

#include <lua.h>

int luaopen_wtt_thread(lua_State *L);

/*
 * Runs the Lua file `path` with `arg` (copied) on a new detached thread in a
 * fresh state, for work that lives as long as the process (the subscriber
 * inside `wtt serve`). Returns 0, or -1 with `err`.
 */
#include <stddef.h>
int wtt_thread_start_file(const char *path, const char *arg, char *err,
                          size_t errlen);

#endif
