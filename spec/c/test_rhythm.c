/*
 * test_rhythm.c: tempo and beat tracking (core/tab/wtt_rhythm.h) on click
 * tracks whose beats are known: notes grouped into onsets, the envelope's
 * bumps, the autocorrelation's peak and the candidates, the DP following
 * a known grid (and a drifting one), the half/double choice, triplet
 * complexity, beats covering the notes, the fitted tempo, accents and
 * their contrasts, a given pickup, and the errors of bad input.
 */
#include "test.h"
#include "wtt_rhythm.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#define MAXC 512
#define FPS  WTT_RHYTHM_FPS

/* Onsets the tests fill directly: one chord per entry. */
struct fixture {
    double                   t[MAXC], w[MAXC], low[MAXC];
    uint32_t                 pcs[MAXC], first[MAXC];
    int                      size[MAXC];
    struct wtt_rhythm_chords ch;
};

static void
fixture_init(struct fixture *f)
{
    f->ch.t = f->t;
    f->ch.w = f->w;
    f->ch.low = f->low;
    f->ch.pcs = f->pcs;
    f->ch.size = f->size;
    f->ch.first = f->first;
    f->ch.n = 0;
}

/* Appends an onset: a single note of `pitch` unless size > 1. */
static void
onset(struct fixture *f, double t, double w, int pitch, int size)
{
    size_t c = f->ch.n++;

    f->t[c] = t;
    f->w[c] = w;
    f->low[c] = pitch;
    f->pcs[c] = 1u << (pitch % 12);
    f->size[c] = size;
    f->first[c] = (uint32_t) c;
}

/* A click every `period_s` from t0, `n` of them, weight w (accent on
 * every `accent`-th click, from the first, when accent > 0). */
static void
clicks(struct fixture *f, double t0, double period_s, int n, int accent)
{
    for (int k = 0; k < n; k++) {
        int strong = accent > 0 && k % accent == 0;
        onset(f, t0 + k * period_s, strong ? 1.0 : 0.5, strong ? 40 : 64,
              1);
    }
}

/* The envelope of f's onsets in fresh memory (free it); NULL on error. */
static double *
envelope_of(struct fixture *f, struct wtt_rhythm_span *sp)
{
    const char *err;
    double     *env;

    if (wtt_rhythm_span_of(&f->ch, sp, &err) != 0) {
        return NULL;
    }
    env = malloc(sp->nf * sizeof(*env));
    if (env != NULL) {
        wtt_rhythm_envelope(&f->ch, sp->origin, env, sp->nf);
    }
    return env;
}


int
test_rhythm_group(void)
{
    /* Two keyless notes 30 ms apart (one onset), a keyed chord whose
     * notes are a second apart, and a keyless note 60 ms after the
     * first keyless onset (a new onset). Notes in file order: */
    const double   start[] = { 1.00, 1.03, 2.00, 1.06, 3.00, 1.50 };
    const double   accent[] = { 0.5, 0.9, 0.4, 0.7, 0.3, 0.8 };
    const int      pitch[] = { 64, 60, 40, 67, 47, 52 };
    const uint32_t key[] = { 0, 0, 1, 0, 1, 0 };
    double         t[6], w[6], low[6];
    uint32_t       pcs[6], first[6], last[6], by_key[2] = { 0, 0 };
    int            size[6];
    size_t         prev[6];
    struct wtt_rhythm_chords   ch = { t, w, low, pcs, size, first, 0 };
    struct wtt_rhythm_grouping g;
    const char                *err = NULL;

    wtt_rhythm_group_init(&g, &ch, by_key, 1, last);
    for (int i = 0; i < 6; i++) {
        prev[i] = wtt_rhythm_group_add(&g, start[i], accent[i], pitch[i],
                                       key[i]);
    }
    ASSERT(wtt_rhythm_group_finish(&g, &err) == 0);
    ASSERT(ch.n == 4);
    /* Notes 0 and 1 (30 ms apart) are one onset; note 3 is 60 ms after
     * that onset's first note, so it starts another. */
    ASSERT(prev[0] == 0 && prev[1] == 1 && prev[2] == 0 && prev[3] == 0);
    ASSERT(prev[4] == 3);               /* the key joins notes 2 and 4 */
    ASSERT(prev[5] == 0);
    /* Time order: 1.00, 1.06, 1.50, 2.00 (the keyed chord's first note
     * came before the 1.06 and 1.50 ones in file order). */
    ASSERT(t[0] == 1.00 && t[1] == 1.06 && t[2] == 1.50 && t[3] == 2.00);
    ASSERT(w[0] == 0.9 && low[0] == 60 && size[0] == 2);
    ASSERT(pcs[0] == ((1u << 4) | (1u << 0)));
    ASSERT(first[0] == 0 && first[1] == 3 && first[2] == 5);
    ASSERT(first[3] == 2 && size[3] == 2 && low[3] == 40 && w[3] == 0.4);
    ASSERT(pcs[3] == ((1u << 4) | (1u << 11)));
    return 0;
}


