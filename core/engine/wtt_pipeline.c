/*
 * wtt_pipeline.c: Basic Pitch's windowing over the graph engine (see
 * wtt_pipeline.h).
 */
#include "wtt_pipeline.h"
#include "wtt_util.h"
#include "wtt_cpus.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Decoder threads at most (one per core below that). */
#define READ_THREADS_MAX 32

/* The graph's signature, in the order wtt_pipeline_model_params gives it. */
enum { OUT_FRAMES, OUT_ONSETS, OUT_CONTOURS };

static const char *const output_names[3] = {
    [OUT_FRAMES] = "Identity_1",
    [OUT_ONSETS] = "Identity_2",
    [OUT_CONTOURS] = "Identity",
};

static const size_t output_bins[3] = {
    [OUT_FRAMES] = WTT_N_PITCHES,
    [OUT_ONSETS] = WTT_N_PITCHES,
    [OUT_CONTOURS] = WTT_N_CONTOUR_BINS,
};


struct wtt_model_params
wtt_pipeline_model_params(void)
{
    struct wtt_model_params p = wtt_model_default_params();

    p.dir = "models/basic-pitch";
    p.input = "input_2";
    for (int k = 0; k < 3; k++) {
        p.outputs[k] = output_names[k];
    }
    p.n_outputs = 3;
    return p;
}


int
wtt_pipeline_check(const struct wtt_model *m, char *err, size_t errlen)
{
    if (wtt_model_input_size(m) != WTT_WINDOW_SAMPLES) {
        snprintf(err, errlen, "model input holds %zu samples, Basic Pitch "
                 "windows have %d", wtt_model_input_size(m),
                 WTT_WINDOW_SAMPLES);
        return -1;
    }
    for (int k = 0; k < 3; k++) {
        size_t want = WTT_FRAMES_PER_WIN * output_bins[k];
        if (wtt_model_output_size(m, k) != want) {
            snprintf(err, errlen, "model output %d holds %zu values, "
                     "expected %zu (%d frames of %zu)", k,
                     wtt_model_output_size(m, k), want, WTT_FRAMES_PER_WIN,
                     output_bins[k]);
            return -1;
        }
    }
    return 0;
}


/* ---------------------------------------------------------------------------
 * Windowing (the official evaluateModel, streamed)
 * ------------------------------------------------------------------------- */

#define KEEP_FRAMES (WTT_FRAMES_PER_WIN - 2 * WTT_TRIM_FRAMES)
#define LEAD_ZEROS  (15 * 256)

void
wtt_posteriors_init(struct wtt_posteriors *post, size_t mem_budget)
{
    post->n_frames = 0;
    post->n_samples = 0;
    wtt_frame_store_init(&post->rows, WTT_POST_COLS, mem_budget);
}


void
wtt_posteriors_free(struct wtt_posteriors *post)
{
    wtt_frame_store_free(&post->rows);
    post->n_frames = 0;
    post->n_samples = 0;
}


/* Appends the kept frames of `nw` windows' outputs to `post`, interleaved
 * into rows through `stage` (KEEP_FRAMES rows). */
static int
append_frames(struct wtt_posteriors *post, size_t nw, const float *fr,
              const float *on, const float *co, float *stage, char *err,
              size_t errlen)
{
    for (size_t w = 0; w < nw; w++) {
        for (size_t i = 0; i < KEEP_FRAMES; i++) {
            size_t src = w * WTT_FRAMES_PER_WIN + WTT_TRIM_FRAMES + i;
            float *row = stage + i * WTT_POST_COLS;
            memcpy(row + WTT_POST_FRAMES, fr + src * WTT_N_PITCHES,
                   sizeof(float) * WTT_N_PITCHES);
            memcpy(row + WTT_POST_ONSETS, on + src * WTT_N_PITCHES,
                   sizeof(float) * WTT_N_PITCHES);
            memcpy(row + WTT_POST_CONTOURS, co + src * WTT_N_CONTOUR_BINS,
                   sizeof(float) * WTT_N_CONTOUR_BINS);
        }
        if (wtt_frame_store_append(&post->rows, stage, KEEP_FRAMES, err, errlen)
            != 0)
        {
            return -1;
        }
        post->n_frames += KEEP_FRAMES;
    }
    return 0;
}


