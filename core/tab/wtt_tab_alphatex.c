/*
 * wtt_tab_alphatex.c: alphaTex, alphaTab's text format (version 1.8), of a
 * tab document (see wtt_tabdoc.h and docs/tab.md, "alphaTex and Guitar
 * Pro").
 *
 * One track with a notation staff and a tab staff, the document's tuning
 * (alphaTex lists it highest string first, as the document does), capo,
 * tempo and time signature, then one line per measure. A note is
 * `fret.string` with alphaTex's string 1 the highest, as in the document;
 * frets count from the capo in both. Techniques are note effects in
 * braces: `{b (0 4)}` bends (quarter tones), `{h}` and `{sl}` on the note
 * a hammer-on, pull-off or slide leaves, `{v}` vibrato, `{lr}` let ring,
 * `{t}` a tied continuation.
 */
#include "wtt_tab_events.h"

#include <stdio.h>

/* Track name and General MIDI program (0-based) per instrument, in the
 * order of WTT_TAB_TRACKS (wtt_tab_track_index); the first is the
 * default. */
static const struct {
    const char *instrument;
    const char *name;
    int         program;
} TRACKS[] = {
    { "guitar", "Guitar", 25 },
    { "guitar7", "7-string guitar", 25 },
    { "bass", "Bass", 33 },
    { "bass5", "5-string bass", 33 },
    { "ukulele", "Ukulele", 24 },
};

struct writer {
    const struct wtt_tabdoc *doc;
    struct wtt_tab_text     *t;
    struct wtt_tab_facts     facts;
    char                    *err;
    size_t                   err_size;
};


static void
put_header(struct writer *w)
{
    const struct wtt_tabdoc *doc = w->doc;
    struct wtt_tab_text     *t = w->t;
    int                      track = wtt_tab_track_index(doc);

    if (doc->title.s != NULL && doc->title.len > 0) {
        wtt_tab_text_lit(t, "\\title ");
        wtt_tab_text_quoted(t, doc->title.s, doc->title.len, 0);
        wtt_tab_text_lit(t, "\n");
    }
    wtt_tab_text_lit(t, "\\track ");
    wtt_tab_text_quoted(t, TRACKS[track].name, strlen(TRACKS[track].name),
                        0);
    wtt_tab_text_lit(t, " { instrument ");
    wtt_tab_text_int(t, TRACKS[track].program);
    wtt_tab_text_lit(t, " }\n\\staff { score tabs }\n\\tuning (");
    for (int s = 0; s < doc->n_strings; s++) {
        char   name[WTT_TAB_PITCH_NAME_SIZE];
        size_t len = wtt_tab_pitch_name(doc->tuning[s], name);
        if (s > 0) {
            wtt_tab_text_lit(t, " ");
        }
        wtt_tab_text_quoted(t, name, len, 0);
    }
    wtt_tab_text_lit(t, ")\n");
    if (doc->capo > 0) {
        wtt_tab_text_lit(t, "\\capo ");
        wtt_tab_text_int(t, doc->capo);
        wtt_tab_text_lit(t, "\n");
    }
    wtt_tab_text_lit(t, "\\ts (");
    wtt_tab_text_int(t, doc->beats);
    wtt_tab_text_lit(t, " ");
    wtt_tab_text_int(t, doc->beat_type);
    wtt_tab_text_lit(t, ")\n\\tempo ");
    wtt_tab_text_decimal(t, doc->tempo_bpm);
    wtt_tab_text_lit(t, "\n");
}


/*
 * The effects of one sounding of note `ni`: `first` when its event starts
 * it, `last` when the next event does not continue it. Returns 0, or -1
 * for a bend with no height.
 */
static int
put_effects(struct writer *w, int ni, int first, int last)
{
    const struct wtt_tabdoc        *doc = w->doc;
    struct wtt_tab_text            *t = w->t;
    const struct wtt_tab_note      *n = &doc->notes[ni - 1];
    int                             origin = last ? w->facts.origin[ni - 1]
                                                  : WTT_ORIGIN_NONE;
    const struct wtt_tab_technique *bend;
    const char                     *sep = "{";

    if (first && n->n_tech == 0 && origin == WTT_ORIGIN_NONE) {
        return 0;
    }
    if (!first) {
        wtt_tab_text_lit(t, "{t");
        sep = " ";
    } else {
        bend = wtt_tab_first_tech(doc, &w->facts, n, WTT_TECH_BEND);
        if (bend != NULL) {
            if (!(bend->has & WTT_TECH_HAS_SEMITONES)) {
                snprintf(w->err, w->err_size, "alphatex: notes[%d]: a bend "
                         "has no semitones", ni);
                return -1;
            }
            wtt_tab_text_put(t, sep, 1);
            wtt_tab_text_lit(t, "b (0 ");
            wtt_tab_text_luanum(t, wtt_tab_quarter_tones(bend->semitones));
            if ((bend->has & WTT_TECH_HAS_RELEASE) && bend->release) {
                wtt_tab_text_lit(t, " 0)");
            } else {
                wtt_tab_text_lit(t, ")");
            }
            sep = " ";
        }
        if (wtt_tab_first_tech(doc, &w->facts, n, WTT_TECH_VIBRATO)) {
            wtt_tab_text_put(t, sep, 1);
            wtt_tab_text_lit(t, "v");
            sep = " ";
        }
        if (wtt_tab_first_tech(doc, &w->facts, n, WTT_TECH_LET_RING)) {
            wtt_tab_text_put(t, sep, 1);
            wtt_tab_text_lit(t, "lr");
            sep = " ";
        }
    }
    if (origin != WTT_ORIGIN_NONE) {
        wtt_tab_text_put(t, sep, 1);
        if (origin == WTT_ORIGIN_HOPO) {
            wtt_tab_text_lit(t, "h");
        } else {
            wtt_tab_text_lit(t, "sl");
        }
        sep = " ";
    }
    if (sep[0] == ' ') {
        wtt_tab_text_lit(t, "}");
    }
    return 0;
}


