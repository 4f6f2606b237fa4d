/*
 * test_fingering.c: the tab fingering search (core/tab/wtt_fingering.h):
 * a known chord's candidates, the span and four-finger rules, two notes on
 * one string at once, and the errors of bad input.
 */
#include "test.h"
#include "wtt_fingering.h"

#include <math.h>
#include <stdint.h>

#define NCAND 48

static const struct wtt_finger_instrument GUITAR = {
    .n_strings = 6, .tuning = { 64, 59, 55, 50, 45, 40 },
    .capo = 0, .max_fret = 22, .ordered = 1,
};

/* A spread of strings 20 semitones apart with 12 frets: every pitch has
 * one position, so a chord has one assignment at most. */
static const struct wtt_finger_instrument SPREAD = {
    .n_strings = 5, .tuning = { 100, 80, 60, 40, 20 },
    .capo = 0, .max_fret = 12, .ordered = 1,
};


/* The tab plugin's defaults (plugins/tab/schema.lua). */
static struct wtt_finger_params
defaults(void)
{
    struct wtt_finger_params p = {
        .move = 0.5, .move_line = 0.3, .stretch = 1.0, .height = 0.02,
        .home = 3, .open = 0.1, .string = 0.15, .ring = 1.5, .skip = 0.6,
        .cross = 1.0, .bass = 1.0, .span = 4, .span_open = 5,
        .candidates = NCAND,
    };
    return p;
}


int
test_fingering_candidates(void)
{
    struct wtt_finger_params    p = defaults();
    struct wtt_finger_candidate out[NCAND];
    const int                   c_major[] = { 48, 52, 55, 60, 64 };
    const char                 *err = NULL;
    size_t                      n = 0, best = 0;

    ASSERT(wtt_finger_check(&GUITAR, &p, &err) == 0);
    ASSERT(wtt_finger_candidates(&GUITAR, &p, c_major, 5, out, &n, &err)
           == 0);
    ASSERT(n > 1 && n <= NCAND);
    for (size_t i = 0; i < n; i++) {
        unsigned used = 0;
        int      lo = 99, hi = 0, open = 0;
        for (int j = 0; j < 5; j++) {
            int s = out[i].string[j], f = out[i].fret[j];
            ASSERT(s >= 1 && s <= 6 && !(used & (1u << s)));
            used |= 1u << s;
            ASSERT(GUITAR.tuning[s - 1] + f == c_major[j]);
            if (f > 0) {
                lo = f < lo ? f : lo;
                hi = f > hi ? f : hi;
            } else {
                open = 1;
            }
        }
        ASSERT(hi == 0 || hi - lo <= (open ? p.span_open : p.span));
        ASSERT(out[i].lo == (hi ? lo : 0) && out[i].hi == hi);
        if (out[i].cost < out[best].cost) {
            best = i;
        }
    }
    /* The cheapest is the open C shape: x32010, two open strings. */
    {
        const int s[] = { 5, 4, 3, 2, 1 }, f[] = { 3, 2, 0, 1, 0 };
        for (int j = 0; j < 5; j++) {
            ASSERT(out[best].string[j] == s[j] && out[best].fret[j] == f[j]);
        }
        ASSERT(fabs(out[best].cost - -0.2) < 1e-12);
        ASSERT(out[best].lo == 1 && out[best].hi == 3);
    }
    /* A cap below the count keeps the cheapest, sorted, ties in
     * enumeration order. */
    p.candidates = 4;
    ASSERT(wtt_finger_candidates(&GUITAR, &p, c_major, 5, out, &n, &err)
           == 0);
    ASSERT(n == 4);
    ASSERT(out[0].string[0] == 5 && out[0].fret[0] == 3);
    for (size_t i = 1; i < n; i++) {
        ASSERT(out[i - 1].cost < out[i].cost
               || (out[i - 1].cost == out[i].cost
                   && out[i - 1].order < out[i].order));
    }
    return 0;
}


int
test_fingering_rules(void)
{
    struct wtt_finger_params     p = defaults();
    struct wtt_finger_instrument three = {
        .n_strings = 3, .tuning = { 70, 60, 50 }, .capo = 0,
        .max_fret = 9, .ordered = 1 };
    const int  fretted[] = { 51, 65, 76 }; /* s3 f1, s2 f5, s1 f6: span 5 */
    const int  with_open[] = { 50, 61, 76 }; /* open, f1, f6: span 5 */
    const int  five[] = { 21, 42, 63, 84, 105 };  /* frets 1 2 3 4 5 */
    const int  four[] = { 21, 42, 63, 84, 104 };  /* frets 1 2 3 4 4 */
    const int  barre[] = { 21, 41, 61, 82, 103 }; /* frets 1 1 1 2 3 */
    const char *err = NULL;

    /* Fretted notes span at most `span` frets, `span_open` with open
     * strings. */
    ASSERT(wtt_finger_playable(&three, &p, fretted, 3, &err) == 0);
    p.span = 5;
    ASSERT(wtt_finger_playable(&three, &p, fretted, 3, &err) == 1);
    p.span = 4;
    ASSERT(wtt_finger_playable(&three, &p, with_open, 3, &err) == 1);
    p.span_open = 4;
    ASSERT(wtt_finger_playable(&three, &p, with_open, 3, &err) == 0);
    p = defaults();
    /* Four fingers: five fretted notes on five frets cannot be held, on
     * four (or a barre) they can. */
    ASSERT(wtt_finger_playable(&SPREAD, &p, five, 5, &err) == 0);
    ASSERT(wtt_finger_playable(&SPREAD, &p, four, 5, &err) == 1);
    ASSERT(wtt_finger_playable(&SPREAD, &p, barre, 5, &err) == 1);
    return 0;
}


