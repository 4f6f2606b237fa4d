/*
 * wtt_tab_grid.c: the `wtt.core.grid` Lua module (see wtt_tab_grid.h)
 * over core/tab/wtt_grid.c.
 *
 * The onsets are read from the rhythm estimate's Lua arrays as the grid
 * asks for them (no copy of the piece), and the document's tables are
 * made as the measures, chord groups and events come out: a first call's
 * time is mostly fresh memory, so the C side keeps only its per-chord and
 * per-beat arrays. Those live in malloc'd scratch owned by userdata whose
 * __gc frees them, so a raise (a wrong type, Lua out of memory while a
 * table is made) leaks nothing; a normal return frees them at once.
 * Setting the notes' fields is much of the rest: their tables, out of
 * cache on a first call, are prefetched a few notes ahead.
 */
#include "wtt_tab_grid.h"
#include "wtt_grid.h"
#include "wtt_luax.h"

#include <lauxlib.h>
#include <math.h>
#include <stdlib.h>

#define AHEAD_NOTE 8         /* notes ahead a note's table is prefetched */
#define NOTE_BYTES 512       /* a note's table and its hash part */


/* The keys the tables are made with, pushed once in this order: a raw
 * set with a key on the stack does not hash the name again. */
enum { K_NUMBER, K_START_TICK, K_TICKS, K_START_S, K_EVENTS, K_TICK,
       K_NOTES, K_REST, K_TIED, K_DURATION, K_MEASURE, K_BEAT, K_PITCH,
       K_PITCH_MIDI, N_KEYS };

static const char *const KEYS[N_KEYS] = {
    "number", "start_tick", "ticks", "start_s", "events", "tick", "notes",
    "rest", "tied", "duration", "measure", "beat", "pitch", "pitch_midi",
};

/* The weights' names in the order of struct wtt_grid_weights. */
static const char *const WEIGHTS[] = {
    "err", "c8", "c16", "t3", "t6", "switch", "collide",
};

/* The callbacks' state: stack slots of the tables they read and fill. */
struct ctx {
    lua_State *L;
    size_t     n_notes;
    int        notes;       /* the notes */
    int        t, first, nxt, ends, strs;   /* the chords' arrays */
    int        keys;        /* KEYS[0] */
    int        measures;    /* the answer */
    int        events;      /* the last measure's events */
    int        group;       /* the last group's notes */
    int        fractions;   /* durations by length */
    int        doc;
    int        n_measures, n_events;
};


/* -------------------------------------------------------------------------
 * Scratch
 * ---------------------------------------------------------------------- */

static int
fail(lua_State *L, const char *err)
{
    lua_pushnil(L);
    lua_pushstring(L, err);                               /* .. nil err */
    return 2;
}


/* -------------------------------------------------------------------------
 * The source: the chords' arrays
 * ---------------------------------------------------------------------- */

/* Entry i of the array at `idx`, a number; raises otherwise. */
static double
entry(lua_State *L, int idx, size_t i, const char *what)
{
    int    ok;
    double v;

    lua_rawgeti(L, idx, (int) i);                         /* .. v */
    v = lua_tonumberx(L, -1, &ok);
    if (!ok) {
        luaL_error(L, "grid: chords.%s[%d] must be a number", what, (int) i);
    }
    lua_pop(L, 1);                                        /* .. */
    return v;
}


/* A note number: an integer in [lo, n_notes]; raises otherwise. */
static size_t
note_entry(struct ctx *x, int idx, size_t i, size_t lo, const char *what)
{
    double v = entry(x->L, idx, i, what);

    if (!(v >= (double) lo && v <= (double) x->n_notes) || v != floor(v)) {
        luaL_error(x->L, "grid: chords.%s[%d] is not a note", what, (int) i);
    }
    return (size_t) v;
}


static double
src_onset(void *ctx, size_t c)
{
    struct ctx *x = ctx;

    return entry(x->L, x->t, c + 1, "t");
}


static size_t
src_first(void *ctx, size_t c)
{
    return note_entry(ctx, ((struct ctx *) ctx)->first, c + 1, 1, "first");
}


static size_t
src_next(void *ctx, size_t note)
{
    return note_entry(ctx, ((struct ctx *) ctx)->nxt, note, 0, "nxt");
}


static double
src_end(void *ctx, size_t note)
{
    struct ctx *x = ctx;

    return entry(x->L, x->ends, note, "end_s");
}


