/*
 * wtt_tab_out.h: the `wtt.core.tabout` Lua module, the tab formats
 * written in C (core/tab/wtt_tabdoc.h) for lua/wtt/tab/out/.
 *
 *   local tabout = require "wtt.core.tabout"
 *   local text, err = tabout.json(doc)       -- the `json` format
 *   local xml, err = tabout.musicxml(doc)    -- MusicXML 4.0
 *   local text, err = tabout.ascii(doc)      -- ASCII tab
 *   local text, err = tabout.alphatex(doc)   -- alphaTex
 *   local xml, err = tabout.gpif(doc)        -- Guitar Pro's score.gpif
 *
 * `doc` is a tab document (docs/tab.md). Its tables are read raw
 * (metatables are not consulted) and only the documented fields are read;
 * every format but JSON reads only what it writes (of a note its string,
 * fret and techniques; the unplayable list only for JSON and ASCII).
 * A malformed document (a field missing or of the wrong type, an integer
 * field that is not an integer, more than 16 strings) is `nil, err` naming
 * the field, as is what the format cannot write (MusicXML: an event that
 * is not one notatable length, a note with no string and fret on the
 * instrument; alphaTex and GPIF: an event that is not one notatable
 * value; all three, and ASCII: a note number that is not in the notes, a
 * bend with no semitones); a `doc` that is not a table raises.
 *
 * The module keeps its working memory (the document's arrays and the
 * text) between calls, as a fresh multi-megabyte block costs a page fault
 * per 4 KiB on its first touch; it lets go of it after a call that needed
 * more than 16 MB.
 *
 * Thread-safety: use the module in the state that loaded it.
 */
#ifndef WTT_TAB_OUT_H
#define WTT_TAB_OUT_H

#include <lua.h>

/*
 * Opens the module and pushes its table: json, musicxml, ascii, alphatex,
 * gpif. Registers the metatable "wtt.core.tabout.store". Stack: before [], after [tabout].
 * Returns 1.
 */
int luaopen_wtt_tab_out(lua_State *L);

#endif
