/*
 * wtt_fingering.c: candidate fingerings and the Viterbi search of tab
 * fingering (see wtt_fingering.h and docs/tab.md, "Fingering").
 *
 * The hand covers a box of four frets from its position (the index
 * finger's fret) and moves only as far as a candidate's fretted notes need;
 * an all-open candidate leaves it where it was. Where the hand is depends
 * on the path, so the search carries it along the best path to each
 * candidate. Keeping only the cheapest path to each candidate makes the
 * work chords x candidates^2: linear in the notes, as candidates are
 * capped.
 *
 * wtt_finger_run keeps the order of operations of the Lua code it
 * replaced (lua/wtt/tab/finger.lua before it drove this), comparisons and
 * sorts included, so the same notes get the same strings, frets, chords
 * and unplayable list.
 */
#include "wtt_fingering.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BOX             4       /* frets the hand covers */
#define MAX_FINGERS     4       /* one finger per fret, a barre included */
#define FORBIDDEN       1e9     /* two notes on one string at once */
#define SAME_STRING_S   0.03    /* what "at once" means for two starts */
#define RING_S          0.05    /* a note still sounding this long after */

/* The hand's position is a fret >= 1; NO_POS: not placed yet (the path so
 * far has played open strings only). */
#define NO_POS          0


/* -------------------------------------------------------------------------
 * Checks
 * ---------------------------------------------------------------------- */

int
wtt_finger_check(const struct wtt_finger_instrument *inst,
                 const struct wtt_finger_params *p, const char **err)
{
    const double w[] = { p->move, p->move_line, p->stretch, p->height,
                         p->home, p->open, p->string, p->ring, p->skip,
                         p->cross, p->bass, p->chord_gap_ms,
                         p->chord_window_ms };

    if (inst->n_strings < 1 || inst->n_strings > WTT_FINGER_MAX_STRINGS) {
        *err = "an instrument has 1 to 12 strings";
        return -1;
    }
    for (int s = 0; s < inst->n_strings; s++) {
        if (inst->tuning[s] < 0 || inst->tuning[s] > 127) {
            *err = "a string's open pitch must be in 0-127";
            return -1;
        }
    }
    if (inst->max_fret < 1 || inst->max_fret > WTT_FINGER_MAX_FRET
        || inst->capo < 0 || inst->capo >= inst->max_fret)
    {
        *err = "capo and max_fret must satisfy 0 <= capo < max_fret <= 127";
        return -1;
    }
    for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
        if (!isfinite(w[i])) {
            *err = "fingering weights and chord windows must be finite "
                   "numbers";
            return -1;
        }
    }
    if (p->span < 0 || p->span > WTT_FINGER_MAX_FRET || p->span_open < 0
        || p->span_open > WTT_FINGER_MAX_FRET)
    {
        *err = "span and span_open must be in 0-127";
        return -1;
    }
    if (p->candidates < 1 || p->candidates > WTT_FINGER_MAX_CANDIDATES) {
        *err = "candidates must be in 1-4096";
        return -1;
    }
    return 0;
}


int
wtt_finger_positions(const struct wtt_finger_instrument *inst, int pitch,
                     int *strings, int *frets)
{
    int top = inst->max_fret - inst->capo;
    int n = 0;

    for (int s = 0; s < inst->n_strings; s++) {
        int f = pitch - inst->tuning[s] - inst->capo;
        if (f >= 0 && f <= top) {
            strings[n] = s + 1;
            frets[n] = f;
            n++;
        }
    }
    return n;
}


/* -------------------------------------------------------------------------
 * Candidates
 * ---------------------------------------------------------------------- */

/*
 * Shape cost of one assignment of `k` notes into *cost, with the lowest and
 * highest fretted frets (NO_POS when all open). Returns 0 when the hand
 * cannot play it. The sums run in the order of the Lua code this replaced,
 * so costs (and ties) are the same to the last bit.
 */