/* A note's string: 0 for none (false or nil), else 1..64. */
static int
src_string(void *ctx, size_t note)
{
    struct ctx *x = ctx;
    lua_State  *L = x->L;
    double      v;

    lua_rawgeti(L, x->strs, (int) note);                  /* .. s */
    if (!lua_toboolean(L, -1)) {
        lua_pop(L, 1);
        return 0;
    }
    v = lua_tonumber(L, -1);
    if (lua_type(L, -1) != LUA_TNUMBER || !(v >= 1)
        || v > WTT_GRID_MAX_STRING || v != floor(v))
    {
        luaL_error(L, "grid: note %d: string must be an integer in 1-%d",
                   (int) note, WTT_GRID_MAX_STRING);
    }
    lua_pop(L, 1);                                        /* .. */
    return (int) v;
}


/* -------------------------------------------------------------------------
 * The sink: the document's tables
 * ---------------------------------------------------------------------- */

/* Pushes KEYS[key]: a raw set with the key on the stack does not hash
 * the name again. Stack: after [.. k]. */
static void
push_key(struct ctx *x, int key)
{
    lua_pushvalue(x->L, x->keys + key);
}


/* Sets number field KEYS[key] of the table at the top. */
static void
set_number(struct ctx *x, int key, double v)
{
    push_key(x, key);
    lua_pushnumber(x->L, v);                              /* .. t k v */
    lua_rawset(x->L, -3);                                 /* .. t */
}


/* Sets field KEYS[key] of the table at the top to true. */
static void
set_true(struct ctx *x, int key)
{
    push_key(x, key);
    lua_pushboolean(x->L, 1);                             /* .. t k v */
    lua_rawset(x->L, -3);                                 /* .. t */
}


static int
sink_measure(void *ctx, const struct wtt_grid_measure *m)
{
    struct ctx *x = ctx;
    lua_State  *L = x->L;

    /* Fields in the order (and so the layout) the Lua code made them. */
    lua_createtable(L, 0, 5);                             /* .. m */
    set_number(x, K_NUMBER, m->number);
    set_number(x, K_START_TICK, m->start_tick);
    set_number(x, K_TICKS, m->ticks);
    set_number(x, K_START_S, m->start_s);
    push_key(x, K_EVENTS);
    /* sized for its chords, a rest and a tie or two */
    lua_createtable(L, m->onsets < 64 ? (int) m->onsets + 3 : 64, 0);
                                                          /* .. m k ev */
    lua_pushvalue(L, -1);
    lua_replace(L, x->events);
    lua_rawset(L, -3);                                    /* .. m */
    lua_rawseti(L, x->measures, ++x->n_measures);         /* .. */
    x->n_events = 0;
    return 0;
}


/* Pushes the duration of `ticks` as a reduced fraction of a whole note
 * ("3/16"), made once per length. */
static void
push_fraction(struct ctx *x, double ticks)
{
    lua_State *L = x->L;
    int        t = (int) ticks, a = t, b = WTT_GRID_WHOLE;

    lua_rawgeti(L, x->fractions, t);                      /* .. f? */
    if (!lua_isnil(L, -1)) {
        return;
    }
    lua_pop(L, 1);
    while (b != 0) {
        int r = a % b;
        a = b;
        b = r;
    }
    lua_pushfstring(L, "%d/%d", t / a, WTT_GRID_WHOLE / a);   /* .. f */
    lua_pushvalue(L, -1);
    lua_rawseti(L, x->fractions, t);
}


/* Hints the cache to fetch note i + AHEAD_NOTE's table: groups come in
 * about the notes' order. lua_topointer gives a table's header, and its
 * hash part is usually allocated right after it. Stack unchanged. */
static void
prefetch_note(struct ctx *x, size_t i)
{
    const char *p;

    if (i + AHEAD_NOTE > x->n_notes) {
        return;
    }
    lua_rawgeti(x->L, x->notes, (int) (i + AHEAD_NOTE));  /* .. note */
    p = lua_topointer(x->L, -1);
    for (int o = 0; p != NULL && o < NOTE_BYTES; o += 64) {
        __builtin_prefetch(p + o, 1);
    }
    lua_pop(x->L, 1);                                     /* .. */
}


