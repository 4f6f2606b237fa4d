/*
 * wtt_pipeline.h: Spotify's Basic Pitch over the graph engine: audio in,
 * posteriorgrams out.
 *
 * The pipeline knows what the graph engine (wtt_nn.h) does not: Basic
 * Pitch's signature (input `input_2`, outputs note frames, onsets and
 * contours) and its windowing, as the official `evaluateModel` does it:
 * 43,844-sample windows at 22,050 Hz, hop 36,164 (30 frames of overlap),
 * 3,840 zeros before the audio, the last window zero-padded, 15 frames
 * trimmed from each side of each window's 172, output cut to
 * floor(samples * 86 / 22050) frames. It drives the graph one batch of
 * windows at a time (wtt_model_batch_items: one window per thread on the
 * CPU, as many as device memory allows on a GPU) and writes the kept
 * frames into a frame store, so audio streams through and is never held
 * whole. Several files can share the batches (wtt_pipeline_infer_many):
 * each keeps its own reader, progress and result, and one that fails
 * (unreadable audio, a cancel) fails alone.
 *
 * Usage:
 *
 *     struct wtt_model_params p = wtt_pipeline_model_params();
 *     p.dir = "models/basic-pitch";
 *     struct wtt_model *m;
 *     char err[256];
 *     if (wtt_model_load(&p, &m, err, sizeof(err)) != 0
 *         || wtt_pipeline_check(m, err, sizeof(err)) != 0) { ... }
 *     struct wtt_infer_opts o = wtt_infer_default_opts();
 *     o.progress = on_window;
 *     struct wtt_posteriors post;
 *     if (wtt_pipeline_infer(m, read_fn, ctx, &o, &post, err,
 *                            sizeof(err)) != 0) { ... }
 *     ... wtt_post_get(&post, frame, WTT_POST_ONSETS + pitch) ...
 *     wtt_posteriors_free(&post);
 *     wtt_model_free(m);
 *
 * Thread safety: as the model's (one wtt_pipeline_infer per model at a
 * time). Functions return 0 on success and -1 on error, with the reason in
 * `err`.
 */
#ifndef WTT_PIPELINE_H
#define WTT_PIPELINE_H

#include <stddef.h>

#include "wtt_frame_store.h"
#include "wtt_nn.h"

#define WTT_SAMPLE_RATE      22050
#define WTT_WINDOW_SAMPLES   43844
#define WTT_HOP_SAMPLES      36164
#define WTT_FRAMES_PER_WIN   172
#define WTT_TRIM_FRAMES      15
#define WTT_N_PITCHES        88
#define WTT_N_CONTOUR_BINS   264

/* Posteriorgrams, one row of WTT_POST_COLS floats (all in 0..1) a frame:
 * note frames at columns WTT_POST_FRAMES.., onsets at WTT_POST_ONSETS..,
 * contours at WTT_POST_CONTOURS... The rows stay in memory up to a budget
 * and go to a temporary file beyond it (wtt_frame_store.h), so an hour of
 * audio costs no more memory than a minute. */
#define WTT_POST_FRAMES   0
#define WTT_POST_ONSETS   WTT_N_PITCHES
#define WTT_POST_CONTOURS (2 * WTT_N_PITCHES)
#define WTT_POST_COLS     (2 * WTT_N_PITCHES + WTT_N_CONTOUR_BINS)

/* Default posteriorgram bytes kept in memory (about 3.5 minutes). */
#define WTT_POST_MEM_DEFAULT ((size_t) 32 << 20)

struct wtt_posteriors {
    size_t                  n_frames;
    size_t                  n_samples;  /* audio length they came from */
    struct wtt_frame_store  rows;
};

static inline float
wtt_post_get(struct wtt_posteriors *p, size_t frame, size_t col)
{
    return wtt_frame_store_get(&p->rows, frame, col);
}

/*
 * Pulls up to `want` mono samples at 22,050 Hz into `out`; sets *got (0 at
 * the end). Returns 0, or -1 with `err` filled.
 */
typedef int (*wtt_read_fn)(void *ctx, float *out, size_t want, size_t *got,
                           char *err, size_t errlen);

/* Called after each batch of windows: done of total (total is an estimate
 * until the audio ends, 0 when unknown). Returning non-zero cancels: the
 * pipeline releases everything and fails with "cancelled". */
typedef int (*wtt_progress_fn)(void *ctx, size_t done, size_t total);

/* Model parameters for Basic Pitch: folder "models/basic-pitch", its input
 * and its three outputs (frames, onsets, contours) in that order. */
struct wtt_model_params wtt_pipeline_model_params(void);

/* Checks that `m` has Basic Pitch's shapes (a 43,844-sample window in,
 * 172 frames of 88, 88 and 264 bins out). Returns 0, or -1 with `err`. */
int wtt_pipeline_check(const struct wtt_model *m, char *err, size_t errlen);

struct wtt_infer_opts {
    size_t           total_samples;  /* length when known (progress), or 0 */
    int              full_tail;      /* see wtt_pipeline_infer */
    size_t           mem_budget;     /* posteriorgram bytes in memory */
    wtt_progress_fn  progress;       /* or NULL */
    void            *progress_ctx;
};

struct wtt_infer_opts wtt_infer_default_opts(void);

/* One file of a wtt_pipeline_infer_many call: in (read, opts), out
 * (post, rc, err). */
struct wtt_infer_job {
    wtt_read_fn            read;
    void                  *read_ctx;
    struct wtt_infer_opts  opts;
    struct wtt_posteriors  post;    /* on rc 0; free with the usual call */
    int                    rc;      /* 0, or -1 with err */
    char                   err[256];
};

/*
 * Transcribes `n` files at once: their windows share the model's batches,
 * each gets an even share of a batch while it has audio left, and their
 * readers decode in parallel (one thread per core at most; a reader must
 * not touch anything shared with another job's). Progress callbacks run on
 * the calling thread. Returns 0 when the model ran to the end, each job
 * then having its own rc; or a negative kind (wtt_backend.h) with `err`
 * when the model failed, every job failing with that reason.
 */
int wtt_pipeline_infer_many(struct wtt_model *m, struct wtt_infer_job *jobs,
                            size_t n, char *err, size_t errlen);

/*
 * Transcribes a stream of audio into posteriorgrams with the official
 * windowing (one job of wtt_pipeline_infer_many). `full_tail` 0 cuts the output like the official code
 * (floor(samples * 86 / 22050) frames, which leaves the last 0.67%
 * untranscribed); 1 keeps frames until the official time base reaches the
 * end of the audio. On success `post` owns its rows; free them with
 * wtt_posteriors_free. On failure (read error, cancel, model error) every
 * buffer is released and `post` is empty.
 */
int wtt_pipeline_infer(struct wtt_model *m, wtt_read_fn read, void *read_ctx,
                       const struct wtt_infer_opts *o,
                       struct wtt_posteriors *post, char *err,
                       size_t errlen);

/* Empty posteriorgrams (in memory, budget `mem_budget` bytes). */
void wtt_posteriors_init(struct wtt_posteriors *post, size_t mem_budget);

void wtt_posteriors_free(struct wtt_posteriors *post);

/* The official frame-to-time conversion (modelFrameToTime), in seconds. */
double wtt_pipeline_frame_time(long frame);

#endif
