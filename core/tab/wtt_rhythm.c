/*
 * wtt_rhythm.c: tempo and beat tracking from note onsets (see
 * wtt_rhythm.h and docs/tab.md, "Rhythm").
 *
 * The expressions keep the operand order of the Lua code they replaced
 * (lua/wtt/tab/rhythm.lua drives them), and maxima and minima are written
 * as LuaJIT's math.max and math.min compare, so every double rounds as it
 * did there.
 */
#include "wtt_rhythm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FPS           ((double) WTT_RHYTHM_FPS)
#define COARSE        2       /* candidates are tracked at FPS / COARSE */
#define CHORD_S       0.05    /* keyless notes this close sound as one */
#define SIGMA         1.5     /* envelope smoothing (frames): tolerance */
#define MARGIN_S      1.0     /* envelope before the first, after the last */
#define MIN_BPM       40.0    /* estimated tempo range */
#define MAX_BPM       240.0
#define PRIOR_BPM     120.0   /* log-Gaussian tempo prior */
#define PRIOR_OCT     1.0
#define TIGHTNESS     30.0    /* DP weight of log(interval / period)^2 */
#define SKIP          0.75    /* see choose_period */
#define SKIP_FACTOR   0.8
#define TRIPLETS      1.0
#define PEAKS         3       /* autocorrelation peaks tried as tempos */
#define TRIPLET_S     0.015   /* see wtt_rhythm_complexity */
#define SMOOTH        3       /* autocorrelation smoothing: 2 x SIGMA */
#define MAX_LAG       1024    /* autocorrelation lags on the stack */
#define RING          1024    /* DP scores kept: more than hi frames */

/* The DP's intervals lo..hi (0.75 to 1.34 periods, rounded out) fit its
 * ring, and their count its bytes (see wtt_rhythm_track). */
_Static_assert(134 * WTT_RHYTHM_MAX_PERIOD / 100 + 2 < RING
               && 59 * WTT_RHYTHM_MAX_PERIOD / 100 + 3 < 255,
               "a beat period's intervals fit the DP's ring and bytes");


/* LuaJIT's math.max(a, b) and math.min(a, b) for two numbers. */
static double
lmax(double a, double b)
{
    return a > b ? a : b;
}

static double
lmin(double a, double b)
{
    return a < b ? a : b;
}


/* -------------------------------------------------------------------------
 * Onsets
 * ---------------------------------------------------------------------- */

struct order {
    double   t;
    uint32_t c;
};

static int
by_time(const void *pa, const void *pb)
{
    const struct order *a = pa, *b = pb;

    if (a->t != b->t) {
        return a->t < b->t ? -1 : 1;
    }
    return a->c < b->c ? -1 : a->c > b->c;
}


/* Puts the chords in time order, ties in order of appearance: a chord id
 * joined notes far apart. Returns 0, or -1 with `*err`. */
static int
sort_chords(struct wtt_rhythm_chords *out, const char **err)
{
    size_t        n = out->n;
    struct order *idx = malloc(n * sizeof(*idx));
    double       *d = malloc(n * sizeof(*d));
    uint32_t     *u = malloc(n * sizeof(*u));
    int          *s = malloc(n * sizeof(*s));

    if (idx == NULL || d == NULL || u == NULL || s == NULL) {
        free(idx);
        free(d);
        free(u);
        free(s);
        *err = "out of memory";
        return -1;
    }
    for (size_t c = 0; c < n; c++) {
        idx[c].t = out->t[c];
        idx[c].c = (uint32_t) c;
    }
    /* A total order: any sort gives this one result. */
    qsort(idx, n, sizeof(*idx), by_time);
#define PERMUTE(arr, tmp)                                               \
    do {                                                                \
        for (size_t c = 0; c < n; c++) {                                \
            (tmp)[c] = (arr)[idx[c].c];                                 \
        }                                                               \
        memcpy((arr), (tmp), n * sizeof(*(tmp)));                       \
    } while (0)
    PERMUTE(out->t, d);
    PERMUTE(out->w, d);
    PERMUTE(out->low, d);
    PERMUTE(out->pcs, u);
    PERMUTE(out->first, u);
    PERMUTE(out->size, s);
#undef PERMUTE
    free(idx);
    free(d);
    free(u);
    free(s);
    return 0;
}


