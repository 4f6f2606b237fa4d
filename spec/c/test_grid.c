/*
 * test_grid.c: the measure grid (core/tab/wtt_grid.h) on pieces whose
 * notation is known: onsets with jitter quantised to 16ths, the beat type
 * chosen for triplets (and not when triplets cost too much), chords on
 * one position joined unless a string would sound twice, notatable
 * pieces (no half note across the middle of 4/4, rests ending on beats,
 * triplet values in triplet beats), ties at beats and bar lines, a
 * pickup measure, beat positions outside the beats, and bad meters.
 */
#include "test.h"
#include "wtt_grid.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define MAXN 64      /* notes (and chords) of a fixture */
#define MAXM 8       /* measures shown */
#define MAXB 256     /* beats */

/* A piece: chords of notes, read through the source callbacks, and what
 * the sink got. Notes are numbered from 1. */
struct fx {
    double                t[MAXN];
    size_t                first[MAXN], nxt[MAXN + 1];
    double                end_s[MAXN + 1];
    int                   string[MAXN + 1];
    size_t                nc, nn;
    /* results */
    char                  show[MAXM][256];
    double                number[MAXM], start_tick[MAXM], ticks[MAXM];
    int                   nm;
    struct wtt_grid_place place[MAXN + 1];
    size_t                group[MAXN], n_group;     /* the last group */
    size_t                groups;
    uint8_t               types[MAXB], back[3 * MAXB];
    double                pos[MAXN];
};

static double
src_onset(void *ctx, size_t c)
{
    return ((struct fx *) ctx)->t[c];
}

static size_t
src_first(void *ctx, size_t c)
{
    return ((struct fx *) ctx)->first[c];
}

static size_t
src_next(void *ctx, size_t i)
{
    return ((struct fx *) ctx)->nxt[i];
}

static double
src_end(void *ctx, size_t i)
{
    return ((struct fx *) ctx)->end_s[i];
}

static int
src_string(void *ctx, size_t i)
{
    return ((struct fx *) ctx)->string[i];
}

static int
sink_measure(void *ctx, const struct wtt_grid_measure *m)
{
    struct fx *f = ctx;

    if (f->nm < MAXM) {
        f->number[f->nm] = m->number;
        f->start_tick[f->nm] = m->start_tick;
        f->ticks[f->nm] = m->ticks;
        f->show[f->nm][0] = 0;
    }
    f->nm++;
    return 0;
}

static int
sink_group(void *ctx, const size_t *notes, size_t n,
           const struct wtt_grid_place *p)
{
    struct fx *f = ctx;

    for (size_t j = 0; j < n; j++) {
        f->place[notes[j]] = *p;
        f->group[j] = notes[j];
    }
    f->n_group = n;
    f->groups++;
    return 0;
}

/* Events as "n0:12 r12:6 n18:6~" per measure, as the Lua specs show
 * them. */
static int
sink_event(void *ctx, double tick, double ticks, int rest, int tied)
{
    struct fx *f = ctx;
    char      *s;

    if (f->nm < 1 || f->nm > MAXM) {
        return 0;
    }
    s = f->show[f->nm - 1];
    snprintf(s + strlen(s), 256 - strlen(s), "%s%s%g:%g%s", s[0] ? " " : "",
             rest ? "r" : "n", tick, ticks, tied ? "~" : "");
    return 0;
}

static void
fx_init(struct fx *f)
{
    memset(f, 0, sizeof(*f));
}

/* Appends a chord at `t` s of `size` notes ending at `end` s, on strings
 * string, string + 1, ... (0: none). */
static void
chord(struct fx *f, double t, double end, int string, int size)
{
    f->t[f->nc] = t;
    f->first[f->nc] = f->nn + 1;
    for (int k = 0; k < size; k++) {
        size_t i = ++f->nn;
        f->end_s[i] = end;
        f->string[i] = string > 0 ? string + k : 0;
        f->nxt[i] = k + 1 < size ? i + 1 : 0;
    }
    f->nc++;
}

