/*
 * wtt_model.h: Lua module wtt.core.model, the binding of the inference
 * engine (wtt_nn.h, wtt_pipeline.h); lua/wtt/model.lua is the public API.
 */
#ifndef WTT_MODEL_H
#define WTT_MODEL_H

#include <lua.h>

int luaopen_wtt_model(lua_State *L);

/*
 * Pushes the devices backend `name` can use now, as core.devices(name)
 * returns them ({ { index, name, memory, free, cc }, ... }, empty when it
 * has none); pushes nil for a backend this build lacks. Returns 1.
 */
int wtt_model_push_devices(lua_State *L, const char *name);

#endif
