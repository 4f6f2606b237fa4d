/*
 * wtt_vm.h: LuaJIT states for wtt.
 *
 * Every thread that runs Lua owns its own state, made by wtt_vm_new(); a
 * state is never touched by two threads. A new state has the standard
 * libraries, the C modules given to wtt_vm_set_modules() registered in
 * package.preload (the program's one list is core/app/wtt_modules.c),
 * `lua/` first on package.path, and a read-only `wtt.runtime` module
 * describing the process (paths, version, build options). Its os.exit
 * closes the state before exiting (LuaJIT's `close` argument, true by
 * default), so finalizers run and C memory held by Lua objects is freed.
 */
#ifndef WTT_VM_H
#define WTT_VM_H

#include <limits.h>
#include <lua.h>
#include <lauxlib.h>

struct wtt_paths {
    char lua_dir[PATH_MAX];
    char routes_dir[PATH_MAX];
    char plugins_dir[PATH_MAX];
    char exe[PATH_MAX];
};

/*
 * Resolves the roots of lua/, routes/ and plugins/: explicit arguments (from
 * flags) win, then WTT_LUA_DIR / WTT_ROUTES_DIR / WTT_PLUGINS_DIR, then
 * WTT_HOME/<dir>, then <exe>/../share/wtt/<dir> when installed, then the
 * source tree the binary was built from. NULL arguments mean "not given".
 * Returns 0, or -1 with `*err` pointing at static text when lua/ is missing.
 */
int wtt_vm_set_paths(const char *lua_dir, const char *routes_dir,
                     const char *plugins_dir, const char **err);

/*
 * Sets the C modules every later wtt_vm_new() state finds in
 * package.preload: a { name, luaopen } list ending in { NULL, NULL } that
 * must live as long as the process. Call once, before any state is made.
 */
void wtt_vm_set_modules(const luaL_Reg *modules);

/*
 * Sets a function that adds to wtt.runtime what this layer cannot know
 * (the program's compiled-in backends): every later state calls it with
 * the runtime table on top of the stack, which it must leave as it found
 * it. Call once, before any state is made.
 */
void wtt_vm_set_runtime_facts(void (*facts)(lua_State *L));

/* The resolved paths; valid for the life of the process. */
const struct wtt_paths *wtt_vm_paths(void);

/*
 * Creates a state as described above. Returns NULL only when LuaJIT cannot
 * allocate the state; the caller owns the result and closes it with
 * wtt_vm_close() on the same thread.
 */
lua_State *wtt_vm_new(void);

/* Closes a state from wtt_vm_new (lua_close, then what its allocator kept:
 * core/base/wtt_lalloc.h). */
void wtt_vm_close(lua_State *L);

/*
 * Calls the function below `nargs` arguments with a traceback message
 * handler (lua_pcall semantics). On error the stack holds the message with
 * its traceback. Returns lua_pcall's status.
 */
int wtt_vm_pcall(lua_State *L, int nargs, int nresults);

/*
 * Loads and runs `path` with `argv` as the global `arg` (arg[0] = path).
 * Returns the process exit status: 0 on success, 1 on a Lua error (printed
 * to stderr with its traceback).
 */
int wtt_vm_run_file(lua_State *L, const char *path, int argc, char **argv);

#endif