double
wtt_pipeline_frame_time(long frame)
{
    /* modelFrameToTime: each window yields 142 frames but advances 141.27
     * frames of audio; the official code corrects every 172 frames with a
     * "magic" 0.0018 s. */
    const double window_offset = (256.0 / WTT_SAMPLE_RATE)
                                 * (WTT_FRAMES_PER_WIN
                                    - WTT_WINDOW_SAMPLES / 256.0)
                                 + 0.0018;

    return (double) frame * 256.0 / WTT_SAMPLE_RATE
           - window_offset * floor((double) frame / WTT_FRAMES_PER_WIN);
}


/* Frames to keep for `samples` of audio (see wtt_pipeline_infer). */
static size_t
frames_for(size_t samples, int full_tail)
{
    size_t n = samples * 86 / WTT_SAMPLE_RATE;

    if (full_tail) {
        double end = (double) samples / WTT_SAMPLE_RATE;
        while (wtt_pipeline_frame_time((long) n) < end) {
            n++;
        }
    }
    return n;
}


struct wtt_infer_opts
wtt_infer_default_opts(void)
{
    struct wtt_infer_opts o;

    memset(&o, 0, sizeof(o));
    o.mem_budget = WTT_POST_MEM_DEFAULT;
    return o;
}


/* ---------------------------------------------------------------------------
 * Streams: one per job, sharing the model's batches
 *
 * A stream's windows are copied out of its signal into a batch as soon as
 * the batch is planned (and the signal slides), so the next batch can be
 * decoded and planned while the model runs this one: decode and resample
 * on the host overlap the device's work (or, on the CPU, fill the gaps
 * between the model's parallel sections). Two batches exist: one running,
 * one being filled.
 * ------------------------------------------------------------------------- */

enum { S_RUNNING, S_ENDING, S_DONE, S_FAILED };

typedef struct {
    struct wtt_infer_job *job;
    float  *sig;            /* sig[0] is signal position consumed - LEAD */
    size_t  sig_cap;        /* samples sig holds */
    size_t  have;           /* samples in sig */
    size_t  consumed, n_samples, given, done, total_windows;
    int     eof, state;     /* S_ENDING: every window given, some running */
    size_t  quota;          /* the batch being planned: windows it may give */
} stream_t;

/* One batch: the windows of several streams, in order. */
typedef struct {
    float  *win;
    float  *outs[3];
    size_t  nw;
    size_t  nparts;
    struct part {
        stream_t *s;
        size_t    at, nw;
    }      *parts;
    /* The run, on its own thread. */
    struct wtt_model *m;
    pthread_t         tid;
    int               rc;
    char              err[256];
} batch_t;


static void
stream_fail(stream_t *s, const char *why)
{
    snprintf(s->job->err, sizeof(s->job->err), "%s", why);
    s->job->rc = -1;
    s->state = S_FAILED;
    wtt_posteriors_free(&s->job->post);
}


static int
stream_start(stream_t *s, struct wtt_infer_job *job)
{
    const struct wtt_infer_opts *o = &job->opts;

    memset(s, 0, sizeof(*s));
    s->job = job;
    job->rc = 0;
    job->err[0] = '\0';
    wtt_posteriors_init(&job->post, o->mem_budget);
    if (o->total_samples > 0) {
        size_t needed = frames_for(o->total_samples, o->full_tail);
        s->total_windows = (needed + KEEP_FRAMES - 1) / KEEP_FRAMES;
        /* Sized once when the length is known: no doubling, no copy (or
         * straight to the file when it will not fit the budget). */
        if (wtt_frame_store_reserve(&job->post.rows,
                                    s->total_windows * KEEP_FRAMES, job->err,
                                    sizeof(job->err)) != 0)
        {
            stream_fail(s, job->err);
            return -1;
        }
    }
    s->sig_cap = WTT_WINDOW_SAMPLES;
    s->sig = wtt_trymalloc(s->sig_cap * sizeof(float));
    if (s->sig == NULL) {
        stream_fail(s, "out of memory");
        return -1;
    }
    memset(s->sig, 0, LEAD_ZEROS * sizeof(float));
    s->have = LEAD_ZEROS;
    return 0;
}


