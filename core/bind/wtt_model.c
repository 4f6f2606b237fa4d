/*
 * wtt_model.c: Lua binding of the inference engine (see wtt_model.h).
 *
 *   local core = require "wtt.core.model"
 *   core.backends()                                   -- { "cpu", ... }
 *   local m = core.load(dir, { threads = 2, backend = "cpu" }) -- or nil, err
 *   local post = m:infer(path_or_pcm, { on_window = fn })      -- or nil, err
 *   post:n_frames(); post:get("frames", i, pitch); post:to_string("onsets")
 *
 * Options are checked before anything is opened: a wrong type, a bad value
 * or an unknown name raises, naming the option. m:infer holds a decoder
 * (a sndfile handle) and the engine's window buffers while it runs, and
 * calls on_window between windows; it calls it protected, so a raising
 * callback never unwinds through those C frames: inference stops,
 * everything is released, and then the callback's error is raised again,
 * unchanged (docs/engine.md, "The Lua binding").
 */
#include "wtt_model.h"
#include "wtt_luax.h"
#include "wtt_audio.h"
#include "wtt_backend_reg.h"
#include "wtt_notes.h"
#include "wtt_notes_guitar.h"
#include "wtt_pipeline.h"
#include "wtt_util.h"

#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MODEL_MT "wtt.model.model"
#define POST_MT  "wtt.model.posteriors"

typedef struct {
    struct wtt_model *m;
    int               busy;         /* inside m:infer */
    int               close_later;  /* m:close() from its own callback */
} model_ud;

typedef struct {
    struct wtt_posteriors p;
} post_ud;

/* The Lua side of one file of a running m:infer / m:infer_many, for
 * on_progress. The files of one call share `slot` and `raised`. */
typedef struct {
    lua_State *L;
    int        fn;      /* stack index of on_window, 0 when none */
    int        slot;    /* stack index that receives the callback's error */
    int       *raised;  /* a callback raised: its error is at `slot` */
} progress_ctx;


/*
 * The engine's progress callback: calls on_window(done, total) protected.
 * Returns non-zero (cancel) when it returns false or raises; a raised error
 * is kept at p->slot for l_model_infer to raise once the engine has
 * released its buffers. Stack unchanged.
 */
static int
on_progress(void *ctx, size_t done, size_t total)
{
    progress_ctx *p = ctx;
    int           stop;

    if (*p->raised) {
        return 1;       /* another file's callback raised: stop them all */
    }
    if (p->fn == 0) {
        return 0;
    }
    lua_pushvalue(p->L, p->fn);                   /* fn */
    lua_pushnumber(p->L, (lua_Number) done);      /* fn done */
    lua_pushnumber(p->L, (lua_Number) total);     /* fn done total */
    if (lua_pcall(p->L, 2, 1, 0) != 0) {          /* err */
        lua_replace(p->L, p->slot);               /* */
        *p->raised = 1;
        return 1;
    }                                             /* ret */
    stop = lua_isboolean(p->L, -1) && !lua_toboolean(p->L, -1);
    lua_pop(p->L, 1);                             /* */
    return stop;
}


static model_ud *
check_model(lua_State *L)
{
    return luaL_checkudata(L, 1, MODEL_MT);
}


static const char *const load_opts[] = {
    "threads", "backend", "device", "batch", "memory_mb", "fault_after",
    NULL,
};

/* The kind of an engine failure, for the caller's policy: "device" when
 * the device cannot run the model any more (a fault, or no memory even for
 * one window), nil otherwise. */
static int
push_kind(lua_State *L, int rc)
{
    if (rc == WTT_EDEVICE || rc == WTT_ENOMEM) {
        lua_pushliteral(L, "device");
        return 1;
    }
    return 0;
}


/* core.load(dir, opts) -> model | nil, err[, kind]. opts: threads (0: the
 * backend's default), backend (a name from core.backends(); default the
 * first), device (its index, cuda:N), batch (windows per worker run; 0:
 * the backend's), memory_mb (device memory for a batch; 0: half the free),
 * fault_after (tests: runs after this many fail as a device fault). */
static int
l_load(lua_State *L)
{
    struct wtt_model_params p = wtt_pipeline_model_params();
    model_ud               *u;
    const char             *backend;
    char                    err[512];
    int                     rc;

    p.dir = luaL_checkstring(L, 1);
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        wtt_lua_check_opts(L, 2, load_opts);
    }
    p.threads = (int) wtt_lua_opt_number(L, lua_istable(L, 2) ? 2 : 0,
                                         "threads", 0, 0, 1024);
    p.device = (int) wtt_lua_opt_number(L, lua_istable(L, 2) ? 2 : 0,
                                        "device", 0, 0, 1024);
    p.batch = (int) wtt_lua_opt_number(L, lua_istable(L, 2) ? 2 : 0,
                                       "batch", 0, 0, 4096);
    p.mem_budget = (size_t) (wtt_lua_opt_number(
        L, lua_istable(L, 2) ? 2 : 0, "memory_mb", 0, 0, 1 << 24)
        * 1048576.0);
    p.fault_after = (long) wtt_lua_opt_number(L, lua_istable(L, 2) ? 2 : 0,
                                              "fault_after", 0, 0, 1e12);
    backend = wtt_lua_opt_string(L, lua_istable(L, 2) ? 2 : 0, "backend",
                                 NULL, NULL);
    if (backend != NULL) {
        p.backend = wtt_backend_find(backend);
        if (p.backend == NULL) {
            lua_pushnil(L);
            lua_pushfstring(L, "model load failed: this build has no '%s' "
                            "backend", backend);
            return 2;
        }
    }
    u = lua_newuserdata(L, sizeof(*u));
    memset(u, 0, sizeof(*u));
    luaL_getmetatable(L, MODEL_MT);
    lua_setmetatable(L, -2);
    rc = wtt_model_load(&p, &u->m, err, sizeof(err));
    if (rc == 0) {
        rc = wtt_pipeline_check(u->m, err, sizeof(err));
    }
    if (rc != 0) {
        wtt_model_free(u->m);
        u->m = NULL;
        lua_pushnil(L);
        lua_pushfstring(L, "model load failed: %s", err);
        return 2 + push_kind(L, rc);
    }
    return 1;
}