/* A meter of beats every `period` s from 0, 4/4 unless changed. */
static struct wtt_grid_meter
meter(const double *beats, size_t nb, double bpm)
{
    struct wtt_grid_meter m = { beats, nb, bpm, 4, 4, 0, 1 };
    return m;
}

static void
steady(double *beats, size_t nb, double period)
{
    for (size_t k = 0; k < nb; k++) {
        beats[k] = k * period;
    }
}

/* Runs the grid over f; returns 0, or -1 with *err. */
static int
run(struct fx *f, const struct wtt_grid_meter *m,
    const struct wtt_grid_weights *w, const char **err)
{
    struct wtt_grid_source src = { f, f->nc, f->nn, src_onset, src_first,
                                   src_next, src_end, src_string };
    struct wtt_grid_sink   sink = { f, sink_measure, sink_group,
                                    sink_event };
    struct wtt_grid_weights def;
    struct wtt_grid        g;
    struct wtt_grid_work   work;
    int32_t                bi[MAXN];
    double                 fr[MAXN];
    size_t                 notes[MAXN];

    if (w == NULL) {
        wtt_grid_default_weights(&def);
        w = &def;
    }
    if (wtt_grid_init(&g, m, w, err) != 0) {
        return -1;
    }
    work.bi = bi;
    work.fr = fr;
    work.pos = f->pos;
    work.notes = notes;
    work.n_cap = MAXN;
    if (wtt_grid_onsets(&g, &src, &work, err) != 0) {
        return -1;
    }
    if (work.nbeats > MAXB) {
        *err = "test: too many beats";
        return -1;
    }
    work.types = f->types;
    work.back = f->back;
    wtt_grid_place(&g, &src, &work);
    return wtt_grid_write(&g, &src, &sink, &work, err);
}


int
test_grid_quantise(void)
{
    /* 120 bpm: 16ths, an 8th, an 8th, a rest, a quarter on beat 4, each
     * onset off by up to 10 ms (a 16th is 125 ms). */
    const double start[] = { 0.0, 0.25, 0.5, 1.0, 3.0 };
    const double len[] = { 0.25, 0.25, 0.5, 0.5, 1.0 };
    const double jitter[] = { 0.004, -0.008, 0.010, -0.006, 0.007 };
    const double want_beat[] = { 1, 1.25, 1.5, 2, 4 };
    const double want_ticks[] = { 3, 3, 6, 6, 12 };
    double       beats[12];
    struct fx    f;
    const char  *err = NULL;
    struct wtt_grid_meter m;

    steady(beats, 12, 0.5);
    m = meter(beats, 12, 120);
    fx_init(&f);
    for (int k = 0; k < 5; k++) {
        chord(&f, start[k] * 0.5 + jitter[k], (start[k] + len[k]) * 0.5,
              0, 1);
    }
    ASSERT(run(&f, &m, NULL, &err) == 0);
    ASSERT(f.nm == 1 && f.number[0] == 1 && f.ticks[0] == 48);
    ASSERT_STR_EQ(f.show[0], "n0:3 n3:3 n6:6 n12:6 r18:6 r24:12 n36:12");
    ASSERT(f.types[0] == WTT_GRID_STRAIGHT);
    for (int k = 0; k < 5; k++) {
        ASSERT(f.place[k + 1].beat == want_beat[k]);
        ASSERT(f.place[k + 1].ticks == want_ticks[k]);
        ASSERT(f.place[k + 1].measure == 1);
    }
    ASSERT(f.place[5].tick == 36 && f.pos[4] == 36);
    return 0;
}