int
test_rhythm_envelope(void)
{
    struct fixture         f;
    struct wtt_rhythm_span sp;
    double                *env;
    const char            *err;
    size_t                 peak = 0;

    fixture_init(&f);
    onset(&f, 2.0, 0.3, 60, 1);
    onset(&f, 3.0, 0.9, 60, 1);
    env = envelope_of(&f, &sp);
    ASSERT(env != NULL);
    /* A second of margin each side; frames at 50 per second. */
    ASSERT(sp.origin == 1.0 && sp.nf == 151);
    ASSERT(sp.from == 50 && sp.to == 100);
    /* Weights scaled to a mean of 1: 0.5 and 1.5, Gaussian bumps. */
    ASSERT(fabs(env[50] - 0.5) < 1e-12 && fabs(env[100] - 1.5) < 1e-12);
    ASSERT(fabs(env[101] - env[99]) < 1e-12 && env[101] < env[100]);
    ASSERT(fabs(env[101] / env[100] - exp(-0.5 / 2.25)) < 1e-12);
    ASSERT(env[75] == 0 && env[0] == 0 && env[150] == 0);
    for (size_t j = 0; j < sp.nf; j++) {
        peak = env[j] > env[peak] ? j : peak;
    }
    ASSERT(peak == 100);
    free(env);

    /* Ten days of notes: more frames than the envelope takes. */
    f.t[1] = 864000.0;
    ASSERT(wtt_rhythm_span_of(&f.ch, &sp, &err) == 0);
    f.t[1] = 1e8;
    err = NULL;
    ASSERT(wtt_rhythm_span_of(&f.ch, &sp, &err) == -1 && err != NULL);
    return 0;
}


int
test_rhythm_candidates(void)
{
    struct fixture f;
    double         acf[154], periods[WTT_RHYTHM_MAX_PERIODS];
    const char    *err;
    size_t         np, best = 1;

    /* A click track at 120 bpm: 25 frames a beat. */
    fixture_init(&f);
    clicks(&f, 1.0, 0.5, 60, 0);
    ASSERT(wtt_rhythm_autocorrelation(&f.ch, 153, 29.5, acf, &err) == 0);
    for (size_t l = 1; l <= 40; l++) {
        best = acf[l] > acf[best] ? l : best;
    }
    ASSERT(best == 25);
    ASSERT(acf[50] > acf[37] && acf[12] < acf[25] / 10);
    np = wtt_rhythm_candidates(acf, 12, 75, periods);
    ASSERT(np >= 3);
    ASSERT(fabs(periods[0] - 25) < 0.01);
    /* Half of 25 is 240 bpm, in range; double is 60 bpm. */
    for (size_t i = 1; i < np; i++) {
        ASSERT(fabs(periods[i] / periods[0] - 1) >= 0.04);
        ASSERT(periods[i] >= 12.5 && periods[i] <= 75);
    }
    ASSERT(fabs(periods[np - 1] - 37.5) < 0.01);    /* 3/2 comes last */
    {
        int half = 0, twice = 0;
        for (size_t i = 0; i < np; i++) {
            half |= fabs(periods[i] / 12.5 - 1) < 0.01;
            twice |= fabs(periods[i] / 50 - 1) < 0.01;
        }
        ASSERT(half && twice);
    }

    /* No onsets closer than the slowest beat: no peak. */
    fixture_init(&f);
    onset(&f, 1.0, 1, 60, 1);
    onset(&f, 9.0, 1, 60, 1);
    ASSERT(wtt_rhythm_autocorrelation(&f.ch, 153, 8.06, acf, &err) == 0);
    ASSERT(wtt_rhythm_candidates(acf, 12, 75, periods) == 0);
    ASSERT(wtt_rhythm_autocorrelation(&f.ch, 5000, 8, acf, &err) == -1);
    return 0;
}


