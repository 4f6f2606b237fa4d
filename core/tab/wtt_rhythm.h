/*
 * wtt_rhythm.h: the numeric work of tempo and beat tracking from note
 * onsets (docs/tab.md, "Rhythm"): notes grouped into onsets, the onset
 * envelope, its autocorrelation and candidate periods, dynamic-programming
 * beat tracking (Ellis 2007) and the choice among the candidates, the beats
 * that cover the notes, the fitted tempo and the per-beat accents the meter
 * is read from.
 *
 * Plain C over libc and libm: no Lua. The Lua side (lua/wtt/tab/rhythm.lua)
 * checks the options, takes the overrides, rounds the tempo and picks the
 * meter and downbeat from the contrasts computed here.
 *
 *     struct wtt_rhythm_grouping g;
 *     struct wtt_rhythm_span sp;
 *     double period;
 *     wtt_rhythm_group_init(&g, &ch, by_key, n_keys, last);
 *     for (each note) wtt_rhythm_group_add(&g, start, strength, pitch, key);
 *     if (wtt_rhythm_group_finish(&g, &err) != 0) ...
 *     if (wtt_rhythm_span_of(&ch, &sp, &err) != 0) ...
 *     wtt_rhythm_envelope(&ch, sp.origin, env, sp.nf);
 *     switch (wtt_rhythm_period(&ch, env, &sp, &period, &err)) ...
 *     wtt_rhythm_track(env, sp.nf, period, frames, &nb, &err);
 *     wtt_rhythm_refine(env, sp.nf, frames, nb, fine);
 *     wtt_rhythm_cover(fine, nb, sp.origin, period / WTT_RHYTHM_FPS,
 *                      first_t, last_end, beats, cap, &n, &err);
 *
 * Times are seconds; envelope positions are frames of 1 / WTT_RHYTHM_FPS
 * s from `origin`. Every value is computed in double in the same order as
 * the Lua code this replaced, so results are the same to the bit (the
 * build turns off floating-point contraction for this file).
 *
 * Functions that can fail return -1 and point `*err` at static text (bad
 * input or out of memory); they allocate only scratch they free before
 * returning, and none keeps state, so all may run on any thread.
 */
#ifndef WTT_RHYTHM_H
#define WTT_RHYTHM_H

#include <stddef.h>
#include <stdint.h>

#define WTT_RHYTHM_FPS          50   /* onset-envelope frames per second */
#define WTT_RHYTHM_MAX_PERIODS  6    /* candidates: 3 peaks + 1/2, 2, 3/2 */
#define WTT_RHYTHM_MAX_NOTES    ((size_t) 1 << 26)
#define WTT_RHYTHM_MAX_FRAMES   ((size_t) 1 << 28)   /* 62 days */
#define WTT_RHYTHM_MAX_BEATS    ((size_t) 1 << 26)
#define WTT_RHYTHM_MAX_LEAD     64   /* beats cover may add in front */
#define WTT_RHYTHM_MAX_PERIOD   400  /* frames: 8 s, below 20 bpm halves */

/*
 * Onsets: one per chord, in time order. Readers use t, w, low, pcs and
 * size; grouping also writes first.
 */
struct wtt_rhythm_chords {
    double   *t;      /* its earliest start */
    double   *w;      /* its strongest note's strength */
    double   *low;    /* its lowest pitch */
    uint32_t *pcs;    /* pitch-class bit set: bit p % 12 */
    int      *size;   /* notes */
    uint32_t *first;  /* its first note (index into the notes) */
    size_t    n;
};

/*
 * Notes grouped into onsets one at a time, as a caller reads them (a
 * piece's notes need not be copied first): notes sharing a key form one
 * chord; keyless notes starting within 50 ms of the first of the last
 * keyless chord join it. All memory is the caller's.
 */
struct wtt_rhythm_grouping {
    struct wtt_rhythm_chords *out;
    uint32_t                 *by_key;   /* chord + 1 of each key */
    size_t                    n_keys;
    uint32_t                 *last;     /* each chord's last note */
    size_t                    open;     /* the last keyless chord + 1 */
    size_t                    notes;
    int                       sorted;
};

