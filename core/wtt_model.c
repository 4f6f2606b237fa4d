/*
 * wtt_model.c: Lua binding of the inference engine (see wtt_model.h).
 *
 *   local core = require "wtt.core.model"
 *   local m = core.load(dir, { threads = 2 })        -- or nil, err
 *   local post = m:infer(samples_f32le, on_window)   -- or nil, err
 *   post:n_frames(); post:get("frames", i, pitch); post:to_string("onsets")
 */
#include "wtt_model.h"
#include "wtt_luax.h"
#include "wtt_audio.h"
#include "wtt_nn.h"
#include "wtt_notes.h"
#include "wtt_util.h"

#include <errno.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MODEL_MT "wtt.model.model"
#define POST_MT  "wtt.model.posteriors"

typedef struct {
    struct wtt_model *m;
} model_ud;

typedef struct {
    struct wtt_posteriors p;
} post_ud;

typedef struct {
    lua_State *L;
    int        fn;      /* stack index of the callback, 0 when none */
} progress_ctx;


static int
on_progress(void *ctx, size_t done, size_t total)
{
    progress_ctx *p = ctx;
    int           stop;

    if (p->fn == 0) {
        return 0;
    }
    lua_pushvalue(p->L, p->fn);
    lua_pushnumber(p->L, (lua_Number) done);
    lua_pushnumber(p->L, (lua_Number) total);
    lua_call(p->L, 2, 1);          /* errors propagate to the caller */
    stop = lua_isboolean(p->L, -1) && !lua_toboolean(p->L, -1);
    lua_pop(p->L, 1);
    return stop;
}


static model_ud *
check_model(lua_State *L)
{
    return luaL_checkudata(L, 1, MODEL_MT);
}


/* core.load(dir, opts) -> model | nil, err */
static int
l_load(lua_State *L)
{
    struct wtt_model_params p = wtt_model_default_params();
    model_ud               *u;
    char                    err[512];

    p.dir = luaL_checkstring(L, 1);
    if (lua_istable(L, 2)) {
        lua_getfield(L, 2, "threads");
        p.threads = (int) luaL_optinteger(L, -1, 0);
        lua_pop(L, 1);
    }
    u = lua_newuserdata(L, sizeof(*u));
    memset(u, 0, sizeof(*u));
    luaL_getmetatable(L, MODEL_MT);
    lua_setmetatable(L, -2);
    if (wtt_model_load(&p, &u->m, err, sizeof(err)) != 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "model load failed: %s", err);
        return 2;
    }
    return 1;
}


static int
l_model_close(lua_State *L)
{
    model_ud *u = check_model(L);

    wtt_model_free(u->m);
    u->m = NULL;
    return 0;
}


