/*
 * wtt_tab.h: the `wtt.core.tab` Lua module, the fingering search of
 * core/tab/wtt_fingering.h for lua/wtt/tab/finger.lua.
 *
 *   local core = require "wtt.core.tab"
 *   local f, err = core.fingering(inst, w, lim)
 *       -- inst: { tuning = { 64, 59, ... } (string 1 first), capo,
 *       --         max_fret, ordered }; w, lim: the tab plugin's weights
 *       --  and limits (chord_gap_ms and chord_window_ms included),
 *       --  or both nil for a fingering that only gives positions
 *   f:positions(60)            --> 1, 8, 2, 13, 3, 17, ... (string, fret
 *                              --  pairs; none when out of range or not
 *                              --  an integer in 0-127)
 *   f:playable({ 48, 52, 55 }) --> true | false | nil, err
 *   f:search(pitches, starts, ends, sizes)
 *                              --> strings, frets, transitions | nil, err
 *   f:run(notes, fold)         --> placed, unplayable, transitions, chords
 *                              --  | nil, err
 *
 * run is the whole fingering of a piece (wtt_finger_run): `notes` are
 * tables { pitch, start_s, end_s, ... } sorted by start_s, then pitch; it
 * sets string, fret and chord on each note it places (and pitch on each
 * it folds), and returns them by start, then pitch, with new tables
 * { start_s, end_s, pitch_midi, reason, folded_to? } for the notes it
 * could not play. For search the notes go as flat arrays in chord order
 * (each chord's notes sorted by pitch), with the size of each chord. Expected failures (settings out of
 * range, a chord with more notes than strings or none at all, a chord
 * without a fingering in `search`, out of memory) are nil, err; a wrong
 * type, a pitch that is not an integer in 0-127, or arrays of different
 * lengths raise.
 *
 * Thread-safety: a fingering is a value (no resources); use it in the
 * state that made it.
 */
#ifndef WTT_TAB_H
#define WTT_TAB_H

#include <lua.h>

/*
 * Opens the module and pushes its table: fingering. Registers the
 * metatable "wtt.core.tab.fingering". Stack: before [], after [tab].
 * Returns 1.
 */
int luaopen_wtt_tab(lua_State *L);

#endif
