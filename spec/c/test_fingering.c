/*
 * test_fingering.c: the tab fingering (core/tab/wtt_fingering.h): a known
 * chord's candidates, the span and four-finger rules, two notes on one
 * string at once, the errors of bad input, and wtt_finger_run's chord
 * windows, reduction order, folding and unplayable list.
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
        .candidates = NCAND, .chord_gap_ms = 35, .chord_window_ms = 100,
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
    p.chord_window_ms = INFINITY;
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


/* -------------------------------------------------------------------------
 * wtt_finger_run
 * ---------------------------------------------------------------------- */

#define RUN_MAX 16

/* A piece of up to RUN_MAX notes and room for its answer. */
struct run_case {
    double                       pitch[RUN_MAX], start[RUN_MAX];
    double                       end[RUN_MAX];
    int                          out_pitch[RUN_MAX], string[RUN_MAX];
    int                          fret[RUN_MAX], chord[RUN_MAX];
    size_t                       placed[RUN_MAX];
    struct wtt_finger_unplayable unplayable[2 * RUN_MAX];
    struct wtt_finger_notes      notes;
    struct wtt_finger_placement  out;
};


/* Sets up `rc` for `n` notes of `pitch` and `start` (each 0.5 s long). */
static void
run_case(struct run_case *rc, const double *pitch, const double *start,
         size_t n)
{
    memset(rc, 0, sizeof(*rc));
    for (size_t i = 0; i < n; i++) {
        rc->pitch[i] = pitch[i];
        rc->start[i] = start[i];
        rc->end[i] = start[i] + 0.5;
    }
    rc->notes.pitch = rc->pitch;
    rc->notes.start_s = rc->start;
    rc->notes.end_s = rc->end;
    rc->notes.n = n;
    rc->out.pitch = rc->out_pitch;
    rc->out.string = rc->string;
    rc->out.fret = rc->fret;
    rc->out.chord = rc->chord;
    rc->out.placed = rc->placed;
    rc->out.unplayable = rc->unplayable;
}


int
test_fingering_run_chords(void)
{
    /* 0-90 ms: each within 35 ms of the previous and 100 ms of the first,
     * one chord. 120 ms is 30 ms after the previous but past the window:
     * a new chord. 156 ms is 36 ms after it: another. */
    struct wtt_finger_params p = defaults();
    const double    pitch[] = { 64, 52, 55, 60, 67, 69 };
    const double    start[] = { 0, 0.03, 0.06, 0.09, 0.12, 0.156 };
    const int       chord[] = { 1, 1, 1, 1, 2, 3 };
    struct run_case rc;
    const char     *err = NULL;

    run_case(&rc, pitch, start, 6);
    ASSERT(wtt_finger_run(&GUITAR, &p, &rc.notes, 0, &rc.out, &err) == 0);
    ASSERT(rc.out.n_chords == 3 && rc.out.n_placed == 6);
    ASSERT(rc.out.n_unplayable == 0 && rc.out.transitions > 0);
    for (size_t i = 0; i < 6; i++) {
        ASSERT(rc.chord[i] == chord[i]);
        ASSERT(rc.out_pitch[i] == (int) pitch[i]);
        ASSERT(GUITAR.tuning[rc.string[i] - 1] + rc.fret[i] == pitch[i]);
        /* Placed by start (here the notes' order). */
        ASSERT(rc.placed[i] == i);
    }
    /* Notes of one chord on distinct strings. */
    for (size_t i = 0; i < 4; i++) {
        for (size_t j = i + 1; j < 4; j++) {
            ASSERT(rc.string[i] != rc.string[j]);
        }
    }
    /* A wider window takes in the fifth note, a wider gap the sixth. */
    p.chord_window_ms = 120;
    ASSERT(wtt_finger_run(&GUITAR, &p, &rc.notes, 0, &rc.out, &err) == 0);
    ASSERT(rc.out.n_chords == 2 && rc.chord[4] == 1 && rc.chord[5] == 2);
    p.chord_window_ms = 200;
    p.chord_gap_ms = 37;
    ASSERT(wtt_finger_run(&GUITAR, &p, &rc.notes, 0, &rc.out, &err) == 0);
    ASSERT(rc.out.n_chords == 1);

    /* Equal starts: placed by the pitch played (33 folds to 45). */
    {
        const double pitch2[] = { 33, 44 };
        const double start2[] = { 0, 0 };
        p = defaults();
        run_case(&rc, pitch2, start2, 2);
        ASSERT(wtt_finger_run(&GUITAR, &p, &rc.notes, 1, &rc.out, &err)
               == 0);
        ASSERT(rc.placed[0] == 1 && rc.placed[1] == 0);
        ASSERT(rc.chord[0] == 1 && rc.chord[1] == 1);
    }
    return 0;
}


