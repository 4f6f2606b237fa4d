/*
 * wtt_vm.c: creation of LuaJIT states and module resolution (see wtt_vm.h).
 */
#include "wtt_vm.h"
#include "wtt_lalloc.h"
#include "wtt_util.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static struct wtt_paths paths;

/* The C modules `require` finds in package.preload; set once by the
 * program (core/app/wtt_modules.c) so that this layer names no binding. */
static const luaL_Reg *preload_modules;


void
wtt_vm_set_modules(const luaL_Reg *modules)
{
    preload_modules = modules;
}


/* ---------------------------------------------------------------------------
 * Paths
 * ------------------------------------------------------------------------- */

static int
is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}


/* Picks the first usable root for `name` (lua, routes or plugins). */
static void
resolve(char *out, const char *given, const char *env, const char *name,
        const char *installed)
{
    const char *v = given != NULL ? given : getenv(env);
    const char *home = getenv("WTT_HOME");
    char        tmp[PATH_MAX];

    if (v != NULL && v[0] != '\0') {
        snprintf(tmp, sizeof(tmp), "%s", v);
    } else if (home != NULL && home[0] != '\0') {
        snprintf(tmp, sizeof(tmp), "%s/%s", home, name);
    } else if (installed != NULL) {
        snprintf(tmp, sizeof(tmp), "%s/%s", installed, name);
    } else {
        snprintf(tmp, sizeof(tmp), "%s/%s", WTT_SOURCE_DIR, name);
    }
    /* Absolute paths keep working after a chdir and read well in logs. */
    if (realpath(tmp, out) == NULL) {
        snprintf(out, PATH_MAX, "%s", tmp);
    }
}


int
wtt_vm_set_paths(const char *lua_dir, const char *routes_dir,
                 const char *plugins_dir, const char **err)
{
    char        installed[PATH_MAX], probe[PATH_MAX + 8];
    const char *inst = NULL;
    ssize_t     n;

    n = readlink("/proc/self/exe", paths.exe, sizeof(paths.exe) - 1);
    paths.exe[n > 0 ? n : 0] = '\0';

    /* An installed binary lives in <prefix>/bin next to <prefix>/share/wtt;
     * a binary in the build tree has no such sibling and uses the sources. */
    if (n > 0) {
        char *slash = strrchr(paths.exe, '/');
        int   len = slash != NULL ? (int) (slash - paths.exe) : 0;
        snprintf(installed, sizeof(installed), "%.*s/../share/wtt", len,
                 paths.exe);
        snprintf(probe, sizeof(probe), "%s/lua", installed);
        if (is_dir(probe)) {
            inst = installed;
        }
    }
    resolve(paths.lua_dir, lua_dir, "WTT_LUA_DIR", "lua", inst);
    resolve(paths.routes_dir, routes_dir, "WTT_ROUTES_DIR", "routes", inst);
    resolve(paths.plugins_dir, plugins_dir, "WTT_PLUGINS_DIR", "plugins",
            inst);
    if (!is_dir(paths.lua_dir)) {
        *err = "lua directory not found (set WTT_LUA_DIR or --lua-dir)";
        return WTT_ERR;
    }
    return WTT_OK;
}


const struct wtt_paths *
wtt_vm_paths(void)
{
    return &paths;
}


/* ---------------------------------------------------------------------------
 * States
 * ------------------------------------------------------------------------- */

static void (*runtime_facts)(lua_State *L);


void
wtt_vm_set_runtime_facts(void (*facts)(lua_State *L))
{
    runtime_facts = facts;
}


/* package.loaded["wtt.runtime"]: facts about this process, read-only. */
static int
open_runtime(lua_State *L)
{
    lua_newtable(L);
    lua_pushstring(L, WTT_VERSION);
    lua_setfield(L, -2, "version");
    lua_pushstring(L, paths.lua_dir);
    lua_setfield(L, -2, "lua_dir");
    lua_pushstring(L, paths.routes_dir);
    lua_setfield(L, -2, "routes_dir");
    lua_pushstring(L, paths.plugins_dir);
    lua_setfield(L, -2, "plugins_dir");
    lua_pushstring(L, paths.exe);
    lua_setfield(L, -2, "exe");
    lua_pushstring(L, WTT_SOURCE_DIR);
    lua_setfield(L, -2, "source_dir");
#if defined(__SANITIZE_ADDRESS__)
    lua_pushboolean(L, 1);
#else
    lua_pushboolean(L, 0);
#endif
    lua_setfield(L, -2, "sanitized");
    if (runtime_facts != NULL) {
        runtime_facts(L);
    }
    return 1;
}


