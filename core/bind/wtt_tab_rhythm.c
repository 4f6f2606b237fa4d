/*
 * wtt_tab_rhythm.c: the `wtt.core.rhythm` Lua module (see
 * wtt_tab_rhythm.h) over core/tab/wtt_rhythm.c.
 *
 * Scratch memory is calloc'd and owned by a small "scratch" userdata on
 * the stack whose __gc frees it, so a raise (a wrong type, or Lua out of
 * memory while filling a result) leaks nothing. Large memory stays out of
 * the Lua heap, where it would only make the collector run sooner; the
 * onsets keep theirs the same way. Notes are read field by field as the
 * onsets are grouped, with no copy of the piece.
 */
#include "wtt_tab_rhythm.h"
#include "wtt_rhythm.h"
#include "wtt_luax.h"

#include <lauxlib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define ONSETS_MT   "wtt.core.rhythm.onsets"
#define ENVELOPE_MT "wtt.core.rhythm.envelope"

/* Onsets: the grouping's arrays, kept where they were made (calloc'd,
 * sized for a chord a note, touched only as far as used); __gc frees
 * them. */
struct onsets {
    struct wtt_rhythm_chords ch;
    void                    *mem;
};

/* The envelope, its frames after the header. */
struct envelope {
    struct wtt_rhythm_span sp;
    double                 first_t;   /* the first onset (s) */
    double                *v;
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
 * Reading arguments
 * ---------------------------------------------------------------------- */

/* The packed doubles at `idx` (a string, as beats and accents return
 * them) copied into fresh scratch (pushed: a string need not be aligned
 * for doubles), `*n` their count; NULL when out of memory. Raises for a
 * string that is not whole doubles. Stack: before [...], after
 * [... scratch]. */
static double *
unpack(lua_State *L, int idx, const char *what, size_t *n)
{
    size_t      len;
    const char *s = luaL_checklstring(L, idx, &len);
    double     *v;

    if (len % sizeof(double) != 0) {
        luaL_argerror(L, idx, what);
    }
    *n = len / sizeof(double);
    v = wtt_lua_scratch(L, len, 1);
    if (v != NULL) {
        memcpy(v, s, len);
    }
    return v;
}


/* Pushes { v[0], ..., v[n-1] }. Stack: before [...], after [... t]. */
static void
push_numbers(lua_State *L, const double *v, size_t n)
{
    lua_createtable(L, (int) n, 0);                       /* .. t */
    for (size_t i = 0; i < n; i++) {
        lua_pushnumber(L, v[i]);
        lua_rawseti(L, -2, (int) i + 1);
    }
}


static struct wtt_rhythm_chords *
check_onsets(lua_State *L, int idx)
{
    struct onsets *o = luaL_checkudata(L, idx, ONSETS_MT);

    if (o->ch.n == 0) {
        luaL_argerror(L, idx, "no onsets");
    }
    return &o->ch;
}


/* -------------------------------------------------------------------------
 * Onsets
 * ---------------------------------------------------------------------- */

/* The fields of a note read for the onsets, pushed in this order above
 * the note (velocity only when there is no amplitude). */
enum { K_START, K_END, K_PITCH, K_CHORD, K_AMP, K_ONSET, K_STRING, N_READ,
       K_VEL = N_READ, N_KEYS };

static const char *const KEYS[N_KEYS] = {
    "start_s", "end_s", "pitch", "chord", "amplitude", "onset", "string",
    "velocity",
};


/* The number at `idx` when it is truthy (*has = 1); raises when it is
 * truthy and not a number. Stack unchanged. */
static double
opt_number(lua_State *L, int idx, int *has, int i, const char *name)
{
    double v = lua_tonumberx(L, idx, has);

    if (!*has && lua_toboolean(L, idx)) {
        luaL_error(L, "rhythm: note %d: %s must be a number", i, name);
    }
    return v;
}


/* The key of the chord id at `idx`: 0 for nil; an integer id in 1..n is
 * its own key; any other id gets the next key from n + 1 on, recorded in
 * the table at `ids`. Stack unchanged. */
static uint32_t
chord_key(lua_State *L, int idx, int ids, size_t n, size_t *n_other)
{
    uint32_t key;

    if (lua_type(L, idx) == LUA_TNUMBER) {
        double v = lua_tonumber(L, idx);
        if (v >= 1 && v <= (double) n && v == floor(v)) {
            return (uint32_t) v;
        }
        if (v != v) {
            luaL_error(L, "rhythm: a chord id is NaN");
        }
    } else if (lua_isnil(L, idx)) {
        return 0;
    }
    lua_pushvalue(L, idx);                                /* .. id */
    lua_rawget(L, ids);                                   /* .. key? */
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);                                    /* .. */
        key = (uint32_t) (n + ++*n_other);
        lua_pushvalue(L, idx);
        lua_pushnumber(L, key);                           /* .. id key */
        lua_rawset(L, ids);                               /* .. */
        return key;
    }
    key = (uint32_t) lua_tonumber(L, -1);
    lua_pop(L, 1);                                        /* .. */
    return key;
}