/* Decodes until the signal holds s->quota windows (or the audio ends). Runs
 * on any thread: it touches only this stream and its reader. */
static void
stream_read(stream_t *s)
{
    struct wtt_infer_job *job = s->job;
    size_t span = (s->quota - 1) * WTT_HOP_SAMPLES + WTT_WINDOW_SAMPLES;

    if (span > s->sig_cap) {
        float *bigger = realloc(s->sig, span * sizeof(float));
        if (bigger == NULL) {
            stream_fail(s, "out of memory");
            return;
        }
        s->sig = bigger;
        s->sig_cap = span;
    }
    while (!s->eof && s->have < span) {
        size_t got = 0;
        if (job->read(job->read_ctx, s->sig + s->have, span - s->have, &got,
                      job->err, sizeof(job->err)) != 0)
        {
            char why[sizeof(job->err)];
            memcpy(why, job->err, sizeof(why));
            stream_fail(s, why);
            return;
        }
        if (got == 0) {
            s->eof = 1;
        }
        s->have += got;
        s->n_samples += got;
    }
}


/* Copies the windows this stream can give now (at most s->quota) into
 * `win` and slides its signal past them; returns how many. Only windows
 * whose frames survive the final cut are given; once the audio has ended
 * and the last is given the stream is S_ENDING. */
static size_t
stream_windows(stream_t *s, float *win)
{
    const struct wtt_infer_opts *o = &s->job->opts;
    size_t nw = 0, drop;

    for (size_t w = 0; w < s->quota; w++) {
        size_t start = w * WTT_HOP_SAMPLES;
        size_t real = s->consumed + start;      /* in padded coordinates */
        size_t avail;
        if (real >= s->n_samples + LEAD_ZEROS) {
            break;
        }
        if (!s->eof && start + WTT_WINDOW_SAMPLES > s->have) {
            break;
        }
        avail = s->have > start ? s->have - start : 0;
        if (avail > WTT_WINDOW_SAMPLES) {
            avail = WTT_WINDOW_SAMPLES;
        }
        memcpy(win + nw * WTT_WINDOW_SAMPLES, s->sig + start,
               avail * sizeof(float));
        memset(win + nw * WTT_WINDOW_SAMPLES + avail, 0,
               (WTT_WINDOW_SAMPLES - avail) * sizeof(float));
        nw++;
    }
    if (s->eof) {
        size_t needed = frames_for(s->n_samples, o->full_tail);
        size_t now = s->given * KEEP_FRAMES;
        size_t want = needed > now ? (needed - now + KEEP_FRAMES - 1)
                                     / KEEP_FRAMES : 0;
        nw = nw < want ? nw : want;
    }
    s->given += nw;
    drop = nw * WTT_HOP_SAMPLES;
    if (drop > s->have) {
        drop = s->have;
    }
    memmove(s->sig, s->sig + drop, (s->have - drop) * sizeof(float));
    s->have -= drop;
    s->consumed += drop;
    if (s->eof && (nw == 0 || s->have == 0)) {
        s->state = S_ENDING;
    }
    return nw;
}


/* The audio has ended and every window is in: cut to the official length. */
static void
stream_finish(stream_t *s)
{
    struct wtt_posteriors *post = &s->job->post;
    size_t needed = frames_for(s->n_samples, s->job->opts.full_tail);

    if (post->n_frames > needed) {
        post->n_frames = needed;
        wtt_frame_store_truncate(&post->rows, needed);
    }
    post->n_samples = s->n_samples;
    s->state = S_DONE;
}


/* Takes a stream's `nw` windows of a batch that has run (outputs from slot
 * `at`): frames, then progress. */
