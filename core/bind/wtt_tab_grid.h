/*
 * wtt_tab_grid.h: the `wtt.core.grid` Lua module, the measure grid of
 * core/tab/wtt_grid.h for lua/wtt/tab/grid.lua.
 *
 *   local core = require "wtt.core.grid"
 *   local measures, err = core.build(notes, r, ch, weights, doc)
 *
 * r: wtt.tab.rhythm's estimate (beats, beats_per_measure, beat_type,
 * tempo_bpm, pickup_beats?, first_downbeat?); ch: its chords of these
 * notes (wtt.tab.rhythm.chords: n, t, first, nxt, end_s, string);
 * weights: nil or a table overriding some of the quantisation costs (err,
 * c8, c16, t3, t6, switch, collide; docs/tab.md, "Rhythm"). Sets tick,
 * ticks, duration, measure and beat on every note, and pitch_midi = pitch
 * when `doc` is true (the notes become a tab document's), and returns the
 * document's measures: { number, start_tick, ticks, start_s, events = {
 * { tick, ticks, rest = true } | { tick, ticks, notes, tied = true|nil }
 * } }, the pieces of one chord sharing one `notes` table.
 *
 * Expected failures (a rhythm estimate the grid cannot write, a piece
 * spanning too many beats, out of memory) are nil, err; misuse raises: a
 * note or chord entry of the wrong type, a string that is not an integer
 * in 1-64, a weight that is not a number. Tables are read raw.
 */
#ifndef WTT_TAB_GRID_H
#define WTT_TAB_GRID_H

#include <lua.h>

/*
 * Opens the module and pushes its table. Registers the metatable
 * "wtt.core.grid.scratch". Stack: before [], after [grid]. Returns 1.
 */
int luaopen_wtt_tab_grid(lua_State *L);

#endif
