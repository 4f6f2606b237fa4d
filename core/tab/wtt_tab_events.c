/*
 * wtt_tab_events.c: what the ASCII, alphaTex and Guitar Pro writers share
 * (see wtt_tab_events.h).
 */
#include "wtt_tab_events.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const SHARP_NAMES[12] = {
    "C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B",
};


int
wtt_tab_facts_init(struct wtt_tab_facts *f, const struct wtt_tabdoc *doc)
{
    size_t size = doc->n_techniques + doc->n_notes + doc->n_events + 1;

    if (doc->n_techniques > SIZE_MAX / 4 || doc->n_notes > SIZE_MAX / 4
        || doc->n_events > SIZE_MAX / 4)
    {
        return -1;
    }
    f->kinds = calloc(1, size);
    if (f->kinds == NULL) {
        return -1;
    }
    f->origin = f->kinds + doc->n_techniques;
    f->tied_on = f->origin + doc->n_notes;
    for (size_t i = 0; i < doc->n_techniques; i++) {
        f->kinds[i] = (unsigned char) wtt_tab_tech_kind(&doc->techniques[i]
                                                        .type);
    }
    /* The latest legato from a note wins, notes and techniques in order. */
    for (size_t i = 0; i < doc->n_notes; i++) {
        const struct wtt_tab_note *n = &doc->notes[i];
        for (size_t j = 0; j < n->n_tech; j++) {
            const struct wtt_tab_technique *tc =
                &doc->techniques[n->tech_first + j];
            int kind = f->kinds[n->tech_first + j];
            unsigned char origin;
            if (!(tc->has & WTT_TECH_HAS_FROM)) {
                continue;
            }
            if (kind == WTT_TECH_HAMMER_ON || kind == WTT_TECH_PULL_OFF) {
                origin = WTT_ORIGIN_HOPO;
            } else if (kind == WTT_TECH_SLIDE) {
                origin = WTT_ORIGIN_SLIDE;
            } else {
                continue;
            }
            /* A `from` that is no note is never looked up. */
            if (tc->from >= 1 && (size_t) tc->from <= doc->n_notes) {
                f->origin[tc->from - 1] = origin;
            }
        }
    }
    /* An event is tied on when the next one in its measure, or the first
     * one of the next measure, is tied (an empty measure between breaks
     * the chain, as the Lua writers read it). */
    for (size_t mi = 0; mi < doc->n_measures; mi++) {
        const struct wtt_tab_measure *m = &doc->measures[mi];
        size_t end = m->event_first + m->n_events;
        for (size_t k = m->event_first; k < end; k++) {
            size_t next = k + 1;
            if (next == end && (mi + 1 == doc->n_measures
                                || doc->measures[mi + 1].n_events == 0))
            {
                continue;
            }
            f->tied_on[k] = (unsigned char) (doc->events[next].tied != 0);
        }
    }
    return 0;
}


void
wtt_tab_facts_free(struct wtt_tab_facts *f)
{
    free(f->kinds);
    f->kinds = f->origin = f->tied_on = NULL;
}


const struct wtt_tab_technique *
wtt_tab_first_tech(const struct wtt_tabdoc *doc, const struct wtt_tab_facts *f,
                   const struct wtt_tab_note *n, enum wtt_tab_tech_kind kind)
{
    for (size_t j = 0; j < n->n_tech; j++) {
        if (f->kinds[n->tech_first + j] == (unsigned char) kind) {
            return &doc->techniques[n->tech_first + j];
        }
    }
    return NULL;
}


int
wtt_tab_value_of(int ticks, int divisions, struct wtt_tab_value *v)
{
    static const int VALUES[] = { 1, 2, 4, 8, 16, 32 };
    long long whole = 4 * (long long) divisions;

    for (size_t i = 0; i < sizeof(VALUES) / sizeof(VALUES[0]); i++) {
        long long t = (long long) ticks * VALUES[i];
        v->value = VALUES[i];
        v->dots = 0;
        v->tuplet = 0;
        if (t == whole) {
            return 0;
        }
        if (t * 2 == whole * 3) {
            v->dots = 1;
            return 0;
        }
        if (t * 3 == whole * 2) {
            v->tuplet = 3;
            return 0;
        }
    }
    return -1;
}


int
wtt_tab_value_error(char *err, size_t err_size, int measure, int ticks,
                    int divisions)
{
    snprintf(err, err_size, "measure %d: an event of %d ticks (%d per "
             "quarter) is not one notatable value", measure, ticks,
             divisions);
    return -1;
}


double
wtt_tab_quarter_tones(double semitones)
{
    return floor(semitones * 2 + 0.5);
}


const char *
wtt_tab_pitch_class_name(int pitch, size_t *len)
{
    int pc = pitch % 12;

    if (pc < 0) {
        pc += 12;
    }
    *len = SHARP_NAMES[pc][1] != '\0' ? 2 : 1;
    return SHARP_NAMES[pc];
}


size_t
wtt_tab_pitch_name(int pitch, char buf[WTT_TAB_PITCH_NAME_SIZE])
{
    size_t      len;
    const char *name = wtt_tab_pitch_class_name(pitch, &len);
    /* floor(pitch / 12) - 1, as Lua divides */
    long long   octave = (long long) floor((double) pitch / 12) - 1;
    char        digits[24], *p = digits + sizeof(digits);
    uint64_t    u = octave < 0 ? (uint64_t) -octave : (uint64_t) octave;
    size_t      n;

    do {
        *--p = (char) ('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (octave < 0) {
        *--p = '-';
    }
    n = (size_t) (digits + sizeof(digits) - p);
    memcpy(buf, name, len);
    memcpy(buf + len, p, n);
    buf[len + n] = '\0';
    return len + n;
}


void
wtt_tab_text_decimal(struct wtt_tab_text *t, double x)
{
    size_t start = t->len;

    /* Lua's x % 1 == 0: x - floor(x), which is NaN for the infinities. */
    if (x - floor(x) == 0) {
        wtt_tab_text_luaint(t, x);
        return;
    }
    wtt_tab_text_fixed3(t, x);
    if (t->failed) {
        return;
    }
    /* %.3f less its trailing zeros (of the number only) */
    while (t->len > start && t->data[t->len - 1] == '0') {
        t->len--;
    }
    t->data[t->len] = '\0';
}


void
wtt_tab_text_fill(struct wtt_tab_text *t, char c, long long n)
{
    static const char DASHES[] =
        "----------------------------------------------------------------";
    static const char SPACES[] =
        "                                                                ";
    const char       *run;
    char              other[sizeof(DASHES) - 1];

    if (c == '-') {
        run = DASHES;
    } else if (c == ' ') {
        run = SPACES;
    } else {
        memset(other, c, sizeof(other));
        run = other;
    }
    while (n > 0) {
        size_t k = n > (long long) sizeof(other) ? sizeof(other) : (size_t) n;
        wtt_tab_text_put(t, run, k);
        n -= (long long) k;
    }
}


int
wtt_tab_track_index(const struct wtt_tabdoc *doc)
{
    static const char *const names[] = WTT_TAB_TRACKS;
    const struct wtt_tab_str *inst = &doc->instrument;

    for (size_t i = 0; inst->s != NULL && i < sizeof(names) / sizeof(*names);
         i++)
    {
        if (strlen(names[i]) == inst->len
            && memcmp(names[i], inst->s, inst->len) == 0)
        {
            return (int) i;
        }
    }
    return 0;
}
