/*
 * wtt_tab_json.c: the tab document as JSON, the `json` format (see
 * wtt_tabdoc.h and docs/tab.md, "The tab document").
 *
 * Written by hand rather than by a JSON library: keys in a fixed order so
 * the files diff well, an empty list written as [] (lua-cjson would write
 * {}), one measure, note or unplayable note per line. Strings are escaped
 * as lua-cjson escapes them and numbers written as LuaJIT writes them, so
 * the text is the one the Lua writer made.
 */
#include "wtt_tabdoc.h"

#include <stdio.h>


static void
put_int_list(struct wtt_tab_text *t, const int *v, size_t n)
{
    wtt_tab_text_lit(t, "[");
    for (size_t i = 0; i < n; i++) {
        if (i > 0) {
            wtt_tab_text_lit(t, ",");
        }
        wtt_tab_text_int(t, v[i]);
    }
    wtt_tab_text_lit(t, "]");
}


static void
put_head(const struct wtt_tabdoc *doc, struct wtt_tab_text *t)
{
    int ts[2] = { doc->beats, doc->beat_type };

    wtt_tab_text_lit(t, "{\"version\":");
    wtt_tab_text_int(t, doc->version);
    if (doc->title.s != NULL) {
        wtt_tab_text_lit(t, ",\"title\":");
        wtt_tab_text_jsonstr(t, doc->title.s, doc->title.len);
    }
    if (doc->instrument.s != NULL) {
        wtt_tab_text_lit(t, ",\"instrument\":");
        wtt_tab_text_jsonstr(t, doc->instrument.s, doc->instrument.len);
    }
    wtt_tab_text_lit(t, ",\"tuning\":");
    put_int_list(t, doc->tuning, (size_t) doc->n_strings);
    if (doc->tuning_name.s != NULL) {
        wtt_tab_text_lit(t, ",\"tuning_name\":");
        wtt_tab_text_jsonstr(t, doc->tuning_name.s, doc->tuning_name.len);
    }
    wtt_tab_text_lit(t, ",\"capo\":");
    wtt_tab_text_int(t, doc->capo);
    wtt_tab_text_lit(t, ",\"tempo_bpm\":");
    wtt_tab_text_jsonnum(t, doc->tempo_bpm);
    wtt_tab_text_lit(t, ",\"time_signature\":");
    put_int_list(t, ts, 2);
    wtt_tab_text_lit(t, ",\"pickup_ticks\":");
    wtt_tab_text_int(t, doc->pickup_ticks);
    wtt_tab_text_lit(t, ",\"divisions\":");
    wtt_tab_text_int(t, doc->divisions);
}


static void
put_event(const struct wtt_tabdoc *doc, const struct wtt_tab_event *e,
          struct wtt_tab_text *t)
{
    wtt_tab_text_lit(t, "{\"tick\":");
    wtt_tab_text_int(t, e->tick);
    wtt_tab_text_lit(t, ",\"ticks\":");
    wtt_tab_text_int(t, e->ticks);
    if (e->rest) {
        wtt_tab_text_lit(t, ",\"rest\":true}");
        return;
    }
    wtt_tab_text_lit(t, ",\"notes\":");
    put_int_list(t, doc->event_notes + e->note_first, e->n_notes);
    if (e->tied) {
        wtt_tab_text_lit(t, ",\"tied\":true}");
    } else {
        wtt_tab_text_lit(t, "}");
    }
}


static void
put_measure(const struct wtt_tabdoc *doc, const struct wtt_tab_measure *m,
            struct wtt_tab_text *t)
{
    wtt_tab_text_lit(t, "{\"number\":");
    wtt_tab_text_int(t, m->number);
    wtt_tab_text_lit(t, ",\"start_s\":");
    wtt_tab_text_jsonnum(t, m->start_s);
    wtt_tab_text_lit(t, ",\"start_tick\":");
    wtt_tab_text_int(t, m->start_tick);
    wtt_tab_text_lit(t, ",\"ticks\":");
    wtt_tab_text_int(t, m->ticks);
    wtt_tab_text_lit(t, ",\"events\":[");
    for (size_t j = 0; j < m->n_events; j++) {
        if (j > 0) {
            wtt_tab_text_lit(t, ",");
        }
        put_event(doc, &doc->events[m->event_first + j], t);
    }
    wtt_tab_text_lit(t, "]}");
}


static void
put_technique(const struct wtt_tab_technique *tc, struct wtt_tab_text *t)
{
    wtt_tab_text_lit(t, "{\"type\":");
    wtt_tab_text_jsonstr(t, tc->type.s, tc->type.len);
    if (tc->has & WTT_TECH_HAS_SEMITONES) {
        wtt_tab_text_lit(t, ",\"semitones\":");
        wtt_tab_text_jsonnum(t, tc->semitones);
    }
    if (tc->has & WTT_TECH_HAS_RELEASE) {
        if (tc->release) {
            wtt_tab_text_lit(t, ",\"release\":true");
        } else {
            wtt_tab_text_lit(t, ",\"release\":false");
        }
    }
    if (tc->has & WTT_TECH_HAS_FROM) {
        wtt_tab_text_lit(t, ",\"from\":");
        wtt_tab_text_int(t, tc->from);
    }
    if (tc->direction.s != NULL) {
        wtt_tab_text_lit(t, ",\"direction\":");
        wtt_tab_text_jsonstr(t, tc->direction.s, tc->direction.len);
    }
    wtt_tab_text_lit(t, "}");
}