/* core.devices(backend) -> { { index, name, memory, free, cc }, ... }:
 * the devices that backend can use now (empty when it has none, as a CUDA
 * build on a host without a GPU), or nil, err for a backend this build
 * lacks. memory and free are bytes; cc is "9.0" (nil on the CPU). */
static int
l_devices(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);

    if (wtt_backend_find(name) == NULL) {
        lua_pushnil(L);
        lua_pushfstring(L, "this build has no '%s' backend", name);
        return 2;
    }
    return wtt_model_push_devices(L, name);
}


int
wtt_model_push_devices(lua_State *L, const char *name)
{
    const struct wtt_backend *b = wtt_backend_find(name);
    int                       n;

    if (b == NULL) {
        lua_pushnil(L);
        return 1;
    }
    n = b->device_count();
    lua_createtable(L, n > 0 ? n : 0, 0);               /* list */
    for (int i = 0; i < n; i++) {
        struct wtt_device_info info;
        const char            *why = NULL;
        if (b->device_info(i, &info, &why) != 0) {
            continue;
        }
        lua_createtable(L, 0, 5);                       /* list dev */
        lua_pushinteger(L, i);
        lua_setfield(L, -2, "index");
        lua_pushstring(L, info.name);
        lua_setfield(L, -2, "name");
        lua_pushnumber(L, (lua_Number) info.mem_total);
        lua_setfield(L, -2, "memory");
        lua_pushnumber(L, (lua_Number) info.mem_free);
        lua_setfield(L, -2, "free");
        if (info.cc_major > 0) {
            lua_pushfstring(L, "%d.%d", info.cc_major, info.cc_minor);
            lua_setfield(L, -2, "cc");
        }
        lua_rawseti(L, -2, (int) lua_objlen(L, -2) + 1); /* list */
    }
    return 1;
}


/* core.backends() -> { name, ... }: the backends compiled into this
 * binary, in order of preference (the first is the default). */
static int
l_backends(lua_State *L)
{
    size_t n = wtt_backend_count();

    lua_createtable(L, (int) n, 0);                    /* list */
    for (size_t i = 0; i < n; i++) {
        lua_pushstring(L, wtt_backend_get(i)->name);   /* list name */
        lua_rawseti(L, -2, (int) i + 1);               /* list */
    }
    return 1;
}


/* m:close(); also __gc. From inside the model's own on_window, the model
 * is freed when m:infer returns. */
static int
l_model_close(lua_State *L)
{
    model_ud *u = check_model(L);

    if (u->busy) {
        u->close_later = 1;
        return 0;
    }
    wtt_model_free(u->m);
    u->m = NULL;
    return 0;
}


static int
l_model_hash(lua_State *L)
{
    model_ud *u = check_model(L);

    if (u->m == NULL || u->close_later) {
        lua_pushnil(L);
        lua_pushliteral(L, "closed");
        return 2;
    }
    lua_pushstring(L, wtt_model_hash(u->m));
    return 1;
}


/* m:backend() -> the backend's name ("cpu"), its device index, the
 * windows one run takes at once | nil, "closed" */
static int
l_model_backend(lua_State *L)
{
    model_ud *u = check_model(L);

    if (u->m == NULL || u->close_later) {
        lua_pushnil(L);
        lua_pushliteral(L, "closed");
        return 2;
    }
    lua_pushstring(L, wtt_model_backend(u->m));
    lua_pushinteger(L, wtt_model_device(u->m));
    lua_pushinteger(L, (lua_Integer) wtt_model_batch_items(u->m));
    return 3;
}


/* A pcm buffer as a wtt_read_fn source. */
typedef struct {
    const struct wtt_pcm *pcm;
    size_t                pos;
} pcm_src;


static int
read_pcm(void *ctx, float *out, size_t want, size_t *got, char *err,
         size_t errlen)
{
    pcm_src *s = ctx;
    size_t   n = s->pcm->n - s->pos < want ? s->pcm->n - s->pos : want;

    memcpy(out, s->pcm->data + s->pos, n * sizeof(float));
    s->pos += n;
    *got = n;
    return 0;
}


