/*
 * wtt_zlib.h: the `wtt.zlib` Lua module, the two zlib primitives a zip
 * archive writer needs (lua/wtt/zip.lua): a CRC-32 and raw deflate.
 *
 *   local zlib = require "wtt.zlib"
 *   zlib.crc32("123456789")            --> 0xCBF43926 (3421780262)
 *   zlib.crc32(more, previous_crc)     --  continues a running CRC
 *   local raw = zlib.deflate(s, 6)     --  level 0-9 (default 6); raw
 *                                      --  deflate, no zlib or gzip header
 *
 * deflate returns nil, "deflate failed: <reason>" when zlib or memory fails
 * (the output buffer's size comes from the input); a level outside [0, 9]
 * or a non-string argument is a programming error and raises.
 *
 * Thread-safety: no state; callable from any thread's Lua state.
 */
#ifndef WTT_ZLIB_H
#define WTT_ZLIB_H

#include <lua.h>

/*
 * Opens the module and pushes its table: crc32, deflate. Stack: before [],
 * after [zlib]. Returns 1.
 */
int luaopen_wtt_zlib(lua_State *L);

#endif
