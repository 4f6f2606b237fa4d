/*
 * wtt_midi.h: Lua module wtt.midi (placeholder until it lands).
 */
#ifndef WTT_MIDI_H
#define WTT_MIDI_H

#include <lua.h>

int luaopen_wtt_midi(lua_State *L);

#endif
