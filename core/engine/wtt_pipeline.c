/*
 * wtt_pipeline.c: Basic Pitch's windowing over the graph engine (see
 * wtt_pipeline.h).
 */
#include "wtt_pipeline.h"
#include "wtt_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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


int
wtt_pipeline_infer(struct wtt_model *m, wtt_read_fn read, void *read_ctx,
                   const struct wtt_infer_opts *o,
                   struct wtt_posteriors *post, char *err, size_t errlen)
{
    /* A batch is one window per thread: the signal is kept from the start
     * of the batch's first window to the end of its last one. */
    size_t  batch = (size_t) wtt_model_threads(m);
    size_t  span = (batch - 1) * WTT_HOP_SAMPLES + WTT_WINDOW_SAMPLES;
    float  *sig = NULL, *win = NULL, *fr = NULL, *on = NULL, *co = NULL;
    float  *stage = NULL, *outs[3];
    size_t  have = 0, consumed = 0, n_samples = 0, done = 0;
    size_t  total_windows = 0, needed_frames;
    int     eof = 0, rc = -1, full_tail = o->full_tail;

    wtt_posteriors_init(post, o->mem_budget);
    if (wtt_pipeline_check(m, err, errlen) != 0) {
        goto done;
    }
    sig = wtt_trymalloc(span * sizeof(float));
    win = wtt_trymalloc(batch * WTT_WINDOW_SAMPLES * sizeof(float));
    fr = wtt_trymalloc(batch * WTT_FRAMES_PER_WIN * WTT_N_PITCHES * 4);
    on = wtt_trymalloc(batch * WTT_FRAMES_PER_WIN * WTT_N_PITCHES * 4);
    co = wtt_trymalloc(batch * WTT_FRAMES_PER_WIN * WTT_N_CONTOUR_BINS * 4);
    stage = wtt_trymalloc(KEEP_FRAMES * WTT_POST_COLS * sizeof(float));
    if (sig == NULL || win == NULL || fr == NULL || on == NULL
        || co == NULL || stage == NULL)
    {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    outs[OUT_FRAMES] = fr;
    outs[OUT_ONSETS] = on;
    outs[OUT_CONTOURS] = co;
    if (o->total_samples > 0) {
        needed_frames = frames_for(o->total_samples, full_tail);
        total_windows = (needed_frames + KEEP_FRAMES - 1) / KEEP_FRAMES;
        /* Sized once when the length is known: no doubling, no copy (or
         * straight to the file when it will not fit the budget). */
        if (wtt_frame_store_reserve(&post->rows, total_windows * KEEP_FRAMES, err,
                             errlen) != 0)
        {
            goto done;
        }
    }

    /* sig[0] is signal position `consumed` - LEAD_ZEROS. */
    memset(sig, 0, LEAD_ZEROS * sizeof(float));
    have = LEAD_ZEROS;
    for (;;) {
        size_t nw = 0, frames_now;

        while (!eof && have < span) {
            size_t got = 0;
            if (read(read_ctx, sig + have, span - have, &got, err, errlen)
                != 0)
            {
                goto done;
            }
            if (got == 0) {
                eof = 1;
            }
            have += got;
            n_samples += got;
        }
        /* Windows that start inside the signal read so far. */
        for (size_t w = 0; w < batch; w++) {
            size_t start = w * WTT_HOP_SAMPLES;
            size_t real = consumed + start;      /* in padded coordinates */
            size_t avail;
            if (real >= n_samples + LEAD_ZEROS) {
                break;
            }
            if (!eof && start + WTT_WINDOW_SAMPLES > have) {
                break;
            }
            avail = have > start ? have - start : 0;
            if (avail > WTT_WINDOW_SAMPLES) {
                avail = WTT_WINDOW_SAMPLES;
            }
            memcpy(win + nw * WTT_WINDOW_SAMPLES, sig + start,
                   avail * sizeof(float));
            memset(win + nw * WTT_WINDOW_SAMPLES + avail, 0,
                   (WTT_WINDOW_SAMPLES - avail) * sizeof(float));
            nw++;
        }
        /* Only windows whose frames survive the final cut are run. */
        needed_frames = frames_for(n_samples, full_tail);
        frames_now = post->n_frames;
        if (eof) {
            size_t want = needed_frames > frames_now
                          ? (needed_frames - frames_now + KEEP_FRAMES - 1)
                            / KEEP_FRAMES : 0;
            nw = nw < want ? nw : want;
        }
        if (nw == 0) {
            break;
        }
        if (wtt_model_run(m, win, nw, outs, err, errlen) != 0) {
            goto done;
        }
        if (append_frames(post, nw, fr, on, co, stage, err, errlen) != 0) {
            goto done;
        }
        done += nw;
        if (o->progress != NULL) {
            size_t est = total_windows > done ? total_windows
                         : (eof ? done : 0);
            if (o->progress(o->progress_ctx, done, est) != 0) {
                snprintf(err, errlen, "cancelled");
                goto done;
            }
        }
        /* Slide: drop nw hops from the front of the buffer. */
        {
            size_t drop = nw * WTT_HOP_SAMPLES;
            if (drop > have) {
                drop = have;
            }
            memmove(sig, sig + drop, (have - drop) * sizeof(float));
            have -= drop;
            consumed += drop;
        }
        if (eof && have == 0) {
            break;
        }
    }
    needed_frames = frames_for(n_samples, full_tail);
    if (post->n_frames > needed_frames) {
        post->n_frames = needed_frames;
        wtt_frame_store_truncate(&post->rows, needed_frames);
    }
    post->n_samples = n_samples;
    rc = 0;

done:
    free(stage);
    free(sig);
    free(win);
    free(fr);
    free(on);
    free(co);
    if (rc != 0) {
        wtt_posteriors_free(post);
    }
    return rc;
}