void
wtt_rhythm_group_init(struct wtt_rhythm_grouping *g,
                      struct wtt_rhythm_chords *out, uint32_t *by_key,
                      size_t n_keys, uint32_t *last)
{
    g->out = out;
    g->by_key = by_key;
    g->n_keys = n_keys;
    g->last = last;
    g->open = 0;
    g->notes = 0;
    g->sorted = 1;
    out->n = 0;
}


size_t
wtt_rhythm_group_add(struct wtt_rhythm_grouping *g, double s0, double st,
                     int p, uint32_t key)
{
    struct wtt_rhythm_chords *out = g->out;
    size_t                    c = 0, prev = 0;       /* c: chord + 1 */
    uint32_t                  i = (uint32_t) g->notes++;

    if (key > g->n_keys) {
        key = 0;      /* a caller's bug: no chord id, not a stray write */
    }
    if (key != 0) {
        c = g->by_key[key];
    } else if (g->open > 0 && s0 - out->t[g->open - 1] <= CHORD_S) {
        c = g->open;
    }
    if (c == 0) {
        c = ++out->n;
        out->t[c - 1] = s0;
        out->w[c - 1] = st;
        out->low[c - 1] = p;
        out->pcs[c - 1] = 0;
        out->size[c - 1] = 0;
        out->first[c - 1] = i;
        if (key != 0) {
            g->by_key[key] = (uint32_t) c;
        } else {
            g->open = c;
        }
        if (c > 1 && s0 < out->t[c - 2]) {
            g->sorted = 0;
        }
    } else {
        prev = (size_t) g->last[c - 1] + 1;
        if (s0 < out->t[c - 1]) {
            out->t[c - 1] = s0;
            g->sorted = 0;
        }
        if (st > out->w[c - 1]) {
            out->w[c - 1] = st;
        }
        if (p < out->low[c - 1]) {
            out->low[c - 1] = p;
        }
    }
    g->last[c - 1] = i;
    out->size[c - 1]++;
    out->pcs[c - 1] |= 1u << (p % 12 < 0 ? p % 12 + 12 : p % 12);
    return prev;
}


int
wtt_rhythm_group_finish(struct wtt_rhythm_grouping *g, const char **err)
{
    if (!g->sorted) {
        return sort_chords(g->out, err);
    }
    return 0;
}


/* -------------------------------------------------------------------------
 * Envelope and autocorrelation
 * ---------------------------------------------------------------------- */

int
wtt_rhythm_span_of(const struct wtt_rhythm_chords *ch,
                   struct wtt_rhythm_span *sp, const char **err)
{
    double first_t = ch->t[0], last_t = ch->t[ch->n - 1];
    double nf;

    sp->origin = first_t - MARGIN_S;
    nf = floor((last_t - sp->origin + MARGIN_S) * FPS) + 1;
    if (!(nf >= 1 && nf <= (double) WTT_RHYTHM_MAX_FRAMES)) {
        *err = "the notes span too long a time";
        return -1;
    }
    sp->nf = (size_t) nf;
    sp->from = floor((first_t - sp->origin) * FPS);
    sp->to = ceil((last_t - sp->origin) * FPS);
    return 0;
}


void
wtt_rhythm_envelope(const struct wtt_rhythm_chords *ch, double origin,
                    double *env, size_t nf)
{
    const double reach = 3 * SIGMA;
    const double k2 = -0.5 / (SIGMA * SIGMA);
    double       sum = 0, scale;

    memset(env, 0, nf * sizeof(*env));
    for (size_t i = 0; i < ch->n; i++) {
        sum = sum + ch->w[i];
    }
    scale = sum > 0 ? (double) ch->n / sum : 1;
    for (size_t i = 0; i < ch->n; i++) {
        double f = (ch->t[i] - origin) * FPS;
        double w = ch->w[i] * scale;
        double lo = lmax(0, ceil(f - reach));
        double hi = lmin((double) nf - 1, floor(f + reach));
        for (double j = lo; j <= hi; j++) {
            double d = j - f;
            env[(size_t) j] = env[(size_t) j] + w * exp(k2 * d * d);
        }
    }
}