/* Event `k` of measure `m`, its length's suffix written after it. */
static int
put_event(struct writer *w, const struct wtt_tab_measure *m, size_t k)
{
    const struct wtt_tabdoc    *doc = w->doc;
    struct wtt_tab_text        *t = w->t;
    const struct wtt_tab_event *ev = &doc->events[k];
    struct wtt_tab_value        v;

    if (wtt_tab_value_of(ev->ticks, doc->divisions, &v) != 0) {
        return wtt_tab_value_error(w->err, w->err_size, m->number, ev->ticks,
                                   doc->divisions);
    }
    if (ev->rest || ev->n_notes == 0) {
        wtt_tab_text_lit(t, "r");
    } else {
        int first = !ev->tied, last = !w->facts.tied_on[k];
        if (ev->n_notes > 1) {
            wtt_tab_text_lit(t, "(");
        }
        for (size_t i = 0; i < ev->n_notes; i++) {
            int ni = doc->event_notes[ev->note_first + i];
            if (ni < 1 || (size_t) ni > doc->n_notes) {
                snprintf(w->err, w->err_size, "alphatex: measure %d, event "
                         "at tick %d: note %d is not in the notes list",
                         m->number, ev->tick, ni);
                return -1;
            }
            if (i > 0) {
                wtt_tab_text_lit(t, " ");
            }
            wtt_tab_text_int(t, doc->notes[ni - 1].fret);
            wtt_tab_text_lit(t, ".");
            wtt_tab_text_int(t, doc->notes[ni - 1].string);
            if (put_effects(w, ni, first, last) != 0) {
                return -1;
            }
        }
        if (ev->n_notes > 1) {
            wtt_tab_text_lit(t, ")");
        }
    }
    wtt_tab_text_lit(t, ".");
    wtt_tab_text_int(t, v.value);
    if (v.dots > 0) {
        wtt_tab_text_lit(t, "{d}");
    }
    if (v.tuplet) {
        wtt_tab_text_lit(t, "{tu 3}");
    }
    return 0;
}


static int
put_measures(struct writer *w)
{
    const struct wtt_tabdoc *doc = w->doc;

    for (size_t mi = 0; mi < doc->n_measures; mi++) {
        const struct wtt_tab_measure *m = &doc->measures[mi];
        if (mi > 0) {
            wtt_tab_text_lit(w->t, " |\n");
        }
        if (mi == 0 && doc->pickup_ticks > 0) {
            wtt_tab_text_lit(w->t, "\\ac ");
        }
        for (size_t j = 0; j < m->n_events; j++) {
            if (j > 0) {
                wtt_tab_text_lit(w->t, " ");
            }
            if (put_event(w, m, m->event_first + j) != 0) {
                return -1;
            }
        }
    }
    wtt_tab_text_lit(w->t, "\n");
    return 0;
}


int
wtt_tab_alphatex(const struct wtt_tabdoc *doc, struct wtt_tab_text *out,
                 char *err, size_t err_size)
{
    struct writer w;
    const char   *why;
    int           rc;

    if (wtt_tabdoc_check(doc, err, err_size) != 0) {
        return -1;
    }
    memset(&w, 0, sizeof(w));
    w.doc = doc;
    w.t = out;
    w.err = err;
    w.err_size = err_size;
    if (wtt_tab_facts_init(&w.facts, doc) != 0) {
        snprintf(err, err_size, "alphatex: out of memory");
        return -1;
    }
    /* About 6 bytes a note; growing past it copies the text. */
    if (doc->n_notes + doc->n_events < WTT_TAB_TEXT_MAX / 16) {
        (void) wtt_tab_text_reserve(out, 8 * (doc->n_notes + doc->n_events)
                                         + 1024);
    }
    put_header(&w);
    rc = put_measures(&w);
    wtt_tab_facts_free(&w.facts);
    if (rc == 0 && wtt_tab_text_status(out, &why) != 0) {
        snprintf(err, err_size, "alphatex: %s", why);
        rc = -1;
    }
    return rc;
}
