/*
 * wtt_notes.c: note extraction (see wtt_notes.h).
 *
 * The official melodia step looks for the global maximum of the remaining
 * energy with a full scan per note, which is quadratic (7 s for two minutes
 * of audio). Energy only ever decreases (cells are set to 0), so here the
 * cells above the frame threshold are sorted in the order the official scan
 * would pick them, and the next note starts at the first cell of that list
 * that has not been cleared yet: the same notes, in linear time after the
 * sort.
 *
 * Memory stays flat however long the audio: the posteriorgrams and the
 * remaining energy are read row by row through wtt_frame_store (in a file beyond
 * a budget), the onset peaks are found in one streaming pass with three
 * rows in hand, and the melodia cells are sorted in slices of descending
 * value (a histogram of their float bits says where each slice ends), so
 * at most MELODIA_SLICE cells are held at a time.
 */
#include "wtt_notes.h"
#include "wtt_notes_guitar.h"
#include "wtt_util.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_PITCH       WTT_N_PITCHES
#define N_CONTOUR     WTT_N_CONTOUR_BINS
#define MIDI_OFFSET   21
#define MAX_FREQ_IDX  87
#define ANNOT_FRAMES  172
#define BEND_TOL      25
#define MELODIA_SLICE ((size_t) 1 << 18)
#define HIST_SHIFT    15          /* float bits to histogram bucket */

typedef struct {
    float value;
    int   row;
    int   col;
} cell_t;


struct wtt_notes_params
wtt_notes_default_params(void)
{
    struct wtt_notes_params p;

    memset(&p, 0, sizeof(p));
    p.onset_threshold = 0.5;
    p.frame_threshold = 0.3;
    p.min_note_frames = 11;
    p.infer_onsets = 1;
    p.melodia = 1;
    p.energy_tolerance = 11;
    p.pitch_bends = 1;
    return p;
}


int
wtt_notes_ms_to_frames(double ms)
{
    return (int) lround(ms / 1000.0 * WTT_SAMPLE_RATE / 256.0);
}


double
wtt_notes_frame_time(int frame)
{
    return wtt_pipeline_frame_time(frame);
}


/* JS Math.max / Math.min: NaN wins. */
static double
js_max(double a, double b)
{
    if (isnan(a) || isnan(b)) {
        return NAN;
    }
    return a > b ? a : b;
}


static double
js_min(double a, double b)
{
    if (isnan(a) || isnan(b)) {
        return NAN;
    }
    return a < b ? a : b;
}


static double
hz_to_midi(double hz)
{
    return 12.0 * (log2(hz) - log2(440.0)) + 69.0;
}


/* Array.prototype.fill's index rules for a fractional or negative index. */
static int
js_index(double x, int len)
{
    double t = trunc(x);

    if (t < 0) {
        t = len + t < 0 ? 0 : len + t;
    }
    return t > len ? len : (int) t;
}


/* ---------------------------------------------------------------------------
 * Reading the posteriorgrams
 * ------------------------------------------------------------------------- */

/* The matrices as the official code sees them after constrainFrequency:
 * columns outside [lo, hi) read as zero. */
typedef struct {
    struct wtt_posteriors *post;
    int                    lo, hi;
} src_t;


static double
frame_at(const src_t *s, int r, int c)
{
    if (c < s->lo || c >= s->hi) {
        return 0.0;
    }
    return wtt_post_get(s->post, (size_t) r, WTT_POST_FRAMES + (size_t) c);
}


static double
onset_raw(const src_t *s, int r, int c)
{
    if (c < s->lo || c >= s->hi) {
        return 0.0;
    }
    return wtt_post_get(s->post, (size_t) r, WTT_POST_ONSETS + (size_t) c);
}


/* ---------------------------------------------------------------------------
 * Inferred onsets and their peaks
 * ------------------------------------------------------------------------- */

/* frameDiff before scaling for one row: min over n=1,2 of F[r]-F[r-n],
 * floored at 0; rows 0 and 1 are zero. f0, f1, f2: rows r, r-1, r-2. */
