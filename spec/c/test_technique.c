/*
 * test_technique.c: playing techniques (core/tab/wtt_technique.h): bends,
 * their release and vibrato told apart from a contour read in pieces,
 * noise and dips that are nothing, the legato kinds, legato only without
 * a new pluck, close enough and alone in its chord, and let-ring over the
 * next chord on another string.
 */
#include "test.h"
#include "wtt_technique.h"

#include <stddef.h>

/* What a contour shows, its bins fed `step` at a time. */
static struct wtt_technique_bend
shows(const double *bins, size_t n, size_t step)
{
    struct wtt_technique_contour c;
    struct wtt_technique_bend    b;

    wtt_technique_contour_start(&c);
    for (size_t k = 0; k < n; k += step) {
        wtt_technique_contour_add(&c, bins + k, n - k < step ? n - k : step);
    }
    wtt_technique_contour_end(&c, &b);
    return b;
}


int
test_technique_contour(void)
{
    const double up[] = { 0, 1, 3, 5, 6, 6, 6, 6 };          /* 2 semis */
    const double back[] = { 0, 2, 3, 3, 3, 2, 1, 0 };        /* released */
    const double noise[] = { 0, 0, 1, 0, 0 };
    const double once[] = { 0, 2, 0, 0 };                   /* one frame */
    const double dip[] = { 0, -3, -6, -6, -3 };
    const double vib[] = { 0, 1, 2, 1, 0, 1, 2, 1, 0, 1, 2, 1, 0 };
    const double wide[] = { 0, 6, 0, 6, 0, 6, 0, 6, 0 };    /* 2 semis */
    const double two[] = { 6, 6 };
    struct wtt_technique_bend b;

    for (size_t step = 1; step <= 8; step += 3) {
        b = shows(up, 8, step);
        ASSERT(b.type == WTT_TECHNIQUE_BEND && b.semitones == 2 && !b.release);
        b = shows(back, 8, step);
        ASSERT(b.type == WTT_TECHNIQUE_BEND && b.semitones == 1 && b.release);
        b = shows(vib, 13, step);
        ASSERT(b.type == WTT_TECHNIQUE_VIBRATO);
    }
    ASSERT(shows(noise, 5, 5).type == WTT_TECHNIQUE_NONE);
    ASSERT(shows(once, 4, 4).type == WTT_TECHNIQUE_NONE);
    ASSERT(shows(dip, 5, 5).type == WTT_TECHNIQUE_NONE);
    ASSERT(shows(two, 2, 2).type == WTT_TECHNIQUE_NONE);
    /* Many turns over two semitones: a bend, not vibrato; it ends at the
     * bottom, so released. */
    b = shows(wide, 9, 9);
    ASSERT(b.type == WTT_TECHNIQUE_BEND && b.semitones == 2 && b.release);
    /* Half steps: 4 bins (1.33 semitones) make 1.5. */
    {
        const double four[] = { 0, 4, 4, 4 };
        b = shows(four, 4, 4);
        ASSERT(b.type == WTT_TECHNIQUE_BEND && b.semitones == 1.5);
        ASSERT(!b.release);
    }
    return 0;
}


int
test_technique_legato_kinds(void)
{
    int up = -1;

#define KIND(from, to) wtt_technique_legato_kind((from), (to), &up)
    ASSERT(KIND(2, 4) == WTT_TECHNIQUE_HAMMER_ON && up);
    ASSERT(KIND(4, 2) == WTT_TECHNIQUE_PULL_OFF && !up);
    ASSERT(KIND(2, 9) == WTT_TECHNIQUE_SLIDE && up);
    ASSERT(KIND(9, 2) == WTT_TECHNIQUE_SLIDE && !up);
    ASSERT(KIND(5, 1) == WTT_TECHNIQUE_PULL_OFF);
    ASSERT(KIND(2, 6) == WTT_TECHNIQUE_HAMMER_ON);
    ASSERT(KIND(2, 7) == WTT_TECHNIQUE_SLIDE);   /* 5 */
    ASSERT(KIND(7, 2) == WTT_TECHNIQUE_SLIDE);
    /* From an open string down is no pull-off (nothing to pull from). */
    ASSERT(KIND(0, -1) == WTT_TECHNIQUE_SLIDE && !up);
    ASSERT(KIND(0, 3) == WTT_TECHNIQUE_HAMMER_ON);
#undef KIND
    return 0;
}


/* The results of a pass, by note. */
struct got {
    struct wtt_technique_result r[16];
    size_t                      order[16], n;
};

static void
done(void *ctx, const struct wtt_technique_result *r)
{
    struct got *g = ctx;

    g->r[r->note] = *r;
    g->order[g->n++] = r->note;
}

/* A note: start, end, string, fret, onset (< 0: unknown), chord (same as
 * the previous note's or not). */
static struct wtt_technique_note
note(double s, double e, int string, double fret, double onset, int same)
{
    struct wtt_technique_note n = { s, e, fret, onset < 0 ? 0 : onset,
                                    onset >= 0, string, same,
                                    { WTT_TECHNIQUE_NONE, 0, 0 } };
    return n;
}


