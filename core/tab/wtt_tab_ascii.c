/*
 * wtt_tab_ascii.c: ASCII tab (see wtt_tabdoc.h and docs/tab.md) in the
 * conventions of the big tab sites: the highest string on top, tuning
 * labels, bar lines, technique letters (h p b r / \ ~), lines wrapped at
 * 80 columns on measure boundaries.
 *
 * Each event takes one column as wide as its widest token, followed by
 * dashes in proportion to its length (a 16th gets one), so the spacing
 * reads as rhythm. A tied continuation shows only dashes. A system's rows
 * are kept until it is full, since the text goes string by string; a
 * measure's columns are laid out (each event's tokens made once) before
 * it is written, to know whether it starts the next system.
 */
#include "wtt_tab_events.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define WIDTH 80

static const char LEGEND[] =
    "h hammer-on  p pull-off  b bend  r release  / slide up  \\ slide down"
    "  ~ vibrato\n";

/* The token a string shows in one event: a note's fret alone (`at` is
 * SIZE_MAX), or text in the writer's scratch. */
struct slot {
    int    set;
    int    fret;
    size_t at;
    size_t len;
};

/* One event of the measure being written: its column's width and a slot
 * per string (n_strings of them from `slot`). */
struct column {
    size_t    width;
    long long dashes;
    size_t    slot;
    int       notes;        /* shows notes (else only dashes) */
};

struct writer {
    const struct wtt_tabdoc *doc;
    struct wtt_tab_text     *out;
    struct wtt_tab_facts     facts;
    struct wtt_tab_text      rows[WTT_TABDOC_MAX_STRINGS];
    struct wtt_tab_text      numbers;
    struct wtt_tab_text      tokens;    /* the measure's tokens */
    struct column           *columns;   /* per event of the measure */
    struct slot             *slots;     /* per event and string */
    char                     labels[WTT_TABDOC_MAX_STRINGS][3];
    size_t                   label_len[WTT_TABDOC_MAX_STRINGS];
    size_t                   lw;        /* the widest label */
    int                      open;      /* a system is being filled */
    long long                used;      /* its columns so far */
    char                    *err;
    size_t                   err_size;
};


/* Labels for the strings, highest first, as tab sites write them: note
 * letters, the highest string in lower case when its letter repeats. */
static void
make_labels(struct writer *w)
{
    const struct wtt_tabdoc *doc = w->doc;
    int                      same = 0;

    for (int s = 0; s < doc->n_strings; s++) {
        size_t      len;
        const char *name = wtt_tab_pitch_class_name(doc->tuning[s], &len);
        memcpy(w->labels[s], name, len);
        w->label_len[s] = len;
        if (len > w->lw) {
            w->lw = len;
        }
    }
    for (int s = 0; s < doc->n_strings; s++) {
        if (w->label_len[s] == w->label_len[0]
            && memcmp(w->labels[s], w->labels[0], w->label_len[0]) == 0)
        {
            same++;
        }
    }
    if (same > 1) {
        w->labels[0][0] = (char) (w->labels[0][0] - 'A' + 'a');
    }
}


