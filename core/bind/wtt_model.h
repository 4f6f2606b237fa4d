/*
 * wtt_model.h: Lua module wtt.core.model, the binding of the inference
 * engine (wtt_nn.h, wtt_pipeline.h); lua/wtt/model.lua is the public API.
 */
#ifndef WTT_MODEL_H
#define WTT_MODEL_H

#include <lua.h>

int luaopen_wtt_model(lua_State *L);

#endif