/* The note's accent (docs/tab.md, "Rhythm": onsets) from its fields at
 * `f` (the note below them): its amplitude, or velocity / 127, or 1,
 * times 0.5 + 0.5 x onset where the onset is known (a note with no pluck
 * is less of an accent). Stack unchanged. */
static double
strength(lua_State *L, int f, int keys, int i)
{
    double s, v;
    int    has;

    s = opt_number(L, f + K_AMP, &has, i, "amplitude");
    if (!has) {
        lua_pushvalue(L, keys + K_VEL);
        lua_rawget(L, f - 1);                             /* .. vel */
        v = opt_number(L, -1, &has, i, "velocity");
        lua_pop(L, 1);
        s = has ? v / 127 : 1;
    }
    v = opt_number(L, f + K_ONSET, &has, i, "onset");
    if (has) {
        s = s * (0.5 + 0.5 * v);
    }
    return s;
}


static int
onsets_gc(lua_State *L)
{
    struct onsets *o = luaL_checkudata(L, 1, ONSETS_MT);

    free(o->mem);
    o->mem = NULL;
    o->ch.n = 0;
    return 0;
}


/* Pushes onsets with room for n chords (all arrays NULL when out of
 * memory). Stack: before [...], after [... on]. */
static struct onsets *
onsets_new(lua_State *L, size_t n)
{
    struct onsets *o = lua_newuserdata(L, sizeof(*o));    /* .. on */
    char          *mem;

    memset(o, 0, sizeof(*o));
    luaL_getmetatable(L, ONSETS_MT);
    lua_setmetatable(L, -2);
    /* Per chord (at most one a note): t, w, low; pcs, size, first, and
     * the grouping's last; per key (2n at most: see chord_key) its
     * chord. */
    mem = calloc(n * (3 * sizeof(double) + 4 * sizeof(uint32_t))
                 + (2 * n + 1) * sizeof(uint32_t), 1);
    if (mem == NULL) {
        return o;
    }
    o->mem = mem;
    o->ch.t = (double *) mem;
    o->ch.w = o->ch.t + n;
    o->ch.low = o->ch.w + n;
    o->ch.pcs = (uint32_t *) (o->ch.low + n);
    o->ch.size = (int *) (o->ch.pcs + n);
    o->ch.first = (uint32_t *) (o->ch.size + n);
    return o;
}


/* Pushes an onset array as a table. Stack: after [... t]. */
#define PUSH_ARRAY(L, arr, n, add)                                      \
    do {                                                                \
        lua_createtable((L), (int) (n), 0);                             \
        for (size_t i_ = 0; i_ < (n); i_++) {                           \
            lua_pushnumber((L), (lua_Number) (arr)[i_] + (add));        \
            lua_rawseti((L), -2, (int) i_ + 1);                         \
        }                                                               \
    } while (0)


/*
 * Reads note i (1-based, at the top) into the grouping and the per-note
 * tables; raises on a wrong type. Returns its end. Stack: before
 * [.. note], after [.. note fields..].
 */
