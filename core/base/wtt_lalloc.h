/*
 * wtt_lalloc.h: the allocator of wtt's Lua states, for their large blocks.
 *
 * LuaJIT's own allocator maps every block of 128 KiB or more afresh and
 * unmaps it when freed, so each multi-megabyte string (a tab's MusicXML, a
 * JSON body) is faulted in 4 KiB at a time on every call: on a virtual
 * machine, 10-25 us a page, 13 ms for the two texts of a ten-minute tab.
 * This allocator wraps the state's own one and takes over the blocks of
 * WTT_LALLOC_BIG bytes or more: each is a mapping aligned to and rounded up
 * to 2 MiB, advised as transparent huge pages (the kernel faults it in
 * 2 MiB at a time where THP is "madvise" or "always"), and a freed one is
 * kept for reuse, up to WTT_LALLOC_KEEP bytes per state, so a server that
 * writes such texts again touches no new memory. Small blocks go to the
 * C library's malloc, so that lua_close gives back everything the state
 * held (LuaJIT's own allocator, wrapped, would keep its arena mapped).
 *
 *     lua_State *L = wtt_lalloc_newstate();
 *     if (L == NULL) { ... out of memory ... }
 *     ...
 *     wtt_lalloc_close(L);         -- instead of lua_close(L)
 *
 * A state is used by one thread at a time, so the allocator takes no lock.
 */
#ifndef WTT_LALLOC_H
#define WTT_LALLOC_H

#include <stddef.h>
#include <lua.h>

/* Blocks from this size up are mapped here; a block rounded up to whole
 * 2 MiB pages wastes at most as much as it holds. */
#define WTT_LALLOC_BIG   ((size_t) 1 << 20)
/* Freed mappings kept for reuse, per state. */
#define WTT_LALLOC_KEEP  ((size_t) 16 << 20)

/* A new state (lua_newstate) on this allocator, or NULL (out of memory). */
lua_State *wtt_lalloc_newstate(void);

/* Closes `L` (lua_close) and then frees what the wrapper kept: the state
 * owns nothing of it any more. Works on a state without the wrapper too. */
void wtt_lalloc_close(lua_State *L);

/* Bytes of freed mappings `L`'s wrapper keeps for reuse (0 without one). */
size_t wtt_lalloc_kept(lua_State *L);

/* Bytes held by every state with the wrapper, summed (the metrics'
 * wtt_lua_memory_bytes). */
long long wtt_lalloc_total_bytes(void);

#endif