int
wtt_rhythm_autocorrelation(const struct wtt_rhythm_chords *ch,
                           size_t maxlag, double span_s, double *out,
                           const char **err)
{
    const double *ct = ch->t, *cw = ch->w;
    const double  k2 = -0.5 / (SIGMA * SIGMA);
    double        acf[MAX_LAG + 2];
    double        g[2 * SMOOTH + 1];   /* the Gaussian at whole frames */

    if (maxlag < 1 || maxlag > MAX_LAG) {
        *err = "autocorrelation lag out of range";
        return -1;
    }
    memset(acf, 0, (maxlag + 2) * sizeof(acf[0]));
    for (size_t i = 0; i + 1 < ch->n; i++) {
        double ti = ct[i], wi = cw[i];
        for (size_t j = i + 1; j < ch->n; j++) {
            double d = (ct[j] - ti) * FPS;
            double a, w;
            size_t l;
            if (d > (double) maxlag) {
                break;
            }
            l = (size_t) floor(d);
            a = d - (double) l;
            w = wi * cw[j];
            acf[l] = acf[l] + w * (1 - a);
            acf[l + 1] = acf[l + 1] + w * a;
        }
    }
    for (int d = -SMOOTH; d <= SMOOTH; d++) {
        g[d + SMOOTH] = exp(k2 * d * d);
    }
    out[0] = 0;
    for (size_t l = 1; l <= maxlag; l++) {
        double s = 0, ws = 0;
        for (int d = -SMOOTH; d <= SMOOTH; d++) {
            long m = (long) l + d;
            if (m >= 1 && m <= (long) maxlag) {
                s = s + acf[m] * g[d + SMOOTH];
                ws = ws + g[d + SMOOTH];
            }
        }
        out[l] = s / ws / lmax(span_s - (double) l / FPS, 0.5 * span_s);
    }
    return 0;
}


/* -------------------------------------------------------------------------
 * Candidate periods
 * ---------------------------------------------------------------------- */

static double
prior(double period_s)
{
    double o = log(period_s * PRIOR_BPM / 60) / log(2) / PRIOR_OCT;

    return exp(-0.5 * o * o);
}


struct peak {
    double lag;     /* interpolated */
    double score;
};

/* Best score first; equal scores by lag (any fixed order would do). */
static int
by_score(const void *pa, const void *pb)
{
    const struct peak *a = pa, *b = pb;

    if (a->score != b->score) {
        return a->score > b->score ? -1 : 1;
    }
    return a->lag < b->lag ? -1 : a->lag > b->lag;
}


/* Appends period p when in the tempo range and 4% away from the others. */
static void
add_period(double p, double *periods, size_t *n)
{
    double bpm = 60 * FPS / p;

    if (bpm < MIN_BPM || bpm > MAX_BPM) {
        return;
    }
    for (size_t i = 0; i < *n; i++) {
        if (fabs(periods[i] / p - 1) < 0.04) {
            return;
        }
    }
    periods[(*n)++] = p;
}


size_t
wtt_rhythm_candidates(const double *acf, int lo, int hi, double *periods)
{
    struct peak best[PEAKS];
    size_t      n_best = 0, n = 0;
    double      t0;

    if (lo < 1 || hi < lo) {
        return 0;
    }
    /* Keeping the best PEAKS by the sort's order needs no list of all. */
    for (int l = lo; l <= hi; l++) {
        double      a, b, c;
        struct peak pk;
        size_t      k;

        a = (acf[l - 1] + 0.5 * acf[2 * (l - 1)]) * prior((l - 1) / FPS);
        b = (acf[l] + 0.5 * acf[2 * l]) * prior(l / FPS);
        c = (acf[l + 1] + 0.5 * acf[2 * (l + 1)]) * prior((l + 1) / FPS);
        if (!(b > 0 && b >= a && b > c)) {
            continue;
        }
        pk.lag = l;
        pk.score = b;
        if (a - 2 * b + c < 0) {
            pk.lag = l + lmax(-0.5, lmin(0.5, 0.5 * (a - c)
                                                / (a - 2 * b + c)));
        }
        k = n_best < PEAKS ? n_best++ : PEAKS;
        if (k == PEAKS) {
            if (by_score(&pk, &best[PEAKS - 1]) >= 0) {
                continue;
            }
            k = PEAKS - 1;
        }
        while (k > 0 && by_score(&pk, &best[k - 1]) < 0) {
            best[k] = best[k - 1];
            k--;
        }
        best[k] = pk;
    }
    if (n_best == 0) {
        return 0;
    }
    t0 = best[0].lag;
    for (size_t i = 0; i < n_best; i++) {
        if (best[i].score >= 0.3 * best[0].score) {
            add_period(best[i].lag, periods, &n);
        }
    }
    add_period(t0 / 2, periods, &n);
    add_period(t0 * 2, periods, &n);
    add_period(t0 * 1.5, periods, &n);
    return n;
}


