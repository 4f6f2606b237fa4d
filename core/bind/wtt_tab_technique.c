/*
 * wtt_tab_technique.c: the `wtt.core.technique` Lua module (see
 * wtt_tab_technique.h) over core/tab/wtt_technique.c.
 *
 * One pass over the notes: each note's fields and contour are read
 * straight from its table and fed to the pass, which hands back every
 * note whose chord has ended; its `techniques` is set then. Most notes
 * get one of the two shared lists, so a long piece makes few tables. The
 * pass's buffer (one chord's notes) is malloc'd scratch owned by a
 * userdata whose __gc frees it, so a raise leaks nothing.
 *
 * The contours are most of the work: a ten-minute piece has some 250,000
 * bins, in tables far apart in memory and, on a first call, mostly out of
 * cache. Each contour comes onto the stack in one call of `unpack` (an
 * upvalue), and the notes' tables and contours are prefetched a few notes
 * ahead (see prefetch_ahead).
 */
#include "wtt_tab_technique.h"
#include "wtt_technique.h"
#include "wtt_luax.h"

#include <lauxlib.h>
#include <math.h>
#include <stdlib.h>

#define CHUNK      64        /* contour bins handed to the pass at once */
#define UNPACK_MAX 4096      /* bins unpacked at once (LuaJIT's limit: 8000) */
#define AHEAD_NOTE 8         /* notes ahead a note's table is prefetched */
#define AHEAD_BINS 4         /* ... and its contour */
#define NOTE_BYTES 512       /* a note's table and its hash part */
#define BINS_BYTES 448       /* a contour's table and some 45 bins */


/* The keys and values used, pushed once in this order: a raw get or set
 * with a key on the stack does not hash the name again. The first N_READ
 * are the note's fields read, pushed in this order above the note. */
enum { K_BENDS, K_STRING, K_ONSET, K_CHORD, K_FRET, K_START, K_END, N_READ,
       K_TECHNIQUES = N_READ, K_TYPE, K_SEMITONES, K_RELEASE, K_FROM,
       K_DIRECTION, V_BEND, V_VIBRATO, V_HAMMER_ON, V_PULL_OFF, V_SLIDE,
       V_UP, V_DOWN, N_KEYS };

static const char *const KEYS[N_KEYS] = {
    "bends", "string", "onset", "chord", "fret", "start_s", "end_s",
    "techniques", "type", "semitones", "release", "from", "direction",
    "bend", "vibrato", "hammer_on", "pull_off", "slide", "up", "down",
};

/* The legato kinds' names by enum wtt_technique_type. */
static const int LEGATO_NAME[] = {
    [WTT_TECHNIQUE_HAMMER_ON] = V_HAMMER_ON,
    [WTT_TECHNIQUE_PULL_OFF] = V_PULL_OFF,
    [WTT_TECHNIQUE_SLIDE] = V_SLIDE,
};

/* The sink's state: stack slots. */
struct ctx {
    lua_State *L;
    int        notes;
    int        none, let_ring, ring_entry;
    int        keys;
};


/* -------------------------------------------------------------------------
 * Reading a note
 * ---------------------------------------------------------------------- */

/* The number at `idx`; raises naming the field unless it is one. */
static double
number(lua_State *L, int idx, size_t i, const char *name)
{
    int    ok;
    double v = lua_tonumberx(L, idx, &ok);

    if (!ok) {
        luaL_error(L, "technique: note %d needs a numeric %s", (int) i,
                   name);
    }
    return v;
}


/* What the contour at `idx` (nil, false or a list of bins) shows.
 * `unpack` is at `up`. Stack unchanged. */
static void
read_contour(lua_State *L, int idx, int up, size_t i,
             struct wtt_technique_bend *out)
{
    struct wtt_technique_contour c;
    double                       bins[CHUNK];
    int                          top = lua_gettop(L);
    size_t                       n;

    wtt_technique_contour_start(&c);
    if (!lua_toboolean(L, idx)) {
        wtt_technique_contour_end(&c, out);
        return;
    }
    if (!lua_istable(L, idx)) {
        luaL_error(L, "technique: note %d: bends must be a list", (int) i);
    }
    n = lua_objlen(L, idx);
    /* (under three bins nothing shows: they are not read) */
    for (size_t from = 1; n >= 3 && from <= n; from += UNPACK_MAX) {
        size_t to = n - from < UNPACK_MAX ? n : from + UNPACK_MAX - 1;
        int    got;
        lua_pushvalue(L, up);
        lua_pushvalue(L, idx);
        lua_pushinteger(L, (lua_Integer) from);
        lua_pushinteger(L, (lua_Integer) to);
        lua_call(L, 3, LUA_MULTRET);                      /* .. bins.. */
        got = lua_gettop(L) - top;
        for (int k = 0; k < got; k += CHUNK) {
            int m = got - k < CHUNK ? got - k : CHUNK;
            for (int j = 0; j < m; j++) {
                int ok;
                bins[j] = lua_tonumberx(L, top + 1 + k + j, &ok);
                if (!ok) {
                    luaL_error(L, "technique: note %d: bends must be a "
                               "list of numbers", (int) i);
                }
            }
            wtt_technique_contour_add(&c, bins, (size_t) m);
        }
        lua_settop(L, top);                               /* .. */
    }
    wtt_technique_contour_end(&c, out);
}