static int
read_audio(void *ctx, float *out, size_t want, size_t *got, char *err,
           size_t errlen)
{
    return wtt_audio_read(ctx, out, want, got, err, errlen);
}


/* A new posteriors userdata on the stack, empty and safe to collect. */
static post_ud *
new_post(lua_State *L)
{
    post_ud *pu = lua_newuserdata(L, sizeof(*pu));

    wtt_posteriors_init(&pu->p, 0);
    luaL_getmetatable(L, POST_MT);
    lua_setmetatable(L, -2);
    return pu;
}


static const char *const infer_opts[] = {
    "on_window", "nonfinite", "max_duration", "full_tail", "memory_mb", NULL,
};

/* One file of m:infer / m:infer_many: its source, options and progress. */
typedef struct {
    const char              *path;      /* or pcm */
    struct wtt_pcm          *pcm;
    struct wtt_audio_params  ap;
    struct wtt_infer_opts    io;
    progress_ctx             pc;
    post_ud                 *pu;
    struct wtt_audio_reader *reader;
    pcm_src                  src;
    const char              *bad;       /* refused before running */
} item_t;


/*
 * Phase 1 for one file: reads the source at `src` and the options table at
 * `opts` (0: none), raising on misuse (argument `arg`), then pushes its
 * on_window (or nil) and an empty posteriors userdata. A pcm at the wrong
 * rate is not misuse: it is refused with it->bad.
 */
static void
check_item(lua_State *L, int src, int opts, int arg, item_t *it)
{
    const char *nonfinite;

    memset(it, 0, sizeof(*it));
    it->ap = wtt_audio_default_params();
    it->io = wtt_infer_default_opts();
    if (lua_type(L, src) == LUA_TSTRING) {
        it->path = lua_tostring(L, src);
    } else {
        it->pcm = wtt_pcm_check(L, src);
    }
    if (opts != 0 && !lua_isnil(L, opts)) {
        luaL_checktype(L, opts, LUA_TTABLE);
        wtt_lua_check_opts(L, opts, infer_opts);
    } else {
        opts = 0;
    }
    nonfinite = wtt_lua_opt_string(L, opts, "nonfinite", "error", NULL);
    if (strcmp(nonfinite, "zero") == 0) {
        it->ap.nonfinite = WTT_AUDIO_NONFINITE_ZERO;
    } else if (strcmp(nonfinite, "error") != 0) {
        luaL_argerror(L, arg, "'nonfinite' must be \"error\" or \"zero\"");
    }
    it->ap.max_duration_s = wtt_lua_opt_number(L, opts, "max_duration",
                                               it->ap.max_duration_s, 0,
                                               1e9);
    it->io.full_tail = wtt_lua_opt_bool(L, opts, "full_tail", 0);
    it->io.mem_budget = (size_t) (wtt_lua_opt_number(
        L, opts, "memory_mb", (double) (it->io.mem_budget >> 20), 0,
        1 << 20) * 1048576.0);
    luaL_checkstack(L, 6, "m:infer");
    if (opts != 0) {
        lua_getfield(L, opts, "on_window");             /* fn */
    } else {
        lua_pushnil(L);                                 /* nil */
    }
    if (lua_isfunction(L, -1)) {
        it->pc.fn = lua_gettop(L);
    } else if (!lua_isnil(L, -1)) {
        luaL_argerror(L, arg, "'on_window' must be a function");
    }
    it->pu = new_post(L);                               /* fn post */
    it->pc.L = L;
    it->io.progress = on_progress;
    it->io.progress_ctx = &it->pc;
    if (it->pcm != NULL && it->pcm->rate != WTT_SAMPLE_RATE) {
        it->bad = "pcm rate";
    }
}


/*
 * Phase 2: opens each file, runs those that opened as the jobs of one
 * wtt_pipeline_infer_many call (`jobs` has room for 2n: the second half
 * holds the files that run), closes them. Afterwards jobs[i] is file i's
 * outcome: rc, err, and on success its posteriors, which are moved into
 * the file's userdata. Returns the model's rc (a negative kind when the
 * model itself failed), with `err`.
 */
static int
run_items(model_ud *u, item_t *items, struct wtt_infer_job *jobs, size_t n,
          char *err, size_t errlen)
{
    struct wtt_infer_job *live = jobs + n;
    size_t                k = 0;
    int                   rc;

    for (size_t i = 0; i < n; i++) {
        item_t               *it = &items[i];
        struct wtt_infer_job *job = &jobs[i];
        memset(job, 0, sizeof(*job));
        job->opts = it->io;
        if (it->bad != NULL) {
            snprintf(job->err, sizeof(job->err), "pcm at %d Hz, the model "
                     "needs %d Hz", it->pcm->rate, WTT_SAMPLE_RATE);
            job->rc = -1;
            continue;
        }
        if (it->path != NULL) {
            if (wtt_audio_open(it->path, &it->ap, &it->reader, job->err,
                               sizeof(job->err)) != 0)
            {
                job->rc = -1;
                continue;
            }
            {
                const struct wtt_audio_info *info =
                    wtt_audio_get_info(it->reader);
                job->opts.total_samples = info->duration > 0
                    ? (size_t) (info->duration * WTT_SAMPLE_RATE) : 0;
            }
            job->read = read_audio;
            job->read_ctx = it->reader;
        } else {
            it->src.pcm = it->pcm;
            it->src.pos = 0;
            job->opts.total_samples = it->pcm->n;
            job->read = read_pcm;
            job->read_ctx = &it->src;
        }
        live[k++] = *job;
    }
    u->busy = 1;
    rc = wtt_pipeline_infer_many(u->m, live, k, err, errlen);
    u->busy = 0;
    k = 0;
    for (size_t i = 0; i < n; i++) {
        if (jobs[i].rc != 0 && jobs[i].read == NULL) {
            continue;                   /* never ran */
        }
        jobs[i] = live[k++];
        items[i].pu->p = jobs[i].post;
        if (items[i].reader != NULL) {
            wtt_audio_close(items[i].reader);
            items[i].reader = NULL;
        }
    }
    return rc;
}