/* -------------------------------------------------------------------------
 * Beat tracking
 * ---------------------------------------------------------------------- */

/* The DP's intervals at `period`: lo..hi frames. Returns 0, or -1 for a
 * period out of (0, WTT_RHYTHM_MAX_PERIOD]. */
static int
intervals(double period, size_t *lo, size_t *hi)
{
    if (!(period > 0 && period <= WTT_RHYTHM_MAX_PERIOD)) {
        return -1;
    }
    *lo = (size_t) lmax(1, floor(period * 0.75));
    *hi = (size_t) ceil(period * 1.34);
    return 0;
}


size_t
wtt_rhythm_track_max(size_t nf, double period)
{
    size_t lo, hi;

    if (nf == 0 || intervals(period, &lo, &hi) != 0) {
        return 0;
    }
    return (nf - 1) / lo + 1;
}


/* The DP keeps the scores of the last RING frames only, and per frame
 * the winning interval (less lo, + 1; 0: none) in a byte: on a first call
 * fresh pages cost more than the arithmetic, so the memory stays small. */
int
wtt_rhythm_track(const double *env, size_t nf, double period,
                 int32_t *frames, size_t *n, const char **err)
{
    double         pen[RING], ring[RING];
    unsigned char *back;
    size_t         lo, hi, last, k, t;
    double         best;

    if (intervals(period, &lo, &hi) != 0 || nf == 0
        || nf > WTT_RHYTHM_MAX_FRAMES)
    {
        *err = "beat period out of range";
        return -1;
    }
    back = malloc(nf);
    if (back == NULL) {
        *err = "out of memory";
        return -1;
    }
    for (size_t d = lo; d <= hi; d++) {
        double x = log((double) d / period);
        pen[d] = TIGHTNESS * x * x;
    }
    for (t = 0; t < nf; t++) {
        size_t dmax = hi < t ? hi : t, arg = 0;
        double v_best = -1e300;
        for (size_t d = lo; d <= dmax; d++) {
            double v = ring[(t - d) % RING] - pen[d];
            if (v > v_best) {
                v_best = v;
                arg = d;
            }
        }
        if (arg == 0) {
            ring[t % RING] = env[t];
            back[t] = 0;
        } else {
            ring[t % RING] = env[t] + v_best;
            back[t] = (unsigned char) (arg - lo + 1);
        }
    }
    /* The chain ends at the best score within the last period. */
    last = nf - 1;
    best = -1e300;
    for (t = nf > hi ? nf - hi : 0; t < nf; t++) {
        if (ring[t % RING] > best) {
            best = ring[t % RING];
            last = t;
        }
    }
    k = 0;
    for (t = last;; t -= back[t] + lo - 1) {
        frames[k++] = (int32_t) t;
        if (back[t] == 0) {
            break;
        }
    }
    for (size_t i = 0; i < k / 2; i++) {
        int32_t f = frames[i];
        frames[i] = frames[k - 1 - i];
        frames[k - 1 - i] = f;
    }
    *n = k;
    free(back);
    return 0;
}


/* The envelope's peak within a frame of f. */
static double
peak_at(const double *env, size_t nf, size_t f)
{
    double v = env[f];

    if (f > 0 && env[f - 1] > v) {
        v = env[f - 1];
    }
    if (f + 1 < nf && env[f + 1] > v) {
        v = env[f + 1];
    }
    return v;
}


