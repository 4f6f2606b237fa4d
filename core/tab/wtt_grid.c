/*
 * wtt_grid.c: the measure grid (see wtt_grid.h and docs/tab.md,
 * "Rhythm").
 *
 * The expressions keep the operand order of the Lua code they replaced
 * (lua/wtt/tab/grid.lua drives them), `%` is written as LuaJIT computes
 * it (a - floor(a / b) * b), and maxima and minima as its math.max and
 * math.min compare, so every double rounds as it did there. Ticks are
 * whole numbers held in doubles, as they were in Lua.
 */
#include "wtt_grid.h"

#include <math.h>
#include <stdlib.h>

#define NO_COST  1e300   /* above any cost: the DP's starting best */
#define MAX_MEASURES ((double) WTT_GRID_MAX_BEATS)

/* Notatable lengths in ticks (docs/tab.md), longest first. Straight ones
 * are the multiples of 3 ticks, triplet (3:2) ones the others. */
static const int VALUES[] = { 48, 36, 24, 18, 16, 12, 9, 8, 6, 4, 3, 2 };
#define N_VALUES ((int) (sizeof(VALUES) / sizeof(VALUES[0])))


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

/* LuaJIT's a % b for numbers. */
static double
lmod(double a, double b)
{
    return a - floor(a / b) * b;
}


/* beats[k] for the Lua code's 1-based k. */
#define BEAT(g, k) ((g)->beats[(k) - 1])


void
wtt_grid_default_weights(struct wtt_grid_weights *w)
{
    w->err = 0.06;
    w->c8 = 0.2;
    w->c16 = 0.4;
    w->t3 = 1.2;
    w->t6 = 2.5;
    w->change = 0.5;
    w->collide = 4.0;
}


/* A triplet grid step of `s` ticks when it can be written (a whole number
 * of ticks, at least 2, not a straight value); 0 otherwise. */
static double
triplet_step(double s)
{
    if (s >= 2 && s == floor(s) && lmod(s, 3) != 0) {
        return s;
    }
    return 0;
}


int
wtt_grid_init(struct wtt_grid *g, const struct wtt_grid_meter *m,
              const struct wtt_grid_weights *w, const char **err)
{
    double per = m->beats_per_measure, bt = m->beat_type, p = m->pickup;
    double pt, fd = m->first_downbeat;

    if (m->beats == NULL || m->nb == 0) {
        *err = "rhythm estimate missing";
        return -1;
    }
    for (size_t k = 0; k < m->nb; k++) {
        if (!isfinite(m->beats[k])) {
            *err = "beats must be finite times";
            return -1;
        }
    }
    /* (a bound the Lua code lacked: a measure of more beats than a piece
     * can hold would only write rests) */
    if (!(per >= 1) || per != floor(per) || per > 65536) {
        *err = "beats_per_measure must be a positive integer";
        return -1;
    }
    if (bt != 2 && bt != 4 && bt != 8) {
        *err = "beat_type must be 2, 4 or 8";
        return -1;
    }
    pt = p * WTT_GRID_WHOLE / bt;
    if (p < 0 || (p >= per && p > 0) || pt != floor(pt)
        || lmod(pt, 3) != 0)
    {
        *err = "pickup_beats must be below the measure, in 16ths";
        return -1;
    }
    if (fd != floor(fd) || fd - 1 < p || fd > MAX_MEASURES) {
        *err = "first_downbeat must leave room for the pickup";
        return -1;
    }
    if (!(m->tempo_bpm > 0)) {
        *err = "tempo_bpm must be a positive number";
        return -1;
    }
    g->beats = m->beats;
    g->nb = m->nb;
    g->w = *w;
    g->tpb = WTT_GRID_WHOLE / bt;
    g->step[WTT_GRID_STRAIGHT] = 3;
    g->step[WTT_GRID_T3] = triplet_step(g->tpb / 3);
    g->step[WTT_GRID_T6] = triplet_step(g->tpb / 6);
    /* (tempo_bpm counts quarter notes; the beat is a beat_type note) */
    g->period = 60 / m->tempo_bpm * 4 / bt;
    g->per = per;
    g->pickup = p;
    g->mticks = per * g->tpb;
    g->ptick = p * g->tpb;
    g->udown = (fd - 1) * g->tpb;
    g->u0 = g->udown - g->ptick;
    g->umin = g->u0 / g->tpb;        /* nothing is placed before the start */
    return 0;
}