static void
frame_diff_row(const double *f0, const double *f1, const double *f2, int r,
               double *out)
{
    for (int c = 0; c < N_PITCH; c++) {
        out[c] = r < 2 ? 0.0 : js_max(js_min(f0[c] - f1[c], f0[c] - f2[c]),
                                      0.0);
    }
}


/* Streams the rows once: row r of the frames into f[r % 3] (so rows r-1
 * and r-2 stay in hand) and of the thresholded onsets into v[r % 3]. */
typedef struct {
    const src_t *s;
    int          infer;
    double       onset_max, diff_max;
    double       f[3][N_PITCH], v[3][N_PITCH];
} onset_stream;


static void
load_row(onset_stream *st, int r)
{
    double *f0 = st->f[r % 3], diff[N_PITCH];

    for (int c = 0; c < N_PITCH; c++) {
        f0[c] = frame_at(st->s, r, c);
    }
    if (!st->infer) {
        for (int c = 0; c < N_PITCH; c++) {
            st->v[r % 3][c] = onset_raw(st->s, r, c);
        }
        return;
    }
    frame_diff_row(f0, st->f[(r + 2) % 3], st->f[(r + 1) % 3], r, diff);
    for (int c = 0; c < N_PITCH; c++) {
        st->v[r % 3][c] = js_max(onset_raw(st->s, r, c),
                                 st->onset_max * diff[c] / st->diff_max);
    }
}


/*
 * Finds note starts: local maxima over time (strictly above both
 * neighbours) of the onsets above the threshold. Returns the count; *starts
 * is malloc'd pairs (row, col) in ascending order (the official order is
 * the reverse: rows descending, then columns descending).
 */
static long
find_starts(const src_t *s, int n, int infer, double thresh, int **starts)
{
    onset_stream *st = wtt_calloc(1, sizeof(*st));
    long          count = 0, cap = 256;
    int          *out = wtt_malloc(sizeof(int) * 2 * (size_t) cap);

    st->s = s;
    st->infer = infer;
    if (infer) {
        double diff[N_PITCH];
        for (int r = 0; r < n; r++) {
            double *f0 = st->f[r % 3];
            for (int c = 0; c < N_PITCH; c++) {
                f0[c] = frame_at(s, r, c);
                st->onset_max = js_max(st->onset_max, onset_raw(s, r, c));
            }
            frame_diff_row(f0, st->f[(r + 2) % 3], st->f[(r + 1) % 3], r,
                           diff);
            for (int c = 0; c < N_PITCH; c++) {
                st->diff_max = js_max(st->diff_max, diff[c]);
            }
        }
    }
    for (int r = 0; r < n; r++) {
        const double *v, *prev, *next;
        if (r == 0) {
            load_row(st, 0);
        }
        if (r + 1 < n) {
            load_row(st, r + 1);
        }
        v = st->v[r % 3];
        prev = st->v[(r + 2) % 3];
        next = st->v[(r + 1) % 3];
        for (int c = 0; c < N_PITCH; c++) {
            int peak = 1;
            if (r > 0) {
                peak = v[c] > prev[c];
            }
            if (peak && r < n - 1) {
                peak = v[c] > next[c];
            }
            if (!peak || !(v[c] > thresh)) {
                continue;
            }
            if (count == cap) {
                cap *= 2;
                out = wtt_realloc(out, sizeof(int) * 2 * (size_t) cap);
            }
            out[2 * count] = r;
            out[2 * count + 1] = c;
            count++;
        }
    }
    free(st);
    *starts = out;
    return count;
}


/* ---------------------------------------------------------------------------
 * Notes
 * ------------------------------------------------------------------------- */

typedef struct {
    struct wtt_note *v;
    size_t           n, cap;
} note_list;


static void
push_note(note_list *l, int start, int len, int col, double amp)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->v = wtt_realloc(l->v, l->cap * sizeof(*l->v));
    }
    memset(&l->v[l->n], 0, sizeof(l->v[0]));
    l->v[l->n].start_frame = start;
    l->v[l->n].n_frames = len;
    l->v[l->n].pitch = col + MIDI_OFFSET;
    l->v[l->n].amplitude = amp;
    l->n++;
}


/* The strongest raw onset posterior of a note's pitch within a frame of its
 * start. Melodia's notes have none there (no pluck), so tablature reads a
 * low value as legato (hammer-on, pull-off, slide). */