struct salience {
    double root;   /* mean square root at the beats */
    double on;     /* mean at the beats */
    double off;    /* mean at the midpoints */
};

/* Onset strength at the beats within frames from..to and at the
 * midpoints after them (see choose_period). */
static struct salience
salience(const double *env, size_t nf, const int32_t *frames, size_t nb,
         double from, double to)
{
    struct salience s = { 0, 0, 0 };
    double          root = 0, on = 0, off = 0;
    size_t          n_on = 0, n_off = 0;

    for (size_t i = 0; i < nb; i++) {
        double f = frames[i];
        if (f >= from && f <= to) {
            double v = peak_at(env, nf, (size_t) frames[i]);
            root = root + sqrt(v);
            on = on + v;
            n_on++;
            if (i + 1 < nb) {
                double g = frames[i + 1];
                off = off + peak_at(env, nf,
                                    (size_t) floor((f + g) / 2 + 0.5));
                n_off++;
            }
        }
    }
    if (n_on == 0) {
        return s;
    }
    s.root = root / (double) n_on;
    s.on = on / (double) n_on;
    s.off = n_off > 0 ? off / (double) n_off : 0;
    return s;
}


int
wtt_rhythm_complexity(const int32_t *frames, size_t nb, double dt,
                      double origin, const struct wtt_rhythm_chords *ch,
                      double *share, const char **err)
{
    const double *ct = ch->t;
    size_t        nc = ch->n, j = 0, k = 0, total = 0;
    double       *bt;

    *share = 0;
    if (nb < 2 || nc == 0) {
        return 0;
    }
    bt = malloc(nb * sizeof(*bt));
    if (bt == NULL) {
        *err = "out of memory";
        return -1;
    }
    /* Beats on an onset (within a frame) move onto it: the coarse frames
     * alone would add their own rounding to every fraction. */
    for (size_t b = 0; b < nb; b++) {
        double t = origin + frames[b] * dt;
        double best = t, d;
        while (j + 1 < nc && ct[j + 1] <= t) {
            j++;
        }
        if (fabs(ct[j] - t) <= dt) {
            best = ct[j];
        }
        d = j + 1 < nc ? fabs(ct[j + 1] - t) : dt + 1;
        if (d <= dt && d < fabs(best - t)) {
            best = ct[j + 1];
        }
        bt[b] = best;
    }
    for (size_t i = 0; i < nc; i++) {
        double t = ct[i], a, b, x, f, span, d4, d3;
        while (k + 2 < nb && bt[k + 1] <= t) {
            k++;
        }
        a = bt[k];
        b = bt[k + 1];
        x = (t - a) / (b - a);
        f = x - floor(x);
        span = b - a;
        d4 = fabs(f - floor(f * 4 + 0.5) / 4) * span;
        d3 = fabs(f - floor(f * 3 + 0.5) / 3) * span;
        if (d4 - d3 > TRIPLET_S) {
            total++;
        }
    }
    free(bt);
    *share = (double) total / (double) nc;
    return 0;
}


struct scored {
    double          p;
    struct salience s;
    double          cx;
};