/* (A walk from a hint, not a bisection: queries come in order.) */
double
wtt_grid_locate(const struct wtt_grid *g, double t, size_t *hint)
{
    size_t nb = g->nb, k = *hint;
    double iv;

    if (t < BEAT(g, 1)) {
        iv = nb > 1 ? BEAT(g, 2) - BEAT(g, 1) : 0;
        *hint = 1;
        return iv > 0 ? (t - BEAT(g, 1)) / iv : 0;
    } else if (t >= BEAT(g, nb)) {
        iv = nb > 1 ? BEAT(g, nb) - BEAT(g, nb - 1) : 0;
        *hint = nb;
        return (double) (nb - 1) + (iv > 0 ? (t - BEAT(g, nb)) / iv : 0);
    }
    /* Here nb >= 2 and beats[1] <= t < beats[nb]: the walks stop inside. */
    if (k >= nb) {
        k = nb - 1;
    }
    if (k < 1) {
        k = 1;
    }
    while (BEAT(g, k) > t) {
        k--;
    }
    while (BEAT(g, k + 1) <= t) {
        k++;
    }
    *hint = k;
    return (double) (k - 1) + (t - BEAT(g, k))
                              / (BEAT(g, k + 1) - BEAT(g, k));
}


/* The time of beat position k (0-based, fractional), extrapolated outside
 * the beats. */
static double
beat_time(const struct wtt_grid *g, double k)
{
    size_t nb = g->nb;
    double i;

    if (nb < 2) {
        return BEAT(g, 1) + k * g->period;
    } else if (k < 0) {
        return BEAT(g, 1) + k * (BEAT(g, 2) - BEAT(g, 1));
    } else if (k >= (double) (nb - 1)) {
        return BEAT(g, nb) + (k - (double) nb + 1)
                             * (BEAT(g, nb) - BEAT(g, nb - 1));
    }
    i = floor(k);
    return BEAT(g, (size_t) i + 1)
           + (k - i) * (BEAT(g, (size_t) i + 2) - BEAT(g, (size_t) i + 1));
}


/* The type of beat `b` (any number): straight outside the typed beats. */
static int
type_at(const uint8_t *types, size_t nbeats, double b)
{
    if (b >= 0 && b < (double) nbeats) {
        return types[(size_t) b];
    }
    return WTT_GRID_STRAIGHT;
}


double
wtt_grid_beat_cost(const struct wtt_grid *g, const double *fr, size_t n,
                   int kind, double *q)
{
    const struct wtt_grid_weights *w = &g->w;
    double tpb = g->tpb, step = g->step[kind], half = tpb / 2;
    double cost = 0, prev = -1;

    for (size_t k = 0; k < n; k++) {
        double qk = floor(fr[k] * tpb / step + 0.5) * step;
        double e = (fr[k] - qk / tpb) / w->err;
        cost = cost + e * e;
        if (lmod(qk, tpb) != 0) {
            if (kind == WTT_GRID_STRAIGHT) {
                if (lmod(qk, half) != 0) {
                    cost = cost + (lmod(qk, 6) == 0 ? w->c8 : w->c16);
                }
            } else if (lmod(qk, tpb / 3) != 0) {
                cost = cost + w->c16;
            }
        }
        if (qk == prev) {
            cost = cost + w->collide;
        }
        prev = qk;
        if (q != NULL) {
            q[k] = qk;
        }
    }
    return cost;
}


int
wtt_grid_onsets(const struct wtt_grid *g, const struct wtt_grid_source *src,
                struct wtt_grid_work *work, const char **err)
{
    size_t hint = 1;
    double nbeats = 1;

    for (size_t c = 0; c < src->n_chords; c++) {
        double x = wtt_grid_locate(g, src->onset(src->ctx, c), &hint);
        double b;

        x = lmax(g->umin, x);
        b = floor(x);
        if (!(b < (double) WTT_GRID_MAX_BEATS)) {
            *err = "the notes span too many beats";
            return -1;
        }
        work->bi[c] = (int32_t) b;
        work->fr[c] = x - b;
        if (b >= nbeats) {
            nbeats = b + 1;
        }
    }
    work->nbeats = (size_t) nbeats;
    return 0;
}


/* The type of every beat by dynamic programming: timing error against
 * complexity per beat, plus a cost for changing type. */
