/*
 * wtt_midi.h: the `wtt.midi` Lua module, a Standard MIDI File writer and
 * reader (docs/midi.md).
 *
 * Writer: notes in seconds (with optional pitch-bend curves) become a format
 * 1 file: a tempo track, then one note track per channel used. Times become
 * ticks with the tempo written in the file, so a reader gets them back to
 * within half a tick. Conventions follow the official Basic Pitch
 * `note_events_to_midi` (velocity = round(127 * amplitude), tempo 120,
 * 220 ticks per beat, bends of 4096 per semitone = a +-2 semitone range,
 * bends dropped from notes that overlap in single-channel mode), except the
 * program, which is a General MIDI guitar by default instead of the fixed
 * "Electric Piano 1", and multiple pitch bends, which allocate one channel
 * per sounding voice instead of one instrument per pitch.
 *
 * Reader: parses any format 0/1/2 file into tracks of events and a note
 * list; it checks every length against the buffer and never reads outside
 * it, and refuses malformed input with "decode failed: <reason>".
 *
 * Thread-safety: no global state besides constant tables.
 */
#ifndef WTT_MIDI_H
#define WTT_MIDI_H

#include <lua.h>

/*
 * Opens the module and pushes its table: encode, write, decode, validate,
 * PROGRAMS and the DEFAULT_* constants. Stack: before [], after [midi].
 * Returns 1.
 */
int luaopen_wtt_midi(lua_State *L);

#endif