int
test_grid_triplets(void)
{
    /* Beat 1: four 16ths; beat 2: 8th triplets; beats 3-4: a half. */
    const double on[] = { 0, 0.25, 0.5, 0.75, 1, 4.0 / 3, 5.0 / 3, 2 };
    const double len[] = { 0.25, 0.25, 0.25, 0.25, 1.0 / 3, 1.0 / 3,
                           1.0 / 3, 2 };
    double       beats[12];
    struct fx    f;
    const char  *err = NULL;
    struct wtt_grid_meter   m;
    struct wtt_grid_weights w;

    steady(beats, 12, 0.5);
    m = meter(beats, 12, 120);
    fx_init(&f);
    for (int k = 0; k < 8; k++) {
        chord(&f, on[k] * 0.5, (on[k] + len[k]) * 0.5, 0, 1);
    }
    ASSERT(run(&f, &m, NULL, &err) == 0);
    ASSERT(f.types[0] == WTT_GRID_STRAIGHT && f.types[1] == WTT_GRID_T3);
    ASSERT_STR_EQ(f.show[0], "n0:3 n3:3 n6:3 n9:3 n12:4 n16:4 n20:4 n24:24");
    ASSERT(fabs(f.place[6].beat - (2 + 1.0 / 3)) < 1e-12);
    ASSERT(f.place[6].ticks == 4);

    /* With triplets made dearer than their timing error, beat 2 stays
     * straight: its onsets go to the nearest 16ths. */
    wtt_grid_default_weights(&w);
    w.t3 = 100;
    w.t6 = 100;
    fx_init(&f);
    for (int k = 0; k < 8; k++) {
        chord(&f, on[k] * 0.5, (on[k] + len[k]) * 0.5, 0, 1);
    }
    ASSERT(run(&f, &m, &w, &err) == 0);
    ASSERT(f.types[1] == WTT_GRID_STRAIGHT);
    ASSERT(f.pos[4] == 12 && f.pos[5] == 15 && f.pos[6] == 21);

    /* 16th triplets: six onsets in beat 1. */
    fx_init(&f);
    for (int k = 0; k < 6; k++) {
        chord(&f, k / 6.0 * 0.5, (k + 1) / 6.0 * 0.5, 0, 1);
    }
    ASSERT(run(&f, &m, NULL, &err) == 0);
    ASSERT(f.types[0] == WTT_GRID_T6);
    ASSERT_STR_EQ(f.show[0], "n0:2 n2:2 n4:2 n6:2 n8:2 n10:2 r12:12 r24:24");

    /* The cost of one beat's onsets: exact 8th triplets cost nothing as
     * triplets, and their error plus two 16th penalties as 16ths. */
    {
        struct wtt_grid g;
        const double    fr[] = { 0, 1.0 / 3, 2.0 / 3 };
        double          q[3];
        wtt_grid_default_weights(&w);
        ASSERT(wtt_grid_init(&g, &m, &w, &err) == 0);
        ASSERT(wtt_grid_beat_cost(&g, fr, 3, WTT_GRID_T3, q) < 1e-20);
        ASSERT(q[0] == 0 && q[1] == 4 && q[2] == 8);
        /* two errors of 1/12 beat (1.39 each) and two 16ths */
        ASSERT(fabs(wtt_grid_beat_cost(&g, fr, 3, WTT_GRID_STRAIGHT, q)
                    - (2 * pow((1.0 / 12) / 0.06, 2) + 0.8)) < 1e-9);
        ASSERT(q[0] == 0 && q[1] == 3 && q[2] == 9);
        /* Two onsets 1/50 beat apart on one 16th: a collision. */
        {
            const double close[] = { 0, 0.02 };
            double       c = wtt_grid_beat_cost(&g, close, 2,
                                                WTT_GRID_STRAIGHT, q);
            ASSERT(q[0] == 0 && q[1] == 0);
            ASSERT(fabs(c - (pow(0.02 / 0.06, 2) + 4)) < 1e-9);
        }
    }
    return 0;
}