static int
shape_cost(const unsigned char *frets, const unsigned char *strings, int k,
           const struct wtt_finger_params *p, int ordered, int n_strings,
           double *cost, int *lo_out, int *hi_out)
{
    int    lo = INT32_MAX, hi = INT32_MIN, nfret = 0, nopen = 0;
    int    smin = INT32_MAX, smax = INT32_MIN, span, pos;
    double c;

    for (int i = 0; i < k; i++) {
        int f = frets[i], s = strings[i];
        if (f > 0) {
            nfret++;
            if (f < lo) {
                lo = f;
            }
            if (f > hi) {
                hi = f;
            }
        } else {
            nopen++;
        }
        if (s < smin) {
            smin = s;
        }
        if (s > smax) {
            smax = s;
        }
    }
    span = nfret >= 2 ? hi - lo : 0;
    if (span > (nopen > 0 ? p->span_open : p->span)) {
        return 0;
    }
    if (nfret > MAX_FINGERS) {
        /* One finger holds every note on its fret (a barre or a partial
         * barre): more distinct frets than fingers is too many. */
        int distinct = 0;
        for (int i = 0; i < k; i++) {
            int seen = frets[i] == 0;
            for (int j = 0; j < i && !seen; j++) {
                seen = frets[j] == frets[i];
            }
            distinct += !seen;
        }
        if (distinct > MAX_FINGERS) {
            return 0;
        }
    }
    pos = nfret > 0 ? lo : NO_POS;
    /* Three fingers cover a two-fret span with no stretch. */
    c = p->stretch * (double) (span > 2 ? span - 2 : 0);
    if (k >= 3 && frets[0] > 0 && strings[0] < n_strings - 1) {
        /* Comping puts the bass on the low strings: a fretted lowest note
         * on an inner string (a low string left unused) costs. */
        c = c + p->bass;
    }
    if (nopen > 0) {
        /* Open strings are natural low on the neck, less so up high. */
        c = c - p->open * (double) nopen
                * ((pos == NO_POS || pos <= 5) ? 1 : 0.3);
    }
    c = c + p->skip * (double) ((smax - smin + 1) - k);
    if (ordered) {
        /* Notes come sorted by pitch: a higher note on a lower string
         * crosses the voices, which hands avoid. */
        for (int i = 1; i < k; i++) {
            if (strings[i] > strings[i - 1]) {
                c = c + p->cross;
            }
        }
    }
    *cost = c;
    *lo_out = pos;
    *hi_out = nfret > 0 ? hi : NO_POS;
    return 1;
}


/* Cheaper first; equal costs in enumeration order (a total order). */
static int
better(const struct wtt_finger_candidate *a,
       const struct wtt_finger_candidate *b)
{
    return a->cost < b->cost || (a->cost == b->cost && a->order < b->order);
}


static int
by_rank(const void *x, const void *y)
{
    return better(x, y) ? -1 : 1;
}


/* Restores the heap (the worst kept candidate at the root) below `i`. */
static void
sift_down(struct wtt_finger_candidate *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, worst = i;
        if (l < n && better(&h[worst], &h[l])) {
            worst = l;
        }
        if (r < n && better(&h[worst], &h[r])) {
            worst = r;
        }
        if (worst == i) {
            return;
        }
        struct wtt_finger_candidate t = h[i];
        h[i] = h[worst];
        h[worst] = t;
        i = worst;
    }
}


/* One chord's depth-first enumeration of assignments. */
struct walk {
    const struct wtt_finger_instrument *inst;
    const struct wtt_finger_params     *p;
    int            k;
    int            npos[WTT_FINGER_MAX_STRINGS];
    int            pos_s[WTT_FINGER_MAX_STRINGS][WTT_FINGER_MAX_STRINGS];
    int            pos_f[WTT_FINGER_MAX_STRINGS][WTT_FINGER_MAX_STRINGS];
    unsigned char  strings[WTT_FINGER_MAX_STRINGS];
    unsigned char  frets[WTT_FINGER_MAX_STRINGS];
    unsigned       used;          /* bit s-1: string s taken */
    long           work;          /* assignments tried */
    int            first_only;    /* stop at the first fingering */
    struct wtt_finger_candidate *out;   /* NULL with first_only */
    size_t         cap;
    size_t         n;             /* kept */
    unsigned       found;         /* fingerings seen */
    int            heap;          /* out is a heap (more than cap found) */
};


/* A complete assignment: keeps it when it is playable and among the
 * cheapest `cap`. */