static void
stream_take(stream_t *s, float *const *outs, size_t at, size_t nw,
            float *stage)
{
    struct wtt_infer_job        *job = s->job;
    const struct wtt_infer_opts *o = &job->opts;

    if (append_frames(&job->post, nw,
                      outs[OUT_FRAMES] + at * WTT_FRAMES_PER_WIN
                                         * WTT_N_PITCHES,
                      outs[OUT_ONSETS] + at * WTT_FRAMES_PER_WIN
                                         * WTT_N_PITCHES,
                      outs[OUT_CONTOURS] + at * WTT_FRAMES_PER_WIN
                                           * WTT_N_CONTOUR_BINS,
                      stage, job->err, sizeof(job->err)) != 0)
    {
        char why[sizeof(job->err)];
        memcpy(why, job->err, sizeof(why));
        stream_fail(s, why);
        return;
    }
    s->done += nw;
    if (o->progress != NULL) {
        size_t est = s->total_windows > s->done ? s->total_windows
                     : (s->state == S_ENDING ? s->done : 0);
        if (o->progress(o->progress_ctx, s->done, est) != 0) {
            stream_fail(s, "cancelled");
        }
    }
}


/* Decoding in parallel: each job's reader runs on its own thread (up to
 * one per core), so decode and resample of many short files keep pace
 * with a device that runs their windows in one batch. */
typedef struct {
    stream_t      **list;
    size_t          n;
    atomic_size_t   next;
} read_job;


static void *
read_worker(void *p)
{
    read_job *r = p;

    for (;;) {
        size_t i = atomic_fetch_add(&r->next, 1);
        if (i >= r->n) {
            return NULL;
        }
        stream_read(r->list[i]);
    }
}


static void
read_streams(stream_t **list, size_t n)
{
    pthread_t tids[READ_THREADS_MAX];
    read_job  r;
    size_t    cores = (size_t) wtt_cpu_count();
    size_t    nt = n < cores ? n : cores;

    if (nt > READ_THREADS_MAX) {
        nt = READ_THREADS_MAX;
    }
    r.list = list;
    r.n = n;
    atomic_init(&r.next, 0);
    for (size_t t = 1; t < nt; t++) {
        if (pthread_create(&tids[t], NULL, read_worker, &r) != 0) {
            nt = t;
            break;
        }
    }
    read_worker(&r);            /* the calling thread reads too */
    for (size_t t = 1; t < nt; t++) {
        pthread_join(tids[t], NULL);
    }
}


/*
 * Plans the next batch into `b`: splits its capacity over the streams that
 * still have windows to give (an even share each; what a short stream
 * leaves goes to the others next time), decodes what they need in
 * parallel, and copies their windows in. A stream that gives none and has
 * nothing running finishes here. Returns the windows planned (0: none
 * left to give).
 */
static size_t
plan_batch(stream_t *st, size_t n, size_t cap, stream_t **reading,
           batch_t *b, const batch_t *running)
{
    size_t active = 0, share, k = 0;

    b->nw = 0;
    b->nparts = 0;
    for (size_t i = 0; i < n; i++) {
        active += st[i].state == S_RUNNING;
    }
    if (active == 0) {
        return 0;
    }
    share = (cap + active - 1) / active;
    for (size_t i = 0; i < n && cap > 0; i++) {
        stream_t *s = &st[i];
        if (s->state != S_RUNNING) {
            continue;
        }
        s->quota = share < cap ? share : cap;
        cap -= s->quota;
        reading[k++] = s;
    }
    read_streams(reading, k);
    for (size_t j = 0; j < k; j++) {
        stream_t *s = reading[j];
        size_t    nw;
        uint64_t  t0;
        int       in_flight = 0;
        if (s->state != S_RUNNING) {
            continue;                       /* its reader failed */
        }
        t0 = wtt_prof_on() ? wtt_now_ns() : 0;
        nw = stream_windows(s, b->win + b->nw * WTT_WINDOW_SAMPLES);
        if (t0 != 0) {
            wtt_prof_stage_add(WTT_STAGE_WINDOW, wtt_now_ns() - t0);
        }
        if (nw > 0) {
            b->parts[b->nparts].s = s;
            b->parts[b->nparts].at = b->nw;
            b->parts[b->nparts].nw = nw;
            b->nparts++;
            b->nw += nw;
            continue;
        }
        for (size_t q = 0; running != NULL && q < running->nparts; q++) {
            in_flight |= running->parts[q].s == s;
        }
        if (s->state == S_ENDING && !in_flight) {
            stream_finish(s);
        }
    }
    return b->nw;
}