/* Pushes the message of a file that failed (errors of the audio as they
 * are, the rest as inference failures). */
static void
push_item_error(lua_State *L, const char *err)
{
    if (strncmp(err, "decode failed", 13) == 0
        || strncmp(err, "open failed", 11) == 0)
    {
        lua_pushstring(L, err);
    } else {
        lua_pushfstring(L, "inference failed: %s", err);
    }
}


/* Phase 3's common start: frees a model closed from its own callback. */
static void
close_deferred(model_ud *u)
{
    if (u->close_later) {
        wtt_model_free(u->m);
        u->m = NULL;
        u->close_later = 0;
    }
}


/* Refuses m:infer on a closed model or from its own callback. */
static int
check_idle(lua_State *L, model_ud *u)
{
    if (u->busy) {
        return luaL_error(L, "m:infer called from the model's own "
                          "on_window");
    }
    return u->m != NULL && !u->close_later;
}


/*
 * m:infer(source, opts) -> posteriors | nil, err[, kind]. source: a file
 * path (decoded and resampled while it streams through the model) or a pcm
 * at 22,050 Hz. opts: on_window(done, total) (return false to cancel; an
 * error it raises is raised again once inference has released its
 * resources), nonfinite = "error" | "zero", max_duration (seconds),
 * full_tail, memory_mb (posteriorgram megabytes kept in memory before they
 * go to a temporary file; default 32). kind is "device" when the device
 * failed (nothing else will run on it), absent otherwise.
 *
 * Three phases, as wtt_http_client.c: (1) read and check every argument,
 * raising on misuse while nothing is held; (2) run, with Lua reached only
 * through on_progress's lua_pcall; (3) release, then push the result or
 * raise the callback's error.
 */
static int
l_model_infer(lua_State *L)
{
    model_ud             *u = check_model(L);
    item_t                it;
    struct wtt_infer_job *jobs;
    char                  err[512];
    int                   rc, raised = 0;

    /* 1. Arguments: source at 2, opts at 3, the error slot at 4, the jobs
     * at 5, on_window at 6, the posteriors at 7. */
    if (!check_idle(L, u)) {
        lua_pushnil(L);
        lua_pushliteral(L, "closed");
        return 2;
    }
    lua_settop(L, 3);
    if (lua_type(L, 2) != LUA_TSTRING) {
        wtt_pcm_check(L, 2);
    }
    lua_pushnil(L);                                     /* src opts slot */
    jobs = lua_newuserdata(L, 2 * sizeof(*jobs));       /* ... jobs */
    check_item(L, 2, 3, 3, &it);                        /* ... fn post */
    it.pc.slot = 4;
    it.pc.raised = &raised;

    /* 2. The work: no Lua error can unwind from here to phase 3. */
    rc = run_items(u, &it, jobs, 1, err, sizeof(err));

    /* 3. Results. */
    close_deferred(u);
    if (raised) {
        lua_pushvalue(L, 4);                            /* ... err */
        return lua_error(L);
    }
    if (rc != 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "inference failed: %s", err);
        return 2 + push_kind(L, rc);
    }
    if (jobs[0].rc != 0) {
        lua_pushnil(L);
        push_item_error(L, jobs[0].err);
        return 2;
    }
    lua_pushvalue(L, 7);                                /* ... post */
    return 1;
}


/*
 * m:infer_many({ { source, opts }, ... }) -> results | nil, err[, kind].
 * Runs the files as one call of the engine, so that their windows share
 * batches (what keeps a GPU busy with short clips). Each file has the
 * source and options of m:infer, its own on_window, and its own outcome:
 * results[i] is { post = posteriors } or { err = message }; a file that
 * fails (unreadable, corrupt, cancelled by its on_window) fails alone.
 * nil, err, kind when the model itself failed, for every file. An error
 * raised by any on_window stops every file and is raised again.
 */