static double
read_note(lua_State *L, int i, int keys, int ids, size_t n,
          size_t *n_other, struct wtt_rhythm_grouping *g, int nxt,
          int ends, int strs)
{
    int    note = lua_gettop(L), f = note + 1, ok[3];
    double start, e, p, st;
    size_t prev;

    if (!lua_istable(L, note)) {
        luaL_error(L, "rhythm: note %d must be a table", i);
    }
    for (int k = 0; k < N_READ; k++) {
        lua_pushvalue(L, keys + k);
        lua_rawget(L, note);                              /* .. note v.. */
    }
    start = lua_tonumberx(L, f + K_START, &ok[0]);
    e = lua_tonumberx(L, f + K_END, &ok[1]);
    p = lua_tonumberx(L, f + K_PITCH, &ok[2]);
    if (!ok[0] || !ok[1] || !ok[2] || !isfinite(start) || !isfinite(e)
        || p != floor(p) || fabs(p) > 1e6)
    {
        luaL_error(L, "rhythm: note %d needs finite start_s and end_s and "
                   "an integer pitch", i);
    }
    st = strength(L, f, keys, i);
    prev = wtt_rhythm_group_add(g, start, st, (int) p,
                                chord_key(L, f + K_CHORD, ids, n, n_other));
    lua_pushnumber(L, 0);
    lua_rawseti(L, nxt, i);
    if (prev > 0) {
        lua_pushnumber(L, i);
        lua_rawseti(L, nxt, (int) prev);
    }
    if (!lua_toboolean(L, -1)) {                          /* the string */
        lua_pop(L, 1);
        lua_pushboolean(L, 0);
    }
    lua_rawseti(L, strs, i);
    lua_pushnumber(L, e);
    lua_rawseti(L, ends, i);
    return e > start ? e : start;
}


/*
 * rhythm.chords(notes) -> ch, onsets, last_end | nil, err. Stack: before
 * [notes], after [notes keys.. ids nxt ends strings on ch on last_end].
 */
static int
l_chords(lua_State *L)
{
    struct wtt_rhythm_grouping g;
    struct onsets             *o;
    size_t                     n, n_other = 0;
    int                        keys, ids, nxt, ends, strs, on, cht, top;
    double                     last_end = 0;
    uint32_t                  *last;
    const char                *err;

    luaL_checktype(L, 1, LUA_TTABLE);
    n = lua_objlen(L, 1);
    if (n > WTT_RHYTHM_MAX_NOTES) {
        return fail(L, "too many notes");
    }
    keys = lua_gettop(L) + 1;
    for (int k = 0; k < N_KEYS; k++) {
        lua_pushstring(L, KEYS[k]);                       /* .. keys.. */
    }
    lua_newtable(L);                                      /* .. ids */
    ids = lua_gettop(L);
    for (int k = 0; k < 3; k++) {
        lua_createtable(L, (int) n, 0);         /* .. nxt ends strings */
    }
    nxt = ids + 1;
    ends = ids + 2;
    strs = ids + 3;

    o = onsets_new(L, n);                                 /* .. on */
    on = lua_gettop(L);
    if (o->mem == NULL) {
        return fail(L, "out of memory");
    }
    last = o->ch.first + n;
    wtt_rhythm_group_init(&g, &o->ch, last + n, 2 * n, last);

    top = lua_gettop(L);
    for (size_t i = 0; i < n; i++) {
        double e;
        lua_rawgeti(L, 1, (int) i + 1);                   /* .. note */
        e = read_note(L, (int) i + 1, keys, ids, n, &n_other, &g, nxt,
                      ends, strs);
        last_end = last_end > e ? last_end : e;
        lua_settop(L, top);                               /* .. */
    }
    if (wtt_rhythm_group_finish(&g, &err) != 0) {
        return fail(L, err);
    }

    /* The grid reads these; weights, pitches and pitch classes stay in
     * C for the calls below. */
    lua_createtable(L, 0, 7);                             /* .. ch */
    cht = lua_gettop(L);
    lua_pushnumber(L, (lua_Number) o->ch.n);
    lua_setfield(L, cht, "n");
    PUSH_ARRAY(L, o->ch.t, o->ch.n, 0);
    lua_setfield(L, cht, "t");
    PUSH_ARRAY(L, o->ch.size, o->ch.n, 0);
    lua_setfield(L, cht, "size");
    PUSH_ARRAY(L, o->ch.first, o->ch.n, 1);
    lua_setfield(L, cht, "first");
    lua_pushvalue(L, nxt);
    lua_setfield(L, cht, "nxt");
    lua_pushvalue(L, ends);
    lua_setfield(L, cht, "end_s");
    lua_pushvalue(L, strs);
    lua_setfield(L, cht, "string");
    lua_pushvalue(L, on);                                 /* .. ch on */
    lua_pushnumber(L, last_end);                          /* .. ch on e */
    return 3;
}


/* -------------------------------------------------------------------------
 * Tempo and beats
 * ---------------------------------------------------------------------- */

/*
 * rhythm.envelope(on) -> env | nil, err. Stack: before [on], after
 * [on env] or [on nil err].
 */