/* Drops from a planned batch the windows of streams that failed since
 * (cancelled by their progress callback): a cancel costs no extra run. */
static void
compact_batch(batch_t *b)
{
    size_t nw = 0, kept = 0;

    for (size_t q = 0; q < b->nparts; q++) {
        struct part p = b->parts[q];
        if (p.s->state == S_FAILED) {
            continue;
        }
        if (p.at != nw) {
            memmove(b->win + nw * WTT_WINDOW_SAMPLES,
                    b->win + p.at * WTT_WINDOW_SAMPLES,
                    p.nw * WTT_WINDOW_SAMPLES * sizeof(float));
            p.at = nw;
        }
        b->parts[kept++] = p;
        nw += p.nw;
    }
    b->nparts = kept;
    b->nw = nw;
}


static void *
batch_run(void *p)
{
    batch_t *b = p;
    uint64_t t0 = wtt_prof_on() ? wtt_now_ns() : 0;

    b->rc = wtt_model_run(b->m, b->win, b->nw, b->outs, b->err,
                          sizeof(b->err));
    if (t0 != 0) {
        wtt_prof_stage_add(WTT_STAGE_MODEL, wtt_now_ns() - t0);
    }
    return NULL;
}


/* Takes a batch that has run: every part to its stream; a stream whose
 * last windows these were finishes. */
static void
take_batch(batch_t *b, float *stage)
{
    uint64_t t0 = wtt_prof_on() ? wtt_now_ns() : 0;

    for (size_t q = 0; q < b->nparts; q++) {
        stream_t *s = b->parts[q].s;
        if (s->state == S_FAILED || s->state == S_DONE) {
            continue;                       /* cancelled meanwhile */
        }
        stream_take(s, b->outs, b->parts[q].at, b->parts[q].nw, stage);
    }
    if (t0 != 0) {
        wtt_prof_stage_add(WTT_STAGE_POST, wtt_now_ns() - t0);
    }
    for (size_t q = 0; q < b->nparts; q++) {
        stream_t *s = b->parts[q].s;
        if (s->state == S_ENDING && s->done == s->given) {
            stream_finish(s);
        }
    }
    b->nparts = 0;
    b->nw = 0;
}


static int
batch_alloc(batch_t *b, struct wtt_model *m, size_t cap, size_t n)
{
    memset(b, 0, sizeof(*b));
    b->m = m;
    b->win = wtt_model_host_alloc(m, cap * WTT_WINDOW_SAMPLES * 4);
    b->outs[OUT_FRAMES] = wtt_model_host_alloc(
        m, cap * WTT_FRAMES_PER_WIN * WTT_N_PITCHES * 4);
    b->outs[OUT_ONSETS] = wtt_model_host_alloc(
        m, cap * WTT_FRAMES_PER_WIN * WTT_N_PITCHES * 4);
    b->outs[OUT_CONTOURS] = wtt_model_host_alloc(
        m, cap * WTT_FRAMES_PER_WIN * WTT_N_CONTOUR_BINS * 4);
    b->parts = wtt_trymalloc(n * sizeof(*b->parts));
    return b->win != NULL && b->outs[0] != NULL && b->outs[1] != NULL
           && b->outs[2] != NULL && b->parts != NULL ? 0 : -1;
}


static void
batch_free(batch_t *b)
{
    wtt_model_host_free(b->m, b->win);
    for (int k = 0; k < 3; k++) {
        wtt_model_host_free(b->m, b->outs[k]);
    }
    free(b->parts);
}