int
wtt_rhythm_choose_period(const struct wtt_rhythm_chords *ch,
                         const double *env,
                         const struct wtt_rhythm_span *sp,
                         const double *periods, size_t np, double *period,
                         const char **err)
{
    size_t         nf = sp->nf, nc = 0;
    double        *coarse;
    int32_t       *frames;
    struct scored  res[WTT_RHYTHM_MAX_PERIODS];
    double         best = -1, pick;

    if (np < 1 || np > WTT_RHYTHM_MAX_PERIODS) {
        *err = "candidate periods out of range";
        return -1;
    }
    coarse = malloc((nf / COARSE + 1) * sizeof(*coarse));
    frames = malloc((nf / COARSE + 1) * sizeof(*frames));
    if (coarse == NULL || frames == NULL) {
        free(coarse);
        free(frames);
        *err = "out of memory";
        return -1;
    }
    for (size_t i = 0; i < nf; i += COARSE) {
        double v = env[i];
        for (size_t j = i + 1; j < nf && j <= i + COARSE - 1; j++) {
            v = lmax(v, env[j]);
        }
        coarse[nc++] = v;
    }
    for (size_t i = 0; i < np; i++) {
        size_t nb;
        if (wtt_rhythm_track(coarse, nc, periods[i] / COARSE, frames, &nb,
                             err) != 0
            || wtt_rhythm_complexity(frames, nb, COARSE / FPS, sp->origin,
                                     ch, &res[i].cx, err) != 0)
        {
            free(coarse);
            free(frames);
            return -1;
        }
        res[i].p = periods[i];
        res[i].s = salience(coarse, nc, frames, nb, floor(sp->from / COARSE),
                            ceil(sp->to / COARSE));
    }
    free(coarse);
    free(frames);
    pick = periods[0];
    for (size_t i = 0; i < np; i++) {
        const struct scored *c = &res[i];
        int                  skips = 0;
        double               s;
        /* P skips beats: P/2 is a candidate and P's midpoints carry
         * nearly P's own strength (a metronome's unaccented clicks). */
        if (c->s.off >= SKIP * c->s.on) {
            for (size_t h = 0; h < np; h++) {
                if (fabs(2 * res[h].p / c->p - 1) < 0.04) {
                    skips = 1;
                }
            }
        }
        s = prior(c->p / FPS) * c->s.root;
        s = s * exp(-TRIPLETS * c->cx);
        if (skips) {
            s = s * SKIP_FACTOR;
        }
        if (s > best) {
            best = s;
            pick = c->p;
        }
    }
    *period = pick;
    return 0;
}


int
wtt_rhythm_period(const struct wtt_rhythm_chords *ch, const double *env,
                  const struct wtt_rhythm_span *sp, double *period,
                  const char **err)
{
    const int lo = (int) floor(60 * FPS / MAX_BPM);
    const int hi = (int) ceil(60 * FPS / MIN_BPM);
    double    acf[MAX_LAG + 1];
    double    periods[WTT_RHYTHM_MAX_PERIODS];
    double    span = ch->t[ch->n - 1] - ch->t[0] + 2 * SIGMA / FPS;
    size_t    np;

    if (wtt_rhythm_autocorrelation(ch, (size_t) (2 * hi + 3),
                                   lmax(span, 1e-3), acf, err) != 0)
    {
        return -1;
    }
    np = wtt_rhythm_candidates(acf, lo, hi, periods);
    if (np == 0) {
        return 0;
    }
    if (wtt_rhythm_choose_period(ch, env, sp, periods, np, period, err)
        != 0)
    {
        return -1;
    }
    return 1;
}


/* -------------------------------------------------------------------------
 * Beats
 * ---------------------------------------------------------------------- */

void
wtt_rhythm_refine(const double *env, size_t nf, const int32_t *frames,
                  size_t n, double *out)
{
    for (size_t i = 0; i < n; i++) {
        size_t f = (size_t) frames[i], best = f;
        double x;
        for (size_t j = f > 0 ? f - 1 : 0; j < nf && j <= f + 1; j++) {
            if (env[j] > env[best]) {
                best = j;
            }
        }
        x = (double) best;
        if (best > 0 && best + 1 < nf) {
            double a = env[best - 1], b = env[best], c = env[best + 1];
            double den = a - 2 * b + c;
            if (den < 0) {
                x = (double) best + lmax(-0.5, lmin(0.5, 0.5 * (a - c) / den));
            }
        }
        out[i] = x;
    }
}


/* The beats cover writes, one at a time: stored while there is room,
 * counted past it; the last two are kept for the extrapolation. */
struct beat_out {
    double *beats;
    size_t  cap, k;
    double  last, before;
};

/* Appends t; returns whether it reaches `end`. */
static int
emit(struct beat_out *o, double t, double end)
{
    if (o->k < o->cap) {
        o->beats[o->k] = t;
    }
    o->k++;
    o->before = o->last;
    o->last = t;
    return t >= end;
}