static void
leaf(struct walk *w)
{
    struct wtt_finger_candidate c;
    int                         k = w->k;

    if (!shape_cost(w->frets, w->strings, k, w->p, w->inst->ordered,
                    w->inst->n_strings, &c.cost, &c.lo, &c.hi))
    {
        return;
    }
    c.order = w->found++;
    if (w->first_only) {
        return;
    }
    memset(c.string, 0, sizeof(c.string));
    memset(c.fret, 0, sizeof(c.fret));
    memcpy(c.string, w->strings, (size_t) k);
    memcpy(c.fret, w->frets, (size_t) k);
    if (w->n < w->cap) {
        w->out[w->n++] = c;
        return;
    }
    if (!w->heap) {
        for (size_t i = w->n / 2; i-- > 0;) {
            sift_down(w->out, w->n, i);
        }
        w->heap = 1;
    }
    if (better(&c, &w->out[0])) {
        w->out[0] = c;
        sift_down(w->out, w->n, 0);
    }
}


/* Assigns notes i.. to free strings. Returns -1 when the work runs over. */
static int
walk(struct walk *w, int i)
{
    if (++w->work > WTT_FINGER_MAX_WORK) {
        return -1;
    }
    if (i == w->k) {
        leaf(w);
        return 0;
    }
    for (int j = 0; j < w->npos[i]; j++) {
        int s = w->pos_s[i][j], f = w->pos_f[i][j];
        int ok = 1;

        if (w->used & (1u << (s - 1))) {
            continue;
        }
        if (f > 0) {
            /* Prune a fretted spread that can no longer fit. */
            for (int m = 0; m < i; m++) {
                int g = w->frets[m];
                if (g > 0 && abs(g - f) > w->p->span_open) {
                    ok = 0;
                    break;
                }
            }
        }
        if (!ok) {
            continue;
        }
        w->used |= 1u << (s - 1);
        w->strings[i] = (unsigned char) s;
        w->frets[i] = (unsigned char) f;
        if (walk(w, i + 1) != 0) {
            return -1;
        }
        w->used &= ~(1u << (s - 1));
        if (w->first_only && w->found > 0) {
            return 0;
        }
    }
    return 0;
}


/* Enumerates one chord into `out` (cap entries, or NULL with first_only).
 * Returns the number of fingerings found (kept: *n), or -1 with `*err`. */
static long
enumerate(const struct wtt_finger_instrument *inst,
          const struct wtt_finger_params *p, const int *pitch, size_t k,
          int first_only, struct wtt_finger_candidate *out, size_t *n,
          const char **err)
{
    struct walk w;

    if (k < 1 || k > (size_t) inst->n_strings) {
        *err = "a chord has 1 to as many notes as the instrument strings";
        return -1;
    }
    /* Only the scalars need clearing: the walk writes every array entry
     * before it reads it, and this runs twice a chord. */
    w.used = 0;
    w.work = 0;
    w.n = 0;
    w.found = 0;
    w.heap = 0;
    w.inst = inst;
    w.p = p;
    w.k = (int) k;
    w.first_only = first_only;
    w.out = out;
    w.cap = (size_t) p->candidates;
    for (size_t i = 0; i < k; i++) {
        if (pitch[i] < 0 || pitch[i] > 127) {
            *err = "a pitch must be in 0-127";
            return -1;
        }
        w.npos[i] = wtt_finger_positions(inst, pitch[i], w.pos_s[i],
                                         w.pos_f[i]);
    }
    if (walk(&w, 0) != 0) {
        *err = "a chord has too many fingerings to weigh";
        return -1;
    }
    if (w.heap) {
        qsort(w.out, w.n, sizeof(*w.out), by_rank);
    }
    if (n != NULL) {
        *n = w.n;
    }
    return (long) w.found;
}


int
wtt_finger_candidates(const struct wtt_finger_instrument *inst,
                      const struct wtt_finger_params *p, const int *pitch,
                      size_t k, struct wtt_finger_candidate *out, size_t *n,
                      const char **err)
{
    return enumerate(inst, p, pitch, k, 0, out, n, err) < 0 ? -1 : 0;
}


int
wtt_finger_playable(const struct wtt_finger_instrument *inst,
                    const struct wtt_finger_params *p, const int *pitch,
                    size_t k, const char **err)
{
    long found = enumerate(inst, p, pitch, k, 1, NULL, NULL, err);

    return found < 0 ? -1 : found > 0;
}


/* -------------------------------------------------------------------------
 * Search
 * ---------------------------------------------------------------------- */

/* Where the hand is for `b` when it was at `apos`: it covers BOX frets from
 * its position, so it moves only as far as b's fretted notes need. */