static int
sink_group(void *ctx, const size_t *notes, size_t n,
           const struct wtt_grid_place *p)
{
    struct ctx *x = ctx;
    lua_State  *L = x->L;

    lua_createtable(L, (int) n, 0);                       /* .. g */
    lua_replace(L, x->group);
    push_fraction(x, p->ticks);                           /* .. f */
    for (size_t j = 0; j < n; j++) {
        lua_pushnumber(L, (lua_Number) notes[j]);
        lua_rawseti(L, x->group, (int) j + 1);
        prefetch_note(x, notes[j]);
        lua_rawgeti(L, x->notes, (int) notes[j]);         /* .. f note */
        if (!lua_istable(L, -1)) {
            luaL_error(L, "grid: note %d must be a table", (int) notes[j]);
        }
        set_number(x, K_TICK, p->tick);
        set_number(x, K_TICKS, p->ticks);
        push_key(x, K_DURATION);
        lua_pushvalue(L, -3);                             /* .. f note k f */
        lua_rawset(L, -3);
        set_number(x, K_MEASURE, p->measure);
        set_number(x, K_BEAT, p->beat);
        if (x->doc) {
            push_key(x, K_PITCH_MIDI);
            push_key(x, K_PITCH);
            lua_rawget(L, -3);                        /* .. f note k p */
            lua_rawset(L, -3);
        }
        lua_pop(L, 1);                                    /* .. f */
    }
    lua_pop(L, 1);                                        /* .. */
    return 0;
}


static int
sink_event(void *ctx, double tick, double ticks, int rest, int tied)
{
    struct ctx *x = ctx;
    lua_State  *L = x->L;

    lua_createtable(L, 0, rest ? 3 : 4);                  /* .. e */
    set_number(x, K_TICK, tick);
    set_number(x, K_TICKS, ticks);
    if (rest) {
        set_true(x, K_REST);
    } else {
        push_key(x, K_NOTES);
        lua_pushvalue(L, x->group);                       /* .. e k g */
        lua_rawset(L, -3);
        if (tied) {
            set_true(x, K_TIED);
        }
    }
    lua_rawseti(L, x->events, ++x->n_events);             /* .. */
    return 0;
}


/* -------------------------------------------------------------------------
 * grid.build
 * ---------------------------------------------------------------------- */

/* Number field `name` of the table at `idx`: `def` when nil or false, NaN
 * when another type (the grid then refuses it by name). */
static double
field(lua_State *L, int idx, const char *name, double def)
{
    double v;

    lua_getfield(L, idx, name);                           /* .. v */
    if (!lua_toboolean(L, -1)) {
        v = def;
    } else if (lua_type(L, -1) == LUA_TNUMBER) {
        v = lua_tonumber(L, -1);
    } else {
        v = NAN;
    }
    lua_pop(L, 1);                                        /* .. */
    return v;
}


/* The costs: the defaults, overridden by the table at `idx` (0: none). */
static void
read_weights(lua_State *L, int idx, struct wtt_grid_weights *w)
{
    double *v = &w->err;

    wtt_grid_default_weights(w);
    if (idx == 0) {
        return;
    }
    /* (the struct is seven doubles in WEIGHTS' order) */
    for (size_t k = 0; k < sizeof(WEIGHTS) / sizeof(WEIGHTS[0]); k++) {
        v[k] = wtt_lua_opt_number(L, idx, WEIGHTS[k], v[k], -HUGE_VAL,
                                  HUGE_VAL);
    }
}


/* The chords' array `name` of the table at 3, pushed; raises unless it
 * is a table. */
static int
push_array(lua_State *L, const char *name)
{
    lua_getfield(L, 3, name);                             /* .. a */
    if (!lua_istable(L, -1)) {
        luaL_error(L, "grid: chords.%s must be a table", name);
    }
    return lua_gettop(L);
}


/*
 * grid.build(notes, r, ch, weights, doc) -> measures | nil, err. Stack:
 * before [notes r ch weights doc], after [.. keys.. arrays.. scratch
 * slots.. measures] or [.. nil err].
 */