static void
put_header(struct writer *w)
{
    const struct wtt_tabdoc *doc = w->doc;
    struct wtt_tab_text     *t = w->out;

    if (doc->title.s != NULL) {
        wtt_tab_text_str(t, &doc->title);
        wtt_tab_text_lit(t, "\n");
    }
    wtt_tab_text_lit(t, "Instrument: ");
    if (doc->instrument.s != NULL) {
        wtt_tab_text_str(t, &doc->instrument);
    } else {
        wtt_tab_text_lit(t, "nil");     /* as %s wrote it */
    }
    wtt_tab_text_lit(t, "   Tuning: ");
    for (int s = doc->n_strings - 1; s >= 0; s--) {
        char   name[WTT_TAB_PITCH_NAME_SIZE];
        size_t len = wtt_tab_pitch_name(doc->tuning[s], name);
        wtt_tab_text_put(t, name, len);
        if (s > 0) {
            wtt_tab_text_lit(t, " ");
        }
    }
    wtt_tab_text_lit(t, " (");
    if (doc->tuning_name.s != NULL) {
        wtt_tab_text_str(t, &doc->tuning_name);
    } else {
        wtt_tab_text_lit(t, "custom");
    }
    wtt_tab_text_lit(t, ")\nCapo: ");
    if (doc->capo > 0) {
        wtt_tab_text_int(t, doc->capo);
    } else {
        wtt_tab_text_lit(t, "none");
    }
    wtt_tab_text_lit(t, "   Tempo: ");
    wtt_tab_text_luaint(t, floor(doc->tempo_bpm + 0.5));
    wtt_tab_text_lit(t, " bpm   Time: ");
    wtt_tab_text_int(t, doc->beats);
    wtt_tab_text_lit(t, "/");
    wtt_tab_text_int(t, doc->beat_type);
    wtt_tab_text_lit(t, "\n\n");
}


/* The characters of an integer in decimal. */
static size_t
int_len(int v)
{
    long long x = v;
    size_t    n = 1;

    if (x < 0) {
        x = -x;
        n++;
    }
    while (x >= 10) {
        x /= 10;
        n++;
    }
    return n;
}


/* The token of note `ni` (1-based, checked) with techniques: its fret
 * with the technique letters around it. Returns 0, or -1 for a bend with
 * no height. */
static int
put_token(struct writer *w, struct wtt_tab_text *t, int ni)
{
    const struct wtt_tabdoc   *doc = w->doc;
    const struct wtt_tab_note *n = &doc->notes[ni - 1];
    const unsigned char       *kinds = w->facts.kinds + n->tech_first;
    const char                *before = NULL;

    /* The letter before: the last hammer-on, pull-off or slide. */
    for (size_t j = 0; j < n->n_tech; j++) {
        const struct wtt_tab_technique *tc =
            &doc->techniques[n->tech_first + j];
        if (kinds[j] == WTT_TECH_HAMMER_ON) {
            before = "h";
        } else if (kinds[j] == WTT_TECH_PULL_OFF) {
            before = "p";
        } else if (kinds[j] == WTT_TECH_SLIDE) {
            before = tc->direction.s != NULL && tc->direction.len == 4
                     && memcmp(tc->direction.s, "down", 4) == 0 ? "\\" : "/";
        }
    }
    if (before != NULL) {
        wtt_tab_text_put(t, before, 1);
    }
    wtt_tab_text_int(t, n->fret);
    /* The letters after: bends and vibrato, in order. */
    for (size_t j = 0; j < n->n_tech; j++) {
        const struct wtt_tab_technique *tc =
            &doc->techniques[n->tech_first + j];
        if (kinds[j] == WTT_TECH_BEND) {
            if (!(tc->has & WTT_TECH_HAS_SEMITONES)) {
                snprintf(w->err, w->err_size, "ascii: notes[%d].techniques"
                         "[%zu]: a bend has no semitones", ni, j + 1);
                return -1;
            }
            wtt_tab_text_lit(t, "b");
            wtt_tab_text_luanum(t, (double) n->fret
                                   + floor(tc->semitones + 0.5));
            if ((tc->has & WTT_TECH_HAS_RELEASE) && tc->release) {
                wtt_tab_text_lit(t, "r");
                wtt_tab_text_int(t, n->fret);
            }
        } else if (kinds[j] == WTT_TECH_VIBRATO) {
            wtt_tab_text_lit(t, "~");
        }
    }
    return 0;
}


/* Dashes after an event of `ticks`: one per 16th, at least one. */
static long long
dashes_of(int ticks)
{
    double d = floor((double) ticks / 3 + 0.5);

    return d < 1 ? 1 : (long long) d;
}