int
test_rhythm_track(void)
{
    struct fixture         f;
    struct wtt_rhythm_span sp;
    double                *env;
    int32_t                frames[400];
    size_t                 n = 0;
    const char            *err = NULL;
    double                 t = 1.0;

    /* A drifting click track: intervals of 24 to 26 frames. */
    fixture_init(&f);
    for (int k = 0; k < 40; k++) {
        onset(&f, t, 1, 60, 1);
        t += (24 + k % 3) / (double) FPS;
    }
    env = envelope_of(&f, &sp);
    ASSERT(env != NULL);
    ASSERT(wtt_rhythm_track_max(sp.nf, 25) <= 400);
    ASSERT(wtt_rhythm_track(env, sp.nf, 25, frames, &n, &err) == 0);
    /* Every click is a beat, and only the clicks (plus what the margins
     * allow before and after). */
    for (size_t c = 0; c < f.ch.n; c++) {
        long   want = lround((f.t[c] - sp.origin) * FPS);
        int    found = 0;
        for (size_t i = 0; i < n; i++) {
            found |= frames[i] == want;
        }
        ASSERT(found);
    }
    ASSERT(n <= f.ch.n + 4);
    for (size_t i = 1; i < n; i++) {
        ASSERT(frames[i] - frames[i - 1] >= 18 && frames[i] - frames[i - 1]
               <= 34);
    }
    /* Tracked at 40 frames, the beats still land on clicks but skip. */
    ASSERT(wtt_rhythm_track(env, sp.nf, 40, frames, &n, &err) == 0);
    ASSERT(n < f.ch.n);
    free(env);

    /* Exact clicks 25 frames apart with a gap of three silent beats: the
     * beats go on through the gap at the period (an interval off it
     * costs), so every interval is 25. */
    fixture_init(&f);
    for (int k = 0; k < 30; k++) {
        if (k < 12 || k > 14) {
            onset(&f, 1.0 + k * 0.5, 1, 60, 1);
        }
    }
    env = envelope_of(&f, &sp);
    ASSERT(env != NULL);
    ASSERT(wtt_rhythm_track(env, sp.nf, 25, frames, &n, &err) == 0);
    ASSERT(n >= 30);
    for (size_t i = 1; i < n; i++) {
        ASSERT(frames[i] - frames[i - 1] == 25);
    }
    ASSERT(wtt_rhythm_track(env, sp.nf, 0, frames, &n, &err) == -1);
    ASSERT(wtt_rhythm_track(env, sp.nf, WTT_RHYTHM_MAX_PERIOD + 1, frames,
                            &n, &err) == -1);
    ASSERT(wtt_rhythm_track_max(sp.nf, NAN) == 0);
    free(env);
    return 0;
}


