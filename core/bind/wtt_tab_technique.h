/*
 * wtt_tab_technique.h: the `wtt.core.technique` Lua module, the playing
 * techniques of core/tab/wtt_technique.h for lua/wtt/tab/technique.lua.
 *
 *   local core = require "wtt.core.technique"
 *   core.annotate(notes, none, let_ring)     --> notes
 *
 * Sets `techniques` on every note (placed notes sorted by start: string,
 * fret, start_s, end_s and chord; bends and onset optional): the list
 * `none` for a note with none, `let_ring` for a note that only lets ring
 * (both shared, read-only), else a new list of { type = "bend",
 * semitones, release } or { type = "vibrato" }, then { type =
 * "hammer_on" | "pull_off" | "slide", from, direction = "up" | "down"
 * (slides) }, then let_ring[1] (docs/tab.md, "Techniques").
 *
 * Misuse raises: a note that is not a table, a string that is not an
 * integer in 1-64, a fret, start or end that is not a number, an onset
 * that is neither nil nor a number, bends that are not a list of numbers.
 * Tables are read raw.
 */
#ifndef WTT_TAB_TECHNIQUE_H
#define WTT_TAB_TECHNIQUE_H

#include <lua.h>

/*
 * Opens the module and pushes its table. Registers the metatable
 * "wtt.core.technique.scratch". Stack: before [], after [technique].
 * Returns 1.
 */
int luaopen_wtt_tab_technique(lua_State *L);

#endif