int
wtt_rhythm_cover(const double *frames, size_t n, double origin,
                 double period_s, double first_t, double last_end,
                 double *beats, size_t cap, size_t *n_beats,
                 const char **err)
{
    double          limit = first_t + 0.25 * period_s;
    double          pre[WTT_RHYTHM_MAX_LEAD];
    size_t          start = 0, n_pre = 0;
    double          v, step;
    struct beat_out o = { beats, cap, 0, 0, 0 };

    if (n == 0 || !(period_s > 0) || !isfinite(last_end)) {
        *err = "beats need frames, a positive period and a finite end";
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (origin + frames[i] / FPS <= limit) {
            start = i;
        }
    }
    /* The chain starts after the first note: extend it backwards. */
    v = origin + frames[start] / FPS;
    while (v > limit) {
        if (n_pre == WTT_RHYTHM_MAX_LEAD) {
            *err = "the beats start too long after the first note";
            return -1;
        }
        v = v - period_s;
        pre[n_pre++] = v;
    }
    /* The beats from the first, up to the first at or after last_end. */
    for (size_t i = n_pre; i > 0; i--) {
        if (emit(&o, pre[i - 1], last_end)) {
            *n_beats = o.k;
            return 0;
        }
    }
    for (size_t i = start; i < n; i++) {
        if (emit(&o, origin + frames[i] / FPS, last_end)) {
            *n_beats = o.k;
            return 0;
        }
    }
    /* Extrapolate at the final interval. */
    step = o.k > 1 ? o.last - o.before : period_s;
    if (step < 0.5 * period_s || step > 2 * period_s) {
        step = period_s;
    }
    while (o.last < last_end) {
        if (o.k == WTT_RHYTHM_MAX_BEATS) {
            *err = "too many beats";
            return -1;
        }
        emit(&o, o.last + step, last_end);
    }
    *n_beats = o.k;
    return 0;
}


/* -------------------------------------------------------------------------
 * Tempo and meter
 * ---------------------------------------------------------------------- */

int
wtt_rhythm_fitted_period(const double *beats, size_t n,
                         const struct wtt_rhythm_chords *ch,
                         double period_s, double *slope, const char **err)
{
    const double *ct = ch->t;
    const double  tol = 0.1 * period_s;
    size_t        nc = ch->n, j = 0, m = 0;
    double       *idx, *at;
    unsigned char *keep;
    int           found = 0;

    if (nc == 0) {
        return 0;
    }
    idx = malloc(n * sizeof(*idx) + 1);
    at = malloc(n * sizeof(*at) + 1);
    keep = malloc(n + 1);
    if (idx == NULL || at == NULL || keep == NULL) {
        free(idx);
        free(at);
        free(keep);
        *err = "out of memory";
        return -1;
    }
    for (size_t k = 0; k < n; k++) {
        double b = beats[k];
        while (j + 1 < nc && ct[j] < b - tol) {
            j++;
        }
        if (fabs(ct[j] - b) <= tol) {
            idx[m] = (double) (k + 1);   /* the Lua index: sums round so */
            at[m] = b;
            m++;
        }
    }
    for (int pass = 1; pass <= 2; pass++) {
        double cnt = 0, mi = 0, mt = 0, num = 0, den = 0;
        for (size_t i = 0; i < m; i++) {
            if (pass == 1 || keep[i]) {
                cnt = cnt + 1;
                mi = mi + idx[i];
                mt = mt + at[i];
            }
        }
        if (cnt < 2) {
            break;
        }
        mi = mi / cnt;
        mt = mt / cnt;
        for (size_t i = 0; i < m; i++) {
            if (pass == 1 || keep[i]) {
                num = num + (idx[i] - mi) * (at[i] - mt);
                den = den + (idx[i] - mi) * (idx[i] - mi);
            }
        }
        if (den == 0) {
            break;
        }
        *slope = num / den;
        found = 1;
        for (size_t i = 0; i < m; i++) {
            keep[i] = fabs(mt + (idx[i] - mi) * *slope - at[i]) <= tol;
        }
    }
    free(idx);
    free(at);
    free(keep);
    return found;
}