static double
onset_at(const src_t *s, const struct wtt_note *nt)
{
    int    col = nt->pitch - MIDI_OFFSET;
    double best = 0.0;

    for (int r = nt->start_frame - 1; r <= nt->start_frame + 1; r++) {
        if (r >= 0 && (size_t) r < s->post->n_frames) {
            double v = onset_raw(s, r, col);
            if (v > best) {
                best = v;
            }
        }
    }
    return best;
}


static double
mean_energy(const src_t *s, int from, int to, int col)
{
    double sum = 0.0;

    for (int j = from; j < to; j++) {
        sum += frame_at(s, j, col);
    }
    return sum / (double) (to - from);
}


static float
rem_at(struct wtt_frame_store *rem, int r, int c)
{
    return wtt_frame_store_get(rem, (size_t) r, (size_t) c);
}


static void
clear3(struct wtt_frame_store *rem, int row, int col)
{
    wtt_frame_store_set(rem, (size_t) row, (size_t) col, 0.0f);
    if (col < MAX_FREQ_IDX) {
        wtt_frame_store_set(rem, (size_t) row, (size_t) col + 1, 0.0f);
    }
    if (col > 0) {
        wtt_frame_store_set(rem, (size_t) row, (size_t) col - 1, 0.0f);
    }
}


static int
cmp_cell(const void *a, const void *b)
{
    const cell_t *x = a, *y = b;

    if (x->value != y->value) {
        return x->value > y->value ? -1 : 1;
    }
    if (x->row != y->row) {
        return x->row < y->row ? -1 : 1;
    }
    return x->col > y->col ? -1 : (x->col < y->col);
}


static uint32_t
float_bits(float v)
{
    uint32_t u;

    memcpy(&u, &v, sizeof(u));
    return u;
}


/* The cells of rem above `thr` whose histogram bucket is in [lo, hi), in
 * the official scan's order. Returns the count; *out is malloc'd. */
static size_t
melodia_slice(struct wtt_frame_store *rem, int n, double thr, uint32_t lo,
              uint32_t hi, size_t expect, int numpy_ties, cell_t **out)
{
    cell_t *cells = wtt_malloc(sizeof(cell_t) * (expect ? expect : 1));
    size_t  m = 0;

    for (int r = 0; r < n; r++) {
        for (int c = 0; c < N_PITCH; c++) {
            float    v = rem_at(rem, r, c);
            uint32_t b = float_bits(v) >> HIST_SHIFT;
            if (v > thr && b >= lo && b < hi && m < expect) {
                cells[m].value = v;
                cells[m].row = r;
                cells[m].col = c;
                m++;
            }
        }
    }
    qsort(cells, m, sizeof(cell_t), cmp_cell);
    if (numpy_ties) {
        /* numpy's argmax takes the first column among ties. */
        for (size_t a = 0; a < m;) {
            size_t b = a;
            while (b < m && cells[b].value == cells[a].value
                   && cells[b].row == cells[a].row)
            {
                b++;
            }
            for (size_t i = a, j = b - 1; i < j; i++, j--) {
                cell_t t = cells[i];
                cells[i] = cells[j];
                cells[j] = t;
            }
            a = b;
        }
    }
    *out = cells;
    return m;
}


