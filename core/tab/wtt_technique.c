/*
 * wtt_technique.c: playing techniques (see wtt_technique.h and
 * docs/tab.md, "Techniques").
 *
 * The expressions keep the operand order of the Lua code they replaced
 * (lua/wtt/tab/technique.lua drives them), so every double rounds as it
 * did there.
 */
#include "wtt_technique.h"

#include <math.h>

#define BINS          3      /* contour bins per semitone */
#define MIN_BINS      2      /* the least a bend rises */
#define MIN_LEN       3      /* bins a contour needs to show anything */
#define VIBRATO_TURNS 4      /* turns of a vibrato, within a semitone */
#define LEGATO_ONSET  0.5    /* below this, no new pluck */
#define LEGATO_GAP_S  0.05   /* the new note starts within this of the end */
#define HAMMER_REACH  4      /* frets a hammer-on or pull-off spans at most */
#define RING_S        0.1    /* overlap that counts as letting ring */


void
wtt_technique_contour_start(struct wtt_technique_contour *c)
{
    c->n = 0;
    c->at = 1;
    c->held = 0;
    c->peak = 0;
    c->prev = 0;
    c->turns = 0;
    c->dir = 0;
}


void
wtt_technique_contour_add(struct wtt_technique_contour *c,
                          const double *bins, size_t n)
{
    /* (in locals: the bins could alias the contour, as far as the
     * compiler knows) */
    size_t count = c->n, at = c->at, held = c->held;
    double peak = c->peak, prev = count == 0 && n > 0 ? bins[0] : c->prev;
    int    turns = c->turns, dir = c->dir;

    for (size_t k = 0; k < n; k++) {
        double b = bins[k], d = b - prev;
        count++;
        if (fabs(b) > fabs(peak)) {
            peak = b;
            at = count;
        }
        if (d != 0) {
            int s = d > 0 ? 1 : -1;
            turns += dir != 0 && s != dir;
            dir = s;
        }
        prev = b;
        /* A bin (a third of a semitone) is within the contour's noise: a
         * bend holds two bins or more for two frames or more. */
        held += b >= MIN_BINS;
    }
    c->n = count;
    c->at = at;
    c->held = held;
    c->peak = peak;
    c->prev = prev;
    c->turns = turns;
    c->dir = dir;
}


void
wtt_technique_contour_end(const struct wtt_technique_contour *c,
                          struct wtt_technique_bend *out)
{
    double semis;

    out->type = WTT_TECHNIQUE_NONE;
    out->semitones = 0;
    out->release = 0;
    if (c->n < MIN_LEN) {
        return;
    }
    semis = floor(fabs(c->peak) / BINS * 2 + 0.5) / 2;
    if (c->turns >= VIBRATO_TURNS && semis <= 1) {
        out->type = WTT_TECHNIQUE_VIBRATO;
        return;
    }
    if (c->held < 2 || c->peak < 0) {
        return;
    }
    out->type = WTT_TECHNIQUE_BEND;
    out->semitones = semis;
    out->release = c->at < c->n && c->prev * 2 < c->peak;
}


int
wtt_technique_legato_kind(double from, double to, int *up)
{
    double d = to - from;

    *up = d > 0;
    if (fabs(d) > HAMMER_REACH || (from == 0 && d < 0)) {
        return WTT_TECHNIQUE_SLIDE;
    }
    return d > 0 ? WTT_TECHNIQUE_HAMMER_ON : WTT_TECHNIQUE_PULL_OFF;
}


void
wtt_technique_pass_init(struct wtt_technique_pass *p,
                        struct wtt_technique_result *run, size_t cap,
                        wtt_technique_done done, void *ctx)
{
    for (int s = 0; s < WTT_TECHNIQUE_MAX_STRING; s++) {
        p->last[s].note = 0;
        p->last[s].fret = 0;
        p->last[s].end_s = 0;
    }
    p->run = run;
    p->n_run = 0;
    p->cap = cap;
    p->n = 0;
    p->done = done;
    p->ctx = ctx;
}


/* Ends the current chord: `next` (NULL at the end) is the first note of
 * the next one. A legato needs its note alone in its chord or last in it
 * (the next note starts another chord), and a note lets ring when it
 * still sounds as the next chord starts on another string. */
static void
close_chord(struct wtt_technique_pass *p,
            const struct wtt_technique_note *next)
{
    for (size_t k = 0; k < p->n_run; k++) {
        struct wtt_technique_result *r = &p->run[k];
        if (k + 1 < p->n_run) {
            r->legato = WTT_TECHNIQUE_NONE;
        }
        if (next != NULL && r->end_s > next->start_s + RING_S
            && next->string != r->string)
        {
            r->let_ring = 1;
        }
        p->done(p->ctx, r);
    }
    p->n_run = 0;
}


int
wtt_technique_pass_add(struct wtt_technique_pass *p,
                       const struct wtt_technique_note *n, const char **err)
{
    struct wtt_technique_result *r;
    size_t                       i;

    if (n->string < 1 || n->string > WTT_TECHNIQUE_MAX_STRING) {
        *err = "a string out of range";
        return -1;
    }
    if (p->n > 0 && !n->same_chord) {
        close_chord(p, n);
    }
    if (p->n_run >= p->cap) {
        *err = "a chord of more notes than the pass has room for";
        return -1;
    }
    i = ++p->n;
    r = &p->run[p->n_run++];
    r->note = i;
    r->bend = n->bend;
    r->legato = WTT_TECHNIQUE_NONE;
    r->from = 0;
    r->up = 0;
    r->let_ring = 0;
    r->end_s = n->end_s;
    r->string = n->string;

    /* Legato: the note follows the last one on its string, with no new
     * pluck (notes with no onset strength known get none). */
    {
        size_t j = p->last[n->string - 1].note;
        double fret = p->last[n->string - 1].fret;
        double end_s = p->last[n->string - 1].end_s;
        if (j > 0 && n->has_onset && n->onset < LEGATO_ONSET
            && (i == 1 || !n->same_chord || i - 1 == j)
            && fret != n->fret && n->start_s - end_s <= LEGATO_GAP_S)
        {
            r->legato = wtt_technique_legato_kind(fret, n->fret, &r->up);
            r->from = j;
        }
    }
    p->last[n->string - 1].note = i;
    p->last[n->string - 1].fret = n->fret;
    p->last[n->string - 1].end_s = n->end_s;
    return 0;
}


void
wtt_technique_pass_end(struct wtt_technique_pass *p)
{
    close_chord(p, NULL);
}