int
test_grid_join(void)
{
    double       beats[8];
    struct fx    f;
    const char  *err = NULL;
    struct wtt_grid_meter   m;
    struct wtt_grid_weights w;

    steady(beats, 8, 0.5);
    m = meter(beats, 8, 120);
    wtt_grid_default_weights(&w);
    w.collide = 0;

    /* A slow strum the fingering saw as two chords (strings 6, 5 and 4):
     * one event, its notes in order. */
    fx_init(&f);
    chord(&f, 0.00, 0.5, 5, 2);
    chord(&f, 0.06, 0.5, 4, 1);
    chord(&f, 0.50, 1.0, 5, 1);
    ASSERT(run(&f, &m, &w, &err) == 0);
    ASSERT_STR_EQ(f.show[0], "n0:12 n12:12 r24:24");
    ASSERT(f.pos[0] == 0 && f.pos[1] == 0 && f.pos[2] == 12);
    ASSERT(f.place[3].tick == 0 && f.place[3].ticks == 12);
    ASSERT(f.groups == 2);

    /* Two notes on one string 60 ms apart: the second moves a 16th on. */
    fx_init(&f);
    chord(&f, 0.00, 0.5, 6, 1);
    chord(&f, 0.06, 0.5, 6, 1);
    chord(&f, 0.50, 1.0, 5, 1);
    ASSERT(run(&f, &m, &w, &err) == 0);
    ASSERT_STR_EQ(f.show[0], "n0:3 n3:9 n12:12 r24:24");
    ASSERT(f.pos[1] == 3 && f.place[2].tick == 3 && f.place[2].ticks == 9);

    /* ... unless that is not before the next chord: then they share. */
    fx_init(&f);
    chord(&f, 0.00, 0.5, 6, 1);
    chord(&f, 0.02, 0.5, 6, 1);
    chord(&f, 0.04, 0.5, 5, 1);
    ASSERT(run(&f, &m, &w, &err) == 0);
    ASSERT(f.pos[0] == 0 && f.pos[1] == 0 && f.pos[2] == 0);
    ASSERT(f.groups == 1 && f.n_group == 3);
    return 0;
}


int
test_grid_pieces(void)
{
    double       beats[12];
    uint8_t      types[4] = { WTT_GRID_T3, 0, 0, 0 };
    struct fx    f;
    const char  *err = NULL;
    struct wtt_grid_meter   m;
    struct wtt_grid_weights w;
    struct wtt_grid         g;

    steady(beats, 12, 0.5);
    m = meter(beats, 12, 120);
    wtt_grid_default_weights(&w);
    ASSERT(wtt_grid_init(&g, &m, &w, &err) == 0);
    /* From beat 2 of 4/4 to the bar: no half note across the middle; a
     * note takes a dotted quarter, a rest a quarter. */
    ASSERT(wtt_grid_piece(&g, types + 1, 3, 12, 48, 0, 48, 0) == 18);
    ASSERT(wtt_grid_piece(&g, types + 1, 3, 12, 48, 0, 48, 1) == 12);
    /* From the bar or the middle a half note is fine. */
    ASSERT(wtt_grid_piece(&g, types + 1, 3, 0, 48, 0, 48, 0) == 48);
    ASSERT(wtt_grid_piece(&g, types + 1, 3, 24, 48, 0, 48, 1) == 24);
    /* Off the beat: up to the beat, in the beat's values. */
    ASSERT(wtt_grid_piece(&g, types + 1, 3, 6, 24, 0, 48, 0) == 6);
    ASSERT(wtt_grid_piece(&g, types + 1, 3, 9, 24, 0, 48, 0) == 3);
    /* In a triplet beat: triplet values only. */
    ASSERT(wtt_grid_piece(&g, types, 4, 4, 12, 0, 48, 0) == 8);
    ASSERT(wtt_grid_piece(&g, types, 4, 0, 6, 0, 48, 0) == 4);
    /* Nothing fits in one tick. */
    ASSERT(wtt_grid_piece(&g, types + 1, 3, 0, 1, 0, 48, 0) == 0);

    /* An 8th on the "and" of 1 held to beat 3: split at the beat, tied;
     * a note held over the bar line: tied into the next measure. */
    fx_init(&f);
    chord(&f, 0.0, 0.25, 0, 1);
    chord(&f, 0.25, 1.0, 0, 1);
    chord(&f, 1.5, 2.5, 0, 1);
    ASSERT(run(&f, &m, NULL, &err) == 0);
    ASSERT(f.nm == 2);
    ASSERT_STR_EQ(f.show[0], "n0:6 n6:6 n12:12~ r24:12 n36:12");
    ASSERT_STR_EQ(f.show[1], "n0:12~ r12:12 r24:24");
    ASSERT(f.place[2].ticks == 18 && f.place[3].ticks == 24);
    ASSERT(f.start_tick[1] == 48 && f.number[1] == 2);
    return 0;
}