int
test_fingering_forbidden(void)
{
    /* E2 (only the open 6th string), then A2: on the 6th string at the
     * 5th fret it is cheapest, unless the E2 started under 30 ms before,
     * when one string cannot play both and A2 goes to the open 5th. */
    struct wtt_finger_params p = defaults();
    const int                pitch[] = { 40, 45 };
    const int                size[] = { 1, 1 };
    double                   start[] = { 0.0, 0.5 };
    const double             end[] = { 0.4, 0.9 };
    struct wtt_finger_piece  piece = { pitch, start, end, 2, size, 2 };
    int                      strings[2], frets[2];
    size_t                   steps = 0;
    const char              *err = NULL;

    ASSERT(wtt_finger_search(&GUITAR, &p, &piece, strings, frets, &steps,
                             NULL, &err) == 0);
    ASSERT(strings[0] == 6 && frets[0] == 0);
    ASSERT(strings[1] == 6 && frets[1] == 5);
    ASSERT(steps == 2);
    start[1] = 0.01;
    ASSERT(wtt_finger_search(&GUITAR, &p, &piece, strings, frets, &steps,
                             NULL, &err) == 0);
    ASSERT(strings[1] == 5 && frets[1] == 0);
    return 0;
}


int
test_fingering_errors(void)
{
    struct wtt_finger_params     p = defaults();
    struct wtt_finger_instrument bad = GUITAR;
    struct wtt_finger_candidate  out[NCAND];
    const int                    pitch[] = { 40, 45, 200 };
    const int                    five[] = { 21, 42, 63, 84, 105 };
    const double                 t[] = { 0, 1, 2, 3, 4 };
    int                          size[] = { 1, 1 };
    int                          strings[5], frets[5];
    struct wtt_finger_piece      piece = { pitch, t, t, 2, size, 2 };
    size_t                       n, steps, bad_chord;
    const char                  *err = NULL;

    bad.n_strings = 13;
    ASSERT(wtt_finger_check(&bad, &p, &err) == -1 && err != NULL);
    bad = GUITAR;
    bad.capo = 22;
    ASSERT(wtt_finger_check(&bad, &p, &err) == -1);
    p.candidates = 0;
    ASSERT(wtt_finger_check(&GUITAR, &p, &err) == -1);
    p = defaults();
    p.ring = NAN;
    ASSERT(wtt_finger_check(&GUITAR, &p, &err) == -1);
    p = defaults();

    /* Chords of no notes, more notes than strings, a pitch out of MIDI. */
    ASSERT(wtt_finger_candidates(&GUITAR, &p, pitch, 0, out, &n, &err)
           == -1);
    ASSERT(wtt_finger_playable(&GUITAR, &p, five, 7, &err) == -1);
    ASSERT(wtt_finger_playable(&GUITAR, &p, pitch, 3, &err) == -1);
    ASSERT_STR_EQ("a pitch must be in 0-127", err);

    /* Sizes that do not add up to the notes, in either direction. */
    piece.n_notes = 3;
    ASSERT(wtt_finger_search(&GUITAR, &p, &piece, strings, frets, &steps,
                             NULL, &err) == -1);
    piece.n_notes = 1;
    ASSERT(wtt_finger_search(&GUITAR, &p, &piece, strings, frets, &steps,
                             NULL, &err) == -1);
    size[1] = 0;
    piece.n_notes = 2;
    ASSERT(wtt_finger_search(&GUITAR, &p, &piece, strings, frets, &steps,
                             NULL, &err) == -1);
    size[1] = 1;
    ASSERT(wtt_finger_search(&GUITAR, &p, &piece, strings, frets, &steps,
                             &bad_chord, &err) == 0);

    /* A chord with no fingering is named. */
    {
        const int               pitches[] = { 21, 21, 42, 63, 84, 105 };
        const int               sizes[] = { 1, 5 };
        const double            t6[] = { 0, 1, 1, 1, 1, 1 };
        struct wtt_finger_piece pc = { pitches, t6, t6, 6, sizes, 2 };
        int                     s6[6], f6[6];
        ASSERT(wtt_finger_search(&SPREAD, &p, &pc, s6, f6, &steps,
                                 &bad_chord, &err) == -1);
        ASSERT(bad_chord == 1);
        ASSERT_STR_EQ("a chord has no fingering", err);
    }
    /* Times must be finite. */
    {
        const double nan_t[] = { 0, NAN };
        struct wtt_finger_piece pc = { pitch, nan_t, t, 2, size, 2 };
        ASSERT(wtt_finger_search(&GUITAR, &p, &pc, strings, frets, &steps,
                                 &bad_chord, &err) == -1);
        ASSERT(bad_chord == SIZE_MAX);
    }
    return 0;
}