/* The tokens of event `ev` (the measure's column `c`), one slot per
 * string (the last note on a string wins; notes on no string of the
 * tuning only widen the column); the column is as wide as the widest
 * token, at least 1. Returns 0, or -1. */
static int
event_tokens(struct writer *w, const struct wtt_tab_event *ev,
             const struct wtt_tab_measure *m, struct column *c)
{
    const struct wtt_tabdoc *doc = w->doc;
    struct slot             *slots = w->slots + c->slot;
    size_t                   wd = 1;

    for (size_t i = 0; i < ev->n_notes; i++) {
        int                        ni = doc->event_notes[ev->note_first + i];
        const struct wtt_tab_note *n;
        struct slot                sl;
        if (ni < 1 || (size_t) ni > doc->n_notes) {
            snprintf(w->err, w->err_size, "ascii: measure %d, event at tick "
                     "%d: note %d is not in the notes list", m->number,
                     ev->tick, ni);
            return -1;
        }
        n = &doc->notes[ni - 1];
        sl.set = 1;
        sl.fret = n->fret;
        if (n->n_tech == 0) {
            sl.at = SIZE_MAX;
            sl.len = int_len(n->fret);
        } else {
            sl.at = w->tokens.len;
            if (put_token(w, &w->tokens, ni) != 0) {
                return -1;
            }
            sl.len = w->tokens.len - sl.at;
        }
        if (sl.len > wd) {
            wd = sl.len;
        }
        if (n->string >= 1 && n->string <= doc->n_strings) {
            slots[n->string - 1] = sl;
        }
    }
    c->width = wd;
    return 0;
}


/* The columns of measure `m`, and its width (without its bar line).
 * Returns 0, or -1. */
static int
measure_columns(struct writer *w, const struct wtt_tab_measure *m,
                long long *width)
{
    const struct wtt_tabdoc *doc = w->doc;
    long long                total = 0;

    wtt_tab_text_clear(&w->tokens);
    memset(w->slots, 0, sizeof(struct slot) * (size_t) doc->n_strings
                        * m->n_events);
    for (size_t j = 0; j < m->n_events; j++) {
        const struct wtt_tab_event *ev = &doc->events[m->event_first + j];
        struct column              *c = &w->columns[j];
        c->width = 1;
        c->dashes = dashes_of(ev->ticks);
        c->slot = j * (size_t) doc->n_strings;
        /* An event with no notes, or a tied continuation: dashes. */
        c->notes = ev->n_notes > 0 && !ev->tied;
        if (c->notes && event_tokens(w, ev, m, c) != 0) {
            return -1;
        }
        total += (long long) c->width + c->dashes;
    }
    *width = total;
    return 0;
}


/* Appends the measure's columns to the rows. */
static void
put_cells(struct writer *w, const struct wtt_tab_measure *m)
{
    const struct wtt_tabdoc *doc = w->doc;

    for (int s = 0; s < doc->n_strings; s++) {
        struct wtt_tab_text *row = &w->rows[s];
        wtt_tab_text_lit(row, "|");
        for (size_t j = 0; j < m->n_events; j++) {
            const struct column *c = &w->columns[j];
            const struct slot   *sl = &w->slots[c->slot + (size_t) s];
            if (!c->notes) {
                wtt_tab_text_fill(row, '-', 1 + c->dashes);
                continue;
            }
            if (!sl->set) {
                wtt_tab_text_fill(row, '-', (long long) c->width + c->dashes);
                continue;
            }
            if (sl->at == SIZE_MAX) {
                wtt_tab_text_int(row, sl->fret);
            } else {
                wtt_tab_text_put(row, w->tokens.data + sl->at, sl->len);
            }
            wtt_tab_text_fill(row, '-',
                              (long long) (c->width - sl->len) + c->dashes);
        }
    }
}