/* The envelope's frames for a set of onsets (wtt_rhythm_span_of). */
struct wtt_rhythm_span {
    double origin;    /* frame 0, s: a margin before the first onset */
    size_t nf;        /* frames, to a margin after the last onset */
    double from, to;  /* the frames of the first and last onsets */
};

/*
 * Starts a grouping into `out`, whose arrays (and `last`) have room for
 * as many chords as there will be notes (at most WTT_RHYTHM_MAX_NOTES);
 * `by_key` holds n_keys + 1 zeroes (calloc'd memory is only touched where
 * a key is used).
 */
void wtt_rhythm_group_init(struct wtt_rhythm_grouping *g,
                           struct wtt_rhythm_chords *out, uint32_t *by_key,
                           size_t n_keys, uint32_t *last);

/*
 * Adds the next note: its start, accent (amplitude, or velocity / 127,
 * times the onset factor), pitch and key (0: no chord id; otherwise
 * 1..n_keys, equal for notes of one id). Returns the index + 1 of the
 * previous note of its chord (the caller's "next note" of that one is
 * this), 0 when this note starts a chord.
 */
size_t wtt_rhythm_group_add(struct wtt_rhythm_grouping *g, double start_s,
                            double strength, int pitch, uint32_t key);

/*
 * Ends a grouping: puts the chords in time order (ties in order of
 * appearance) when a chord id joined notes far apart. Returns 0, or -1
 * with `*err` (out of memory).
 */
int wtt_rhythm_group_finish(struct wtt_rhythm_grouping *g, const char **err);

/*
 * The envelope's extent for onsets ch (ch->n >= 1, finite times). Returns
 * 0, or -1 with `*err` when it would exceed WTT_RHYTHM_MAX_FRAMES.
 */
int wtt_rhythm_span_of(const struct wtt_rhythm_chords *ch,
                       struct wtt_rhythm_span *sp, const char **err);

/*
 * The onset-strength envelope: each onset a Gaussian bump (sigma 1.5
 * frames) of its weight, the weights scaled so the mean onset weighs 1.
 * Writes env[0..nf-1] (zeroed first).
 */
void wtt_rhythm_envelope(const struct wtt_rhythm_chords *ch, double origin,
                         double *env, size_t nf);

/*
 * The onsets' autocorrelation per lag of 1..maxlag frames, from the pairs
 * of onsets at most maxlag apart, smoothed over the timing tolerance and
 * normalised per second of overlap over `span_s` s. Writes acf[0..maxlag]
 * (acf[0] = 0). Returns 0, or -1 with `*err` (maxlag over 1024).
 */
int wtt_rhythm_autocorrelation(const struct wtt_rhythm_chords *ch,
                               size_t maxlag, double span_s, double *acf,
                               const char **err);

/*
 * Tempo candidates from the autocorrelation (acf[0..2 * hi + 2]): the best
 * three peaks of prior x (acf(L) + acf(2L) / 2) between lags lo and hi,
 * and half, double and 3/2 the best, each within 40-240 bpm and 4% away
 * from those before. Writes periods (frames, best first; room for
 * WTT_RHYTHM_MAX_PERIODS) and returns their count, 0 when there is no
 * peak.
 */
size_t wtt_rhythm_candidates(const double *acf, int lo, int hi,
                             double *periods);

/*
 * Ellis's dynamic-programming beat tracking over env[0..nf-1] at `period`
 * frames (0 < period <= WTT_RHYTHM_MAX_PERIOD): the frames maximising the
 * envelope at them minus 30 x log(interval / period)^2 per interval of
 * 0.75-1.34 periods. Writes the frames ascending into `frames` (room for
 * wtt_rhythm_track_max(nf, period)) and their count. Returns 0, or -1
 * with `*err` (period out of range, out of memory).
 */
int wtt_rhythm_track(const double *env, size_t nf, double period,
                     int32_t *frames, size_t *n, const char **err);

/* The most frames wtt_rhythm_track can return (0 for a bad period). */
size_t wtt_rhythm_track_max(size_t nf, double period);