/* Hints the cache to fetch `bytes` from p (NULL: nothing). */
static void
prefetch(const void *p, int bytes)
{
    for (int o = 0; p != NULL && o < bytes; o += 64) {
        __builtin_prefetch((const char *) p + o);
    }
}


/*
 * Prefetches note i + AHEAD_NOTE's table and note i + AHEAD_BINS's
 * contour (its table's own lines having arrived by then). lua_topointer
 * gives a table's header; its parts are usually allocated right after
 * it, so the lines that follow are fetched too. Hints only: nothing read
 * depends on them. Stack unchanged.
 */
static void
prefetch_ahead(lua_State *L, int notes, int k_bends, size_t i, size_t count)
{
    if (i + AHEAD_NOTE <= count) {
        lua_rawgeti(L, notes, (int) (i + AHEAD_NOTE));    /* .. note */
        prefetch(lua_topointer(L, -1), NOTE_BYTES);
        lua_pop(L, 1);
    }
    if (i + AHEAD_BINS <= count) {
        int top = lua_gettop(L);
        lua_rawgeti(L, notes, (int) (i + AHEAD_BINS));    /* .. note */
        if (lua_istable(L, -1)) {
            lua_pushvalue(L, k_bends);
            lua_rawget(L, -2);                            /* .. note b */
            prefetch(lua_topointer(L, -1), BINS_BYTES);
        }
        lua_settop(L, top);                               /* .. */
    }
}


/*
 * Reads note i at the top into `n`; `prev` is the stack slot of the
 * previous note's chord, which becomes this one's; `unpack` is at `up`.
 * Stack: before [.. note], after [.. note fields..].
 */
static void
read_note(lua_State *L, int keys, int up, size_t i, int prev,
          struct wtt_technique_note *n)
{
    int    note = lua_gettop(L), f = note + 1;
    double s;

    if (!lua_istable(L, note)) {
        luaL_error(L, "technique: note %d must be a table", (int) i);
    }
    for (int k = 0; k < N_READ; k++) {
        lua_pushvalue(L, keys + k);
        lua_rawget(L, note);                              /* .. note v.. */
    }
    s = lua_tonumber(L, f + K_STRING);
    if (lua_type(L, f + K_STRING) != LUA_TNUMBER || !(s >= 1)
        || s > WTT_TECHNIQUE_MAX_STRING || s != floor(s))
    {
        luaL_error(L, "technique: note %d needs an integer string in 1-%d",
                   (int) i, WTT_TECHNIQUE_MAX_STRING);
    }
    n->string = (int) s;
    n->fret = number(L, f + K_FRET, i, "fret");
    n->start_s = number(L, f + K_START, i, "start_s");
    n->end_s = number(L, f + K_END, i, "end_s");
    n->has_onset = !lua_isnil(L, f + K_ONSET);
    n->onset = n->has_onset ? number(L, f + K_ONSET, i, "onset") : 0;
    n->same_chord = i > 1 && lua_rawequal(L, f + K_CHORD, prev);
    lua_pushvalue(L, f + K_CHORD);
    lua_replace(L, prev);
    read_contour(L, f + K_BENDS, up, i, &n->bend);
}


/* -------------------------------------------------------------------------
 * Writing a note's techniques
 * ---------------------------------------------------------------------- */

/* Sets field KEYS[key] of the table at the top to KEYS[value]. */
static void
set_name(struct ctx *x, int key, int value)
{
    lua_pushvalue(x->L, x->keys + key);
    lua_pushvalue(x->L, x->keys + value);                 /* .. t k v */
    lua_rawset(x->L, -3);                                 /* .. t */
}


/* Pushes the entry of a bend or vibrato. */
static void
push_bend(struct ctx *x, const struct wtt_technique_bend *b)
{
    lua_State *L = x->L;

    if (b->type == WTT_TECHNIQUE_VIBRATO) {
        lua_createtable(L, 0, 1);                         /* .. e */
        set_name(x, K_TYPE, V_VIBRATO);
        return;
    }
    lua_createtable(L, 0, 3);                             /* .. e */
    set_name(x, K_TYPE, V_BEND);
    lua_pushvalue(L, x->keys + K_SEMITONES);
    lua_pushnumber(L, b->semitones);
    lua_rawset(L, -3);
    lua_pushvalue(L, x->keys + K_RELEASE);
    lua_pushboolean(L, b->release);
    lua_rawset(L, -3);
}