static void
beat_types(const struct wtt_grid *g, size_t nc, struct wtt_grid_work *work)
{
    const int32_t *bi = work->bi;
    double         base[3], cost[2][3] = { { 0, 0, 0 }, { 0, 0, 0 } };
    double        *prev = cost[0], *cur = cost[1], best;
    int            kinds[3], nk = 0, arg;
    size_t         c = 0, nbeats = work->nbeats;

    kinds[nk++] = WTT_GRID_STRAIGHT;
    if (g->step[WTT_GRID_T3] != 0) {
        kinds[nk++] = WTT_GRID_T3;
    }
    if (g->step[WTT_GRID_T6] != 0) {
        kinds[nk++] = WTT_GRID_T6;
    }
    base[WTT_GRID_STRAIGHT] = 0;
    base[WTT_GRID_T3] = g->w.t3;
    base[WTT_GRID_T6] = g->w.t6;
    for (size_t b = 0; b < nbeats; b++) {
        size_t d = c;
        double *swap;
        while (d < nc && bi[d] == (int32_t) b) {
            d++;
        }
        for (int a = 0; a < nk; a++) {
            double own = base[kinds[a]];
            if (d > c) {
                own = own + wtt_grid_beat_cost(g, work->fr + c, d - c,
                                               kinds[a], NULL);
            }
            best = NO_COST;
            arg = 0;
            for (int p = 0; p < nk; p++) {
                double v = prev[p];
                if (p != a && b > 0) {
                    v = v + g->w.change;
                }
                if (v < best) {
                    best = v;
                    arg = p;
                }
            }
            cur[a] = best + own;
            work->back[b * 3 + (size_t) a] = (uint8_t) arg;
        }
        swap = prev;
        prev = cur;
        cur = swap;
        c = d;
    }
    best = NO_COST;
    arg = 0;
    for (int a = 0; a < nk; a++) {
        if (prev[a] < best) {
            best = prev[a];
            arg = a;
        }
    }
    for (size_t b = nbeats; b-- > 0;) {
        work->types[b] = (uint8_t) kinds[arg];
        arg = work->back[b * 3 + (size_t) arg];
    }
}


/* The strings chord c's notes sound on, as bits 0..63 (an ill-formed
 * list of more notes than there are stops). */
static uint64_t
strings_of(const struct wtt_grid_source *src, size_t c)
{
    uint64_t set = 0;
    size_t   left = src->n_notes;

    for (size_t ni = src->first(src->ctx, c); ni > 0 && left-- > 0;
         ni = src->next(src->ctx, ni))
    {
        int s = src->string(src->ctx, ni);
        if (s >= 1 && s <= WTT_GRID_MAX_STRING) {
            set |= (uint64_t) 1 << (s - 1);
        }
    }
    return set;
}


void
wtt_grid_place(const struct wtt_grid *g, const struct wtt_grid_source *src,
               struct wtt_grid_work *work)
{
    size_t   nc = src->n_chords, nbeats = work->nbeats, c = 0, upto = 0;
    double   tpb = g->tpb, *pos = work->pos, prev = 0;
    int32_t *bi = work->bi;
    uint64_t used = 0;

    beat_types(g, nc, work);
    if (lmod(g->u0, tpb) != 0) {
        /* a pickup starting inside a beat: that beat is written straight */
        double b = floor(g->u0 / tpb);
        if (b < (double) nbeats) {
            work->types[(size_t) b] = WTT_GRID_STRAIGHT;
        }
    }

    /* Each beat's chords quantised by its type: offsets into pos. */
    while (c < nc) {
        size_t d = c;
        int    kind = type_at(work->types, nbeats, bi[c]);
        while (d + 1 < nc && bi[d + 1] == bi[c]) {
            d++;
        }
        wtt_grid_beat_cost(g, work->fr + c, d - c + 1, kind, pos + c);
        for (size_t k = c; k <= d; k++) {
            if (bi[k] * tpb + pos[k] < g->u0) {
                pos[k] = g->u0 - bi[k] * tpb;
            }
        }
        c = d + 1;
    }

    /* Chords rounded to one position become one event, unless a string
     * would sound twice in it: then the later chord moves a grid step on,
     * if that is still before the next chord. pos[k] turns from an offset
     * into the position; `used` holds the strings of the chords from
     * the last one that took a new position up to upto - 1 (read only
     * when a chord lands on the position before it: most never do). */
    for (size_t k = 0; k < nc; k++) {
        double u = bi[k] * tpb + pos[k];
        if (k > 0 && u <= prev) {
            while (upto < k) {
                used |= strings_of(src, upto++);
            }
            if ((strings_of(src, k) & used) != 0) {
                double moved = prev + g->step[type_at(work->types, nbeats,
                                                      floor(prev / tpb))];
                double later = k + 1 < nc ? bi[k + 1] * tpb + pos[k + 1]
                                          : HUGE_VAL;
                u = moved < later ? moved : prev;
            } else {
                u = prev;
            }
        }
        if (k == 0 || u != prev) {
            used = 0;
            upto = k;
        }
        pos[k] = u;
        prev = u;
    }
}