static int
hand_at(int apos, const struct wtt_finger_candidate *b)
{
    int need;

    if (b->lo == NO_POS) {
        return apos;
    }
    if (apos == NO_POS) {
        return b->lo;
    }
    need = b->hi - BOX + 1;
    if (need > b->lo) {
        return b->lo;
    }
    if (apos < need) {
        return need;
    }
    if (apos > b->lo) {
        return b->lo;
    }
    return apos;
}


/* A chord of the piece: its first note and size. */
struct span {
    size_t first;
    int    k;
};


/* Transition cost from candidate `a` of chord `ca` (hand at `apos`) to
 * `b` of chord `cb` (hand at `bpos`). */
static double
transition(const struct wtt_finger_piece *piece,
           const struct wtt_finger_candidate *a, struct span ca, int apos,
           const struct wtt_finger_candidate *b, struct span cb, int bpos,
           const struct wtt_finger_params *p)
{
    const double *start = piece->start_s, *end = piece->end_s;
    double        cost = 0;
    double        t = start[cb.first];
    double        dt = t - start[ca.first];
    int           line = ca.k == 1 && cb.k == 1;

    if (apos != NO_POS && bpos != NO_POS) {
        int move = abs(bpos - apos);
        if (move > 0) {
            /* A hand slides along a single-note line more easily than it
             * carries a chord shape; a long gap leaves time for either. */
            cost = cost + (line ? p->move_line : p->move) * (double) move
                          * (dt > 1 ? 0.5 : 1);
        }
    }
    if (bpos != NO_POS) {
        cost = cost + p->height * fabs((double) bpos - p->home);
    }
    if (line) {
        cost = cost + p->string * (double) abs(a->string[0] - b->string[0]);
    }
    /* Notes of `a` still sounding when `b` starts: a note of `b` on the
     * same string cuts them off (or, near-simultaneous, is impossible). */
    for (int i = 0; i < ca.k; i++) {
        size_t n = ca.first + (size_t) i;
        for (int j = 0; j < cb.k; j++) {
            if (b->string[j] != a->string[i]) {
                continue;
            }
            if (start[cb.first + (size_t) j] - start[n] <= SAME_STRING_S) {
                return FORBIDDEN;
            }
            if (end[n] > t + RING_S && b->fret[j] != a->fret[i]) {
                cost = cost + p->ring;
            }
        }
    }
    return cost;
}


/* Checks the piece's shape; fills `spans`. */
static int
check_piece(const struct wtt_finger_instrument *inst,
            const struct wtt_finger_piece *piece, struct span *spans,
            const char **err)
{
    size_t first = 0;

    for (size_t c = 0; c < piece->n_chords; c++) {
        int k = piece->size[c];
        if (k < 1 || k > inst->n_strings) {
            *err = "a chord has 1 to as many notes as the instrument strings";
            return -1;
        }
        if ((size_t) k > piece->n_notes - first) {
            *err = "the chord sizes add up to more than the notes";
            return -1;
        }
        spans[c].first = first;
        spans[c].k = k;
        first += (size_t) k;
    }
    if (first != piece->n_notes) {
        *err = "the chord sizes add up to fewer than the notes";
        return -1;
    }
    for (size_t i = 0; i < piece->n_notes; i++) {
        if (piece->pitch[i] < 0 || piece->pitch[i] > 127) {
            *err = "a pitch must be in 0-127";
            return -1;
        }
        if (!isfinite(piece->start_s[i]) || !isfinite(piece->end_s[i])) {
            *err = "note times must be finite";
            return -1;
        }
    }
    return 0;
}


/*
 * What the back-trace needs of every candidate, chord after chord: its
 * strings and frets (k bytes each) and the index of the previous chord's
 * candidate on its cheapest path (two bytes, little end first: candidates
 * number at most 4096). Full candidates are kept for two chords only, the
 * one searched and the one before: a first call touches a tenth of the
 * memory that keeping them all did, and page faults were most of its
 * time.
 */
struct trail {
    unsigned char *bytes;
    size_t         n, room;
    size_t        *at;        /* chord c's records start at bytes[at[c]] */
};


/* Room for `more` bytes. */
static int
trail_room(struct trail *tr, size_t more)
{
    size_t         room;
    unsigned char *b;

    if (more <= tr->room - tr->n) {
        return 0;
    }
    room = tr->room > 0 ? tr->room : 16384;
    while (room - tr->n < more) {
        if (room > SIZE_MAX / 2) {
            return -1;
        }
        room *= 2;
    }
    b = realloc(tr->bytes, room);
    if (b == NULL) {
        return -1;
    }
    tr->bytes = b;
    tr->room = room;
    return 0;
}


