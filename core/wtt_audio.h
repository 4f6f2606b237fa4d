/*
 * wtt_audio.h: Lua module wtt.audio (placeholder until it lands).
 */
#ifndef WTT_AUDIO_H
#define WTT_AUDIO_H

#include <lua.h>

int luaopen_wtt_audio(lua_State *L);

#endif
