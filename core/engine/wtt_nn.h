/*
 * wtt_nn.h: the graph engine: loads a TF.js graph model, plans it, and runs
 * it on a backend.
 *
 * The engine reads TF.js graph-model files (model.json and its weight
 * shards, as Spotify's Basic Pitch ships them in @spotify/basic-pitch),
 * folds everything that does not depend on the input, and runs the rest one
 * node at a time on a backend picked at load time from the registry
 * (wtt_backend_reg.h, kernels/wtt_backend.h). It knows graphs, not audio:
 * one run maps items of the input placeholder's shape to the outputs'
 * shapes. Basic Pitch's windowing is the pipeline's (wtt_pipeline.h).
 *
 * Usage:
 *
 *     struct wtt_model_params p = wtt_model_default_params();
 *     p.dir = "models/basic-pitch";
 *     p.input = "input_2";
 *     p.outputs[0] = "Identity_1";
 *     p.n_outputs = 1;
 *     struct wtt_model *m;
 *     char err[256];
 *     if (wtt_model_load(&p, &m, err, sizeof(err)) != 0) { ... }
 *     size_t in = wtt_model_input_size(m), out = wtt_model_output_size(m, 0);
 *     float *x = ..n * in floats.., *y = ..n * out floats..;
 *     if (wtt_model_run(m, x, n, &y, err, sizeof(err)) != 0) { ... }
 *     wtt_model_free(m);
 *
 * Batches: a run takes any number of items and gives each worker up to
 * wtt_model_batch(m) of them at once, as one tensor whose first dimension
 * is the batch (the graph's own Shape ops see it). The host backend runs
 * one item per worker thread; a device backend runs two workers (two
 * streams) with as many items each as their share of the memory budget
 * allows, and halves a worker's batch when the device runs out of memory.
 *
 * Thread safety: a model may be used by one wtt_model_run call at a time
 * (it runs its own worker threads inside); load several models for
 * concurrent calls. Functions return 0 on success and a negative kind from
 * wtt_backend.h on error (WTT_EFAIL, WTT_ENOMEM, WTT_EDEVICE), with the
 * reason in `err`.
 */
#ifndef WTT_NN_H
#define WTT_NN_H

#include <stddef.h>
#include <stdint.h>

#include "wtt_backend.h"

#define WTT_MODEL_MAX_OUTPUTS 4

struct wtt_model;

struct wtt_model_params {
    const char *dir;        /* folder with model.json (+ SHA256SUMS) */
    int         threads;    /* worker threads; 0 = one per core */
    /* Where the non-constant nodes run; NULL = the registry's first
     * (wtt_backend_get(0)). Not owned; must outlive the model. */
    const struct wtt_backend *backend;
    int         device;     /* the backend's device index (cuda:N) */
    int         batch;      /* items per worker run; 0 = the backend's */
    size_t      mem_budget; /* device bytes for a batch; 0 = half the free */
    long        fault_after; /* tests: runs after this many fail as a
                              * device fault (0 = never) */
    const char *input;      /* the Placeholder a run feeds */
    const char *outputs[WTT_MODEL_MAX_OUTPUTS];   /* nodes a run returns */
    int         n_outputs;
};

/* dir NULL, threads 0, backend NULL, device 0, batch 0, no input, no
 * outputs: the caller
 * names the graph's signature (wtt_pipeline_model_params does for Basic
 * Pitch). */
struct wtt_model_params wtt_model_default_params(void);

/*
 * Loads and plans the model. Checks the files against SHA256SUMS when
 * present, the weights against the manifest (names, shapes, sizes), refuses
 * an op the engine does not know, naming the op and node, and refuses a
 * backend that lacks an op of the plan, naming the backend, op and node
 * (there is no silent fallback). The input must be a Placeholder whose
 * shape is fixed but for the batch. On success *out owns everything; free
 * it with wtt_model_free.
 */
int wtt_model_load(const struct wtt_model_params *p, struct wtt_model **out,
                   char *err, size_t errlen);

void wtt_model_free(struct wtt_model *m);

/* SHA-256 of model.json and the shards, as one hex string (provenance);
 * empty without SHA256SUMS. Valid while the model lives. */
const char *wtt_model_hash(const struct wtt_model *m);

/* The name of the backend the model runs on (static). */
const char *wtt_model_backend(const struct wtt_model *m);

/* The device index the model runs on. */
int wtt_model_device(const struct wtt_model *m);

/* Worker threads (one per device context). */
int wtt_model_threads(const struct wtt_model *m);

/* Items one worker runs at once (its batch, as planned at load). */
int wtt_model_batch(const struct wtt_model *m);

/* Items a run computes at the same time (threads x batch): what a caller
 * should hand wtt_model_run to keep every worker busy. */
size_t wtt_model_batch_items(const struct wtt_model *m);

/* Host memory for inputs and outputs, page-locked on a device backend so
 * that copies run asynchronously at full speed; free with
 * wtt_model_host_free. NULL when memory runs out. */
void *wtt_model_host_alloc(const struct wtt_model *m, size_t bytes);
void wtt_model_host_free(const struct wtt_model *m, void *p);

/* Floats in one input item (the placeholder's shape without the batch). */
size_t wtt_model_input_size(const struct wtt_model *m);

/* Floats output `k` gives per item (0 for k out of range). */
size_t wtt_model_output_size(const struct wtt_model *m, int k);

/*
 * Runs `n` items (`inputs`: item after item, each wtt_model_input_size
 * floats) and writes item i's output k at outputs[k] + i *
 * wtt_model_output_size(m, k). Uses the model's threads. The caller owns
 * every buffer (from wtt_model_host_alloc for the fastest copies).
 * WTT_EDEVICE means the device is gone: later runs will fail too.
 */
int wtt_model_run(struct wtt_model *m, const float *inputs, size_t n,
                  float *const *outputs, char *err, size_t errlen);


/*
 * Development profile, on when WTT_NN_PROFILE is set: the time of each op
 * (and op family) of the graph and of each stage of a transcription,
 * printed to stderr at exit. Stages are timed where they run, on whatever
 * thread: decode and resample overlap the model's runs, so the stages add
 * up to more than the wall time of a run with threads. When the variable
 * is not set, wtt_prof_on is a load and a branch, and nothing is timed.
 */
enum wtt_prof_stage {
    WTT_STAGE_DECODE,       /* the audio file to mono samples */
    WTT_STAGE_RESAMPLE,     /* libsoxr, to the model's rate */
    WTT_STAGE_WINDOW,       /* samples into the batch's windows */
    WTT_STAGE_MODEL,        /* wtt_model_run: the graph, inputs, outputs */
    WTT_STAGE_POST,         /* outputs into the posteriorgram */
    WTT_STAGE_NOTES,        /* note extraction */
    WTT_STAGE_COUNT
};

int wtt_prof_on(void);

/* Adds `ns` to stage `stage` (a no-op when the profile is off). */
void wtt_prof_stage_add(enum wtt_prof_stage stage, uint64_t ns);

#endif