/* One chord's step of the search: its `nb` candidates `cb` get the cost of
 * the cheapest path to them (`cost`) and where the hand is on it (`hpos`),
 * from the previous chord's `na` candidates `ca` (NULL for the first
 * chord), and their records go to the trail. Returns the candidate pairs
 * weighed. */
static size_t
step(const struct wtt_finger_piece *piece, const struct wtt_finger_params *p,
     const struct wtt_finger_candidate *ca, size_t na, const double *acost,
     const int *apos_of, struct span sa,
     const struct wtt_finger_candidate *cb, size_t nb, struct span sb,
     double *cost, int *hpos, unsigned char *rec)
{
    size_t steps = 0;
    int    k = sb.k;

    for (size_t b = 0; b < nb; b++) {
        const struct wtt_finger_candidate *cd = &cb[b];
        int                                arg = 0;

        if (ca == NULL) {
            double at = cd->lo != NO_POS ? (double) cd->lo : p->home;
            cost[b] = cd->cost + p->height * fabs(at - p->home);
            hpos[b] = cd->lo;
        } else {
            double best = HUGE_VAL;
            int    bestpos = cd->lo;
            for (size_t m = 0; m < na; m++) {
                double base = acost[m];
                if (base < best) {
                    int    apos = apos_of[m];
                    int    bpos = hand_at(apos, cd);
                    double t;
                    steps++;
                    t = base + transition(piece, &ca[m], sa, apos, cd, sb,
                                          bpos, p);
                    if (t < best) {
                        best = t;
                        arg = (int) m;
                        bestpos = bpos;
                    }
                }
            }
            cost[b] = best + cd->cost;
            hpos[b] = bestpos;
        }
        memcpy(rec, cd->string, (size_t) k);
        memcpy(rec + k, cd->fret, (size_t) k);
        rec[2 * k] = (unsigned char) (arg & 0xff);
        rec[2 * k + 1] = (unsigned char) (arg >> 8);
        rec += 2 * k + 2;
    }
    return steps;
}


int
wtt_finger_search(const struct wtt_finger_instrument *inst,
                  const struct wtt_finger_params *p,
                  const struct wtt_finger_piece *piece, int *strings,
                  int *frets, size_t *transitions, size_t *bad_chord,
                  const char **err)
{
    size_t                       nc = piece->n_chords;
    size_t                       cap = (size_t) p->candidates;
    size_t                       steps = 0, na = 0, j;
    struct span                 *spans = NULL;
    struct trail                 tr = { 0 };
    struct wtt_finger_candidate *cand = NULL, *ca, *cb;
    double                      *cost = NULL, *acost, *bcost;
    int                         *hpos = NULL, *apos, *bpos;
    int                          rc = -1;

    if (bad_chord != NULL) {
        *bad_chord = SIZE_MAX;
    }
    *transitions = 0;
    if (nc == 0) {
        if (piece->n_notes != 0) {
            *err = "the chord sizes add up to fewer than the notes";
            return -1;
        }
        return 0;
    }
    if (nc > SIZE_MAX / sizeof(*spans) - 1) {
        *err = "out of memory";
        return -1;
    }
    spans = malloc(nc * sizeof(*spans));
    tr.at = malloc(nc * sizeof(*tr.at));
    /* Two chords' candidates, costs and hand positions. */
    cand = malloc(2 * cap * sizeof(*cand));
    cost = malloc(2 * cap * sizeof(*cost));
    hpos = malloc(2 * cap * sizeof(*hpos));
    if (spans == NULL || tr.at == NULL || cand == NULL || cost == NULL
        || hpos == NULL)
    {
        *err = "out of memory";
        goto done;
    }
    if (check_piece(inst, piece, spans, err) != 0) {
        goto done;
    }

    /* Forward: the cheapest path to every candidate, and where the hand is
     * on it, chord by chord. */
    ca = cand;
    cb = cand + cap;
    acost = cost;
    bcost = cost + cap;
    apos = hpos;
    bpos = hpos + cap;
    for (size_t c = 0; c < nc; c++) {
        size_t nb, rec = 2 * (size_t) spans[c].k + 2;
        if (enumerate(inst, p, piece->pitch + spans[c].first,
                      (size_t) spans[c].k, 0, cb, &nb, err) < 0)
        {
            goto done;
        }
        if (nb == 0) {
            if (bad_chord != NULL) {
                *bad_chord = c;
            }
            *err = "a chord has no fingering";
            goto done;
        }
        if (trail_room(&tr, nb * rec) != 0) {
            *err = "out of memory";
            goto done;
        }
        tr.at[c] = tr.n;
        steps += step(piece, p, c > 0 ? ca : NULL, na, acost, apos,
                      c > 0 ? spans[c - 1] : spans[c], cb, nb, spans[c],
                      bcost, bpos, tr.bytes + tr.n);
        tr.n += nb * rec;
        /* This chord is the next one's previous. */
        {
            struct wtt_finger_candidate *tc = ca;
            double                      *tcost = acost;
            int                         *tpos = apos;
            ca = cb;
            cb = tc;
            acost = bcost;
            bcost = tcost;
            apos = bpos;
            bpos = tpos;
            na = nb;
        }
    }

    /* Back-trace from the cheapest end. */
    {
        double best = HUGE_VAL;
        j = 0;
        for (size_t m = 0; m < na; m++) {
            if (acost[m] < best) {
                best = acost[m];
                j = m;
            }
        }
    }
    for (size_t c = nc; c-- > 0;) {
        int                  k = spans[c].k;
        const unsigned char *r = tr.bytes + tr.at[c]
                                 + j * (2 * (size_t) k + 2);
        for (int i = 0; i < k; i++) {
            strings[spans[c].first + (size_t) i] = r[i];
            frets[spans[c].first + (size_t) i] = r[k + i];
        }
        j = (size_t) r[2 * k] | (size_t) r[2 * k + 1] << 8;
    }
    *transitions = steps;
    rc = 0;

done:
    free(hpos);
    free(cost);
    free(cand);
    free(tr.bytes);
    free(tr.at);
    free(spans);
    return rc;
}