/* Writes the system being filled, if any. */
static void
flush(struct writer *w)
{
    if (!w->open) {
        return;
    }
    wtt_tab_text_put(w->out, w->numbers.data, w->numbers.len);
    wtt_tab_text_lit(w->out, "\n");
    for (int s = 0; s < w->doc->n_strings; s++) {
        wtt_tab_text_put(w->out, w->rows[s].data, w->rows[s].len);
        wtt_tab_text_lit(w->out, "|\n");
    }
    wtt_tab_text_lit(w->out, "\n");
    w->open = 0;
}


/* Systems: as many whole measures as fit in WIDTH columns. */
static int
put_systems(struct writer *w)
{
    const struct wtt_tabdoc *doc = w->doc;

    for (size_t mi = 0; mi < doc->n_measures; mi++) {
        const struct wtt_tab_measure *m = &doc->measures[mi];
        long long                     width;
        if (measure_columns(w, m, &width) != 0) {
            return -1;
        }
        width += 1;                                 /* its bar line */
        if (w->open && w->used + width + 1 > WIDTH) {
            flush(w);
        }
        if (!w->open) {
            wtt_tab_text_clear(&w->numbers);
            wtt_tab_text_fill(&w->numbers, ' ', (long long) w->lw + 1);
            for (int s = 0; s < doc->n_strings; s++) {
                wtt_tab_text_clear(&w->rows[s]);
                wtt_tab_text_put(&w->rows[s], w->labels[s], w->label_len[s]);
                wtt_tab_text_fill(&w->rows[s], ' ',
                                  (long long) (w->lw - w->label_len[s]));
            }
            w->used = (long long) w->lw;
            w->open = 1;
        }
        wtt_tab_text_int(&w->numbers, m->number);
        wtt_tab_text_fill(&w->numbers, ' ',
                          width - (long long) int_len(m->number));
        put_cells(w, m);
        w->used += width;
    }
    flush(w);
    return 0;
}


/* "  %8.3f s  %-4s (MIDI %d)  <reason>[, played as <name>]" per note
 * the instrument cannot play. Returns 0, or -1 for a pitch that is no
 * whole number. */
static int
put_unplayable(struct writer *w)
{
    const struct wtt_tabdoc *doc = w->doc;
    struct wtt_tab_text     *t = w->out;

    if (doc->n_unplayable == 0) {
        return 0;
    }
    wtt_tab_text_lit(t, "Not playable on this instrument:\n");
    for (size_t i = 0; i < doc->n_unplayable; i++) {
        const struct wtt_tab_unplayable *u = &doc->unplayable[i];
        char                             name[WTT_TAB_PITCH_NAME_SIZE];
        size_t                           len, at;
        if (u->pitch_midi != floor(u->pitch_midi)
            || !(fabs(u->pitch_midi) < 2147483648.0)
            || (u->has_folded_to
                && (u->folded_to != floor(u->folded_to)
                    || !(fabs(u->folded_to) < 2147483648.0))))
        {
            snprintf(w->err, w->err_size, "ascii: unplayable[%zu]: a pitch "
                     "that is not a whole number", i + 1);
            return -1;
        }
        wtt_tab_text_lit(t, "  ");
        at = t->len;
        wtt_tab_text_fixed3(t, u->start_s);
        if (!t->failed && t->len - at < 8) {
            /* right-aligned in 8 columns */
            size_t n = t->len - at, pad = 8 - n;
            wtt_tab_text_fill(t, ' ', (long long) pad);
            if (!t->failed) {
                memmove(t->data + at + pad, t->data + at, n);
                memset(t->data + at, ' ', pad);
            }
        }
        wtt_tab_text_lit(t, " s  ");
        len = wtt_tab_pitch_name((int) u->pitch_midi, name);
        wtt_tab_text_put(t, name, len);
        wtt_tab_text_fill(t, ' ', 4 - (long long) len);
        wtt_tab_text_lit(t, " (MIDI ");
        wtt_tab_text_luaint(t, u->pitch_midi);
        wtt_tab_text_lit(t, ")  ");
        if (u->reason.len == 12 && memcmp(u->reason.s, "out_of_range", 12)
                                   == 0)
        {
            wtt_tab_text_lit(t, "out of range");
        } else {
            wtt_tab_text_lit(t, "more notes than strings can hold");
        }
        if (u->has_folded_to) {
            wtt_tab_text_lit(t, ", played as ");
            len = wtt_tab_pitch_name((int) u->folded_to, name);
            wtt_tab_text_put(t, name, len);
        }
        wtt_tab_text_lit(t, "\n");
    }
    wtt_tab_text_lit(t, "\n");
    return 0;
}


