/*
 * wtt_build_facts.c: see wtt_build_facts.h.
 */
#include "wtt_build_facts.h"
#include "wtt_backend_reg.h"
#include "wtt_model.h"

#include <lauxlib.h>
#include <luajit.h>
#include <string.h>


/* cuda.devices, on first read: enumerating starts the driver, which costs
 * time every Lua state would otherwise pay. */
static int
cuda_index(lua_State *L)
{
    if (strcmp(luaL_checkstring(L, 2), "devices") != 0) {
        return 0;
    }
    wtt_model_push_devices(L, "cuda");          /* t k devices */
    lua_pushvalue(L, -1);                       /* t k devices devices */
    lua_setfield(L, 1, "devices");              /* t k devices */
    return 1;
}


/* Built with AddressSanitizer (gcc says so with __SANITIZE_ADDRESS__,
 * clang with __has_feature). Specs use it to size repeated work: the same
 * code paths, fewer repetitions, where instrumented code runs ~3x slower. */
#if defined(__SANITIZE_ADDRESS__)
#define WTT_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WTT_SANITIZED 1
#endif
#endif
#ifndef WTT_SANITIZED
#define WTT_SANITIZED 0
#endif


void
wtt_runtime_facts(lua_State *L)
{
    size_t n = wtt_backend_count();
    int    compiled = wtt_backend_find("cuda") != NULL;

    lua_createtable(L, (int) n, 0);                     /* rt list */
    for (size_t i = 0; i < n; i++) {
        lua_pushstring(L, wtt_backend_get(i)->name);
        lua_rawseti(L, -2, (int) i + 1);
    }
    lua_setfield(L, -2, "backends");                    /* rt */
    lua_createtable(L, 0, 2);                           /* rt cuda */
    lua_pushboolean(L, compiled);
    lua_setfield(L, -2, "compiled");
    if (compiled) {
        lua_createtable(L, 0, 1);                       /* rt cuda mt */
        lua_pushcfunction(L, cuda_index);
        lua_setfield(L, -2, "__index");
        lua_setmetatable(L, -2);                        /* rt cuda */
    }
    lua_setfield(L, -2, "cuda");                        /* rt */
    lua_pushboolean(L, WTT_SANITIZED);
    lua_setfield(L, -2, "sanitized");                   /* rt */
}


void
wtt_print_version(FILE *out)
{
    fprintf(out, "wtt %s (%s, backends:", WTT_VERSION, LUAJIT_VERSION);
    for (size_t i = 0; i < wtt_backend_count(); i++) {
        fprintf(out, " %s", wtt_backend_get(i)->name);
    }
    fprintf(out, ")\n");
    for (size_t i = 0; i < wtt_backend_count(); i++) {
        const struct wtt_backend *b = wtt_backend_get(i);
        int                       nd;
        if (b == wtt_backend_host()) {
            continue;
        }
        nd = b->device_count();
        if (nd == 0) {
            fprintf(out, "%s: compiled in; no usable device found\n",
                    b->name);
        }
        for (int d = 0; d < nd; d++) {
            struct wtt_device_info info;
            const char            *why = NULL;
            if (b->device_info(d, &info, &why) != 0) {
                fprintf(out, "%s:%d: %s\n", b->name, d, why);
                continue;
            }
            fprintf(out, "%s:%d: %s, %.1f GiB, compute capability %d.%d\n",
                    b->name, d, info.name,
                    (double) info.mem_total / (1 << 30), info.cc_major,
                    info.cc_minor);
        }
    }
    if (wtt_backend_find("cuda") == NULL) {
        fprintf(out, "cuda: not compiled in\n");
    }
}