int
wtt_rhythm_accents(const double *beats, size_t n,
                   const struct wtt_rhythm_chords *ch, double period_s,
                   double *acc, size_t *n_acc, const char **err)
{
    const double *ct = ch->t, *cw = ch->w, *clow = ch->low;
    const double  tol = 0.2 * period_s;
    size_t        nc = ch->n, j = 0, n_l = 0, poly = 0;
    double       *low, sum_e = 0, sum_l = 0, mean_e, mean_l;
    int64_t      *pcs;            /* -1: no chord on the beat */
    int64_t       prev = -1;

    *n_acc = 0;
    if (n == 0 || nc == 0) {
        return 0;
    }
    /* Only the beats the onsets span: trailing beats under a last long
     * note would read as unaccented. */
    while (n > 1 && beats[n - 1] > ct[nc - 1] + tol) {
        n--;
    }
    low = malloc(n * sizeof(*low));
    pcs = malloc(n * sizeof(*pcs));
    if (low == NULL || pcs == NULL) {
        free(low);
        free(pcs);
        *err = "out of memory";
        return -1;
    }
    for (size_t k = 0; k < n; k++) {
        double b = beats[k], e = 0, l = NAN;
        size_t i;
        while (j < nc && ct[j] < b - tol) {
            j++;
        }
        pcs[k] = -1;
        for (i = j; i < nc && ct[i] <= b + tol; i++) {
            e = lmax(e, cw[i]);
            l = isnan(l) ? clow[i] : lmin(l, clow[i]);
            if (ch->size[i] > 1) {
                pcs[k] = ch->pcs[i];
            }
        }
        acc[k] = e;
        low[k] = l;
    }
    for (size_t k = 0; k < n; k++) {
        sum_e = sum_e + acc[k];
        if (!isnan(low[k])) {
            sum_l = sum_l + low[k];
            n_l++;
        }
    }
    mean_e = sum_e > 0 ? sum_e / (double) n : 1;
    mean_l = n_l > 0 ? sum_l / (double) n_l : 0;
    /* The bass only means something where there is harmony: in a single
     * line (or a metronome's high downbeat click) low is just low. */
    for (size_t i = 0; i < nc; i++) {
        if (ch->size[i] > 1) {
            poly++;
        }
    }
    if ((double) poly < 0.2 * (double) nc) {
        n_l = 0;
    }
    for (size_t k = 0; k < n; k++) {
        double s = acc[k] / mean_e;
        if (!isnan(low[k]) && n_l > 0) {
            s = s + 0.5 * lmax(-1, lmin(1, (mean_l - low[k]) / 12));
        }
        if (pcs[k] >= 0) {
            /* The first chord is a change too: it follows silence. */
            if (prev != pcs[k]) {
                s = s + 0.5;
            }
            prev = pcs[k];
        }
        acc[k] = s;
    }
    free(low);
    free(pcs);
    *n_acc = n;
    return 0;
}


void
wtt_rhythm_contrasts(const double *acc, size_t n, int m, double *out)
{
    for (int phase = 0; phase < m; phase++) {
        double a = 0, b = 0;
        size_t na = 0, nb = 0;
        for (size_t k = 0; k < n; k++) {
            if ((int) (k % (size_t) m) == phase) {
                a = a + acc[k];
                na++;
            } else {
                b = b + acc[k];
                nb++;
            }
        }
        out[phase] = na == 0 || nb == 0
                         ? 0 : a / (double) na - b / (double) nb;
    }
}


size_t
wtt_rhythm_pickup(const double *beats, size_t n, double p, double first_t,
                  double *out, size_t *n_out)
{
    double step = n > 1 ? beats[1] - beats[0] : 0.5;
    double target = first_t + p * step, best = HUGE_VAL, v;
    size_t down = 1, want = (size_t) ceil(p) + 1, add;

    for (size_t k = 0; k < n; k++) {
        double d = fabs(beats[k] - target);
        if (d < best) {
            down = k + 1;
            best = d;
        }
    }
    if (down > want) {
        *n_out = n - (down - want);
        memcpy(out, beats + (down - want), *n_out * sizeof(*out));
        return want;
    }
    add = want - down;
    v = beats[0];
    for (size_t i = 1; i <= add; i++) {
        v = v - step;
        out[add - i] = v;
    }
    memcpy(out + add, beats, n * sizeof(*out));
    *n_out = n + add;
    return want;
}