/* -------------------------------------------------------------------------
 * A piece, from its notes
 * ---------------------------------------------------------------------- */

/* 2^53: beyond it a double no longer holds every integer. */
#define EXACT_INT       9007199254740992.0

/* The instrument's reach: which MIDI notes have a position, and the lowest
 * and highest pitch its strings give. */
struct reach {
    unsigned char has[128];
    int           lo, hi;
};


static void
reach_of(const struct wtt_finger_instrument *inst, struct reach *r)
{
    int strings[WTT_FINGER_MAX_STRINGS], frets[WTT_FINGER_MAX_STRINGS];

    for (int q = 0; q < 128; q++) {
        r->has[q] = wtt_finger_positions(inst, q, strings, frets) > 0;
    }
    r->lo = INT32_MAX;
    r->hi = INT32_MIN;
    for (int s = 0; s < inst->n_strings; s++) {
        int low = inst->tuning[s] + inst->capo;
        int high = inst->tuning[s] + inst->max_fret;
        r->lo = low < r->lo ? low : r->lo;
        r->hi = high > r->hi ? high : r->hi;
    }
}


/* `v` as a MIDI note the instrument has; -1 when it is not one. */
static int
in_reach(const struct reach *r, double v)
{
    if (!(v >= 0 && v <= 127) || v != (double) (int) v) {
        return -1;
    }
    return r->has[(int) v] ? (int) v : -1;
}


/* `v` moved up by octaves to the lowest pitch or above, then down to the
 * highest or below; -1 when that is not a note the instrument has. */
static int
folded(const struct reach *r, double v)
{
    int64_t q;

    if (!(fabs(v) < EXACT_INT) || v != floor(v)) {
        return -1;
    }
    q = (int64_t) v;
    if (q < r->lo) {
        q += 12 * ((r->lo - q + 11) / 12);
    }
    if (q > r->hi) {
        q -= 12 * ((q - r->hi + 11) / 12);
    }
    if (q < 0 || q > 127 || !r->has[q]) {
        return -1;
    }
    return (int) q;
}


/* Stable insertion sort of note indexes by start, then pitch. The lists
 * come nearly sorted (chords in time order, a few notes each), and the
 * order on ties is the Lua code's. */
static void
sort_by_time(size_t *idx, size_t n, const double *start, const int *pitch)
{
    for (size_t i = 1; i < n; i++) {
        size_t v = idx[i];
        double vs = start[v];
        size_t j = i;
        while (j > 0) {
            size_t u = idx[j - 1];
            double us = start[u];
            if (vs < us || (vs == us && pitch[v] < pitch[u])) {
                idx[j] = u;
                j--;
            } else {
                break;
            }
        }
        idx[j] = v;
    }
}