static int
l_build(lua_State *L)
{
    struct wtt_grid_weights w;
    struct wtt_grid_meter   m;
    struct wtt_grid_source  src;
    struct wtt_grid_sink    sink;
    struct wtt_grid_work    work;
    struct wtt_grid         g;
    struct ctx              x;
    void                   *m1, *m2;
    int                     s1, s2;
    const char             *err;
    double                 *beats, nc_v, guess;
    size_t                  nb, nc;
    int                     beats_at;
    char                   *at;

    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 3, LUA_TTABLE);
    lua_settop(L, 5);
    read_weights(L, wtt_lua_opt_table(L, 4), &w);
    if (!lua_istable(L, 2)) {
        return fail(L, "rhythm estimate missing");
    }
    lua_getfield(L, 2, "beats");                          /* .. beats */
    if (!lua_istable(L, -1)) {
        return fail(L, "rhythm estimate missing");
    }
    beats_at = lua_gettop(L);
    nb = lua_objlen(L, beats_at);
    m.beats_per_measure = field(L, 2, "beats_per_measure", NAN);
    m.beat_type = field(L, 2, "beat_type", NAN);
    m.pickup = field(L, 2, "pickup_beats", 0);
    m.first_downbeat = field(L, 2, "first_downbeat", ceil(m.pickup) + 1);
    m.tempo_bpm = field(L, 2, "tempo_bpm", NAN);

    lua_getfield(L, 3, "n");                              /* .. n */
    nc_v = lua_tonumber(L, -1);
    lua_pop(L, 1);
    x.n_notes = lua_objlen(L, 1);
    if (!(nc_v >= 0 && nc_v <= (double) x.n_notes) || nc_v != floor(nc_v)
        || x.n_notes > WTT_GRID_MAX_BEATS)
    {
        return luaL_error(L, "grid: chords.n must count the notes' chords");
    }
    nc = (size_t) nc_v;

    /* The beats and the per-chord arrays: doubles first, aligned. */
    m1 = wtt_lua_scratch(L, (nb > 0 ? nb : 1) * sizeof(double)
                            + nc * (2 * sizeof(double) + sizeof(int32_t)), 0);
    s1 = lua_gettop(L);
    if (m1 == NULL) {                                  /* .. beats s1 */
        return fail(L, "out of memory");
    }
    beats = m1;
    for (size_t k = 0; k < nb; k++) {
        beats[k] = entry(L, beats_at, k + 1, "beats");
    }
    if (nb == 0) {
        beats[0] = 0;
        nb = 1;
    }
    m.beats = beats;
    m.nb = nb;
    if (wtt_grid_init(&g, &m, &w, &err) != 0) {
        return fail(L, err);
    }
    work.fr = beats + nb;
    work.pos = work.fr + nc;
    work.bi = (int32_t *) (work.pos + nc);

    x.L = L;
    x.notes = 1;
    x.doc = lua_toboolean(L, 5);
    x.t = push_array(L, "t");
    x.first = push_array(L, "first");
    x.nxt = push_array(L, "nxt");
    x.ends = push_array(L, "end_s");
    x.strs = push_array(L, "string");                     /* .. arrays */
    src.ctx = &x;
    src.n_chords = nc;
    src.n_notes = x.n_notes;
    src.onset = src_onset;
    src.first = src_first;
    src.next = src_next;
    src.end_s = src_end;
    src.string = src_string;

    if (wtt_grid_onsets(&g, &src, &work, &err) != 0) {
        return fail(L, err);
    }
    /* Per beat its type and back pointers; the largest group's notes. */
    m2 = wtt_lua_scratch(L, x.n_notes * sizeof(size_t)
                            + work.nbeats * 4, 0);        /* .. s2 */
    s2 = lua_gettop(L);
    if (m2 == NULL) {
        return fail(L, "out of memory");
    }
    work.notes = m2;
    work.n_cap = x.n_notes;
    at = (char *) (work.notes + x.n_notes);
    work.types = (uint8_t *) at;
    work.back = work.types + work.nbeats;
    wtt_grid_place(&g, &src, &work);

    x.keys = lua_gettop(L) + 1;
    for (int k = 0; k < N_KEYS; k++) {
        lua_pushstring(L, KEYS[k]);                       /* .. keys */
    }
    lua_pushnil(L);
    x.events = lua_gettop(L);
    lua_pushnil(L);
    x.group = lua_gettop(L);
    lua_newtable(L);
    x.fractions = lua_gettop(L);                          /* .. slots */
    /* Sized for the measures the chords reach (and a last of rests). */
    guess = nc > 0 ? (work.pos[nc - 1] - g.u0) / g.mticks + 2 : 1;
    lua_createtable(L, guess > 0 && guess < 1 << 20 ? (int) guess : 0, 0);
    x.measures = lua_gettop(L);                           /* .. measures */
    x.n_measures = 0;
    sink.ctx = &x;
    sink.measure = sink_measure;
    sink.group = sink_group;
    sink.event = sink_event;
    if (wtt_grid_write(&g, &src, &sink, &work, &err) != 0) {
        return fail(L, err);
    }
    wtt_lua_scratch_release(L, s1);
    wtt_lua_scratch_release(L, s2);
    return 1;
}


static const luaL_Reg grid_funcs[] = {
    { "build", l_build },
    { NULL, NULL },
};


int
luaopen_wtt_tab_grid(lua_State *L)
{
    lua_newtable(L);                                      /* grid */
    luaL_register(L, NULL, grid_funcs);
    return 1;
}