int
test_fingering_run_reduce(void)
{
    struct wtt_finger_params p = defaults();
    struct run_case          rc;
    const char              *err = NULL;

    /* SPREAD has one position a pitch. Frets 1 2 3 6 (span 5), no pitch
     * class doubled: the middle note goes (the lower of two: 42), then of
     * 21 63 86 (frets 1 3 6) the middle, then of two the higher. The
     * notes come out of pitch order: the chord is sorted first. */
    {
        const double pitch[] = { 63, 86, 21, 42 };
        const double start[] = { 0, 0, 0, 0 };
        const size_t removed[] = { 3, 0, 1 };
        run_case(&rc, pitch, start, 4);
        ASSERT(wtt_finger_run(&SPREAD, &p, &rc.notes, 0, &rc.out, &err)
               == 0);
        ASSERT(rc.out.n_placed == 1 && rc.placed[0] == 2);
        ASSERT(rc.string[2] == 5 && rc.fret[2] == 1 && rc.chord[2] == 1);
        ASSERT(rc.chord[0] == 0 && rc.string[1] == 0 && rc.fret[3] == 0);
        ASSERT(rc.out.n_unplayable == 3);
        for (size_t i = 0; i < 3; i++) {
            ASSERT(rc.unplayable[i].note == removed[i]);
            ASSERT(rc.unplayable[i].reason == WTT_FINGER_TOO_MANY);
            ASSERT(rc.unplayable[i].pitch == (int) pitch[removed[i]]);
        }
    }
    /* The same chord strummed: the list is by start, removals in order on
     * ties (63 and 86 at 0 s, then 42). */
    {
        const double pitch[] = { 63, 86, 21, 42 };
        const double start[] = { 0, 0, 0.01, 0.02 };
        const size_t removed[] = { 0, 1, 3 };
        run_case(&rc, pitch, start, 4);
        ASSERT(wtt_finger_run(&SPREAD, &p, &rc.notes, 0, &rc.out, &err)
               == 0);
        ASSERT(rc.out.n_unplayable == 3);
        for (size_t i = 0; i < 3; i++) {
            ASSERT(rc.unplayable[i].note == removed[i]);
        }
    }
    /* Six notes on five strings: first down to five (the middle, 42),
     * then until playable (21 and 22 share string 5): 63, then 22. */
    {
        const double pitch[] = { 21, 22, 42, 63, 84, 104 };
        const double start[] = { 0, 0, 0, 0, 0, 0 };
        const size_t removed[] = { 2, 3, 1 };
        run_case(&rc, pitch, start, 6);
        ASSERT(wtt_finger_run(&SPREAD, &p, &rc.notes, 0, &rc.out, &err)
               == 0);
        ASSERT(rc.out.n_placed == 3 && rc.out.n_unplayable == 3);
        for (size_t i = 0; i < 3; i++) {
            ASSERT(rc.unplayable[i].note == removed[i]);
        }
    }
    /* A doubled pitch class goes first: the first inner note with one
     * (G2, doubled by G3), not the middle (E3). The rest is an open C
     * with the low E, playable. */
    {
        const double pitch[] = { 40, 43, 48, 52, 55, 60, 64 };
        const double start[] = { 1, 1, 1, 1, 1, 1, 1 };
        run_case(&rc, pitch, start, 7);
        ASSERT(wtt_finger_run(&GUITAR, &p, &rc.notes, 0, &rc.out, &err)
               == 0);
        ASSERT(rc.out.n_placed == 6 && rc.out.n_unplayable == 1);
        ASSERT(rc.unplayable[0].note == 1 && rc.unplayable[0].pitch == 43);
        ASSERT(rc.chord[0] == 1 && rc.chord[6] == 1 && rc.chord[1] == 0);
    }
    return 0;
}