/* The same for the unplayable list, by start alone. */
static void
sort_unplayable(struct wtt_finger_unplayable *list, size_t n,
                const double *start)
{
    for (size_t i = 1; i < n; i++) {
        struct wtt_finger_unplayable v = list[i];
        double                       vs = start[v.note];
        size_t                       j = i;
        while (j > 0 && vs < start[list[j - 1].note]) {
            list[j] = list[j - 1];
            j--;
        }
        list[j] = v;
    }
}


/* A chord's notes by pitch, then start (stable). */
static void
sort_chord(size_t *idx, size_t n, const int *pitch, const double *start)
{
    for (size_t i = 1; i < n; i++) {
        size_t v = idx[i];
        int    vp = pitch[v];
        double vs = start[v];
        size_t j = i;
        while (j > 0) {
            size_t u = idx[j - 1];
            if (vp < pitch[u] || (vp == pitch[u] && vs < start[u])) {
                idx[j] = u;
                j--;
            } else {
                break;
            }
        }
        idx[j] = v;
    }
}


/* The note of a chord (sorted by pitch) to remove: the first inner note
 * whose pitch class is doubled, else the middle one (the lower of two),
 * or of two notes the higher; the bass and the melody go last. */
static size_t
pick(const size_t *chord, size_t k, const int *pitch)
{
    size_t seen[12] = { 0 };

    for (size_t i = 0; i < k; i++) {
        seen[pitch[chord[i]] % 12]++;
    }
    for (size_t i = 1; i + 1 < k; i++) {
        if (seen[pitch[chord[i]] % 12] > 1) {
            return i;
        }
    }
    return k > 2 ? (k + 1) / 2 - 1 : k - 1;
}


/* Whether a chord of `k` notes (1..n_strings) has a fingering: 1, 0, or
 * -1 with `*err`. */
static int
chord_playable(const struct wtt_finger_instrument *inst,
               const struct wtt_finger_params *p, const size_t *chord,
               size_t k, const int *pitch, const char **err)
{
    int pc[WTT_FINGER_MAX_STRINGS];

    for (size_t i = 0; i < k; i++) {
        pc[i] = pitch[chord[i]];
    }
    return wtt_finger_playable(inst, p, pc, k, err);
}


/* Removes notes from a chord of `*k` until it has no more notes than
 * strings and a fingering; each removed goes to the unplayable list.
 * Returns 0, or -1 with `*err`. */
static int
reduce(const struct wtt_finger_instrument *inst,
       const struct wtt_finger_params *p, size_t *chord, size_t *k,
       struct wtt_finger_placement *out, const char **err)
{
    for (;;) {
        int    ok = 0;
        size_t at;

        if (*k <= (size_t) inst->n_strings) {
            ok = chord_playable(inst, p, chord, *k, out->pitch, err);
            if (ok < 0) {
                return -1;
            }
        }
        if (ok) {
            return 0;
        }
        at = pick(chord, *k, out->pitch);
        out->unplayable[out->n_unplayable].note = chord[at];
        out->unplayable[out->n_unplayable].reason = WTT_FINGER_TOO_MANY;
        out->unplayable[out->n_unplayable].pitch = out->pitch[chord[at]];
        out->n_unplayable++;
        memmove(chord + at, chord + at + 1, (*k - at - 1) * sizeof(*chord));
        (*k)--;
    }
}


/* Range checks and folding: the notes that have a position go to
 * `inrange`, the others to the unplayable list. Returns their count. */
static size_t
ranges(const struct wtt_finger_instrument *inst,
       const struct wtt_finger_notes *notes, int fold, size_t *inrange,
       struct wtt_finger_placement *out)
{
    struct reach r;
    size_t       ni = 0;

    reach_of(inst, &r);
    for (size_t i = 0; i < notes->n; i++) {
        int q = in_reach(&r, notes->pitch[i]);
        int reason = WTT_FINGER_OUT_OF_RANGE;

        if (q < 0 && fold) {
            q = folded(&r, notes->pitch[i]);
            reason = WTT_FINGER_FOLDED;
        }
        out->pitch[i] = q;
        if (q < 0 || reason == WTT_FINGER_FOLDED) {
            struct wtt_finger_unplayable *u =
                &out->unplayable[out->n_unplayable++];
            u->note = i;
            u->reason = q < 0 ? WTT_FINGER_OUT_OF_RANGE : reason;
            u->pitch = q;
        }
        if (q >= 0) {
            inrange[ni++] = i;
        }
    }
    return ni;
}