static int
l_model_hash(lua_State *L)
{
    model_ud *u = check_model(L);

    if (u->m == NULL) {
        lua_pushnil(L);
        lua_pushliteral(L, "closed");
        return 2;
    }
    lua_pushstring(L, wtt_model_hash(u->m));
    return 1;
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


/*
 * m:infer(source, opts) -> posteriors | nil, err. source: a file path
 * (decoded and resampled while it streams through the model) or a pcm at
 * 22,050 Hz. opts: on_window(done, total) (return false to cancel),
 * nonfinite = "error" | "zero", max_duration (seconds), full_tail.
 */
static int
l_model_infer(lua_State *L)
{
    model_ud                *u = check_model(L);
    progress_ctx             pc = { L, 0 };
    struct wtt_audio_params  ap = wtt_audio_default_params();
    struct wtt_audio_reader *reader = NULL;
    post_ud                 *pu;
    char                     err[512];
    int                      rc, full_tail = 0;

    if (u->m == NULL) {
        lua_pushnil(L);
        lua_pushliteral(L, "closed");
        return 2;
    }
    if (lua_istable(L, 3)) {
        lua_getfield(L, 3, "on_window");
        if (lua_isfunction(L, -1)) {
            lua_replace(L, 3);          /* keep it at a fixed index */
            pc.fn = 3;
        } else {
            lua_pop(L, 1);
        }
    }
    if (lua_istable(L, 3)) {
        lua_getfield(L, 3, "nonfinite");
        if (lua_isstring(L, -1)
            && strcmp(lua_tostring(L, -1), "zero") == 0)
        {
            ap.nonfinite = WTT_AUDIO_NONFINITE_ZERO;
        }
        lua_getfield(L, 3, "max_duration");
        if (lua_isnumber(L, -1)) {
            ap.max_duration_s = lua_tonumber(L, -1);
        }
        lua_getfield(L, 3, "full_tail");
        full_tail = lua_toboolean(L, -1);
        lua_pop(L, 3);
    }
    pu = lua_newuserdata(L, sizeof(*pu));
    memset(pu, 0, sizeof(*pu));
    luaL_getmetatable(L, POST_MT);
    lua_setmetatable(L, -2);

    if (lua_type(L, 2) == LUA_TSTRING) {
        const struct wtt_audio_info *info;
        if (wtt_audio_open(lua_tostring(L, 2), &ap, &reader, err,
                           sizeof(err)) != 0)
        {
            lua_pushnil(L);
            lua_pushstring(L, err);
            return 2;
        }
        info = wtt_audio_get_info(reader);
        rc = wtt_model_infer(u->m, read_audio, reader,
                             info->duration > 0
                             ? (size_t) (info->duration * WTT_SAMPLE_RATE)
                             : 0,
                             full_tail, on_progress, &pc, &pu->p, err, sizeof(err));
        wtt_audio_close(reader);
    } else {
        struct wtt_pcm *pcm = wtt_pcm_check(L, 2);
        pcm_src         src = { pcm, 0 };
        if (pcm->rate != WTT_SAMPLE_RATE) {
            lua_pushnil(L);
            lua_pushfstring(L, "inference failed: pcm at %d Hz, the model "
                            "needs %d Hz", pcm->rate, WTT_SAMPLE_RATE);
            return 2;
        }
        rc = wtt_model_infer(u->m, read_pcm, &src, pcm->n, full_tail,
                             on_progress, &pc,
                             &pu->p, err, sizeof(err));
    }
    if (rc != 0) {
        lua_pushnil(L);
        lua_pushstring(L, strncmp(err, "decode failed", 13) == 0
                          ? err : "inference failed: ");
        if (strncmp(err, "decode failed", 13) != 0) {
            lua_pushstring(L, err);
            lua_concat(L, 2);
        }
        return 2;
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


/* The array and width of "frames", "onsets" or "contours". */
static const float *
post_array(lua_State *L, post_ud *p, int idx, int *bins)
{
    const char *kind = luaL_checkstring(L, idx);

    if (strcmp(kind, "frames") == 0) {
        *bins = WTT_N_PITCHES;
        return p->p.frames;
    }
    if (strcmp(kind, "onsets") == 0) {
        *bins = WTT_N_PITCHES;
        return p->p.onsets;
    }
    if (strcmp(kind, "contours") == 0) {
        *bins = WTT_N_CONTOUR_BINS;
        return p->p.contours;
    }
    luaL_argerror(L, idx, "expected frames, onsets or contours");
    return NULL;
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
    const float *a = post_array(L, p, 2, &bins);
    lua_Integer  f = luaL_checkinteger(L, 3), b = luaL_checkinteger(L, 4);

    if (f < 1 || (size_t) f > p->p.n_frames || b < 1 || b > bins) {
        return luaL_argerror(L, 3, "index out of range");
    }
    lua_pushnumber(L, a[(size_t) (f - 1) * (size_t) bins + (size_t) (b - 1)]);
    return 1;
}


/* post:to_string(kind) -> float32 little-endian bytes, frame-major */
static int
l_post_to_string(lua_State *L)
{
    post_ud     *p = luaL_checkudata(L, 1, POST_MT);
    int          bins = 0;
    const float *a = post_array(L, p, 2, &bins);

    lua_pushlstring(L, (const char *) a,
                    p->p.n_frames * (size_t) bins * sizeof(float));
    return 1;
}


/*
 * post:notes(opts) -> { {start_s, end_s, pitch, amplitude, start_frame,
 * n_frames, bends = {...}} ... } | nil, err. opts: onset_threshold,
 * frame_threshold, min_note_frames, infer_onsets, min_freq, max_freq,
 * melodia, pitch_bends, numpy_ties.
 */
static int
l_post_notes(lua_State *L)
{
    post_ud                *p = luaL_checkudata(L, 1, POST_MT);
    struct wtt_notes_params np = wtt_notes_default_params();
    struct wtt_note        *notes;
    size_t                  n;
    char                    err[256];

    if (lua_istable(L, 2)) {
        np.onset_threshold = wtt_lua_opt_number(L, 2, "onset_threshold",
                                                np.onset_threshold, 0, 1);
        np.frame_threshold = wtt_lua_opt_number(L, 2, "frame_threshold",
                                                np.frame_threshold, 0, 1);
        np.min_note_frames = (int) wtt_lua_opt_number(
            L, 2, "min_note_frames", np.min_note_frames, 0, 1e6);
        np.min_freq_hz = wtt_lua_opt_number(L, 2, "min_freq", 0, 0, 1e6);
        np.max_freq_hz = wtt_lua_opt_number(L, 2, "max_freq", 0, 0, 1e6);
        np.infer_onsets = wtt_lua_opt_bool(L, 2, "infer_onsets", 1);
        np.melodia = wtt_lua_opt_bool(L, 2, "melodia", 1);
        np.pitch_bends = wtt_lua_opt_bool(L, 2, "pitch_bends", 1);
        np.numpy_ties = wtt_lua_opt_bool(L, 2, "numpy_ties", 0);
    }
    if (wtt_notes_extract(&p->p, &np, &notes, &n, err, sizeof(err)) != 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "notes failed: %s", err);
        return 2;
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

#define NPY_COLS (2 * WTT_N_PITCHES + WTT_N_CONTOUR_BINS)

/* post:save(path) -> true | nil, err (written to a temp name, renamed). */
static int
l_post_save(lua_State *L)
{
    post_ud    *p = luaL_checkudata(L, 1, POST_MT);
    const char *path = luaL_checkstring(L, 2);
    char        head[128], tmp[4096];
    int         hl;
    FILE       *f;
    int         ok;

    hl = snprintf(head, sizeof(head),
                  "{'descr': '<f4', 'fortran_order': False, 'shape': "
                  "(%zu, %d), }", p->p.n_frames, NPY_COLS);
    /* Pad with spaces so that magic + header is a multiple of 64. */
    while ((10 + hl + 1) % 64 != 0) {
        head[hl++] = ' ';
    }
    head[hl++] = '\n';
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    f = fopen(tmp, "wb");
    if (f == NULL) {
        lua_pushnil(L);
        lua_pushfstring(L, "save failed: %s: %s", tmp, strerror(errno));
        return 2;
    }
    ok = fwrite("\x93NUMPY\x01\x00", 1, 8, f) == 8
         && fputc(hl & 0xff, f) != EOF && fputc(hl >> 8, f) != EOF
         && fwrite(head, 1, (size_t) hl, f) == (size_t) hl;
    for (size_t i = 0; ok && i < p->p.n_frames; i++) {
        ok = fwrite(p->p.frames + i * WTT_N_PITCHES, 4, WTT_N_PITCHES, f)
                 == WTT_N_PITCHES
             && fwrite(p->p.onsets + i * WTT_N_PITCHES, 4, WTT_N_PITCHES, f)
                 == WTT_N_PITCHES
             && fwrite(p->p.contours + i * WTT_N_CONTOUR_BINS, 4,
                       WTT_N_CONTOUR_BINS, f) == WTT_N_CONTOUR_BINS;
    }
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        lua_pushnil(L);
        lua_pushfstring(L, "save failed: %s: %s", path, strerror(e));
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}


/* core.load_posteriors(path) -> posteriors | nil, err */
static int
l_load_posteriors(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    size_t      len, hl, n, cols;
    char       *data = wtt_read_file(path, (size_t) 4 << 30, &len);
    const char *shape;
    post_ud    *p;

    if (data == NULL) {
        lua_pushnil(L);
        lua_pushfstring(L, "load failed: %s: %s", path, strerror(errno));
        return 2;
    }
    if (len < 10 || memcmp(data, "\x93NUMPY\x01\x00", 8) != 0) {
        free(data);
        lua_pushnil(L);
        lua_pushfstring(L, "load failed: %s: not a .npy (v1.0) file", path);
        return 2;
    }
    hl = (unsigned char) data[8] | ((size_t) (unsigned char) data[9] << 8);
    shape = 10 + hl <= len ? strstr(data + 10, "'shape': (") : NULL;
    if (shape == NULL || strstr(data + 10, "'<f4'") == NULL
        || strstr(data + 10, "'fortran_order': False") == NULL
        || sscanf(shape, "'shape': (%zu, %zu)", &n, &cols) != 2
        || cols != NPY_COLS || len - 10 - hl != n * cols * 4)
    {
        free(data);
        lua_pushnil(L);
        lua_pushfstring(L, "load failed: %s: expected float32 [n, %d] "
                        "posteriors", path, NPY_COLS);
        return 2;
    }
    p = lua_newuserdata(L, sizeof(*p));
    memset(p, 0, sizeof(*p));
    luaL_getmetatable(L, POST_MT);
    lua_setmetatable(L, -2);
    p->p.frames = wtt_trymalloc(n * WTT_N_PITCHES * 4);
    p->p.onsets = wtt_trymalloc(n * WTT_N_PITCHES * 4);
    p->p.contours = wtt_trymalloc(n * WTT_N_CONTOUR_BINS * 4);
    if (p->p.frames == NULL || p->p.onsets == NULL || p->p.contours == NULL) {
        free(data);
        lua_pushnil(L);
        lua_pushliteral(L, "load failed: out of memory");
        return 2;
    }
    for (size_t i = 0; i < n; i++) {
        const float *row = (const float *) (const void *) (data + 10 + hl)
                           + i * NPY_COLS;
        memcpy(p->p.frames + i * WTT_N_PITCHES, row, WTT_N_PITCHES * 4);
        memcpy(p->p.onsets + i * WTT_N_PITCHES, row + WTT_N_PITCHES,
               WTT_N_PITCHES * 4);
        memcpy(p->p.contours + i * WTT_N_CONTOUR_BINS,
               row + 2 * WTT_N_PITCHES, WTT_N_CONTOUR_BINS * 4);
    }
    p->p.n_frames = n;
    p->p.n_samples = n * WTT_SAMPLE_RATE / 86;
    free(data);
    return 1;
}


static const luaL_Reg model_methods[] = {
    { "infer", l_model_infer },
    { "hash",  l_model_hash },
    { "close", l_model_close },
    { NULL, NULL },
};

static const luaL_Reg post_methods[] = {
    { "n_frames",  l_post_n_frames },
    { "get",       l_post_get },
    { "to_string", l_post_to_string },
    { "notes",     l_post_notes },
    { "save",      l_post_save },
    { "close",     l_post_close },
    { NULL, NULL },
};


static void
new_class(lua_State *L, const char *name, const luaL_Reg *methods,
          lua_CFunction gc)
{
    luaL_newmetatable(L, name);                        /* mt */
    lua_pushcfunction(L, gc);
    lua_setfield(L, -2, "__gc");
    lua_newtable(L);                                   /* mt methods */
    luaL_register(L, NULL, methods);
    lua_setfield(L, -2, "__index");                    /* mt */
    lua_pop(L, 1);
}


int
luaopen_wtt_model(lua_State *L)
{
    new_class(L, MODEL_MT, model_methods, l_model_close);
    new_class(L, POST_MT, post_methods, l_post_close);
    lua_newtable(L);
    lua_pushcfunction(L, l_load);
    lua_setfield(L, -2, "load");
    lua_pushcfunction(L, l_load_posteriors);
    lua_setfield(L, -2, "load_posteriors");
    lua_pushinteger(L, WTT_SAMPLE_RATE);
    lua_setfield(L, -2, "SAMPLE_RATE");
    return 1;
}