int
test_rhythm_period(void)
{
    struct fixture         f;
    struct wtt_rhythm_span sp;
    double                *env, period = 0;
    const char            *err = NULL;

    /* 100 bpm quarter notes with weaker 8ths between them: the beat is
     * the quarter (30 frames), not the 8th. */
    fixture_init(&f);
    for (int k = 0; k < 160; k++) {
        onset(&f, 1.0 + k * 0.6, 1.0, 60, 1);
        onset(&f, 1.3 + k * 0.6, 0.3, 64, 1);
    }
    env = envelope_of(&f, &sp);
    ASSERT(env != NULL);
    ASSERT(wtt_rhythm_period(&f.ch, env, &sp, &period, &err) == 1);
    ASSERT(fabs(period - 30) < 0.3);
    free(env);

    /* A metronome at 90 bpm accenting each downbeat of 4/4. */
    fixture_init(&f);
    clicks(&f, 0.5, 60.0 / 90, 96, 4);
    env = envelope_of(&f, &sp);
    ASSERT(env != NULL);
    ASSERT(wtt_rhythm_period(&f.ch, env, &sp, &period, &err) == 1);
    ASSERT(fabs(period * 90 / (60.0 * FPS) - 1) < 0.01);
    free(env);

    /* Clicks at 180 bpm, every other one slightly accented: half the
     * tempo keeps the accents and is nearer 120 bpm, but its off-beats
     * carry 0.8 of its beats, so it skips beats and loses. */
    fixture_init(&f);
    for (int k = 0; k < 240; k++) {
        onset(&f, 0.5 + k * 60.0 / 180, k % 2 == 0 ? 1.0 : 0.8, 60, 1);
    }
    env = envelope_of(&f, &sp);
    ASSERT(env != NULL);
    ASSERT(wtt_rhythm_period(&f.ch, env, &sp, &period, &err) == 1);
    ASSERT(fabs(period * 180 / (60.0 * FPS) - 1) < 0.01);
    free(env);

    /* Straight 8ths at 120 bpm, every third one accented: a beat of
     * three 8ths keeps the accents but turns the 8ths into triplets, so
     * the quarter wins. */
    fixture_init(&f);
    for (int k = 0; k < 300; k++) {
        onset(&f, 0.5 + k * 0.25, k % 3 == 0 ? 1.0 : 0.3, 60, 1);
    }
    env = envelope_of(&f, &sp);
    ASSERT(env != NULL);
    {
        const double two[] = { 37.5, 25 };
        ASSERT(wtt_rhythm_choose_period(&f.ch, env, &sp, two, 2, &period,
                                        &err) == 0);
        ASSERT(period == 25);
    }
    free(env);

    /* One onset: nothing to correlate. */
    fixture_init(&f);
    onset(&f, 1.0, 1, 60, 1);
    env = envelope_of(&f, &sp);
    ASSERT(env != NULL);
    ASSERT(wtt_rhythm_period(&f.ch, env, &sp, &period, &err) == 0);
    free(env);
    return 0;
}


int
test_rhythm_complexity(void)
{
    struct fixture f;
    int32_t        frames[64];
    double         share = -1;
    const char    *err = NULL;

    /* Beats every 0.48 s (coarse frames of 0.04 s from origin 0). */
    for (int k = 0; k < 40; k++) {
        frames[k] = 12 * k;
    }
    /* Straight 8ths and 16ths: no triplets needed. */
    fixture_init(&f);
    for (int k = 0; k < 60; k++) {
        onset(&f, 0.04 * frames[k / 2 + 1] + (k % 2) * 0.24, 1, 60, 1);
    }
    ASSERT(wtt_rhythm_complexity(frames, 40, 0.04, 0, &f.ch, &share, &err)
           == 0);
    ASSERT(share == 0);
    /* 8th triplets: two of every three onsets need them. */
    fixture_init(&f);
    for (int k = 0; k < 60; k++) {
        onset(&f, 0.04 * frames[k / 3 + 1] + (k % 3) * 0.16, 1, 60, 1);
    }
    ASSERT(wtt_rhythm_complexity(frames, 40, 0.04, 0, &f.ch, &share, &err)
           == 0);
    ASSERT(fabs(share - 40.0 / 60) < 1e-12);
    ASSERT(wtt_rhythm_complexity(frames, 1, 0.04, 0, &f.ch, &share, &err)
           == 0 && share == 0);
    return 0;
}


