/*
 * wtt_metrics_lua.h: the `wtt.core.metrics` Lua module over the metric
 * store (core/base/wtt_metrics.h), and the small HTTP listener that serves
 * it from a process without the HTTP server (`wtt worker --metrics-listen`).
 * lua/wtt/metrics.lua declares the families over it.
 */
#ifndef WTT_METRICS_LUA_H
#define WTT_METRICS_LUA_H

#include <lua.h>

/*
 * Opens the module and pushes its table: family, add, set, observe,
 * render, listen. Stack: before [], after [metrics]. Returns 1.
 */
int luaopen_wtt_metrics(lua_State *L);

#endif