/*
 * os.exit(code [, close]): LuaJIT's, except that `close` defaults to true.
 * The state is closed before the process exits, so finalizers run:
 * connections end cleanly, temporary files go, and C memory that only a
 * Lua object referenced is released (LuaJIT's heap is invisible to
 * LeakSanitizer, which would otherwise report it as leaked). os.exit(code,
 * false) exits at once.
 */
static int
os_exit(lua_State *L)
{
    int status;

    if (lua_isboolean(L, 1)) {
        status = lua_toboolean(L, 1) ? EXIT_SUCCESS : EXIT_FAILURE;
    } else {
        status = (int) luaL_optinteger(L, 1, EXIT_SUCCESS);
    }
    if (lua_isnoneornil(L, 2) || lua_toboolean(L, 2)) {
        wtt_vm_close(L);         /* from a coroutine too: the whole state */
    }
    exit(status);
    return 0;                    /* not reached */
}


lua_State *
wtt_vm_new(void)
{
    lua_State *L = luaL_newstate();
    char       path[3 * PATH_MAX];

    if (L == NULL) {
        return NULL;
    }
    /* Large blocks in kept huge-page mappings (wtt_lalloc.h says why);
     * without the memory for it, LuaJIT's allocator does all. */
    (void) wtt_lalloc_install(L);
    luaL_openlibs(L);
    lua_getglobal(L, "os");                              /* os */
    lua_pushcfunction(L, os_exit);                       /* os exit */
    lua_setfield(L, -2, "exit");                         /* os */
    lua_pop(L, 1);                                       /* (empty) */

    lua_getglobal(L, "package");                         /* package */
    lua_getfield(L, -1, "preload");                      /* package preload */
    for (const luaL_Reg *m = preload_modules; m != NULL && m->name != NULL;
         m++) {
        lua_pushcfunction(L, m->func);
        lua_setfield(L, -2, m->name);
    }
    lua_pushcfunction(L, open_runtime);
    lua_setfield(L, -2, "wtt.runtime");
    lua_pop(L, 1);                                       /* package */

    lua_getfield(L, -1, "path");                         /* package path */
    snprintf(path, sizeof(path), "%s/?.lua;%s/?/init.lua;%s",
             paths.lua_dir, paths.lua_dir, lua_tostring(L, -1));
    lua_pop(L, 1);                                       /* package */
    lua_pushstring(L, path);                             /* package path' */
    lua_setfield(L, -2, "path");                         /* package */
    lua_pop(L, 1);                                       /* (empty) */
    return L;
}


static int
traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);

    if (msg == NULL) {
        /* A non-string error (an error table): keep it as it is so that
         * Lua callers can inspect its fields. */
        return 1;
    }
    lua_getglobal(L, "debug");
    lua_getfield(L, -1, "traceback");
    lua_pushvalue(L, 1);
    lua_pushinteger(L, 2);
    lua_call(L, 2, 1);
    return 1;
}


int
wtt_vm_pcall(lua_State *L, int nargs, int nresults)
{
    int base = lua_gettop(L) - nargs;
    int rc;

    lua_pushcfunction(L, traceback);
    lua_insert(L, base);
    rc = lua_pcall(L, nargs, nresults, base);
    lua_remove(L, base);
    return rc;
}


int
wtt_vm_run_file(lua_State *L, const char *path, int argc, char **argv)
{
    lua_createtable(L, argc, 1);
    lua_pushstring(L, path);
    lua_rawseti(L, -2, 0);
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setglobal(L, "arg");

    if (luaL_loadfile(L, path) != 0) {
        fprintf(stderr, "wtt: %s\n", lua_tostring(L, -1));
        lua_pop(L, 1);
        return 1;
    }
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
    }
    if (wtt_vm_pcall(L, argc, 0) != 0) {
        const char *msg = lua_tostring(L, -1);
        /* error() without a value is how busted asks for a failing exit. */
        if (!lua_isnil(L, -1)) {
            fprintf(stderr, "wtt: %s\n",
                    msg != NULL ? msg : "(error object)");
        }
        lua_pop(L, 1);
        return 1;
    }
    return 0;
}


void
wtt_vm_close(lua_State *L)
{
    wtt_lalloc_close(L);
}