static void
melodia(const src_t *s, struct wtt_frame_store *rem, int n,
        const struct wtt_notes_params *p, note_list *out)
{
    double    thr = p->frame_threshold;
    size_t    nb = ((size_t) UINT32_MAX >> HIST_SHIFT) + 1;
    size_t   *hist = wtt_calloc(nb, sizeof(size_t));
    uint32_t  hi = (uint32_t) nb;

    for (int r = 0; r < n; r++) {
        for (int c = 0; c < N_PITCH; c++) {
            float v = rem_at(rem, r, c);
            if (isnan(v)) {
                free(hist);
                return;     /* the official global max is NaN: no melodia */
            }
            if (v > thr) {
                hist[float_bits(v) >> HIST_SHIFT]++;
            }
        }
    }
    /* Slices of buckets from the top, each at most MELODIA_SLICE cells
     * unless one bucket alone holds more. Equal values share a bucket, so
     * the slices together keep the whole order. */
    while (hi > 0) {
        uint32_t lo = hi;
        size_t   expect = 0, m;
        cell_t  *cells;

        while (lo > 0 && (expect == 0
                          || expect + hist[lo - 1] <= MELODIA_SLICE))
        {
            expect += hist[--lo];
        }
        if (expect == 0) {
            break;
        }
        m = melodia_slice(rem, n, thr, lo, hi, expect, p->numpy_ties,
                          &cells);
        for (size_t q = 0; q < m; q++) {
            int mid = cells[q].row, col = cells[q].col, i, k, start, end;

            if (rem_at(rem, mid, col) != cells[q].value) {
                continue;   /* cleared by an earlier note */
            }
            /* The official scan keeps [0,0] when row 0's maximum ties it. */
            if (mid == 0 && !p->numpy_ties
                && rem_at(rem, 0, 0) == cells[q].value)
            {
                col = 0;
            }
            wtt_frame_store_set(rem, (size_t) mid, (size_t) col, 0.0f);
            for (i = mid + 1, k = 0; i < n - 1 && k < p->energy_tolerance;
                 i++)
            {
                k = rem_at(rem, i, col) < thr ? k + 1 : 0;
                clear3(rem, i, col);
            }
            end = i - 1 - k;
            for (i = mid - 1, k = 0; i > 0 && k < p->energy_tolerance; i--) {
                k = rem_at(rem, i, col) < thr ? k + 1 : 0;
                clear3(rem, i, col);
            }
            start = i + 1 + k;
            if (end - start <= p->min_note_frames) {
                continue;
            }
            push_note(out, start, end - start, col,
                      mean_energy(s, start, end, col));
        }
        free(cells);
        hi = lo;
    }
    free(hist);
}


/* Pitch bends: per frame, the contour bin nearest the note (Gaussian
 * weighted, 25 bins each side) relative to the note's own bin. */
void
wtt_notes_bends(struct wtt_posteriors *post, struct wtt_note *note,
                int numpy_ties)
{
    double gauss[2 * BEND_TOL + 1];
    double bin = 36.0 * log2(440.0 * pow(2.0, (note->pitch - 69.0) / 12.0)
                             / 27.5);
    int    f = (int) floor(floor(bin + 0.5));     /* Math.round */
    int    fs = f - BEND_TOL > 0 ? f - BEND_TOL : 0;
    int    fe = f + BEND_TOL + 1 < N_CONTOUR ? f + BEND_TOL + 1 : N_CONTOUR;
    int    g0 = BEND_TOL - f > 0 ? BEND_TOL - f : 0;
    int    shift = BEND_TOL - g0;

    for (int i = 0; i < 2 * BEND_TOL + 1; i++) {
        double d = i - BEND_TOL;
        gauss[i] = exp(-1.0 * d * d / (2.0 * 5.0 * 5.0));
    }
    note->n_bends = note->n_frames;
    note->bends = wtt_malloc(sizeof(int) * (size_t) (note->n_frames + 1));
    for (int t = 0; t < note->n_frames; t++) {
        size_t row = (size_t) (note->start_frame + t);
        double best = 0.0;
        int    arg = -1;
        for (int c = fs; c < fe; c++) {
            double v = wtt_post_get(post, row, WTT_POST_CONTOURS
                                               + (size_t) c)
                       * gauss[g0 + c - fs];
            /* JS argMax: a later equal value wins; numpy: the first. */
            if (arg < 0 || (numpy_ties ? v > best : !(best > v))) {
                best = v;
                arg = c - fs;
            }
        }
        note->bends[t] = arg - shift;
    }
}


/* The remaining energy starts as the (constrained) frames: in memory when
 * the posteriorgrams are, else in its own temporary file. */
