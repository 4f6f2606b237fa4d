/*
 * wtt_notes.c: note extraction (see wtt_notes.h).
 *
 * The official melodia step looks for the global maximum of the remaining
 * energy with a full scan per note, which is quadratic (7 s for two minutes
 * of audio). Energy only ever decreases (cells are set to 0), so here every
 * cell above the frame threshold is sorted once, in the order the official
 * scan would pick them, and the next note starts at the first cell of that
 * list that has not been cleared yet: the same notes, in linear time after
 * one sort.
 */
#include "wtt_notes.h"
#include "wtt_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_PITCH       WTT_N_PITCHES
#define N_CONTOUR     WTT_N_CONTOUR_BINS
#define MIDI_OFFSET   21
#define MAX_FREQ_IDX  87
#define ANNOT_FRAMES  172
#define BEND_TOL      25

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
    return wtt_model_frame_time(frame);
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
 * Inferred onsets and their peaks
 * ------------------------------------------------------------------------- */

/* frameDiff before scaling: min over n=1,2 of F[r]-F[r-n], floored at 0,
 * rows 0 and 1 zero. */
static double
frame_diff(const float *fr, int r, int c)
{
    double d1, d2, v;

    if (r < 2) {
        return 0.0;
    }
    d1 = (double) fr[r * N_PITCH + c] - (double) fr[(r - 1) * N_PITCH + c];
    d2 = (double) fr[r * N_PITCH + c] - (double) fr[(r - 2) * N_PITCH + c];
    v = js_min(d1, d2);
    return js_max(v, 0.0);
}


/* The onsets actually thresholded: inferred when asked, else raw. */
static double
onset_at(const float *on, const float *fr, int r, int c, int infer,
         double onset_max, double diff_max)
{
    if (!infer) {
        return on[r * N_PITCH + c];
    }
    return js_max((double) on[r * N_PITCH + c],
                  onset_max * frame_diff(fr, r, c) / diff_max);
}


/*
 * Finds note starts: local maxima over time (strictly above both
 * neighbours) of the onsets above the threshold, in the official order
 * (rows descending, then columns descending). Returns the count; *starts
 * is malloc'd pairs (row, col).
 */
