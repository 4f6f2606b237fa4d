/*
 * wtt_modules.c: the built-in C modules (see wtt_modules.h).
 */
#include "wtt_modules.h"
#include "wtt_audio.h"
#include "wtt_fanout.h"
#include "wtt_http_client.h"
#include "wtt_http_server.h"
#include "wtt_log.h"
#include "wtt_metrics_lua.h"
#include "wtt_midi.h"
#include "wtt_model.h"
#include "wtt_pg.h"
#include "wtt_redis.h"
#include "wtt_sys.h"
#include "wtt_tab.h"
#include "wtt_tab_rhythm.h"
#include "wtt_tab_out.h"
#include "wtt_tab_grid.h"
#include "wtt_tab_technique.h"
#include "wtt_thread.h"
#include "wtt_zlib.h"

/* lua-cjson's entry points; its headers are not installed by Debian. */
int luaopen_cjson(lua_State *L);
int luaopen_cjson_safe(lua_State *L);

#ifdef WTT_FAILPOINTS
/* Only in the test program wtt_failpoint (wtt_failpoint.c). */
int luaopen_wtt_failpoint(lua_State *L);
#endif

const luaL_Reg wtt_builtin_modules[] = {
    { "wtt.log",              luaopen_wtt_log },
    { "wtt.json",             luaopen_cjson },
    { "cjson",                luaopen_cjson },
    { "cjson.safe",           luaopen_cjson_safe },
    { "wtt.sys",              luaopen_wtt_sys },
    { "wtt.thread",           luaopen_wtt_thread },
    { "wtt.core.http_server", luaopen_wtt_http_server },
    { "wtt.http_client",      luaopen_wtt_http_client },
    { "wtt.core.redis",       luaopen_wtt_redis },
    { "wtt.core.fanout",      luaopen_wtt_fanout },
    { "wtt.core.pg",          luaopen_wtt_pg },
    { "wtt.audio",            luaopen_wtt_audio },
    { "wtt.midi",             luaopen_wtt_midi },
    { "wtt.zlib",             luaopen_wtt_zlib },
    { "wtt.core.metrics",     luaopen_wtt_metrics },
    { "wtt.core.model",       luaopen_wtt_model },
    { "wtt.core.tab",         luaopen_wtt_tab },
    { "wtt.core.rhythm",      luaopen_wtt_tab_rhythm },
    { "wtt.core.tabout",      luaopen_wtt_tab_out },
    { "wtt.core.grid",        luaopen_wtt_tab_grid },
    { "wtt.core.technique",   luaopen_wtt_tab_technique },
#ifdef WTT_FAILPOINTS
    { "wtt.core.failpoint",   luaopen_wtt_failpoint },
#endif
    { NULL, NULL },
};