int
test_technique_pass(void)
{
    struct wtt_technique_result run[4];
    struct wtt_technique_pass   p;
    struct got                  g = { 0 };
    const char                 *err = NULL;
    struct wtt_technique_note   notes[] = {
        note(0.00, 0.25, 3, 2, 0.9, 0),     /* 1: plucked */
        note(0.25, 0.50, 3, 4, 0.1, 0),     /* 2: up 2, no pluck: hammer */
        note(0.50, 0.75, 3, 2, 0.2, 0),     /* 3: down 2: pull-off */
        note(0.75, 1.00, 3, 9, 0.1, 0),     /* 4: up 7: slide */
        note(1.00, 1.25, 3, 7, 0.9, 0),     /* 5: plucked */
        note(1.25, 1.50, 3, 9, -1, 0),      /* 6: no onset known */
        note(1.60, 1.80, 3, 7, 0.1, 0),     /* 7: 100 ms gap: none */
        note(1.80, 2.00, 3, 9, 0.1, 0),     /* 8: a chord of two: none */
        note(1.80, 2.00, 2, 9, 0.1, 1),     /* 9 */
        note(2.00, 2.20, 3, 9, 0.1, 0),     /* 10: same fret: none */
    };
    size_t n = sizeof(notes) / sizeof(notes[0]);

    wtt_technique_pass_init(&p, run, 4, done, &g);
    for (size_t i = 0; i < n; i++) {
        ASSERT(wtt_technique_pass_add(&p, &notes[i], &err) == 0);
    }
    wtt_technique_pass_end(&p);
    ASSERT(g.n == n);
    for (size_t i = 0; i < n; i++) {
        ASSERT(g.order[i] == i + 1);
    }
    ASSERT(g.r[1].legato == WTT_TECHNIQUE_NONE);
    ASSERT(g.r[2].legato == WTT_TECHNIQUE_HAMMER_ON && g.r[2].from == 1);
    ASSERT(g.r[3].legato == WTT_TECHNIQUE_PULL_OFF && g.r[3].from == 2);
    ASSERT(g.r[4].legato == WTT_TECHNIQUE_SLIDE && g.r[4].up);
    ASSERT(g.r[5].legato == WTT_TECHNIQUE_NONE);
    ASSERT(g.r[6].legato == WTT_TECHNIQUE_NONE);
    ASSERT(g.r[7].legato == WTT_TECHNIQUE_NONE);
    ASSERT(g.r[8].legato == WTT_TECHNIQUE_NONE);
    ASSERT(g.r[9].legato == WTT_TECHNIQUE_NONE);
    ASSERT(g.r[10].legato == WTT_TECHNIQUE_NONE);
    for (size_t i = 1; i <= n; i++) {
        ASSERT(!g.r[i].let_ring);
    }

    /* Let ring: a low E held over a note on string 2 rings; that note,
     * ending before the next, does not; a note over the next chord on
     * its own string does not either. */
    {
        struct wtt_technique_note ring[] = {
            note(0.0, 2.0, 6, 0, -1, 0),
            note(0.5, 0.9, 2, 0, -1, 0),
            note(1.0, 1.2, 2, 3, -1, 0),
            note(1.1, 3.0, 2, 5, -1, 0),
            note(1.5, 1.6, 2, 3, -1, 0),
        };
        struct got g2 = { 0 };
        wtt_technique_pass_init(&p, run, 4, done, &g2);
        for (size_t i = 0; i < 5; i++) {
            ASSERT(wtt_technique_pass_add(&p, &ring[i], &err) == 0);
        }
        wtt_technique_pass_end(&p);
        ASSERT(g2.r[1].let_ring && !g2.r[2].let_ring);
        ASSERT(!g2.r[3].let_ring && !g2.r[4].let_ring);
    }

    /* A chord of notes all let ring over the next on another string;
     * only the chord's last note may take a legato. */
    {
        struct wtt_technique_note chord[] = {
            note(0.0, 0.5, 3, 2, 0.9, 0),
            note(0.5, 2.0, 3, 4, 0.1, 0),     /* same chord as the next */
            note(0.5, 2.0, 4, 4, 0.1, 1),
            note(1.0, 1.5, 1, 0, 0.9, 0),
        };
        struct got g3 = { 0 };
        wtt_technique_pass_init(&p, run, 4, done, &g3);
        for (size_t i = 0; i < 4; i++) {
            ASSERT(wtt_technique_pass_add(&p, &chord[i], &err) == 0);
        }
        wtt_technique_pass_end(&p);
        ASSERT(g3.r[2].legato == WTT_TECHNIQUE_NONE);
        ASSERT(g3.r[2].let_ring && g3.r[3].let_ring && !g3.r[1].let_ring);
    }

    /* A legato on the previous note of its own chord's string: kept when
     * that note is the one just before (and the chord ends here). */
    {
        struct wtt_technique_note same[] = {
            note(0.0, 0.5, 3, 2, 0.9, 0),
            note(0.5, 0.6, 3, 4, 0.1, 1),
        };
        struct got g4 = { 0 };
        wtt_technique_pass_init(&p, run, 4, done, &g4);
        ASSERT(wtt_technique_pass_add(&p, &same[0], &err) == 0);
        ASSERT(wtt_technique_pass_add(&p, &same[1], &err) == 0);
        wtt_technique_pass_end(&p);
        ASSERT(g4.r[2].legato == WTT_TECHNIQUE_HAMMER_ON && g4.r[2].from == 1);
    }

    /* Errors: a string out of range, a chord larger than the buffer. */
    {
        struct wtt_technique_note bad = note(0, 1, 65, 0, -1, 0);
        struct wtt_technique_note big = note(0, 1, 1, 0, -1, 1);
        struct got                g5 = { 0 };
        wtt_technique_pass_init(&p, run, 2, done, &g5);
        ASSERT(wtt_technique_pass_add(&p, &bad, &err) == -1 && err != NULL);
        bad.string = 0;
        ASSERT(wtt_technique_pass_add(&p, &bad, &err) == -1);
        ASSERT(wtt_technique_pass_add(&p, &big, &err) == 0);
        ASSERT(wtt_technique_pass_add(&p, &big, &err) == 0);
        err = NULL;
        ASSERT(wtt_technique_pass_add(&p, &big, &err) == -1 && err != NULL);
    }
    return 0;
}