int
test_rhythm_beats(void)
{
    const double env[] = { 0, 0.2, 1.0, 0.6, 0, 0, 0, 0.3, 0.3, 0, 0 };
    const int32_t frames[] = { 1, 5, 8 };
    double        fine[3], beats[16];
    size_t        n = 0;
    const char   *err = NULL;

    /* Onto the peak within a frame, parabolically: frame 1 moves to the
     * peak near 2; frame 5 (in silence) stays; 8 sits between equal
     * frames 7 and 8, so it moves half a frame back. */
    wtt_rhythm_refine(env, 11, frames, 3, fine);
    ASSERT(fine[0] > 2 && fine[0] < 2.5);
    ASSERT(fabs(fine[0] - (2 + 0.5 * (0.2 - 0.6) / (0.2 - 2.0 + 0.6)))
           < 1e-15);
    ASSERT(fine[1] == 5 && fine[2] == 7.5);

    /* Frames 100, 125, 150 from origin 0 at 0.5 s a beat: the first
     * note at 1.5 s needs a beat in front (2.0 is after 1.5 + 0.125); the
     * last note ends at 4.2 s, so the beats go on at the last interval. */
    {
        const double f3[] = { 100, 125, 150 };
        ASSERT(wtt_rhythm_cover(f3, 3, 0, 0.5, 1.5, 4.2, beats, 16, &n,
                                &err) == 0);
        ASSERT(n == 7);
        ASSERT(beats[0] == 1.5 && beats[1] == 2.0 && beats[3] == 3.0);
        ASSERT(beats[6] == 4.5);
        /* Asked with no room, the count alone. */
        ASSERT(wtt_rhythm_cover(f3, 3, 0, 0.5, 1.5, 4.2, NULL, 0, &n, &err)
               == 0 && n == 7);
        /* The notes end before the last frame: the beats stop there. */
        ASSERT(wtt_rhythm_cover(f3, 3, 0, 0.5, 2.0, 2.4, beats, 16, &n,
                                &err) == 0);
        ASSERT(n == 2 && beats[0] == 2.0 && beats[1] == 2.5);
        ASSERT(wtt_rhythm_cover(f3, 3, 0, 0, 2.0, 2.4, beats, 16, &n,
                                &err) == -1);
        ASSERT(wtt_rhythm_cover(f3, 3, 0, 0.5, 2.0, INFINITY, beats, 16,
                                &n, &err) == -1);
    }
    return 0;
}


int
test_rhythm_fitted_period(void)
{
    struct fixture f;
    double         beats[40], slope = 0;
    const char    *err = NULL;

    /* Beats 0.52 s apart, each on an onset; one beat bent 80 ms early
     * toward a stray note: the second fit leaves it out. */
    fixture_init(&f);
    for (int k = 0; k < 40; k++) {
        beats[k] = 1.0 + 0.52 * k;
        onset(&f, beats[k], 1, 60, 1);
    }
    beats[20] -= 0.08;
    f.t[20] = beats[20];
    ASSERT(wtt_rhythm_fitted_period(beats, 40, &f.ch, 0.5, &slope, &err)
           == 1);
    ASSERT(fabs(slope - 0.52) < 1e-12);
    /* One onset on a beat: no line. */
    f.ch.n = 1;
    ASSERT(wtt_rhythm_fitted_period(beats, 40, &f.ch, 0.5, &slope, &err)
           == 0);
    return 0;
}