static int
l_model_infer_many(lua_State *L)
{
    model_ud             *u = check_model(L);
    item_t               *items;
    struct wtt_infer_job *jobs;
    size_t                n;
    char                  err[512];
    int                   rc, raised = 0, base;

    if (!check_idle(L, u)) {
        lua_pushnil(L);
        lua_pushliteral(L, "closed");
        return 2;
    }
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    n = lua_objlen(L, 2);
    lua_pushnil(L);                                     /* list slot */
    items = lua_newuserdata(L, (n ? n : 1) * sizeof(*items));
    jobs = lua_newuserdata(L, (n ? n : 1) * 2 * sizeof(*jobs));
    base = lua_gettop(L);
    luaL_checkstack(L, (int) (4 * n + 8), "m:infer_many");
    for (size_t i = 0; i < n; i++) {
        int at;
        lua_rawgeti(L, 2, (int) i + 1);                 /* ... entry */
        if (!lua_istable(L, -1)) {
            return luaL_argerror(L, 2, "each file is { source, opts }");
        }
        at = lua_gettop(L);
        lua_rawgeti(L, at, 1);                          /* ... entry src */
        lua_rawgeti(L, at, 2);                          /* ... src opts */
        check_item(L, at + 1, at + 2, 2, &items[i]);    /* ... fn post */
        items[i].pc.slot = 3;
        items[i].pc.raised = &raised;
    }
    (void) base;

    rc = run_items(u, items, jobs, n, err, sizeof(err));

    close_deferred(u);
    if (raised) {
        lua_pushvalue(L, 3);
        return lua_error(L);
    }
    if (rc != 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "inference failed: %s", err);
        return 2 + push_kind(L, rc);
    }
    lua_createtable(L, (int) n, 0);                     /* ... results */
    for (size_t i = 0; i < n; i++) {
        lua_createtable(L, 0, 1);                       /* ... results r */
        if (jobs[i].rc == 0) {
            /* The posteriors userdata sits after entry, src, opts, fn. */
            lua_pushvalue(L, base + (int) i * 5 + 5);
            lua_setfield(L, -2, "post");
        } else {
            push_item_error(L, jobs[i].err);
            lua_setfield(L, -2, "err");
        }
        lua_rawseti(L, -2, (int) i + 1);                /* ... results */
    }
    return 1;
}


static int
l_post_close(lua_State *L)
{
    post_ud *p = luaL_checkudata(L, 1, POST_MT);

    wtt_posteriors_free(&p->p);
    return 0;
}


/* The first column and width of "frames", "onsets" or "contours". */
static size_t
post_columns(lua_State *L, int idx, int *bins)
{
    const char *kind = luaL_checkstring(L, idx);

    if (strcmp(kind, "frames") == 0) {
        *bins = WTT_N_PITCHES;
        return WTT_POST_FRAMES;
    }
    if (strcmp(kind, "onsets") == 0) {
        *bins = WTT_N_PITCHES;
        return WTT_POST_ONSETS;
    }
    if (strcmp(kind, "contours") == 0) {
        *bins = WTT_N_CONTOUR_BINS;
        return WTT_POST_CONTOURS;
    }
    luaL_argerror(L, idx, "expected frames, onsets or contours");
    return 0;
}


/* post:storage() -> "memory" | "file" (beyond the memory budget) */
static int
l_post_storage(lua_State *L)
{
    post_ud *p = luaL_checkudata(L, 1, POST_MT);

    lua_pushstring(L, wtt_frame_store_in_memory(&p->p.rows) ? "memory" : "file");
    return 1;
}


static int
l_post_n_frames(lua_State *L)
{
    post_ud *p = luaL_checkudata(L, 1, POST_MT);

    lua_pushnumber(L, (lua_Number) p->p.n_frames);
    return 1;
}