int
test_grid_pickup(void)
{
    double       beats[12];
    struct fx    f;
    const char  *err = NULL;
    struct wtt_grid_meter m;

    /* A one-beat pickup: measure 0 of 12 ticks, its note on beat 4. */
    steady(beats, 12, 0.5);
    m = meter(beats, 12, 120);
    m.pickup = 1;
    m.first_downbeat = 2;
    fx_init(&f);
    chord(&f, 0.0, 0.5, 0, 1);
    chord(&f, 0.5, 2.5, 0, 1);
    ASSERT(run(&f, &m, NULL, &err) == 0);
    ASSERT(f.nm == 2 && f.number[0] == 0 && f.ticks[0] == 12);
    ASSERT(f.number[1] == 1 && f.start_tick[1] == 12 && f.ticks[1] == 48);
    ASSERT_STR_EQ(f.show[0], "n0:12");
    ASSERT_STR_EQ(f.show[1], "n0:48");
    ASSERT(f.place[1].measure == 0 && f.place[1].beat == 4);
    ASSERT(f.place[2].measure == 1 && f.place[2].beat == 1);
    ASSERT(f.place[2].tick == 12);

    /* No notes: one measure of rest. */
    fx_init(&f);
    m = meter(beats, 12, 120);
    ASSERT(run(&f, &m, NULL, &err) == 0);
    ASSERT(f.nm == 1);
    ASSERT_STR_EQ(f.show[0], "r0:48");
    return 0;
}


int
test_grid_errors(void)
{
    double                  beats[4] = { 1.0, 1.5, 2.0, 2.5 }, one = 3.0;
    size_t                  hint = 1;
    struct wtt_grid_meter   m = meter(beats, 4, 120);
    struct wtt_grid_weights w;
    struct wtt_grid         g;
    const char             *err = NULL;

    wtt_grid_default_weights(&w);
    ASSERT(wtt_grid_init(&g, &m, &w, &err) == 0);
    /* Positions in beats from beats[0], extended outside them. */
    ASSERT(wtt_grid_locate(&g, 1.25, &hint) == 0.5 && hint == 1);
    ASSERT(wtt_grid_locate(&g, 2.25, &hint) == 2.5 && hint == 3);
    ASSERT(wtt_grid_locate(&g, 0.5, &hint) == -1 && hint == 1);
    ASSERT(wtt_grid_locate(&g, 3.5, &hint) == 5 && hint == 4);
    hint = 4;
    ASSERT(wtt_grid_locate(&g, 1.5, &hint) == 1 && hint == 2);
    /* One beat: every time is beat 0. */
    m = meter(&one, 1, 120);
    ASSERT(wtt_grid_init(&g, &m, &w, &err) == 0);
    ASSERT(wtt_grid_locate(&g, 9.0, &hint) == 0);

#define REFUSED(field, value)                                           \
    do {                                                                \
        m = meter(beats, 4, 120);                                       \
        m.field = (value);                                              \
        err = NULL;                                                     \
        ASSERT(wtt_grid_init(&g, &m, &w, &err) == -1 && err != NULL);   \
    } while (0)
    REFUSED(beat_type, 3);
    REFUSED(beats_per_measure, 0);
    REFUSED(beats_per_measure, 2.5);
    REFUSED(pickup, 4);
    REFUSED(pickup, 1.0 / 3);
    REFUSED(pickup, -1);
    REFUSED(first_downbeat, 0.5);
    REFUSED(tempo_bpm, 0);
    REFUSED(tempo_bpm, NAN);
    REFUSED(nb, 0);
#undef REFUSED
    beats[2] = INFINITY;
    m = meter(beats, 4, 120);
    ASSERT(wtt_grid_init(&g, &m, &w, &err) == -1);
    return 0;
}