int
test_rhythm_meter(void)
{
    struct fixture f;
    double         beats[60], acc[60], c3[3], c4[4];
    size_t         n = 0;
    const char    *err = NULL;

    /* A waltz with a pickup: a beat, then bass chords on each downbeat
     * and single notes on beats 2 and 3. */
    fixture_init(&f);
    for (int k = 0; k < 60; k++) {
        int down = k % 3 == 1;
        beats[k] = 1.0 + 0.5 * k;
        onset(&f, beats[k], down ? 0.9 : 0.5, down ? 40 : 64, down ? 3 : 1);
    }
    ASSERT(wtt_rhythm_accents(beats, 60, &f.ch, 0.5, acc, &n, &err) == 0);
    ASSERT(n == 60);
    ASSERT(acc[1] > acc[0] + 0.5 && acc[4] > acc[5]);
    wtt_rhythm_contrasts(acc, n, 3, c3);
    wtt_rhythm_contrasts(acc, n, 4, c4);
    ASSERT(c3[1] > 0.5 && c3[1] > c3[0] && c3[1] > c3[2]);
    ASSERT(c3[1] > c4[0] + 0.1 && c3[1] > c4[1] + 0.1);
    /* Equal weights: a downbeat's accent is 1 plus half its bass below
     * the mean (clipped to an octave), the others' 1 less theirs above. */
    for (int k = 0; k < 60; k++) {
        f.w[k] = 0.7;
    }
    ASSERT(wtt_rhythm_accents(beats, 60, &f.ch, 0.5, acc, &n, &err) == 0);
    ASSERT(fabs(acc[1] - (1 + 0.5 + 0.5)) < 1e-12); /* first chord */
    ASSERT(fabs(acc[4] - (1 + 0.5 * 1)) < 1e-12);
    ASSERT(fabs(acc[5] - (1 + 0.5 * (56.0 - 64) / 12)) < 1e-12);
    /* A single line (under a fifth of the onsets chords): low is just
     * low, and single notes say nothing about harmony. */
    for (int k = 0; k < 60; k++) {
        f.size[k] = 1;
    }
    ASSERT(wtt_rhythm_accents(beats, 60, &f.ch, 0.5, acc, &n, &err) == 0);
    ASSERT(fabs(acc[0] - 1) < 1e-12 && fabs(acc[1] - 1) < 1e-12);
    /* Beats past the last onset do not count. */
    ASSERT(wtt_rhythm_accents(beats, 60, &f.ch, 0.5, acc, &n, &err) == 0);
    f.ch.n = 30;
    ASSERT(wtt_rhythm_accents(beats, 60, &f.ch, 0.5, acc, &n, &err) == 0);
    ASSERT(n == 30);
    return 0;
}


int
test_rhythm_pickup(void)
{
    const double beats[] = { 1.0, 1.5, 2.0, 2.5, 3.0 };
    double       out[5 + 33];
    size_t       n = 0;

    /* One beat before the downbeat: the downbeat is the beat at 1.5, the
     * second. */
    ASSERT(wtt_rhythm_pickup(beats, 5, 1, 1.0, out, &n) == 2);
    ASSERT(n == 5 && out[0] == 1.0 && out[1] == 1.5);
    /* An 8th before it: first note at 1.25, downbeat at 1.5, and the
     * beats start a whole beat before that. */
    ASSERT(wtt_rhythm_pickup(beats, 5, 0.5, 1.25, out, &n) == 2);
    ASSERT(n == 5 && out[0] == 1.0 && out[1] == 1.5);
    /* A first note late in the beats: the earlier ones are dropped. */
    ASSERT(wtt_rhythm_pickup(beats, 5, 1, 2.0, out, &n) == 2);
    ASSERT(n == 3 && out[0] == 2.0 && out[1] == 2.5);
    /* Three beats of pickup from the first beat: two beats added. */
    ASSERT(wtt_rhythm_pickup(beats, 5, 3, 0.0, out, &n) == 4);
    ASSERT(n == 7 && out[0] == 0.0 && out[1] == 0.5 && out[2] == 1.0);
    return 0;
}
