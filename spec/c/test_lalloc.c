/*
 * test_lalloc.c: the Lua states' allocator for large blocks.
 */
#include "test.h"
#include "wtt_lalloc.h"

#include <lauxlib.h>
#include <lualib.h>
#include <pthread.h>


/* Runs `code` in L; 0 when it ran without error. */
static int
run(lua_State *L, const char *code)
{
    if (luaL_dostring(L, code) != 0) {
        fprintf(stderr, "lua: %s\n", lua_tostring(L, -1));
        lua_pop(L, 1);
        return -1;
    }
    return 0;
}


int
test_lalloc_reuse(void)
{
    lua_State *L = wtt_lalloc_newstate();
    size_t     kept;

    ASSERT(L != NULL);
    luaL_openlibs(L);
    ASSERT(wtt_lalloc_kept(L) == 0);

    /* A 3 MB string lives in a mapping (4 MiB); once collected, it is
     * kept (LuaJIT's work buffer, shrunk by the collector, may be kept too). */
    ASSERT(run(L, "big = string.rep('ab', 1500000)") == 0);
    kept = wtt_lalloc_kept(L);
    ASSERT(run(L, "big = nil; collectgarbage(); collectgarbage()") == 0);
    ASSERT(wtt_lalloc_kept(L) >= kept + ((size_t) 4 << 20));
    kept = wtt_lalloc_kept(L);

    /* The next one of a like size takes it back, and reads right. */
    ASSERT(run(L, "big = ('xy'):rep(1400000)") == 0);
    ASSERT(wtt_lalloc_kept(L) <= kept - ((size_t) 4 << 20));
    ASSERT(run(L, "assert(#big == 2800000 and big:sub(-3) == 'yxy')") == 0);

    /* Blocks that cross the threshold both ways keep their contents: a
     * table's array part grows from small to big, a buffer shrinks. */
    ASSERT(run(L, "local t = {} for i = 1, 300000 do t[i] = i end "
                  "for i = 1, 300000, 997 do assert(t[i] == i) end "
                  "local b = require('string.buffer').new() "
                  "for i = 1, 200000 do b:put('0123456789') end "
                  "assert(#b == 2000000) b:skip(1999990) "
                  "assert(b:tostring() == '0123456789')") == 0);

    /* A small block never lands in the cache. */
    ASSERT(run(L, "big = nil; collectgarbage(); local s = string.rep('a', "
                  "1000); s = nil; collectgarbage()") == 0);
    ASSERT(wtt_lalloc_kept(L) <= WTT_LALLOC_KEEP);
    wtt_lalloc_close(L);
    return 0;
}


int
test_lalloc_keep_limit(void)
{
    lua_State *L = wtt_lalloc_newstate();

    ASSERT(L != NULL);
    luaL_openlibs(L);
    /* Ten strings of 3 MB freed at once: at most WTT_LALLOC_KEEP is kept,
     * and a string larger than that is never kept. */
    ASSERT(run(L, "local t = {} for i = 1, 10 do "
                  "t[i] = string.rep(string.char(64 + i), 3000000) end "
                  "t = nil collectgarbage() collectgarbage()") == 0);
    ASSERT(wtt_lalloc_kept(L) > 0);
    ASSERT(wtt_lalloc_kept(L) <= WTT_LALLOC_KEEP);
    ASSERT(run(L, "local s = string.rep('z', 20000000) s = nil "
                  "collectgarbage() collectgarbage()") == 0);
    ASSERT(wtt_lalloc_kept(L) <= WTT_LALLOC_KEEP);
    wtt_lalloc_close(L);

    /* Closing a state without the wrapper is plain lua_close. */
    L = luaL_newstate();
    ASSERT(L != NULL);
    ASSERT(wtt_lalloc_kept(L) == 0);
    wtt_lalloc_close(L);
    return 0;
}


/* A state made, used and closed, over and over: its thread's share of
 * lalloc_total's churn. */
static void *
churn_main(void *arg)
{
    int *failed = arg;

    for (int i = 0; i < 50 && !*failed; i++) {
        lua_State *L = wtt_lalloc_newstate();
        if (L == NULL) {
            *failed = 1;
            break;
        }
        luaL_openlibs(L);
        if (run(L, "local t = {} for i = 1, 2000 do t[i] = tostring(i) end")
            != 0)
        {
            *failed = 1;
        }
        wtt_lalloc_close(L);
    }
    return NULL;
}


int
test_lalloc_total(void)
{
    long long  base = wtt_lalloc_total_bytes(), held;
    lua_State *L = wtt_lalloc_newstate();
    pthread_t  tid[3];
    int        failed[3] = { 0, 0, 0 };

    ASSERT(L != NULL);
    luaL_openlibs(L);
    held = wtt_lalloc_total_bytes() - base;
    /* The state's own count, as LuaJIT keeps it. */
    ASSERT(held == (long long) lua_gc(L, LUA_GCCOUNT, 0) * 1024
                   + lua_gc(L, LUA_GCCOUNTB, 0));
    ASSERT(run(L, "big = string.rep('ab', 1500000)") == 0);
    ASSERT(wtt_lalloc_total_bytes() - base >= held + 3000000);

    /* States come and go on other threads while this one sums them. */
    for (int i = 0; i < 3; i++) {
        ASSERT(pthread_create(&tid[i], NULL, churn_main, &failed[i]) == 0);
    }
    for (int i = 0; i < 200; i++) {
        ASSERT(wtt_lalloc_total_bytes() - base >= held + 3000000);
    }
    for (int i = 0; i < 3; i++) {
        pthread_join(tid[i], NULL);
        ASSERT(!failed[i]);
    }
    ASSERT(wtt_lalloc_total_bytes() - base
           == (long long) lua_gc(L, LUA_GCCOUNT, 0) * 1024
              + lua_gc(L, LUA_GCCOUNTB, 0));
    wtt_lalloc_close(L);
    /* Closed states leave the sum. */
    ASSERT(wtt_lalloc_total_bytes() == base);
    return 0;
}


/* One state's life: 20,000 small tables (the small blocks' allocator),
 * then closed. */
static int
state_life(void)
{
    lua_State *L = wtt_lalloc_newstate();

    if (L == NULL) {
        return -1;
    }
    luaL_openlibs(L);
    if (run(L, "local t = {} for i = 1, 20000 do t[i] = { i, tostring(i) } "
               "end") != 0)
    {
        wtt_lalloc_close(L);
        return -1;
    }
    wtt_lalloc_close(L);
    return 0;
}


int
test_lalloc_close_gives_back(void)
{
    long before, after;

#if defined(__SANITIZE_ADDRESS__)
    /* ASan holds freed blocks in its quarantine: the resident set says
     * nothing about what lua_close gave back. */
    SKIP("built with AddressSanitizer, whose quarantine keeps freed memory "
         "resident");
#endif
    /* Closing gives back all the state held: 40 states in a row cost no
     * more memory than one. With LuaJIT's allocator behind the wrapper,
     * each left its arena mapped (about 2.5 MB here, 100 MB in all). */
    ASSERT(state_life() == 0);
    before = test_status_kib("VmRSS");
    ASSERT(before > 0);
    for (int i = 0; i < 40; i++) {
        ASSERT(state_life() == 0);
    }
    after = test_status_kib("VmRSS");
    ASSERT(after - before < 16 * 1024);
    return 0;
}