int
wtt_grid_piece(const struct wtt_grid *g, const uint8_t *types,
               size_t nbeats, double at, double stop, double m0,
               double mlen, int rest)
{
    double tpb = g->tpb, b = floor(at / tpb), off = at - b * tpb, room;
    double mid;
    int    straight = type_at(types, nbeats, b) == WTT_GRID_STRAIGHT;
    int    has_mid;

    if (off != 0) {
        room = lmin(stop, (b + 1) * tpb) - at;
        for (int i = 0; i < N_VALUES; i++) {
            int v = VALUES[i];
            if (v <= room && (v % 3 == 0) == straight) {
                return v;
            }
        }
        return 0;
    }
    /* From a beat's start: the longest value that ends on a beat or
     * inside a straight beat, except that a value of two beats or more
     * does not cross the middle of an even measure unless it starts there
     * or at the bar, and a rest longer than a beat ends on a beat. */
    room = stop - at;
    has_mid = lmod(mlen / tpb, 2) == 0;
    mid = m0 + mlen / 2;
    for (int i = 0; i < N_VALUES; i++) {
        int v = VALUES[i];
        if (v > room) {
            continue;
        }
        if (v < tpb) {
            if ((v % 3 == 0) == straight) {
                return v;
            }
        } else if (v == tpb) {
            return v;
        } else if (v % 3 == 0
                   && !(v >= 2 * tpb && has_mid && at != m0 && at != mid
                        && at < mid && at + v > mid))
        {
            if (lmod(v, tpb) == 0) {
                return v;
            } else if (!rest
                       && type_at(types, nbeats, floor((at + v) / tpb))
                          == WTT_GRID_STRAIGHT)
            {
                /* ends inside a later beat: only a straight one */
                return v;
            }
        }
    }
    return 0;
}


/* The voice as it is written: the measures made so far (the last one's
 * start in beat ticks, length and number), whether the emission is in the
 * last one, and the first chord past the measures. */
struct voice {
    const struct wtt_grid      *g;
    const struct wtt_grid_sink *sink;
    const uint8_t              *types;
    size_t                      nbeats;
    const double               *pos;
    size_t                      nc, past;
    double                      n_measures;
    double                      start, ticks, number;
    int                         open;
};


static int
add_measure(struct voice *v, const char **err)
{
    const struct wtt_grid  *g = v->g;
    struct wtt_grid_measure m;
    int                     first = v->n_measures == 0;

    if (v->n_measures >= MAX_MEASURES) {
        *err = "the piece spans too many measures";
        return -1;
    }
    v->start = first ? g->u0 : v->start + v->ticks;
    v->number = (first && g->ptick > 0) ? 0 : (first ? 1 : v->number + 1);
    v->ticks = v->number == 0 ? g->ptick : g->mticks;
    v->n_measures++;
    m.number = v->number;
    m.start_tick = v->start - g->u0;
    m.ticks = v->ticks;
    m.start_s = beat_time(g, v->start / g->tpb);
    /* (positions only grow: the chords in it follow the last measure's) */
    m.onsets = 0;
    while (v->past < v->nc && v->pos[v->past] < v->start + v->ticks) {
        if (v->past == 0 || v->pos[v->past] != v->pos[v->past - 1]) {
            m.onsets++;
        }
        v->past++;
    }
    if (v->sink->measure(v->sink->ctx, &m) != 0) {
        *err = "stopped";
        return -1;
    }
    return 0;
}


/* Writes [a, b) as pieces: a rest, or the last group's notes. */
static int
emit(struct voice *v, double a, double b, int rest, const char **err)
{
    int first_piece = 1;

    while (a < b) {
        double stop;
        int    len;
        for (;;) {
            if (!v->open) {
                if (add_measure(v, err) != 0) {
                    return -1;
                }
                v->open = 1;
            } else if (v->start + v->ticks <= a) {
                v->open = 0;
            } else {
                break;
            }
        }
        stop = lmin(b, v->start + v->ticks);
        len = wtt_grid_piece(v->g, v->types, v->nbeats, a, stop, v->start,
                             v->ticks, rest);
        if (len == 0) {
            *err = "grid: no notatable piece";
            return -1;
        }
        if (v->sink->event(v->sink->ctx, a - v->start, len, rest,
                           !rest && !first_piece) != 0)
        {
            *err = "stopped";
            return -1;
        }
        a = a + len;
        first_piece = 0;
    }
    return 0;
}


