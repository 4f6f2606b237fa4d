/*
 * wtt_luax.h: helpers shared by the Lua bindings: option tables read the
 * same way everywhere (house style 13: a wrong type or an unknown option is
 * a programming error and raises, naming the option), the `nil, err` reply
 * of an OS failure, and userdata classes.
 */
#ifndef WTT_LUAX_H
#define WTT_LUAX_H

#include <lauxlib.h>
#include <lua.h>
#include <stddef.h>

/* Raises when the table at `idx` has a key not in `known` (NULL ended).
 * Stack unchanged. */
void wtt_lua_check_opts(lua_State *L, int idx, const char *const *known);

/*
 * Option `name` of the table at `idx` (0: no table), `def` when absent.
 * Raise when the value has the wrong type (or, for numbers, lies outside
 * [min, max] or is NaN). Strings stay anchored by the options table; `len`
 * may be NULL. Stack unchanged.
 */
const char *wtt_lua_opt_string(lua_State *L, int idx, const char *name,
                               const char *def, size_t *len);
lua_Number wtt_lua_opt_number(lua_State *L, int idx, const char *name,
                              lua_Number def, lua_Number min, lua_Number max);
int wtt_lua_opt_bool(lua_State *L, int idx, const char *name, int def);

/*
 * Index of the optional options table at `idx`, 0 when the argument is
 * absent or nil (the `idx` the wtt_lua_opt_* readers take); raises when it
 * is anything else. Stack unchanged.
 */
int wtt_lua_opt_table(lua_State *L, int idx);

/*
 * Pushes nil and "<op> failed: [<what>: ]<reason>", where reason is
 * strerror(err) in lowercase (house style 14): the runtime-failure reply of
 * a binding. `what` (a path, a name) may be NULL. Returns 2, so a binding
 * can `return wtt_lua_push_errno(L, "open", path, errno);`.
 * Stack: before [...], after [... nil err].
 */
int wtt_lua_push_errno(lua_State *L, const char *op, const char *what,
                       int err);

/*
 * Registers the metatable `name` of a userdata class (once per state):
 * `meta` (__gc, __tostring, ...) goes into the metatable, `methods` into
 * its __index table; either may be NULL. Stack unchanged.
 */
void wtt_lua_class(lua_State *L, const char *name, const luaL_Reg *meta,
                   const luaL_Reg *methods);

/*
 * Pushes a userdata owning `bytes` of heap memory (zeroed when `zero`),
 * freed by its __gc, so a binding that raises part-way leaks nothing.
 * Returns the memory, or NULL when out of memory (the userdata is pushed
 * either way). Stack: before [...], after [... scratch].
 */
void *wtt_lua_scratch(lua_State *L, size_t bytes, int zero);

/* Frees the memory of the scratch at `idx` now, rather than at its __gc. */
void wtt_lua_scratch_release(lua_State *L, int idx);

#endif
