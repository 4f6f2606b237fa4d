/*
 * wtt_nn.h: the inference engine for Spotify's Basic Pitch.
 *
 * The engine reads the official TF.js graph-model files (model.json and its
 * weight shards) as they ship in @spotify/basic-pitch, folds everything that
 * does not depend on the audio, and runs the rest with the kernels in
 * kernels/. Windowing follows the official `evaluateModel`: 43,844-sample
 * windows at 22,050 Hz, hop 36,164 (30 frames of overlap), 3,840 zeros
 * before the audio, 15 frames trimmed from each side of each window's 172,
 * output cut to floor(samples * 86 / 22050) frames.
 *
 * Usage:
 *
 *     struct wtt_model_params p = wtt_model_default_params();
 *     p.dir = "models/basic-pitch";
 *     struct wtt_model *m;
 *     char err[256];
 *     if (wtt_model_load(&p, &m, err, sizeof(err)) != 0) { ... }
 *     struct wtt_infer_opts o = wtt_infer_default_opts();
 *     o.progress = on_window;
 *     struct wtt_posteriors post;
 *     if (wtt_model_infer(m, read_fn, ctx, &o, &post, err,
 *                         sizeof(err)) != 0) { ... }
 *     ... wtt_post_get(&post, frame, WTT_POST_ONSETS + pitch) ...
 *     wtt_posteriors_free(&post);
 *     wtt_model_free(m);
 *
 * Thread safety: a model may be used by one wtt_model_infer call at a time
 * (it runs its own worker threads inside); load several models for
 * concurrent calls. Functions return 0 on success and -1 on error, with the
 * reason in `err`.
 */
#ifndef WTT_NN_H
#define WTT_NN_H

#include <stddef.h>
#include <stdint.h>

#include "wtt_frame_store.h"

#define WTT_SAMPLE_RATE      22050
#define WTT_WINDOW_SAMPLES   43844
#define WTT_HOP_SAMPLES      36164
#define WTT_FRAMES_PER_WIN   172
#define WTT_TRIM_FRAMES      15
#define WTT_N_PITCHES        88
#define WTT_N_CONTOUR_BINS   264

struct wtt_model;

struct wtt_model_params {
    const char *dir;        /* folder with model.json (+ SHA256SUMS) */
    int         threads;    /* worker threads; 0 = one per core */
};

/* Posteriorgrams, one row of WTT_POST_COLS floats (all in 0..1) a frame:
 * note frames at columns WTT_POST_FRAMES.., onsets at WTT_POST_ONSETS..,
 * contours at WTT_POST_CONTOURS... The rows stay in memory up to a budget
 * and go to a temporary file beyond it (wtt_frame_store.h), so an hour of audio
 * costs no more memory than a minute. */
#define WTT_POST_FRAMES   0
#define WTT_POST_ONSETS   WTT_N_PITCHES
#define WTT_POST_CONTOURS (2 * WTT_N_PITCHES)
#define WTT_POST_COLS     (2 * WTT_N_PITCHES + WTT_N_CONTOUR_BINS)

/* Default posteriorgram bytes kept in memory (about 3.5 minutes). */
#define WTT_POST_MEM_DEFAULT ((size_t) 32 << 20)

struct wtt_posteriors {
    size_t           n_frames;
    size_t           n_samples;  /* audio length they were computed from */
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

/* Called after each window: done of total (total is an estimate until the
 * audio ends, 0 when unknown). Returning non-zero cancels. */
typedef int (*wtt_progress_fn)(void *ctx, size_t done, size_t total);

struct wtt_model_params wtt_model_default_params(void);

/*
 * Loads and plans the model. Checks the files against SHA256SUMS when
 * present, the weights against the manifest (names, shapes, sizes), and
 * refuses an op the engine does not know, naming the op and node. On
 * success *out owns everything; free it with wtt_model_free.
 */
int wtt_model_load(const struct wtt_model_params *p, struct wtt_model **out,
                   char *err, size_t errlen);

void wtt_model_free(struct wtt_model *m);

/* SHA-256 of model.json and the shards, as one hex string (provenance). */
const char *wtt_model_hash(const struct wtt_model *m);

/*
 * Runs `n` windows of WTT_WINDOW_SAMPLES samples each (`windows`, window
 * after window) and writes each window's 172 output frames into frames,
 * onsets and contours (each [n x 172 x bins]). Uses the model's threads.
 */
int wtt_model_run(struct wtt_model *m, const float *windows, size_t n,
                  float *frames, float *onsets, float *contours,
                  char *err, size_t errlen);

struct wtt_infer_opts {
    size_t           total_samples;  /* length when known (progress), or 0 */
    int              full_tail;      /* see wtt_model_infer */
    size_t           mem_budget;     /* posteriorgram bytes in memory */
    wtt_progress_fn  progress;       /* or NULL */
    void            *progress_ctx;
};

struct wtt_infer_opts wtt_infer_default_opts(void);

/*
 * Transcribes a stream of audio into posteriorgrams with the official
 * windowing. `full_tail` 0 cuts the output like the official code
 * (floor(samples * 86 / 22050) frames, which leaves the last 0.67%
 * untranscribed); 1 keeps frames until the official time base reaches the
 * end of the audio. On success `post` owns its rows; free them with
 * wtt_posteriors_free.
 */
int wtt_model_infer(struct wtt_model *m, wtt_read_fn read, void *read_ctx,
                    const struct wtt_infer_opts *o,
                    struct wtt_posteriors *post, char *err, size_t errlen);

/* Empty posteriorgrams (in memory, budget `mem_budget` bytes). */
void wtt_posteriors_init(struct wtt_posteriors *post, size_t mem_budget);

void wtt_posteriors_free(struct wtt_posteriors *post);

/* The official frame-to-time conversion (modelFrameToTime), in seconds. */
double wtt_model_frame_time(long frame);

#endif
