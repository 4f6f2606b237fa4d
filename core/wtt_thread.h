/*
 * wtt_thread.h: Lua module `wtt.thread` (background Lua threads with their
 * own states, and a process-wide table of shared strings).
 */
#ifndef WTT_THREAD_H
#define WTT_THREAD_H

#include <lua.h>

int luaopen_wtt_thread(lua_State *L);

#endif