static long
find_starts(const float *on, const float *fr, int n, int infer,
            double thresh, int **starts)
{
    double onset_max = 0.0, diff_max = 0.0;
    long   count = 0, cap = 256;
    int   *s = wtt_malloc(sizeof(int) * 2 * (size_t) cap);

    if (infer) {
        for (long i = 0; i < (long) n * N_PITCH; i++) {
            onset_max = js_max(onset_max, on[i]);
        }
        for (int r = 0; r < n; r++) {
            for (int c = 0; c < N_PITCH; c++) {
                diff_max = js_max(diff_max, frame_diff(fr, r, c));
            }
        }
    }
    for (int r = n - 1; r >= 0; r--) {
        for (int c = N_PITCH - 1; c >= 0; c--) {
            double v = onset_at(on, fr, r, c, infer, onset_max, diff_max);
            int    peak = 1;
            if (r > 0) {
                peak = v > onset_at(on, fr, r - 1, c, infer, onset_max,
                                    diff_max);
            }
            if (peak && r < n - 1) {
                peak = v > onset_at(on, fr, r + 1, c, infer, onset_max,
                                    diff_max);
            }
            if (!peak || !(v > thresh)) {
                continue;
            }
            if (count == cap) {
                cap *= 2;
                s = wtt_realloc(s, sizeof(int) * 2 * (size_t) cap);
            }
            s[2 * count] = r;
            s[2 * count + 1] = c;
            count++;
        }
    }
    *starts = s;
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


static double
mean_energy(const float *fr, int from, int to, int col)
{
    double sum = 0.0;

    for (int j = from; j < to; j++) {
        sum += fr[j * N_PITCH + col];
    }
    return sum / (double) (to - from);
}


static void
clear3(float *rem, int row, int col)
{
    rem[row * N_PITCH + col] = 0.0f;
    if (col < MAX_FREQ_IDX) {
        rem[row * N_PITCH + col + 1] = 0.0f;
    }
    if (col > 0) {
        rem[row * N_PITCH + col - 1] = 0.0f;
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


static void
melodia(const float *fr, float *rem, int n, const struct wtt_notes_params *p,
        note_list *out)
{
    double thr = p->frame_threshold;
    long   m = 0;
    cell_t *cells;

    for (long i = 0; i < (long) n * N_PITCH; i++) {
        if (isnan(rem[i])) {
            return;     /* the official global max is NaN: no melodia */
        }
        m += rem[i] > thr;
    }
    cells = wtt_malloc(sizeof(cell_t) * (size_t) (m ? m : 1));
    m = 0;
    for (int r = 0; r < n; r++) {
        for (int c = 0; c < N_PITCH; c++) {
            if (rem[r * N_PITCH + c] > thr) {
                cells[m].value = rem[r * N_PITCH + c];
                cells[m].row = r;
                cells[m].col = c;
                m++;
            }
        }
    }
    qsort(cells, (size_t) m, sizeof(cell_t), cmp_cell);
    if (p->numpy_ties) {
        /* numpy's argmax takes the first column among ties. */
        for (long a = 0; a < m;) {
            long b = a;
            while (b < m && cells[b].value == cells[a].value
                   && cells[b].row == cells[a].row)
            {
                b++;
            }
            for (long i = a, j = b - 1; i < j; i++, j--) {
                cell_t t = cells[i];
                cells[i] = cells[j];
                cells[j] = t;
            }
            a = b;
        }
    }

    for (long q = 0; q < m; q++) {
        int mid = cells[q].row, col = cells[q].col, i, k, start, end;

        if (rem[mid * N_PITCH + col] != cells[q].value) {
            continue;   /* cleared by an earlier note */
        }
        /* The official scan keeps [0,0] when row 0's maximum ties it. */
        if (mid == 0 && !p->numpy_ties && rem[0] == cells[q].value) {
            col = 0;
        }
        rem[mid * N_PITCH + col] = 0.0f;
        for (i = mid + 1, k = 0; i < n - 1 && k < p->energy_tolerance; i++) {
            k = rem[i * N_PITCH + col] < thr ? k + 1 : 0;
            clear3(rem, i, col);
        }
        end = i - 1 - k;
        for (i = mid - 1, k = 0; i > 0 && k < p->energy_tolerance; i--) {
            k = rem[i * N_PITCH + col] < thr ? k + 1 : 0;
            clear3(rem, i, col);
        }
        start = i + 1 + k;
        if (end - start <= p->min_note_frames) {
            continue;
        }
        push_note(out, start, end - start, col,
                  mean_energy(fr, start, end, col));
    }
    free(cells);
}


/* Pitch bends: per frame, the contour bin nearest the note (Gaussian
 * weighted, 25 bins each side) relative to the note's own bin. */
static void
add_bends(const struct wtt_posteriors *post, struct wtt_note *note,
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
        const float *row = post->contours
                           + (size_t) (note->start_frame + t) * N_CONTOUR;
        double       best = 0.0;
        int          arg = -1;
        for (int c = fs; c < fe; c++) {
            double v = row[c] * gauss[g0 + c - fs];
            /* JS argMax: a later equal value wins; numpy: the first. */
            if (arg < 0 || (numpy_ties ? v > best : !(best > v))) {
                best = v;
                arg = c - fs;
            }
        }
        note->bends[t] = arg - shift;
    }
}


int
wtt_notes_extract(const struct wtt_posteriors *post,
                  const struct wtt_notes_params *p, struct wtt_note **out,
                  size_t *count, char *err, size_t errlen)
{
    int        n = (int) post->n_frames, *starts = NULL;
    size_t     cells = (size_t) n * N_PITCH;
    float     *fr = NULL, *on = NULL, *rem = NULL;
    int        constrained;
    long       ns;
    note_list  notes = { NULL, 0, 0 };

    *out = NULL;
    *count = 0;
    if (p->min_note_frames < 0 || p->energy_tolerance < 1) {
        snprintf(err, errlen, "invalid note parameters");
        return -1;
    }
    if (n == 0) {
        return 0;
    }
    /* Copies only when the frequency limits must clear bins (the official
     * code edits its matrices in place); otherwise read them as they are. */
    constrained = p->max_freq_hz > 0 || p->min_freq_hz > 0;
    if (constrained) {
        fr = wtt_trymalloc(cells * sizeof(float));
        on = wtt_trymalloc(cells * sizeof(float));
    }
    rem = wtt_trymalloc(cells * sizeof(float));
    if ((constrained && (fr == NULL || on == NULL)) || rem == NULL) {
        free(fr);
        free(on);
        free(rem);
        snprintf(err, errlen, "out of memory for %d frames", n);
        return -1;
    }
    if (constrained) {
        memcpy(fr, post->frames, cells * sizeof(float));
        memcpy(on, post->onsets, cells * sizeof(float));
    } else {
        fr = post->frames;
        on = post->onsets;
    }

    /* constrainFrequency: zero the bins outside [min, max) in place. */
    if (p->max_freq_hz > 0) {
        int from = js_index(hz_to_midi(p->max_freq_hz) - MIDI_OFFSET, N_PITCH);
        for (int r = 0; r < n; r++) {
            for (int c = from; c < N_PITCH; c++) {
                on[r * N_PITCH + c] = 0.0f;
                fr[r * N_PITCH + c] = 0.0f;
            }
        }
    }
    if (p->min_freq_hz > 0) {
        int to = js_index(hz_to_midi(p->min_freq_hz) - MIDI_OFFSET, N_PITCH);
        for (int r = 0; r < n; r++) {
            for (int c = 0; c < to; c++) {
                on[r * N_PITCH + c] = 0.0f;
                fr[r * N_PITCH + c] = 0.0f;
            }
        }
    }

    ns = find_starts(on, fr, n, p->infer_onsets, p->onset_threshold, &starts);
    memcpy(rem, fr, cells * sizeof(float));
    for (long s = 0; s < ns; s++) {
        int start = starts[2 * s], col = starts[2 * s + 1], i, k;

        if (start >= n - 1) {
            continue;
        }
        for (i = start + 1, k = 0; i < n - 1 && k < p->energy_tolerance;
             i++)
        {
            k = rem[i * N_PITCH + col] < p->frame_threshold ? k + 1 : 0;
        }
        i -= k;
        if (i - start <= p->min_note_frames) {
            continue;
        }
        for (int j = start; j < i; j++) {
            clear3(rem, j, col);
        }
        push_note(&notes, start, i - start, col,
                  mean_energy(fr, start, i, col));
    }
    free(starts);
    if (p->melodia) {
        melodia(fr, rem, n, p, &notes);
    }
    for (size_t i = 0; i < notes.n; i++) {
        struct wtt_note *nt = &notes.v[i];
        nt->start_s = wtt_notes_frame_time(nt->start_frame);
        /* As noteFramesToTime: start + (t(end) - t(start)). */
        nt->end_s = nt->start_s
                    + (wtt_notes_frame_time(nt->start_frame + nt->n_frames)
                       - nt->start_s);
        if (p->pitch_bends) {
            add_bends(post, nt, p->numpy_ties);
        }
    }
    if (constrained) {
        free(fr);
        free(on);
    }
    free(rem);
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