/* The end of the chord that starts at member[f] (of `ni`): a note joins
 * it when it starts within `gap` of the chord's previous note and
 * `window` of its first. A strum's strings follow each other closely, and
 * chords stay apart by more than `gap`, so notes of two chords never
 * sound almost at once. */
static size_t
chord_end(const double *start, const size_t *member, size_t f, size_t ni,
          double window, double gap)
{
    double anchor = start[member[f]];
    size_t i = f + 1;

    while (i < ni && start[member[i]] - anchor <= window
           && start[member[i]] - start[member[i - 1]] <= gap)
    {
        i++;
    }
    return i;
}


/* wtt_finger_run's working arrays, one block: the search's piece (the
 * kept notes, chord by chord), and its answer. */
struct work {
    double *start, *end;
    int    *pitch, *size, *strings, *frets;
};


static int
work_alloc(struct work *w, size_t n)
{
    /* n + 1: no malloc(0), whose NULL would read as out of memory. */
    size_t m = n + 1;

    w->start = malloc(m * (2 * sizeof(double) + 4 * sizeof(int)));
    if (w->start == NULL) {
        return -1;
    }
    w->end = w->start + m;
    w->pitch = (int *) (w->end + m);
    w->size = w->pitch + m;
    w->strings = w->size + m;
    w->frets = w->strings + m;
    return 0;
}


int
wtt_finger_run(const struct wtt_finger_instrument *inst,
               const struct wtt_finger_params *p,
               const struct wtt_finger_notes *notes, int fold,
               struct wtt_finger_placement *out, const char **err)
{
    double                  window = p->chord_window_ms / 1000;
    double                  gap = p->chord_gap_ms / 1000;
    size_t                  n = notes->n, ni, nc = 0, kept = 0, i = 0;
    /* The in-range notes, then the kept ones chord by chord: the placed
     * list before it is sorted by time. */
    size_t                 *member = out->placed;
    struct work             w;
    struct wtt_finger_piece piece;

    out->n_placed = out->n_unplayable = out->n_chords = 0;
    out->transitions = 0;
    if (n > (size_t) INT32_MAX) {
        *err = "too many notes";
        return -1;
    }
    if (work_alloc(&w, n) != 0) {
        *err = "out of memory";
        return -1;
    }

    ni = ranges(inst, notes, fold, member, out);
    /* Each chord, sorted by pitch, loses the notes the hand cannot hold
     * and moves down to follow the kept ones (a chord only shrinks, so
     * `member` compacts in place). */
    while (i < ni) {
        size_t f = i, k;
        i = chord_end(notes->start_s, member, f, ni, window, gap);
        k = i - f;
        if (k > 1) {
            sort_chord(member + f, k, out->pitch, notes->start_s);
        }
        memmove(member + kept, member + f, k * sizeof(*member));
        if (reduce(inst, p, member + kept, &k, out, err) != 0) {
            free(w.start);
            return -1;
        }
        for (size_t j = kept; j < kept + k; j++) {
            w.pitch[j] = out->pitch[member[j]];
            w.start[j] = notes->start_s[member[j]];
            w.end[j] = notes->end_s[member[j]];
        }
        w.size[nc++] = (int) k;
        kept += k;
    }

    piece.pitch = w.pitch;
    piece.start_s = w.start;
    piece.end_s = w.end;
    piece.n_notes = kept;
    piece.size = w.size;
    piece.n_chords = nc;
    if (wtt_finger_search(inst, p, &piece, w.strings, w.frets,
                          &out->transitions, NULL, err) != 0)
    {
        free(w.start);
        return -1;
    }

    for (size_t j = 0; j < n; j++) {
        out->string[j] = out->fret[j] = out->chord[j] = 0;
    }
    kept = 0;
    for (size_t c = 0; c < nc; c++) {
        for (int j = 0; j < w.size[c]; j++, kept++) {
            size_t note = member[kept];
            out->string[note] = w.strings[kept];
            out->fret[note] = w.frets[kept];
            out->chord[note] = (int) c + 1;
        }
    }
    free(w.start);
    out->n_placed = kept;
    out->n_chords = nc;
    sort_by_time(out->placed, kept, notes->start_s, out->pitch);
    sort_unplayable(out->unplayable, out->n_unplayable, notes->start_s);
    return 0;
}