/* Pushes the entry of a legato. */
static void
push_legato(struct ctx *x, const struct wtt_technique_result *r)
{
    lua_State *L = x->L;
    int        slide = r->legato == WTT_TECHNIQUE_SLIDE;

    lua_createtable(L, 0, slide ? 3 : 2);                 /* .. e */
    set_name(x, K_TYPE, LEGATO_NAME[r->legato]);
    lua_pushvalue(L, x->keys + K_FROM);
    lua_pushnumber(L, (lua_Number) r->from);
    lua_rawset(L, -3);
    if (slide) {
        set_name(x, K_DIRECTION, r->up ? V_UP : V_DOWN);
    }
}


/* The pass's sink: sets the note's techniques. */
static void
done(void *ctx, const struct wtt_technique_result *r)
{
    struct ctx *x = ctx;
    lua_State  *L = x->L;
    int         own = (r->bend.type != WTT_TECHNIQUE_NONE)
                      + (r->legato != WTT_TECHNIQUE_NONE);

    lua_rawgeti(L, x->notes, (int) r->note);              /* .. note */
    lua_pushvalue(L, x->keys + K_TECHNIQUES);             /* .. note k */
    if (own == 0) {
        /* most notes: one of the shared lists */
        lua_pushvalue(L, r->let_ring ? x->let_ring : x->none);
    } else {
        int k = 0;
        lua_createtable(L, own + r->let_ring, 0);         /* .. note k t */
        if (r->bend.type != WTT_TECHNIQUE_NONE) {
            push_bend(x, &r->bend);
            lua_rawseti(L, -2, ++k);
        }
        if (r->legato != WTT_TECHNIQUE_NONE) {
            push_legato(x, r);
            lua_rawseti(L, -2, ++k);
        }
        if (r->let_ring) {
            lua_pushvalue(L, x->ring_entry);
            lua_rawseti(L, -2, ++k);
        }
    }
    lua_rawset(L, -3);                                    /* .. note */
    lua_pop(L, 1);                                        /* .. */
}


/*
 * technique.annotate(notes, none, let_ring) -> notes; `unpack` is its
 * upvalue. Stack: before [notes none let_ring], after [.. ring keys..
 * prev scratch notes].
 */
static int
l_annotate(lua_State *L)
{
    struct wtt_technique_pass p;
    struct wtt_technique_note n;
    struct ctx                x;
    void                     *buf;
    int                       buf_at;
    const char               *err;
    size_t                    count;
    int                       prev, top;

    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TTABLE);
    luaL_checktype(L, 3, LUA_TTABLE);
    lua_settop(L, 3);
    x.L = L;
    x.notes = 1;
    x.none = 2;
    x.let_ring = 3;
    lua_rawgeti(L, 3, 1);                                 /* .. ring */
    x.ring_entry = lua_gettop(L);
    x.keys = x.ring_entry + 1;
    for (int k = 0; k < N_KEYS; k++) {
        lua_pushstring(L, KEYS[k]);                       /* .. keys.. */
    }
    lua_pushnil(L);                                       /* .. prev */
    prev = lua_gettop(L);
    count = lua_objlen(L, 1);
    if (count > (size_t) 1 << 26) {
        return luaL_error(L, "technique: too many notes");
    }
    /* one chord's notes: at most all of them (only as much is touched as
     * the largest chord needs) */
    buf = wtt_lua_scratch(L, count * sizeof(struct wtt_technique_result), 0);
    buf_at = lua_gettop(L);
    if (buf == NULL) {
        return luaL_error(L, "technique: out of memory");
    }
    if (!lua_checkstack(L, N_READ + 16)) {
        return luaL_error(L, "technique: stack overflow");
    }
    wtt_technique_pass_init(&p, buf, count, done, &x);
    top = lua_gettop(L);
    for (size_t i = 1; i <= count; i++) {
        prefetch_ahead(L, 1, x.keys + K_BENDS, i, count);
        lua_rawgeti(L, 1, (int) i);                       /* .. note */
        read_note(L, x.keys, lua_upvalueindex(1), i, prev, &n);
        lua_settop(L, top);                               /* .. */
        if (wtt_technique_pass_add(&p, &n, &err) != 0) {
            return luaL_error(L, "technique: note %d: %s", (int) i, err);
        }
    }
    wtt_technique_pass_end(&p);
    wtt_lua_scratch_release(L, buf_at);
    lua_pushvalue(L, 1);                                  /* .. notes */
    return 1;
}


int
luaopen_wtt_tab_technique(lua_State *L)
{
    lua_newtable(L);                                      /* technique */
    lua_getglobal(L, "unpack");                           /* .. t unpack */
    if (!lua_isfunction(L, -1)) {
        return luaL_error(L, "technique: no unpack function");
    }
    lua_pushcclosure(L, l_annotate, 1);                   /* .. t annotate */
    lua_setfield(L, -2, "annotate");
    return 1;
}