int
test_fingering_run_fold(void)
{
    /* The guitar plays 40 (E2) to 86 (E6 at the 22nd fret). */
    struct wtt_finger_params p = defaults();
    const double    pitch[] = { 28, 100, 60.5, 64 };
    const double    start[] = { 0, 1, 2, 3 };
    struct run_case rc;
    const char     *err = NULL;

    run_case(&rc, pitch, start, 4);
    ASSERT(wtt_finger_run(&GUITAR, &p, &rc.notes, 0, &rc.out, &err) == 0);
    ASSERT(rc.out.n_placed == 1 && rc.placed[0] == 3);
    ASSERT(rc.out.n_unplayable == 3);
    for (size_t i = 0; i < 3; i++) {
        ASSERT(rc.unplayable[i].note == i);
        ASSERT(rc.unplayable[i].reason == WTT_FINGER_OUT_OF_RANGE);
        ASSERT(rc.unplayable[i].pitch == -1 && rc.out_pitch[i] == -1);
        ASSERT(rc.chord[i] == 0);
    }

    /* Folded: up an octave to 40, down two (88 is still too high) to 76;
     * a pitch that is not a MIDI note stays out of range. */
    ASSERT(wtt_finger_run(&GUITAR, &p, &rc.notes, 1, &rc.out, &err) == 0);
    ASSERT(rc.out.n_placed == 3 && rc.out.n_unplayable == 3);
    ASSERT(rc.placed[0] == 0 && rc.placed[1] == 1 && rc.placed[2] == 3);
    ASSERT(rc.unplayable[0].reason == WTT_FINGER_FOLDED);
    ASSERT(rc.unplayable[0].pitch == 40 && rc.out_pitch[0] == 40);
    ASSERT(rc.string[0] == 6 && rc.fret[0] == 0 && rc.chord[0] == 1);
    ASSERT(rc.unplayable[1].reason == WTT_FINGER_FOLDED);
    ASSERT(rc.unplayable[1].pitch == 76 && rc.out_pitch[1] == 76);
    ASSERT(rc.unplayable[2].reason == WTT_FINGER_OUT_OF_RANGE);
    ASSERT(rc.unplayable[2].note == 2);

    /* Between strings with no fret for it: folding does not move it. */
    {
        const double gap[] = { 33, 130 };
        const double t[] = { 0, 1 };
        run_case(&rc, gap, t, 2);
        ASSERT(wtt_finger_run(&SPREAD, &p, &rc.notes, 1, &rc.out, &err)
               == 0);
        ASSERT(rc.out.n_unplayable == 2);
        ASSERT(rc.unplayable[0].reason == WTT_FINGER_OUT_OF_RANGE);
        ASSERT(rc.unplayable[1].reason == WTT_FINGER_FOLDED);
        ASSERT(rc.unplayable[1].pitch == 106 && rc.string[1] == 1);
    }

    /* A folded note removed from its chord is listed twice, at its folded
     * pitch the second time: 31 -> 43, a doubled G. A note out of range
     * later than the chord comes after the removal. */
    {
        const double chord[] = { 40, 31, 45, 50, 60, 64, 67, 20 };
        const double t[] = { 1, 1, 1, 1, 1, 1, 1, 5 };
        run_case(&rc, chord, t, 8);
        p.candidates = 4;
        ASSERT(wtt_finger_run(&GUITAR, &p, &rc.notes, 1, &rc.out, &err)
               == 0);
        ASSERT(rc.out.n_placed == 7 && rc.out.n_unplayable == 3);
        ASSERT(rc.unplayable[0].note == 1);
        ASSERT(rc.unplayable[0].reason == WTT_FINGER_FOLDED);
        ASSERT(rc.unplayable[1].note == 1 && rc.unplayable[1].pitch == 43);
        ASSERT(rc.unplayable[1].reason == WTT_FINGER_TOO_MANY);
        ASSERT(rc.unplayable[2].note == 7);
        ASSERT(rc.unplayable[2].reason == WTT_FINGER_FOLDED);
        ASSERT(rc.out_pitch[7] == 44 && rc.chord[7] == 2);
    }
    return 0;
}


