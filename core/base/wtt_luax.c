/*
 * wtt_luax.c: helpers shared by the Lua bindings (see wtt_luax.h).
 */
#include "wtt_luax.h"
#include "wtt_util.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>


void
wtt_lua_check_opts(lua_State *L, int idx, const char *const *known)
{
    const char *name;
    int         i;

    lua_pushnil(L);                                  /* nil */
    while (lua_next(L, idx) != 0) {                  /* k v */
        if (lua_type(L, -2) != LUA_TSTRING) {
            luaL_argerror(L, idx, "option names must be strings");
        }
        name = lua_tostring(L, -2);
        for (i = 0; known[i] != NULL; i++) {
            if (strcmp(name, known[i]) == 0) {
                break;
            }
        }
        if (known[i] == NULL) {
            luaL_argerror(L, idx,
                          lua_pushfstring(L, "unknown option '%s'", name));
        }
        lua_pop(L, 1);                               /* k */
    }
}


/* Pushes opts[name] and returns its type; LUA_TNIL without a table. */
static int
field(lua_State *L, int idx, const char *name)
{
    if (idx == 0) {
        lua_pushnil(L);                              /* nil */
        return LUA_TNIL;
    }
    lua_getfield(L, idx, name);                      /* v */
    return lua_type(L, -1);
}


const char *
wtt_lua_opt_string(lua_State *L, int idx, const char *name, const char *def,
                   size_t *len)
{
    const char *s = def;

    switch (field(L, idx, name)) {                   /* v */
    case LUA_TNIL:
        if (len != NULL) {
            *len = def != NULL ? strlen(def) : 0;
        }
        break;
    case LUA_TSTRING:
        s = lua_tolstring(L, -1, len);
        break;
    default:
        luaL_argerror(L, idx, lua_pushfstring(L, "'%s' must be a string",
                                              name));
    }
    lua_pop(L, 1);                                   /* */
    return s;
}


lua_Number
wtt_lua_opt_number(lua_State *L, int idx, const char *name, lua_Number def,
                   lua_Number min, lua_Number max)
{
    lua_Number n = def;

    switch (field(L, idx, name)) {                   /* v */
    case LUA_TNIL:
        break;
    case LUA_TNUMBER:
        n = lua_tonumber(L, -1);
        if (!(n >= min && n <= max)) {               /* NaN fails too */
            luaL_argerror(L, idx, lua_pushfstring(L,
                          "'%s' must be a number between %f and %f", name,
                          (double) min, (double) max));
        }
        break;
    default:
        luaL_argerror(L, idx, lua_pushfstring(L, "'%s' must be a number",
                                              name));
    }
    lua_pop(L, 1);                                   /* */
    return n;
}


int
wtt_lua_opt_bool(lua_State *L, int idx, const char *name, int def)
{
    int b = def;

    switch (field(L, idx, name)) {                   /* v */
    case LUA_TNIL:
        break;
    case LUA_TBOOLEAN:
        b = lua_toboolean(L, -1);
        break;
    default:
        luaL_argerror(L, idx, lua_pushfstring(L, "'%s' must be a boolean",
                                              name));
    }
    lua_pop(L, 1);                                   /* */
    return b;
}


int
wtt_lua_opt_table(lua_State *L, int idx)
{
    if (lua_isnoneornil(L, idx)) {
        return 0;
    }
    luaL_checktype(L, idx, LUA_TTABLE);
    return idx;
}


int
wtt_lua_push_errno(lua_State *L, const char *op, const char *what, int err)
{
    char reason[128];

    wtt_strerror(err, reason, sizeof(reason));
    lua_pushnil(L);                                  /* nil */
    if (what == NULL) {
        lua_pushfstring(L, "%s failed: %s", op, reason);
    } else {
        lua_pushfstring(L, "%s failed: %s: %s", op, what, reason);
    }                                                /* nil err */
    return 2;
}


void
wtt_lua_class(lua_State *L, const char *name, const luaL_Reg *meta,
              const luaL_Reg *methods)
{
    if (luaL_newmetatable(L, name)) {                    /* mt */
        if (meta != NULL) {
            luaL_register(L, NULL, meta);
        }
        if (methods != NULL) {
            lua_newtable(L);                             /* mt methods */
            luaL_register(L, NULL, methods);
            lua_setfield(L, -2, "__index");              /* mt */
        }
    }
    lua_pop(L, 1);
}


/* ---------------------------------------------------------------------------
 * Scratch memory
 * ------------------------------------------------------------------------- */

#define SCRATCH_MT "wtt.scratch"

struct scratch {
    void *p;
};


static int
scratch_gc(lua_State *L)
{
    struct scratch *s = luaL_checkudata(L, 1, SCRATCH_MT);

    free(s->p);
    s->p = NULL;
    return 0;
}


void *
wtt_lua_scratch(lua_State *L, size_t bytes, int zero)
{
    struct scratch *s = lua_newuserdata(L, sizeof(*s));   /* .. scratch */

    s->p = NULL;
    if (luaL_newmetatable(L, SCRATCH_MT)) {               /* .. sc mt */
        lua_pushcfunction(L, scratch_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);                              /* .. scratch */
    if (bytes == 0) {
        bytes = 1;
    }
    s->p = zero ? calloc(bytes, 1) : malloc(bytes);
    return s->p;
}


void
wtt_lua_scratch_release(lua_State *L, int idx)
{
    struct scratch *s = luaL_checkudata(L, idx, SCRATCH_MT);

    free(s->p);
    s->p = NULL;
}