/* post:get(kind, frame (1-based), bin (1-based)) -> number */
static int
l_post_get(lua_State *L)
{
    post_ud     *p = luaL_checkudata(L, 1, POST_MT);
    int          bins = 0;
    size_t       col = post_columns(L, 2, &bins);
    lua_Integer  f = luaL_checkinteger(L, 3), b = luaL_checkinteger(L, 4);
    float        v;
    char         err[256];

    if (f < 1 || (size_t) f > p->p.n_frames || b < 1 || b > bins) {
        return luaL_argerror(L, 3, "index out of range");
    }
    v = wtt_post_get(&p->p, (size_t) (f - 1), col + (size_t) (b - 1));
    if (wtt_frame_store_check(&p->p.rows, err, sizeof(err)) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    lua_pushnumber(L, v);
    return 1;
}


/* Calls fn(ctx, rows, count) over all rows in chunks read into `buf`
 * (POST_CHUNK rows). Returns 0, or -1 with err. */
#define POST_CHUNK 512

typedef int (*rows_fn)(void *ctx, const float *rows, size_t count);

static int
each_chunk(struct wtt_posteriors *p, float *buf, rows_fn fn, void *ctx,
           char *err, size_t errlen)
{
    for (size_t r = 0; r < p->n_frames; r += POST_CHUNK) {
        size_t k = p->n_frames - r < POST_CHUNK ? p->n_frames - r
                                                 : POST_CHUNK;
        if (wtt_frame_store_read(&p->rows, r, k, buf, err, errlen) != 0) {
            return -1;
        }
        if (fn(ctx, buf, k) != 0) {
            wtt_strerror(errno, err, errlen);
            return -1;
        }
    }
    return 0;
}


typedef struct {
    float  *out;
    size_t  col;
    int     bins;
} gather_ctx;


static int
gather(void *ctx, const float *rows, size_t count)
{
    gather_ctx *g = ctx;

    for (size_t i = 0; i < count; i++) {
        memcpy(g->out, rows + i * WTT_POST_COLS + g->col,
               (size_t) g->bins * sizeof(float));
        g->out += g->bins;
    }
    return 0;
}


/* post:to_string(kind) -> float32 little-endian bytes, frame-major
 * [n_frames x bins] | nil, err */
static int
l_post_to_string(lua_State *L)
{
    post_ud    *p = luaL_checkudata(L, 1, POST_MT);
    gather_ctx  g = { NULL, 0, 0 };
    float      *all, *buf;
    char        err[256];
    int         rc;

    g.col = post_columns(L, 2, &g.bins);
    all = wtt_trymalloc(p->p.n_frames * (size_t) g.bins * sizeof(float) + 1);
    buf = wtt_trymalloc(POST_CHUNK * WTT_POST_COLS * sizeof(float));
    if (all == NULL || buf == NULL) {
        free(all);
        free(buf);
        lua_pushnil(L);
        lua_pushliteral(L, "out of memory");
        return 2;
    }
    g.out = all;
    rc = each_chunk(&p->p, buf, gather, &g, err, sizeof(err));
    free(buf);
    if (rc != 0) {
        free(all);
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    lua_pushlstring(L, (const char *) all,
                    p->p.n_frames * (size_t) g.bins * sizeof(float));
    free(all);
    return 1;
}


/* Reads the mode and rules of the options table at idx into *np (the
 * mode's default parameters, then its rules). Returns 0, or -1 with `err`
 * for an unknown mode or rule. */
static int
note_mode(lua_State *L, int idx, struct wtt_notes_params *np, char *err,
          size_t errlen)
{
    const char *mode = wtt_lua_opt_string(L, idx, "mode", "official", NULL);
    const char *rules = wtt_lua_opt_string(L, idx, "rules", NULL, NULL);
    int         m = wtt_notes_mode_parse(mode);

    if (m < 0) {
        snprintf(err, errlen, "unknown mode '%.40s' (official, guitar or "
                 "bass)", mode);
        return -1;
    }
    *np = wtt_notes_mode_params(m);
    if (rules != NULL) {
        if (m == WTT_NOTES_OFFICIAL) {
            snprintf(err, errlen, "rules need mode guitar or bass");
            return -1;
        }
        return wtt_notes_rules_parse(rules, &np->rules, err, errlen);
    }
    return 0;
}


/*
 * post:notes(opts) -> { {start_s, end_s, pitch, amplitude, onset, start_frame,
 * n_frames, bends = {...}} ... } | nil, err. opts: mode ("official",
 * "guitar", "bass"), rules (comma-separated names; default: the mode's),
 * onset_threshold, frame_threshold, min_note_frames, infer_onsets,
 * min_freq, max_freq, melodia, pitch_bends, numpy_ties (defaults: the
 * mode's). An unknown mode or rule is nil, err.
 */
static int
l_post_notes(lua_State *L)
{
    post_ud                *p = luaL_checkudata(L, 1, POST_MT);
    struct wtt_notes_params np = wtt_notes_default_params();
    struct wtt_note        *notes;
    size_t                  n;
    uint64_t                t0;
    char                    err[256];

    if (lua_istable(L, 2)) {
        if (note_mode(L, 2, &np, err, sizeof(err)) != 0) {
            lua_pushnil(L);
            lua_pushfstring(L, "notes failed: %s", err);
            return 2;
        }
        np.onset_threshold = wtt_lua_opt_number(L, 2, "onset_threshold",
                                                np.onset_threshold, 0, 1);
        np.frame_threshold = wtt_lua_opt_number(L, 2, "frame_threshold",
                                                np.frame_threshold, 0, 1);
        np.min_note_frames = (int) wtt_lua_opt_number(
            L, 2, "min_note_frames", np.min_note_frames, 0, 1e6);
        np.min_freq_hz = wtt_lua_opt_number(L, 2, "min_freq", 0, 0, 1e6);
        np.max_freq_hz = wtt_lua_opt_number(L, 2, "max_freq", 0, 0, 1e6);
        np.infer_onsets = wtt_lua_opt_bool(L, 2, "infer_onsets",
                                           np.infer_onsets);
        np.melodia = wtt_lua_opt_bool(L, 2, "melodia", np.melodia);
        np.pitch_bends = wtt_lua_opt_bool(L, 2, "pitch_bends",
                                          np.pitch_bends);
        np.numpy_ties = wtt_lua_opt_bool(L, 2, "numpy_ties", np.numpy_ties);
    }
    t0 = wtt_prof_on() ? wtt_now_ns() : 0;
    if (wtt_notes_extract(&p->p, &np, &notes, &n, err, sizeof(err)) != 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "notes failed: %s", err);
        return 2;
    }
    if (t0 != 0) {
        wtt_prof_stage_add(WTT_STAGE_NOTES, wtt_now_ns() - t0);
    }
    lua_createtable(L, (int) n, 0);                    /* list */
    for (size_t i = 0; i < n; i++) {
        lua_createtable(L, 0, 8);                      /* list note */
        lua_pushnumber(L, notes[i].start_s);
        lua_setfield(L, -2, "start_s");
        lua_pushnumber(L, notes[i].end_s);
        lua_setfield(L, -2, "end_s");
        lua_pushinteger(L, notes[i].pitch);
        lua_setfield(L, -2, "pitch");
        lua_pushnumber(L, notes[i].amplitude);
        lua_setfield(L, -2, "amplitude");
        lua_pushnumber(L, notes[i].onset);
        lua_setfield(L, -2, "onset");
        lua_pushinteger(L, notes[i].start_frame);
        lua_setfield(L, -2, "start_frame");
        lua_pushinteger(L, notes[i].n_frames);
        lua_setfield(L, -2, "n_frames");
        if (notes[i].bends != NULL) {
            lua_createtable(L, notes[i].n_bends, 0);   /* list note bends */
            for (int b = 0; b < notes[i].n_bends; b++) {
                lua_pushinteger(L, notes[i].bends[b]);
                lua_rawseti(L, -2, b + 1);
            }
            lua_setfield(L, -2, "bends");              /* list note */
            /* An hour holds tens of thousands of notes: do not keep two
             * copies of their bends at the peak. */
            free(notes[i].bends);
            notes[i].bends = NULL;
        }
        lua_rawseti(L, -2, (int) i + 1);               /* list */
    }
    wtt_notes_free(notes, n);
    return 1;
}


/* ---------------------------------------------------------------------------
 * Posteriorgram files: one .npy, float32 little-endian, shape [n, 440]:
 * columns 0-87 note frames, 88-175 onsets, 176-439 contours (docs/engine.md).
 * ------------------------------------------------------------------------- */

static int
write_rows(void *ctx, const float *rows, size_t count)
{
    return wtt_atomic_write(ctx, rows, count * WTT_POST_COLS * sizeof(float));
}


/* Pushes nil, "save failed: <path>: <reason>". Returns 2. */
static int
push_save_err(lua_State *L, const char *path, const char *reason)
{
    lua_pushnil(L);
    lua_pushfstring(L, "save failed: %s: %s", path, reason);
    return 2;
}


/* post:save(path) -> true | nil, err: the .npy appears whole or not at all
 * (wtt_atomic_*: a unique temporary name, fsync'd, renamed). */
static int
l_post_save(lua_State *L)
{
    post_ud               *p = luaL_checkudata(L, 1, POST_MT);
    const char            *path = luaL_checkstring(L, 2);
    struct wtt_atomic_file f;
    char                   head[10 + 128], err[256], reason[128];
    int                    hl;
    float                 *buf;

    hl = snprintf(head + 10, sizeof(head) - 10,
                  "{'descr': '<f4', 'fortran_order': False, 'shape': "
                  "(%zu, %d), }", p->p.n_frames, WTT_POST_COLS);
    /* Pad with spaces so that magic + header is a multiple of 64. */
    while ((10 + hl + 1) % 64 != 0) {
        head[10 + hl++] = ' ';
    }
    head[10 + hl++] = '\n';
    memcpy(head, "\x93NUMPY\x01\x00", 8);
    head[8] = (char) (hl & 0xff);
    head[9] = (char) (hl >> 8);

    buf = wtt_trymalloc(POST_CHUNK * WTT_POST_COLS * sizeof(float));
    if (buf == NULL) {
        return push_save_err(L, path, "out of memory");
    }
    if (wtt_atomic_open(&f, path) != 0
        || wtt_atomic_write(&f, head, (size_t) (10 + hl)) != 0)
    {
        free(buf);
        return push_save_err(L, path,
                             wtt_strerror(errno, reason, sizeof(reason)));
    }
    if (each_chunk(&p->p, buf, write_rows, &f, err, sizeof(err)) != 0) {
        free(buf);
        wtt_atomic_abort(&f);     /* a failed write has already let go */
        return push_save_err(L, path, err);
    }
    free(buf);
    if (wtt_atomic_commit(&f) != 0) {
        return push_save_err(L, path,
                             wtt_strerror(errno, reason, sizeof(reason)));
    }
    lua_pushboolean(L, 1);
    return 1;
}


/* core.load_posteriors(path, opts) -> posteriors | nil, err. The file is
 * read through the row cache, not loaded (an hour's posteriorgrams cost no
 * memory), unless it fits opts.memory_mb (default 0). */
static int
l_load_posteriors(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    char        head[10 + 4096], *shape, err[256];
    size_t      hl, n, cols;
    ssize_t     got;
    struct stat st;
    post_ud    *p;
    int         fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0 || fstat(fd, &st) != 0) {
        char reason[128];
        int  e = errno;
        if (fd >= 0) {
            close(fd);
        }
        lua_pushnil(L);
        lua_pushfstring(L, "load failed: %s: %s", path,
                        wtt_strerror(e, reason, sizeof(reason)));
        return 2;
    }
    got = pread(fd, head, sizeof(head) - 1, 0);
    if (got < 10 || memcmp(head, "\x93NUMPY\x01\x00", 8) != 0) {
        close(fd);
        lua_pushnil(L);
        lua_pushfstring(L, "load failed: %s: not a .npy (v1.0) file", path);
        return 2;
    }
    head[got] = '\0';
    hl = (unsigned char) head[8] | ((size_t) (unsigned char) head[9] << 8);
    if (10 + hl <= (size_t) got) {
        head[10 + hl] = '\0';
    }
    shape = 10 + hl <= (size_t) got ? strstr(head + 10, "'shape': (") : NULL;
    if (shape == NULL || strstr(head + 10, "'<f4'") == NULL
        || strstr(head + 10, "'fortran_order': False") == NULL
        || sscanf(shape, "'shape': (%zu, %zu)", &n, &cols) != 2
        || cols != WTT_POST_COLS || n > (size_t) st.st_size
        || (size_t) st.st_size - 10 - hl != n * cols * 4)
    {
        close(fd);
        lua_pushnil(L);
        lua_pushfstring(L, "load failed: %s: expected float32 [n, %d] "
                        "posteriors", path, WTT_POST_COLS);
        return 2;
    }
    p = new_post(L);
    wtt_frame_store_open(&p->p.rows, fd, (off_t) (10 + hl), n, WTT_POST_COLS);
    if (lua_istable(L, 2)
        && (double) n * WTT_POST_COLS * 4
           <= wtt_lua_opt_number(L, 2, "memory_mb", 0, 0, 1 << 20) * 1048576.0
        && wtt_frame_store_to_memory(&p->p.rows, err, sizeof(err)) != 0)
    {
        lua_pushnil(L);
        lua_pushfstring(L, "load failed: %s: %s", path, err);
        return 2;
    }
    p->p.n_frames = n;
    p->p.n_samples = n * WTT_SAMPLE_RATE / 86;
    return 1;
}