int
test_fingering_run_errors(void)
{
    struct wtt_finger_params p = defaults();
    const double    pitch[] = { 64, 20, 65 };
    double          start[] = { 0, NAN, 1 };
    struct run_case rc;
    const char     *err = NULL;

    /* A note out of range is never searched: its time does not matter. */
    run_case(&rc, pitch, start, 3);
    ASSERT(wtt_finger_run(&GUITAR, &p, &rc.notes, 0, &rc.out, &err) == 0);
    ASSERT(rc.out.n_placed == 2 && rc.out.n_unplayable == 1);
    rc.start[2] = INFINITY;
    ASSERT(wtt_finger_run(&GUITAR, &p, &rc.notes, 0, &rc.out, &err) == -1);
    ASSERT_STR_EQ("note times must be finite", err);

    /* No notes: nothing placed, nothing listed. */
    run_case(&rc, pitch, start, 0);
    ASSERT(wtt_finger_run(&GUITAR, &p, &rc.notes, 1, &rc.out, &err) == 0);
    ASSERT(rc.out.n_placed == 0 && rc.out.n_unplayable == 0);
    ASSERT(rc.out.n_chords == 0 && rc.out.transitions == 0);
    return 0;
}


int
test_fingering_search_many(void)
{
    /* Twelve strings tuned alike: a fretted three-note chord has 1,320
     * fingerings, all kept in enumeration order with 4096 candidates. The
     * cheapest keeps the fretted bass on the two lowest strings and the
     * voices in order, (11, 10, 9): the 1,199th. The path back from the
     * next chord must find it past the first 256. */
    struct wtt_finger_instrument twelve = {
        .n_strings = 12,
        .tuning = { 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40 },
        .capo = 0, .max_fret = 12, .ordered = 1 };
    struct wtt_finger_params     p = defaults();
    const int                    pitch[] = { 41, 42, 43, 40 };
    const int                    size[] = { 3, 1 };
    const double                 start[] = { 0, 0, 0, 1 };
    const double                 end[] = { 0.5, 0.5, 0.5, 1.5 };
    struct wtt_finger_piece      piece = { pitch, start, end, 4, size, 2 };
    static struct wtt_finger_candidate out[WTT_FINGER_MAX_CANDIDATES];
    int                          strings[4], frets[4];
    size_t                       n = 0, best = 0, steps;
    const char                  *err = NULL;

    p.candidates = WTT_FINGER_MAX_CANDIDATES;
    ASSERT(wtt_finger_check(&twelve, &p, &err) == 0);
    ASSERT(wtt_finger_candidates(&twelve, &p, pitch, 3, out, &n, &err)
           == 0);
    ASSERT(n == 1320);
    for (size_t i = 1; i < n; i++) {
        if (out[i].cost < out[best].cost) {
            best = i;
        }
    }
    ASSERT(best == 1198);
    ASSERT(out[best].string[0] == 11 && out[best].string[2] == 9);

    ASSERT(wtt_finger_search(&twelve, &p, &piece, strings, frets, &steps,
                             NULL, &err) == 0);
    ASSERT(strings[0] == 11 && strings[1] == 10 && strings[2] == 9);
    ASSERT(frets[0] == 1 && frets[1] == 2 && frets[2] == 3);
    ASSERT(frets[3] == 0);
    return 0;
}