static void
writer_free(struct writer *w)
{
    for (int s = 0; s < WTT_TABDOC_MAX_STRINGS; s++) {
        wtt_tab_text_free(&w->rows[s]);
    }
    wtt_tab_text_free(&w->numbers);
    wtt_tab_text_free(&w->tokens);
    free(w->columns);
    free(w->slots);
    wtt_tab_facts_free(&w->facts);
}


/* The facts, and room for the columns of the longest measure. */
static int
writer_alloc(struct writer *w)
{
    const struct wtt_tabdoc *doc = w->doc;
    size_t                   most = 1;

    for (size_t mi = 0; mi < doc->n_measures; mi++) {
        if (doc->measures[mi].n_events > most) {
            most = doc->measures[mi].n_events;
        }
    }
    if (most > SIZE_MAX / sizeof(struct slot) / WTT_TABDOC_MAX_STRINGS) {
        return -1;
    }
    w->columns = malloc(most * sizeof(struct column));
    w->slots = malloc(most * (size_t) doc->n_strings * sizeof(struct slot));
    if (w->columns == NULL || w->slots == NULL
        || wtt_tab_facts_init(&w->facts, doc) != 0)
    {
        return -1;
    }
    return 0;
}


/* Whether a scratch text failed (out of memory). */
static int
scratch_failed(const struct writer *w)
{
    int failed = w->numbers.failed || w->tokens.failed;

    for (int s = 0; s < WTT_TABDOC_MAX_STRINGS; s++) {
        failed |= w->rows[s].failed;
    }
    return failed;
}


int
wtt_tab_ascii(const struct wtt_tabdoc *doc, struct wtt_tab_text *out,
              char *err, size_t err_size)
{
    struct writer w;
    const char   *why;
    int           rc;

    if (wtt_tabdoc_check(doc, err, err_size) != 0) {
        return -1;
    }
    memset(&w, 0, sizeof(w));
    for (int s = 0; s < WTT_TABDOC_MAX_STRINGS; s++) {
        wtt_tab_text_init(&w.rows[s]);
    }
    wtt_tab_text_init(&w.numbers);
    wtt_tab_text_init(&w.tokens);
    w.doc = doc;
    w.out = out;
    w.err = err;
    w.err_size = err_size;
    if (writer_alloc(&w) != 0) {
        writer_free(&w);
        snprintf(err, err_size, "ascii: out of memory");
        return -1;
    }
    make_labels(&w);
    /* About 16 bytes a note and 70 an unplayable note; growing past it
     * copies the text. */
    if (doc->n_notes + doc->n_unplayable < WTT_TAB_TEXT_MAX / 128) {
        (void) wtt_tab_text_reserve(out, 24 * doc->n_notes
                                         + 80 * doc->n_unplayable + 1024);
    }
    put_header(&w);
    rc = put_systems(&w);
    if (rc == 0) {
        rc = put_unplayable(&w);
    }
    if (rc == 0) {
        wtt_tab_text_lit(out, LEGEND);
        if (scratch_failed(&w) || wtt_tab_text_status(out, &why) != 0) {
            snprintf(err, err_size, "ascii: out of memory for the text");
            rc = -1;
        }
    }
    writer_free(&w);
    return rc;
}