int
wtt_pipeline_infer_many(struct wtt_model *m, struct wtt_infer_job *jobs,
                        size_t n, char *err, size_t errlen)
{
    size_t    cap = wtt_model_batch_items(m);
    stream_t *st = NULL, **reading = NULL;
    batch_t   b[2];
    float    *stage = NULL;
    int       rc = 0, cur = 0, running = 0;

    for (size_t i = 0; i < n; i++) {
        jobs[i].rc = -1;
        snprintf(jobs[i].err, sizeof(jobs[i].err), "not run");
        wtt_posteriors_init(&jobs[i].post, jobs[i].opts.mem_budget);
    }
    if (n == 0) {
        return 0;
    }
    memset(b, 0, sizeof(b));
    if (wtt_pipeline_check(m, err, errlen) != 0) {
        rc = WTT_EFAIL;
        goto done;
    }
    st = wtt_trymalloc(n * sizeof(*st));
    reading = wtt_trymalloc(n * sizeof(*reading));
    stage = wtt_trymalloc(KEEP_FRAMES * WTT_POST_COLS * sizeof(float));
    if (st == NULL || reading == NULL || stage == NULL
        || batch_alloc(&b[0], m, cap, n) != 0
        || batch_alloc(&b[1], m, cap, n) != 0)
    {
        snprintf(err, errlen, "out of memory");
        rc = WTT_ENOMEM;
        free(st);
        st = NULL;
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        wtt_posteriors_free(&jobs[i].post);
        stream_start(&st[i], &jobs[i]);
    }
    /* b[cur] is planned, then started; the other is planned while it
     * runs, then the first is taken. The first batch is planned at the
     * top of the loop. */
    for (;;) {
        batch_t *now = &b[cur], *next = &b[!cur];
        compact_batch(now);
        if (now->nw == 0) {
            /* Nothing planned while the last batch ran (streams ended with
             * it, or were cancelled): plan now, or stop. */
            plan_batch(st, n, cap, reading, now, NULL);
            if (now->nw == 0) {
                break;
            }
        }
        if (pthread_create(&now->tid, NULL, batch_run, now) != 0) {
            batch_run(now);
        } else {
            running = 1;
        }
        plan_batch(st, n, cap, reading, next, now);
        if (running) {
            pthread_join(now->tid, NULL);
            running = 0;
        }
        if (now->rc != 0) {
            /* The model, not a file: every job fails with its reason. */
            rc = now->rc;
            snprintf(err, errlen, "%s", now->err);
            for (size_t i = 0; i < n; i++) {
                if (st[i].state != S_FAILED) {
                    stream_fail(&st[i], err);
                }
            }
            break;
        }
        take_batch(now, stage);
        cur = !cur;
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (st[i].state != S_DONE && st[i].state != S_FAILED) {
            stream_fail(&st[i], "internal error: the stream did not end");
        }
    }

done:
    for (size_t i = 0; st != NULL && i < n; i++) {
        free(st[i].sig);
    }
    if (rc != 0) {
        for (size_t i = 0; i < n; i++) {
            if (st == NULL || st[i].state != S_FAILED) {
                snprintf(jobs[i].err, sizeof(jobs[i].err), "%s", err);
                jobs[i].rc = -1;
                wtt_posteriors_free(&jobs[i].post);
            }
        }
    }
    free(st);
    free(reading);
    free(stage);
    batch_free(&b[0]);
    batch_free(&b[1]);
    return rc;
}


int
wtt_pipeline_infer(struct wtt_model *m, wtt_read_fn read, void *read_ctx,
                   const struct wtt_infer_opts *o,
                   struct wtt_posteriors *post, char *err, size_t errlen)
{
    struct wtt_infer_job job;
    int                  rc;

    memset(&job, 0, sizeof(job));
    job.read = read;
    job.read_ctx = read_ctx;
    job.opts = *o;
    rc = wtt_pipeline_infer_many(m, &job, 1, err, errlen);
    if (rc == 0 && job.rc != 0) {
        snprintf(err, errlen, "%s", job.err);
        rc = WTT_EFAIL;
    }
    *post = job.post;
    return rc;
}
