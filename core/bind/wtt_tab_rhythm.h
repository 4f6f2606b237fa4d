/*
 * wtt_tab_rhythm.h: the `wtt.core.rhythm` Lua module, the numeric work of
 * core/tab/wtt_rhythm.h for lua/wtt/tab/rhythm.lua.
 *
 *   local core = require "wtt.core.rhythm"
 *   core.FPS                         --> 50 (envelope frames per second)
 *   local ch, on, last_end = core.chords(notes)
 *       -- ch: the onsets as Lua arrays (rhythm.chords documents them);
 *       -- on: the same onsets, weights and pitches included, for the
 *       -- calls below; last_end: the latest end or start of a note (0
 *       -- without notes)
 *   local env = core.envelope(on)    --> envelope | nil, err
 *   core.period(on, env)             --> period (frames) | false (no
 *                                    --  candidate) | nil, err
 *   local beats, packed = core.beats(env, period, last_end)
 *                                    --> { beat times (s) }, the same as
 *                                    --  packed doubles | nil, err
 *   core.fitted_period(on, packed, period_s)
 *                                    --> period (s) | nil (under two
 *                                    --  beats on onsets) | nil, err
 *   core.accents(on, packed, period_s)
 *                                    --> acc, n | nil, err (acc: n packed
 *                                    --  doubles, one per beat)
 *   core.contrasts(acc, m)           --> c0, ..., c(m-1)
 *   core.pickup(packed, p, first_t)  --> { beats }, downbeat index
 *
 * Beats and accents cross back as strings of packed doubles: one copy,
 * where a table is read element by element.
 *
 * Expected failures (notes spanning too long, a period out of range, too
 * many beats, out of memory) are nil, err; misuse raises: a note that is
 * not a table, a start or end that is not a finite number, a pitch that
 * is not an integer, a truthy amplitude, velocity or onset that is not a
 * number, onsets without an onset, a string that is not packed doubles.
 * Notes are read raw: plain tables.
 *
 * Thread-safety: onsets own malloc'd memory their __gc frees; use them
 * and envelopes in the state that made them.
 */
#ifndef WTT_TAB_RHYTHM_H
#define WTT_TAB_RHYTHM_H

#include <lua.h>

/*
 * Opens the module and pushes its table. Registers the metatables
 * "wtt.core.rhythm.onsets", ".envelope" and ".scratch". Stack: before [],
 * after [rhythm]. Returns 1.
 */
int luaopen_wtt_tab_rhythm(lua_State *L);

#endif