static const luaL_Reg model_methods[] = {
    { "infer",   l_model_infer },
    { "infer_many", l_model_infer_many },
    { "hash",    l_model_hash },
    { "backend", l_model_backend },
    { "close", l_model_close },
    { NULL, NULL },
};

/*
 * core.note_defaults(opts) -> { mode, rules, onset_threshold,
 * frame_threshold, min_note_frames, melodia, infer_onsets } | nil, err.
 * opts: a mode name, or { mode = , rules = }: the mode's defaults, with
 * `rules` parsed (so it checks a mode and a rule list). rules comes back as
 * comma-separated names, "" for official.
 */
static int
l_note_defaults(lua_State *L)
{
    struct wtt_notes_params np;
    char                    err[256], rules[256];

    if (lua_type(L, 1) == LUA_TSTRING) {
        lua_createtable(L, 0, 1);
        lua_pushvalue(L, 1);
        lua_setfield(L, -2, "mode");
        lua_replace(L, 1);
    }
    luaL_checktype(L, 1, LUA_TTABLE);
    if (note_mode(L, 1, &np, err, sizeof(err)) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    wtt_notes_rules_format(np.rules, rules, sizeof(rules));
    lua_createtable(L, 0, 7);
    lua_pushstring(L, wtt_notes_mode_name(np.mode));
    lua_setfield(L, -2, "mode");
    lua_pushstring(L, rules);
    lua_setfield(L, -2, "rules");
    lua_pushnumber(L, np.onset_threshold);
    lua_setfield(L, -2, "onset_threshold");
    lua_pushnumber(L, np.frame_threshold);
    lua_setfield(L, -2, "frame_threshold");
    lua_pushinteger(L, np.min_note_frames);
    lua_setfield(L, -2, "min_note_frames");
    lua_pushboolean(L, np.melodia);
    lua_setfield(L, -2, "melodia");
    lua_pushboolean(L, np.infer_onsets);
    lua_setfield(L, -2, "infer_onsets");
    return 1;
}


static const luaL_Reg post_methods[] = {
    { "n_frames",  l_post_n_frames },
    { "storage",   l_post_storage },
    { "get",       l_post_get },
    { "to_string", l_post_to_string },
    { "notes",     l_post_notes },
    { "save",      l_post_save },
    { "close",     l_post_close },
    { NULL, NULL },
};


int
luaopen_wtt_model(lua_State *L)
{
    static const luaL_Reg model_meta[] = {
        { "__gc", l_model_close }, { NULL, NULL },
    };
    static const luaL_Reg post_meta[] = {
        { "__gc", l_post_close }, { NULL, NULL },
    };

    wtt_lua_class(L, MODEL_MT, model_meta, model_methods);
    wtt_lua_class(L, POST_MT, post_meta, post_methods);
    lua_newtable(L);
    lua_pushcfunction(L, l_load);
    lua_setfield(L, -2, "load");
    lua_pushcfunction(L, l_load_posteriors);
    lua_setfield(L, -2, "load_posteriors");
    lua_pushcfunction(L, l_backends);
    lua_setfield(L, -2, "backends");
    lua_pushcfunction(L, l_devices);
    lua_setfield(L, -2, "devices");
    lua_pushcfunction(L, l_note_defaults);
    lua_setfield(L, -2, "note_defaults");
    lua_pushinteger(L, WTT_SAMPLE_RATE);
    lua_setfield(L, -2, "SAMPLE_RATE");
    return 1;
}
