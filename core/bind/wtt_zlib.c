/*
 * wtt_zlib.c: the `wtt.zlib` Lua module (see wtt_zlib.h) over the system
 * zlib.
 */
#include "wtt_zlib.h"
#include "wtt_util.h"

#include <lauxlib.h>
#include <limits.h>
#include <stdlib.h>
#include <zlib.h>

/* zlib counts its buffers in uInt: larger inputs are fed in pieces. */
#define CHUNK_MAX ((size_t) UINT_MAX)


/*
 * zlib.crc32(s [, crc]) -> the CRC-32 of s (continuing `crc`), a number in
 * [0, 2^32). Stack: before [s crc?], after [s crc? crc32].
 */
static int
l_crc32(lua_State *L)
{
    size_t      len;
    const char *s = luaL_checklstring(L, 1, &len);
    lua_Number  start = luaL_optnumber(L, 2, 0);
    uLong       crc;

    if (start < 0 || start > 4294967295.0 || start != (uLong) start) {
        return luaL_argerror(L, 2, "crc must be an integer in [0, 2^32)");
    }
    crc = crc32_z((uLong) start, (const Bytef *) s, len);
    lua_pushnumber(L, (lua_Number) crc);
    return 1;
}


/*
 * Deflates `len` bytes at `in` into a malloc'd buffer the caller frees.
 * Returns 0 with *out and *out_len set, or -1 with `*err` pointing at static
 * text.
 */
static int
deflate_raw(const char *in, size_t len, int level, char **out,
            size_t *out_len, const char **err)
{
    z_stream  z = { 0 };
    size_t    cap, left;
    char     *buf = NULL;
    int       rc;

    if (deflateInit2(&z, level, Z_DEFLATED, -15, 8,
                     Z_DEFAULT_STRATEGY) != Z_OK) {
        *err = "deflate failed: could not initialise zlib";
        return -1;
    }
    /* deflateBound is exact for one Z_FINISH call; the slack covers the
     * pieces of an input over CHUNK_MAX. */
    cap = deflateBound(&z, len > CHUNK_MAX ? CHUNK_MAX : len)
          * (len / CHUNK_MAX + 1) + 64;
    buf = wtt_trymalloc(cap);
    if (buf == NULL) {
        *err = "deflate failed: out of memory";
        goto fail;
    }
    z.next_out = (Bytef *) buf;
    left = len;
    z.next_in = (Bytef *) in;
    do {
        size_t room = cap - (size_t) ((char *) z.next_out - buf);
        z.avail_in = (uInt) (left > CHUNK_MAX ? CHUNK_MAX : left);
        left -= z.avail_in;
        z.avail_out = (uInt) (room > CHUNK_MAX ? CHUNK_MAX : room);
        rc = deflate(&z, left == 0 ? Z_FINISH : Z_NO_FLUSH);
        if (rc == Z_STREAM_ERROR || (left > 0 && z.avail_in != 0)) {
            *err = "deflate failed: output buffer too small";
            goto fail;
        }
    } while (left > 0);
    if (rc != Z_STREAM_END) {
        *err = "deflate failed: output buffer too small";
        goto fail;
    }
    *out_len = (size_t) ((char *) z.next_out - buf);
    *out = buf;
    deflateEnd(&z);
    return 0;

fail:
    free(buf);
    deflateEnd(&z);
    return -1;
}


struct bytes {
    const char *p;
    size_t      len;
};


/* Pushes the struct bytes at argument 1 (light userdata) as a string: called
 * protected, so a failed copy cannot unwind past the buffer's owner.
 * Stack: before [ud], after [ud s]. */
static int
push_bytes(lua_State *L)
{
    const struct bytes *b = lua_touserdata(L, 1);

    lua_pushlstring(L, b->p, b->len);
    return 1;
}


/*
 * zlib.deflate(s [, level]) -> raw deflate stream | nil, err. Stack: before
 * [s level?], after [s level? out] or [s level? nil err].
 */
static int
l_deflate(lua_State *L)
{
    size_t        len, out_len = 0;
    const char   *s = luaL_checklstring(L, 1, &len);
    lua_Integer   level = luaL_optinteger(L, 2, 6);
    char         *out = NULL;
    const char   *err = NULL;
    struct bytes  b;
    int           rc;

    if (level < 0 || level > 9) {
        return luaL_argerror(L, 2, "level must be in [0, 9]");
    }
    lua_pushcfunction(L, push_bytes);                     /* .. f */
    if (deflate_raw(s, len, (int) level, &out, &out_len, &err) != 0) {
        lua_pop(L, 1);                                    /* .. */
        lua_pushnil(L);
        lua_pushstring(L, err);                           /* .. nil err */
        return 2;
    }
    b.p = out;
    b.len = out_len;
    lua_pushlightuserdata(L, &b);                         /* .. f ud */
    rc = lua_pcall(L, 1, 1, 0);                           /* .. out|msg */
    free(out);
    if (rc != 0) {
        lua_pop(L, 1);                                    /* .. */
        lua_pushnil(L);
        lua_pushliteral(L, "deflate failed: out of memory");
        return 2;
    }
    return 1;
}


static const luaL_Reg zlib_funcs[] = {
    { "crc32",   l_crc32 },
    { "deflate", l_deflate },
    { NULL, NULL },
};


int
luaopen_wtt_zlib(lua_State *L)
{
    lua_newtable(L);                                      /* zlib */
    luaL_register(L, NULL, zlib_funcs);
    lua_pushstring(L, ZLIB_VERSION);
    lua_setfield(L, -2, "VERSION");
    return 1;
}