static int
l_envelope(lua_State *L)
{
    const struct wtt_rhythm_chords *ch = check_onsets(L, 1);
    struct wtt_rhythm_span          sp;
    struct envelope                *e;
    const char                     *err;

    if (wtt_rhythm_span_of(ch, &sp, &err) != 0) {
        return fail(L, err);
    }
    e = lua_newuserdata(L, sizeof(*e) + sp.nf * sizeof(double)); /* .. e */
    e->sp = sp;
    e->first_t = ch->t[0];
    e->v = (double *) (e + 1);
    luaL_getmetatable(L, ENVELOPE_MT);
    lua_setmetatable(L, -2);
    wtt_rhythm_envelope(ch, sp.origin, e->v, sp.nf);
    return 1;
}


/*
 * rhythm.period(on, env) -> frames | false | nil, err. Stack: before
 * [on env], after [on env p] or [on env nil err].
 */
static int
l_period(lua_State *L)
{
    const struct wtt_rhythm_chords *ch = check_onsets(L, 1);
    struct envelope                *e = luaL_checkudata(L, 2, ENVELOPE_MT);
    const char                     *err;
    double                          period;
    int                             rc;

    rc = wtt_rhythm_period(ch, e->v, &e->sp, &period, &err);
    if (rc < 0) {
        return fail(L, err);
    }
    if (rc == 0) {
        lua_pushboolean(L, 0);
    } else {
        lua_pushnumber(L, period);
    }
    return 1;
}


/*
 * rhythm.beats(env, period, last_end) -> { beats }, packed | nil, err: the
 * beats tracked at `period` frames, moved onto the onsets, covering the
 * notes, as a table and as packed doubles (what the calls below read: a
 * string is copied at once, a table element by element). Stack: before
 * [env period last_end], after [.. sc beats packed] or [.. sc nil err].
 */
static int
l_beats(lua_State *L)
{
    struct envelope *e = luaL_checkudata(L, 1, ENVELOPE_MT);
    double           period = luaL_checknumber(L, 2);
    double           last_end = luaL_checknumber(L, 3);
    size_t           nf = e->sp.nf, nb, cap, n;
    int32_t         *frames;
    double          *fine, *beats;
    const char      *err;

    nb = wtt_rhythm_track_max(nf, period);
    if (nb == 0) {
        return fail(L, "beat period out of range");
    }
    cap = nb + WTT_RHYTHM_MAX_LEAD + 64;
    /* Doubles first: the frames' int32s would misalign them. */
    fine = wtt_lua_scratch(L, nb * (sizeof(double) + sizeof(int32_t))
                              + cap * sizeof(double), 1); /* .. sc */
    if (fine == NULL) {
        return fail(L, "out of memory");
    }
    beats = fine + nb;
    frames = (int32_t *) (beats + cap);
    if (wtt_rhythm_track(e->v, nf, period, frames, &nb, &err) != 0) {
        return fail(L, err);
    }
    wtt_rhythm_refine(e->v, nf, frames, nb, fine);
    if (wtt_rhythm_cover(fine, nb, e->sp.origin, period / WTT_RHYTHM_FPS,
                         e->first_t, last_end, beats, cap, &n, &err) != 0)
    {
        return fail(L, err);
    }
    if (n > cap) {
        /* A note lasting far past the last onset: the beats go on. */
        beats = wtt_lua_scratch(L, n * sizeof(double), 1);       /* .. sc sc2 */
        if (beats == NULL) {
            return fail(L, "out of memory");
        }
        cap = n;
        wtt_rhythm_cover(fine, nb, e->sp.origin, period / WTT_RHYTHM_FPS,
                         e->first_t, last_end, beats, cap, &n, &err);
    }
    push_numbers(L, beats, n);                            /* .. beats */
    lua_pushlstring(L, (const char *) beats, n * sizeof(double));
    return 2;                                             /* .. b packed */
}


/*
 * rhythm.fitted_period(on, packed, period_s) -> s | nil | nil, err.
 * Stack: before [on packed p], after [.. sc slope] or [.. sc nil err].
 */