/*
 * The share of onsets that would need triplets against beats at `frames`
 * (frame length dt s, frame 0 at origin): those nearer, by 15 ms or more,
 * to an 8th-triplet position than to a 16th. Writes it to `*share` (0
 * for under two beats). Returns 0, or -1 with `*err` (out of memory).
 */
int wtt_rhythm_complexity(const int32_t *frames, size_t nb, double dt,
                          double origin, const struct wtt_rhythm_chords *ch,
                          double *share, const char **err);

/*
 * The winning period among `np` candidates (docs/tab.md, "Rhythm", the
 * half/double rule): each tracked at half the frame rate and scored by
 * prior x salience x exp(-triplet share), less when it skips beats.
 * Writes it to `*period`. Returns 0, or -1 with `*err`.
 */
int wtt_rhythm_choose_period(const struct wtt_rhythm_chords *ch,
                             const double *env,
                             const struct wtt_rhythm_span *sp,
                             const double *periods, size_t np,
                             double *period, const char **err);

/*
 * The whole tempo estimate: autocorrelation, candidates and the choice.
 * Returns 1 with `*period` (frames), 0 when there is no candidate (one
 * onset, or none closer than the slowest beat), or -1 with `*err`.
 */
int wtt_rhythm_period(const struct wtt_rhythm_chords *ch, const double *env,
                      const struct wtt_rhythm_span *sp, double *period,
                      const char **err);

/*
 * Beat frames moved to the envelope's peak within a frame, parabolically
 * interpolated: writes out[0..n-1] (fractional frames).
 */
void wtt_rhythm_refine(const double *env, size_t nf, const int32_t *frames,
                       size_t n, double *out);

/*
 * The beats that cover the notes: the frames (n >= 1, ascending) as
 * seconds from the last beat at or before first_t + period_s / 4 (up to
 * WTT_RHYTHM_MAX_LEAD beats added in front when there is none) to the
 * first at or after last_end, extrapolated at the last interval. Writes
 * at most `cap` beats and the full count to `*n_beats`: a caller with
 * less room calls again with more. Returns 0, or -1 with `*err` (period_s
 * not positive, last_end not finite, too many beats).
 */
int wtt_rhythm_cover(const double *frames, size_t n, double origin,
                     double period_s, double first_t, double last_end,
                     double *beats, size_t cap, size_t *n_beats,
                     const char **err);

/*
 * The tempo's period (s): the slope of a least-squares line through the
 * beats on an onset (within a tenth of period_s), fitted again without
 * the beats more than that off the first line. Returns 1 with `*slope`, 0
 * when under two beats are on onsets, or -1 with `*err`.
 */
int wtt_rhythm_fitted_period(const double *beats, size_t n,
                             const struct wtt_rhythm_chords *ch,
                             double period_s, double *slope,
                             const char **err);

/*
 * Per-beat accents for the meter: the strongest onset within a fifth of
 * period_s of the beat against the mean, plus the bass (where a fifth of
 * the onsets are chords) and harmony changes. Only the beats up to the
 * last onset count: writes acc[0..*n_acc-1] (room for n). Returns 0, or
 * -1 with `*err`.
 */
int wtt_rhythm_accents(const double *beats, size_t n,
                       const struct wtt_rhythm_chords *ch, double period_s,
                       double *acc, size_t *n_acc, const char **err);

/*
 * For each phase of 0..m-1 (m >= 1), the mean accent of the beats k = phase
 * (mod m) minus that of the others (0 when either set is empty): writes
 * out[0..m-1].
 */
void wtt_rhythm_contrasts(const double *acc, size_t n, int m, double *out);

/*
 * A given pickup of p beats (0 <= p < 32): the downbeat is the beat
 * nearest p beats after first_t, and the beats start ceil(p) before it,
 * dropped or extrapolated in front. Writes the beats to out (room for
 * n + 33) and their count, and returns the downbeat's index (1-based, as
 * the grid counts).
 */
size_t wtt_rhythm_pickup(const double *beats, size_t n, double p,
                         double first_t, double *out, size_t *n_out);

#endif