static int
init_remaining(const src_t *s, int n, struct wtt_frame_store *rem, char *err,
               size_t errlen)
{
    float row[N_PITCH * 64];
    int   rc = 0;

    wtt_frame_store_init(rem, N_PITCH,
                  wtt_frame_store_in_memory(&s->post->rows) ? SIZE_MAX : 0);
    if (wtt_frame_store_reserve(rem, (size_t) n, err, errlen) != 0) {
        return -1;
    }
    for (int r0 = 0; r0 < n && rc == 0; r0 += 64) {
        int k = n - r0 < 64 ? n - r0 : 64;
        for (int r = 0; r < k; r++) {
            for (int c = 0; c < N_PITCH; c++) {
                row[r * N_PITCH + c] = (float) frame_at(s, r0 + r, c);
            }
        }
        rc = wtt_frame_store_append(rem, row, (size_t) k, err, errlen);
    }
    return rc;
}


int
wtt_notes_extract(struct wtt_posteriors *post,
                  const struct wtt_notes_params *p, struct wtt_note **out,
                  size_t *count, char *err, size_t errlen)
{
    int              n = (int) post->n_frames, *starts = NULL;
    src_t            s = { post, 0, N_PITCH };
    struct wtt_frame_store  rem;
    long             ns;
    note_list        notes = { NULL, 0, 0 };

    *out = NULL;
    *count = 0;
    if (p->mode != WTT_NOTES_OFFICIAL) {
        return wtt_notes_guitar_extract(post, p, out, count, err, errlen);
    }
    /* A negative frame threshold would also break the melodia slices,
     * which order positive floats by their bits. */
    if (p->min_note_frames < 0 || p->energy_tolerance < 1
        || !(p->frame_threshold >= 0.0))
    {
        snprintf(err, errlen, "invalid note parameters");
        return -1;
    }
    if (n == 0) {
        return 0;
    }
    /* constrainFrequency zeroes the bins outside [min, max) in place;
     * here they read as zero. */
    if (p->max_freq_hz > 0) {
        s.hi = js_index(hz_to_midi(p->max_freq_hz) - MIDI_OFFSET, N_PITCH);
    }
    if (p->min_freq_hz > 0) {
        s.lo = js_index(hz_to_midi(p->min_freq_hz) - MIDI_OFFSET, N_PITCH);
    }

    if (init_remaining(&s, n, &rem, err, errlen) != 0) {
        wtt_frame_store_free(&rem);
        return -1;
    }
    ns = find_starts(&s, n, p->infer_onsets, p->onset_threshold, &starts);
    for (long q = ns - 1; q >= 0; q--) {
        int start = starts[2 * q], col = starts[2 * q + 1], i, k;

        if (start >= n - 1) {
            continue;
        }
        for (i = start + 1, k = 0; i < n - 1 && k < p->energy_tolerance;
             i++)
        {
            k = rem_at(&rem, i, col) < p->frame_threshold ? k + 1 : 0;
        }
        i -= k;
        if (i - start <= p->min_note_frames) {
            continue;
        }
        for (int j = start; j < i; j++) {
            clear3(&rem, j, col);
        }
        push_note(&notes, start, i - start, col,
                  mean_energy(&s, start, i, col));
    }
    free(starts);
    if (p->melodia) {
        melodia(&s, &rem, n, p, &notes);
    }
    for (size_t i = 0; i < notes.n; i++) {
        struct wtt_note *nt = &notes.v[i];
        nt->start_s = wtt_notes_frame_time(nt->start_frame);
        /* As noteFramesToTime: start + (t(end) - t(start)). */
        nt->end_s = nt->start_s
                    + (wtt_notes_frame_time(nt->start_frame + nt->n_frames)
                       - nt->start_s);
        if (p->pitch_bends) {
            wtt_notes_bends(post, nt, p->numpy_ties);
        }
        nt->onset = onset_at(&s, nt);
    }
    if (wtt_frame_store_check(&rem, err, errlen) != 0
        || wtt_frame_store_check(&post->rows, err, errlen) != 0)
    {
        wtt_frame_store_free(&rem);
        wtt_notes_free(notes.v, notes.n);
        return -1;
    }
    wtt_frame_store_free(&rem);
    *out = notes.v;
    *count = notes.n;
    return 0;
}


void
wtt_notes_free(struct wtt_note *notes, size_t n)
{
    for (size_t i = 0; notes != NULL && i < n; i++) {
        free(notes[i].bends);
    }
    free(notes);
}