static int
l_fitted_period(lua_State *L)
{
    const struct wtt_rhythm_chords *ch = check_onsets(L, 1);
    double                          period_s = luaL_checknumber(L, 3);
    double                         *beats, slope;
    size_t                          n;
    const char                     *err;
    int                             rc;

    beats = unpack(L, 2, "packed beats expected", &n);    /* .. sc */
    if (beats == NULL) {
        return fail(L, "out of memory");
    }
    rc = wtt_rhythm_fitted_period(beats, n, ch, period_s, &slope, &err);
    if (rc < 0) {
        return fail(L, err);
    }
    if (rc == 0) {
        lua_pushnil(L);
    } else {
        lua_pushnumber(L, slope);
    }
    return 1;
}


/*
 * rhythm.accents(on, packed, period_s) -> acc, n | nil, err. Stack:
 * before [on packed p], after [.. sc sc acc n] or [.. sc sc nil err].
 */
static int
l_accents(lua_State *L)
{
    const struct wtt_rhythm_chords *ch = check_onsets(L, 1);
    double                          period_s = luaL_checknumber(L, 3);
    double                         *beats, *acc;
    size_t                          n, n_acc;
    const char                     *err;

    beats = unpack(L, 2, "packed beats expected", &n);    /* .. sc */
    acc = wtt_lua_scratch(L, n * sizeof(double), 1);             /* .. sc sc2 */
    if (beats == NULL || acc == NULL) {
        return fail(L, "out of memory");
    }
    if (wtt_rhythm_accents(beats, n, ch, period_s, acc, &n_acc, &err) != 0)
    {
        return fail(L, err);
    }
    lua_pushlstring(L, (const char *) acc, n_acc * sizeof(double));
    lua_pushnumber(L, (lua_Number) n_acc);                /* .. acc n */
    return 2;
}


/*
 * rhythm.contrasts(acc, m) -> c0, ..., c(m-1). Stack: before [acc m],
 * after [acc m sc c0 ...].
 */
static int
l_contrasts(lua_State *L)
{
    lua_Integer m = luaL_checkinteger(L, 2);
    double      out[32], *v;
    size_t      n;

    if (m < 1 || m > 32) {
        return luaL_argerror(L, 2, "a meter of 1 to 32 beats expected");
    }
    v = unpack(L, 1, "packed accents expected", &n);      /* .. sc */
    if (v == NULL) {
        return luaL_error(L, "rhythm: out of memory");
    }
    wtt_rhythm_contrasts(v, n, (int) m, out);
    for (int k = 0; k < m; k++) {
        lua_pushnumber(L, out[k]);
    }
    return (int) m;
}


/*
 * rhythm.pickup(packed, p, first_t) -> { beats }, down. Stack: before
 * [packed p first_t], after [.. sc sc beats down].
 */
static int
l_pickup(lua_State *L)
{
    double  p = luaL_checknumber(L, 2);
    double  first_t = luaL_checknumber(L, 3);
    double *beats, *out;
    size_t  n, n_out, down;

    if (!(p >= 0 && p < 32)) {
        return luaL_argerror(L, 2, "a pickup of 0 to 32 beats expected");
    }
    beats = unpack(L, 1, "packed beats expected", &n);    /* .. sc */
    if (n == 0) {
        return luaL_argerror(L, 1, "no beats");
    }
    out = wtt_lua_scratch(L, (n + 33) * sizeof(double), 1);      /* .. sc sc2 */
    if (beats == NULL || out == NULL) {
        return fail(L, "out of memory");
    }
    down = wtt_rhythm_pickup(beats, n, p, first_t, out, &n_out);
    push_numbers(L, out, n_out);                          /* .. beats */
    lua_pushnumber(L, (lua_Number) down);                 /* .. beats d */
    return 2;
}


static const luaL_Reg onsets_meta[] = {
    { "__gc", onsets_gc },
    { NULL, NULL },
};

static const luaL_Reg rhythm_funcs[] = {
    { "chords",        l_chords },
    { "envelope",      l_envelope },
    { "period",        l_period },
    { "beats",         l_beats },
    { "fitted_period", l_fitted_period },
    { "accents",       l_accents },
    { "contrasts",     l_contrasts },
    { "pickup",        l_pickup },
    { NULL, NULL },
};


int
luaopen_wtt_tab_rhythm(lua_State *L)
{
    wtt_lua_class(L, ONSETS_MT, onsets_meta, NULL);
    wtt_lua_class(L, ENVELOPE_MT, NULL, NULL);
    lua_newtable(L);                                      /* rhythm */
    luaL_register(L, NULL, rhythm_funcs);
    lua_pushnumber(L, WTT_RHYTHM_FPS);
    lua_setfield(L, -2, "FPS");
    return 1;
}