static void
put_note(const struct wtt_tabdoc *doc, const struct wtt_tab_note *n,
         struct wtt_tab_text *t)
{
    wtt_tab_text_lit(t, "{\"start_s\":");
    wtt_tab_text_jsonnum(t, n->start_s);
    wtt_tab_text_lit(t, ",\"end_s\":");
    wtt_tab_text_jsonnum(t, n->end_s);
    wtt_tab_text_lit(t, ",\"pitch_midi\":");
    wtt_tab_text_int(t, n->pitch_midi);
    wtt_tab_text_lit(t, ",\"velocity\":");
    wtt_tab_text_int(t, n->velocity);
    wtt_tab_text_lit(t, ",\"string\":");
    wtt_tab_text_int(t, n->string);
    wtt_tab_text_lit(t, ",\"fret\":");
    wtt_tab_text_int(t, n->fret);
    wtt_tab_text_lit(t, ",\"measure\":");
    wtt_tab_text_int(t, n->measure);
    wtt_tab_text_lit(t, ",\"beat\":");
    wtt_tab_text_jsonnum(t, n->beat);
    /* The duration goes in as it is: it is "N/D", nothing to escape. */
    wtt_tab_text_lit(t, ",\"duration\":\"");
    wtt_tab_text_str(t, &n->duration);
    wtt_tab_text_lit(t, "\",\"tick\":");
    wtt_tab_text_int(t, n->tick);
    wtt_tab_text_lit(t, ",\"ticks\":");
    wtt_tab_text_int(t, n->ticks);
    wtt_tab_text_lit(t, ",\"techniques\":[");
    for (size_t j = 0; j < n->n_tech; j++) {
        if (j > 0) {
            wtt_tab_text_lit(t, ",");
        }
        put_technique(&doc->techniques[n->tech_first + j], t);
    }
    wtt_tab_text_lit(t, "]}");
}


static void
put_unplayable(const struct wtt_tab_unplayable *u, struct wtt_tab_text *t)
{
    wtt_tab_text_lit(t, "{\"start_s\":");
    wtt_tab_text_jsonnum(t, u->start_s);
    wtt_tab_text_lit(t, ",\"end_s\":");
    wtt_tab_text_jsonnum(t, u->end_s);
    wtt_tab_text_lit(t, ",\"pitch_midi\":");
    wtt_tab_text_jsonnum(t, u->pitch_midi);
    wtt_tab_text_lit(t, ",\"reason\":");
    wtt_tab_text_jsonstr(t, u->reason.s, u->reason.len);
    if (u->has_folded_to) {
        wtt_tab_text_lit(t, ",\"folded_to\":");
        wtt_tab_text_jsonnum(t, u->folded_to);
    }
    wtt_tab_text_lit(t, "}");
}


int
wtt_tab_json(const struct wtt_tabdoc *doc, struct wtt_tab_text *out,
             char *err, size_t err_size)
{
    const char *why;

    if (wtt_tabdoc_check(doc, err, err_size) != 0) {
        return -1;
    }
    /* Room for the whole text at once (about 230 bytes a note), rather
     * than growing it by copies. A failure here would fail the first
     * append anyway: the status below reports it. */
    if (doc->n_notes + doc->n_measures < WTT_TAB_TEXT_MAX / 256) {
        (void) wtt_tab_text_reserve(out, 256 * (doc->n_notes
                                                + doc->n_measures) + 1024);
    }
    put_head(doc, out);
    wtt_tab_text_lit(out, ",\n\"measures\":[\n");
    for (size_t i = 0; i < doc->n_measures; i++) {
        if (i > 0) {
            wtt_tab_text_lit(out, ",\n");
        }
        put_measure(doc, &doc->measures[i], out);
    }
    wtt_tab_text_lit(out, "],\n\"notes\":[\n");
    for (size_t i = 0; i < doc->n_notes; i++) {
        if (i > 0) {
            wtt_tab_text_lit(out, ",\n");
        }
        put_note(doc, &doc->notes[i], out);
    }
    wtt_tab_text_lit(out, "],\n\"unplayable\":[");
    for (size_t i = 0; i < doc->n_unplayable; i++) {
        if (i > 0) {
            wtt_tab_text_lit(out, ",\n");
        }
        put_unplayable(&doc->unplayable[i], out);
    }
    wtt_tab_text_lit(out, "]}\n");
    if (wtt_tab_text_status(out, &why) != 0) {
        snprintf(err, err_size, "json: %s", why);
        return -1;
    }
    return 0;
}