static int
by_index(const void *pa, const void *pb)
{
    size_t a = *(const size_t *) pa, b = *(const size_t *) pb;

    return a < b ? -1 : a > b;
}


/* The chords c..d sharing position `tick`: their notes into work->notes
 * (*n of them) and the end of the event (its notes' quantised ends, at
 * least a grid step on). Returns 0, or -1 with `*err`. */
static int
group_notes(const struct wtt_grid *g, const struct wtt_grid_source *src,
            const struct wtt_grid_work *work, size_t c, size_t d,
            size_t *n, double *stop, const char **err)
{
    double tpb = g->tpb, tick = work->pos[c];
    double step = g->step[type_at(work->types, work->nbeats,
                                  floor(tick / tpb))];

    *stop = tick;
    *n = 0;
    for (size_t k = c; k <= d; k++) {
        for (size_t ni = src->first(src->ctx, k); ni > 0;
             ni = src->next(src->ctx, ni))
        {
            size_t hint = (size_t) work->bi[c] + 1;
            double xe, be, se, e;
            if (*n >= work->n_cap) {
                *err = "grid: more notes than the work has room for";
                return -1;
            }
            work->notes[(*n)++] = ni;
            xe = wtt_grid_locate(g, src->end_s(src->ctx, ni), &hint);
            xe = lmax(g->umin, xe);
            be = floor(xe);
            se = g->step[type_at(work->types, work->nbeats, be)];
            e = be * tpb + floor((xe - be) * tpb / se + 0.5) * se;
            if (e <= tick) {
                e = tick + step;
            }
            if (e > *stop) {
                *stop = e;
            }
        }
    }
    if (d > c) {
        qsort(work->notes, *n, sizeof(*work->notes), by_index);
    }
    return 0;
}


int
wtt_grid_write(const struct wtt_grid *g, const struct wtt_grid_source *src,
               const struct wtt_grid_sink *sink,
               struct wtt_grid_work *work, const char **err)
{
    struct voice v = { g, sink, work->types, work->nbeats, work->pos,
                       src->n_chords, 0, 0, 0, 0, 0, 0 };
    double      *pos = work->pos, cur = g->u0, total = g->udown + g->mticks;
    size_t       nc = src->n_chords, c = 0;

    /* One voice: a chord lasts to the next chord or its own quantised
     * end. */
    while (c < nc) {
        struct wtt_grid_place p;
        double                tick = pos[c], stop, ms = g->u0;
        size_t                d = c, n;
        while (d + 1 < nc && pos[d + 1] == tick) {
            d++;
        }
        if (group_notes(g, src, work, c, d, &n, &stop, err) != 0) {
            return -1;
        }
        if (d + 1 < nc) {
            stop = lmin(stop, pos[d + 1]);
        }
        /* the notes' own fields: where the event starts, its length */
        p.tick = tick - g->u0;
        p.ticks = stop - tick;
        p.measure = 0;
        if (tick >= g->udown) {
            p.measure = floor((tick - g->udown) / g->mticks) + 1;
            ms = g->udown + (p.measure - 1) * g->mticks;
        }
        p.beat = (tick - ms) / g->tpb + 1;
        if (p.measure == 0) {
            p.beat = p.beat + g->per - g->pickup;
        }
        if (sink->group(sink->ctx, work->notes, n, &p) != 0) {
            *err = "stopped";
            return -1;
        }
        if (tick > cur && emit(&v, cur, tick, 1, err) != 0) {
            return -1;
        }
        if (emit(&v, tick, stop, 0, err) != 0) {
            return -1;
        }
        cur = stop;
        c = d + 1;
    }
    while (total < cur) {
        total = total + g->mticks;
    }
    if (cur < total && emit(&v, cur, total, 1, err) != 0) {
        return -1;
    }
    if (v.n_measures == 0 && add_measure(&v, err) != 0) {
        return -1;
    }
    while (v.start + v.ticks < total) {
        if (add_measure(&v, err) != 0) {
            return -1;
        }
    }
    return 0;
}
