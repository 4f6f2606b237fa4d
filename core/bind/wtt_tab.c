/*
 * wtt_tab.c: the `wtt.core.tab` Lua module (see wtt_tab.h) over
 * core/tab/wtt_fingering.c.
 *
 * search works in three phases, so a Lua error never unwinds past memory
 * it owns: (1) check the arguments and make the result tables, sized, so
 * filling them allocates nothing; (2) copy the notes into one C buffer,
 * freeing it before any raise, and run the search with no Lua on the
 * stack; (3) fill the results and free the buffer. run, whose answer is
 * many tables, keeps its arrays in a userdata instead (see struct
 * run_buf). The other methods read one chord at a time into arrays on
 * the C stack.
 */
#include "wtt_tab.h"
#include "wtt_fingering.h"
#include "wtt_luax.h"
#include "wtt_util.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#define FINGERING_MT "wtt.core.tab.fingering"

struct fingering {
    struct wtt_finger_instrument inst;
    struct wtt_finger_params     p;
    int                          has_params;   /* w and lim were given */
};


/* -------------------------------------------------------------------------
 * Reading arguments
 * ---------------------------------------------------------------------- */

/* Number field `name` of the table at `idx`; raises when it is not a
 * number. Stack unchanged. */
static lua_Number
number_field(lua_State *L, int idx, const char *name)
{
    lua_Number v;

    lua_getfield(L, idx, name);                           /* .. v */
    if (lua_type(L, -1) != LUA_TNUMBER) {
        luaL_error(L, "fingering: %s must be a number, got %s", name,
                   luaL_typename(L, -1));
    }
    v = lua_tonumber(L, -1);
    lua_pop(L, 1);                                        /* .. */
    return v;
}


/* The number as an int when it is an integer in [lo, hi]; 0 otherwise. */
static int
as_int(lua_Number v, int lo, int hi, int *out)
{
    if (!(v >= lo && v <= hi) || v != (lua_Number) (int) v) {
        return 0;
    }
    *out = (int) v;
    return 1;
}


/* Integer field `name` (any size: the C check bounds it); raises when it
 * is not an integer. Stack unchanged. */
static int
int_field(lua_State *L, int idx, const char *name)
{
    lua_Number v = number_field(L, idx, name);
    int        n = 0;

    if (!as_int(v, -1000000, 1000000, &n)) {
        luaL_error(L, "fingering: %s must be an integer", name);
    }
    return n;
}


/* Pitch `i` (1-based) of the array at `idx`; raises unless it is an
 * integer in 0-127. Stack unchanged. */
static int
pitch_at(lua_State *L, int idx, size_t i)
{
    int p = 0;

    lua_rawgeti(L, idx, (int) i);                         /* .. v */
    if (lua_type(L, -1) != LUA_TNUMBER
        || !as_int(lua_tonumber(L, -1), 0, 127, &p))
    {
        luaL_error(L, "fingering: pitch %d must be an integer in 0-127",
                   (int) i);
    }
    lua_pop(L, 1);                                        /* .. */
    return p;
}


/* The fingering at argument 1 with its weights and limits. */
static struct fingering *
check_searcher(lua_State *L)
{
    struct fingering *f = luaL_checkudata(L, 1, FINGERING_MT);

    if (!f->has_params) {
        luaL_error(L, "fingering: made without weights and limits");
    }
    return f;
}


/* -------------------------------------------------------------------------
 * Lua functions
 * ---------------------------------------------------------------------- */

/*
 * tab.fingering(inst [, w, lim]) -> fingering | nil, err. Stack: before
 * [inst w? lim?], after [inst w? lim? f] or [... nil err].
 */
static int
l_fingering(lua_State *L)
{
    struct fingering  f;
    struct fingering *u;
    const char       *err;
    size_t            n;

    memset(&f, 0, sizeof(f));
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "tuning");                         /* .. tuning */
    if (!lua_istable(L, -1)) {
        return luaL_argerror(L, 1, "inst.tuning must be a table");
    }
    n = lua_objlen(L, -1);
    if (n < 1 || n > WTT_FINGER_MAX_STRINGS) {
        lua_pushnil(L);
        lua_pushliteral(L, "an instrument has 1 to 12 strings");
        return 2;
    }
    f.inst.n_strings = (int) n;
    for (size_t s = 0; s < n; s++) {
        lua_rawgeti(L, -1, (int) s + 1);                  /* .. tuning v */
        if (lua_type(L, -1) != LUA_TNUMBER
            || !as_int(lua_tonumber(L, -1), -1000000, 1000000,
                       &f.inst.tuning[s]))
        {
            return luaL_argerror(L, 1, "inst.tuning must hold integers");
        }
        lua_pop(L, 1);                                    /* .. tuning */
    }
    lua_pop(L, 1);                                        /* .. */
    f.inst.capo = int_field(L, 1, "capo");
    f.inst.max_fret = int_field(L, 1, "max_fret");
    lua_getfield(L, 1, "ordered");                        /* .. ordered */
    f.inst.ordered = lua_toboolean(L, -1);
    lua_pop(L, 1);                                        /* .. */

    if (!lua_isnoneornil(L, 2) || !lua_isnoneornil(L, 3)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        luaL_checktype(L, 3, LUA_TTABLE);
        f.p.move = number_field(L, 2, "move");
        f.p.move_line = number_field(L, 2, "move_line");
        f.p.stretch = number_field(L, 2, "stretch");
        f.p.height = number_field(L, 2, "height");
        f.p.home = number_field(L, 2, "home");
        f.p.open = number_field(L, 2, "open");
        f.p.string = number_field(L, 2, "string");
        f.p.ring = number_field(L, 2, "ring");
        f.p.skip = number_field(L, 2, "skip");
        f.p.cross = number_field(L, 2, "cross");
        f.p.bass = number_field(L, 2, "bass");
        f.p.span = int_field(L, 3, "span");
        f.p.span_open = int_field(L, 3, "span_open");
        f.p.candidates = int_field(L, 3, "candidates");
        f.p.chord_gap_ms = number_field(L, 3, "chord_gap_ms");
        f.p.chord_window_ms = number_field(L, 3, "chord_window_ms");
        f.has_params = 1;
    } else {
        /* Positions only: limits that pass the check. */
        f.p.candidates = 1;
    }
    if (wtt_finger_check(&f.inst, &f.p, &err) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);                           /* .. nil err */
        return 2;
    }
    u = lua_newuserdata(L, sizeof(*u));                   /* .. f */
    *u = f;
    luaL_getmetatable(L, FINGERING_MT);                   /* .. f mt */
    lua_setmetatable(L, -2);                              /* .. f */
    return 1;
}


/*
 * f:positions(pitch) -> s1, f1, s2, f2, ... (none when out of range).
 * Stack: before [f pitch], after [f pitch s1 f1 ...].
 */
static int
l_positions(lua_State *L)
{
    struct fingering *f = luaL_checkudata(L, 1, FINGERING_MT);
    lua_Number        v = luaL_checknumber(L, 2);
    int               strings[WTT_FINGER_MAX_STRINGS];
    int               frets[WTT_FINGER_MAX_STRINGS];
    int               pitch, n;

    if (!as_int(v, 0, 127, &pitch)) {
        return 0;
    }
    n = wtt_finger_positions(&f->inst, pitch, strings, frets);
    luaL_checkstack(L, 2 * n, "fingering: positions");
    for (int i = 0; i < n; i++) {
        lua_pushinteger(L, strings[i]);
        lua_pushinteger(L, frets[i]);                     /* .. s f */
    }
    return 2 * n;
}


/* Reads `k` pitches from the array at `idx`, from index first + 1, into
 * `out` (room for WTT_FINGER_MAX_STRINGS); leaves more to the C check.
 * Stack unchanged. */
static void
read_chord(lua_State *L, int idx, size_t first, size_t k, int *out)
{
    for (size_t i = 0; i < k && i < WTT_FINGER_MAX_STRINGS; i++) {
        out[i] = pitch_at(L, idx, first + i + 1);
    }
}


/*
 * f:playable(pitches) -> true | false | nil, err. Stack: before
 * [f pitches], after [f pitches ok] or [f pitches nil err].
 */
static int
l_playable(lua_State *L)
{
    struct fingering *f = check_searcher(L);
    int               pitch[WTT_FINGER_MAX_STRINGS];
    const char       *err;
    size_t            k;
    int               rc;

    luaL_checktype(L, 2, LUA_TTABLE);
    k = lua_objlen(L, 2);
    read_chord(L, 2, 0, k, pitch);
    rc = wtt_finger_playable(&f->inst, &f->p, pitch, k, &err);
    if (rc < 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);                           /* .. nil err */
        return 2;
    }
    lua_pushboolean(L, rc);                               /* .. ok */
    return 1;
}


/*
 * f:search(pitches, starts, ends, sizes) -> strings, frets, transitions
 * | nil, err. Stack: before [f pitches starts ends sizes], after
 * [.. strings frets transitions] or [.. nil err].
 */
static int
l_search(lua_State *L)
{
    struct fingering       *f = check_searcher(L);
    struct wtt_finger_piece piece;
    size_t                  n, nc, transitions, bytes;
    const char             *err;
    char                   *buf;
    double                 *start, *end;
    int                    *pitch, *size, *strings, *frets;
    int                     out_strings, out_frets;

    for (int i = 2; i <= 5; i++) {
        luaL_checktype(L, i, LUA_TTABLE);
    }
    n = lua_objlen(L, 2);
    nc = lua_objlen(L, 5);
    if (lua_objlen(L, 3) != n || lua_objlen(L, 4) != n) {
        return luaL_argerror(L, 3, "pitches, starts and ends must have "
                             "the same length");
    }
    if (n > (size_t) 1 << 26 || nc > n) {
        lua_pushnil(L);
        lua_pushliteral(L, "too many notes or chords");
        return 2;
    }
    lua_createtable(L, (int) n, 0);                       /* .. strings */
    out_strings = lua_gettop(L);
    lua_createtable(L, (int) n, 0);                       /* .. st frets */
    out_frets = lua_gettop(L);

    /* Two doubles and four ints per note at most (sizes <= notes). */
    bytes = n * (2 * sizeof(double) + 4 * sizeof(int)) + 1;
    buf = wtt_trymalloc(bytes);
    if (buf == NULL) {
        lua_pushnil(L);
        lua_pushliteral(L, "out of memory");              /* .. nil err */
        return 2;
    }
    start = (double *) buf;
    end = start + n;
    pitch = (int *) (end + n);
    strings = pitch + n;
    frets = strings + n;
    size = frets + n;
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, 2, (int) i + 1);                   /* .. p */
        lua_rawgeti(L, 3, (int) i + 1);                   /* .. p s */
        lua_rawgeti(L, 4, (int) i + 1);                   /* .. p s e */
        if (lua_type(L, -3) != LUA_TNUMBER
            || !as_int(lua_tonumber(L, -3), 0, 127, &pitch[i])
            || lua_type(L, -2) != LUA_TNUMBER
            || lua_type(L, -1) != LUA_TNUMBER)
        {
            free(buf);
            return luaL_error(L, "fingering: note %d needs an integer "
                              "pitch in 0-127 and numeric times",
                              (int) i + 1);
        }
        start[i] = lua_tonumber(L, -2);
        end[i] = lua_tonumber(L, -1);
        lua_pop(L, 3);                                    /* .. */
    }
    for (size_t c = 0; c < nc; c++) {
        lua_rawgeti(L, 5, (int) c + 1);                   /* .. k */
        if (lua_type(L, -1) != LUA_TNUMBER
            || !as_int(lua_tonumber(L, -1), -1000000, 1000000, &size[c]))
        {
            free(buf);
            return luaL_error(L, "fingering: size %d must be an integer",
                              (int) c + 1);
        }
        lua_pop(L, 1);                                    /* .. */
    }

    piece.pitch = pitch;
    piece.start_s = start;
    piece.end_s = end;
    piece.n_notes = n;
    piece.size = size;
    piece.n_chords = nc;
    if (wtt_finger_search(&f->inst, &f->p, &piece, strings, frets,
                          &transitions, NULL, &err) != 0)
    {
        free(buf);
        lua_pushnil(L);
        lua_pushstring(L, err);                           /* .. nil err */
        return 2;
    }
    /* The tables have room for n: these stores allocate nothing. */
    for (size_t i = 0; i < n; i++) {
        lua_pushinteger(L, strings[i]);
        lua_rawseti(L, out_strings, (int) i + 1);
        lua_pushinteger(L, frets[i]);
        lua_rawseti(L, out_frets, (int) i + 1);
    }
    free(buf);
    lua_pushnumber(L, (lua_Number) transitions);  /* .. st frets steps */
    return 3;
}



/* -------------------------------------------------------------------------
 * The whole fingering: f:run
 * ---------------------------------------------------------------------- */

static const char *const REASONS[] = {
    NULL, "out_of_range", "out_of_range", "too_many_notes",
};

/* f:run's notes and answer, in one block: a full userdata, so a Lua error
 * (a note that is not a table, memory running out while the answer's
 * tables are made) leaves it to the collector, never leaks it. */
struct run_buf {
    double                     *pitch, *start_s, *end_s;   /* in's */
    struct wtt_finger_notes     in;
    struct wtt_finger_placement out;
};


/* Makes the block for `n` notes at the top of the stack. */
static struct run_buf *
push_run_buf(lua_State *L, size_t n)
{
    struct run_buf *b;
    char           *at;
    size_t          bytes = sizeof(*b) + n * (3 * sizeof(double)
                            + sizeof(size_t)
                            + 2 * sizeof(struct wtt_finger_unplayable)
                            + 4 * sizeof(int));

    b = lua_newuserdata(L, bytes);                        /* .. buf */
    at = (char *) (b + 1);
    /* Widest types first: every array stays aligned. */
    b->pitch = (double *) at;
    b->start_s = b->pitch + n;
    b->end_s = b->start_s + n;
    b->in.pitch = b->pitch;
    b->in.start_s = b->start_s;
    b->in.end_s = b->end_s;
    b->in.n = n;
    b->out.unplayable = (struct wtt_finger_unplayable *) (b->end_s + n);
    b->out.placed = (size_t *) (b->out.unplayable + 2 * n);
    b->out.pitch = (int *) (b->out.placed + n);
    b->out.string = b->out.pitch + n;
    b->out.fret = b->out.string + n;
    b->out.chord = b->out.fret + n;
    return b;
}


/* Number field at key index `key` of the table at the top; raises unless
 * it is a number. Stack unchanged. */
static double
note_number(lua_State *L, int key, size_t i)
{
    double v;

    lua_pushvalue(L, key);                                /* .. n k */
    lua_rawget(L, -2);                                    /* .. n v */
    if (lua_type(L, -1) != LUA_TNUMBER) {
        luaL_error(L, "fingering: note %d needs a numeric %s", (int) i,
                   lua_tostring(L, key));
    }
    v = lua_tonumber(L, -1);
    lua_pop(L, 1);                                        /* .. n */
    return v;
}


/* Sets integer field at key index `key` of the table at the top. */
static void
set_int(lua_State *L, int key, int v)
{
    lua_pushvalue(L, key);
    lua_pushinteger(L, v);                                /* .. n k v */
    lua_rawset(L, -3);                                    /* .. n */
}


/* Sets number field `key` of the table at the top. */
static void
set_num(lua_State *L, const char *key, double v)
{
    lua_pushnumber(L, v);
    lua_setfield(L, -2, key);
}


/* The unplayable list's entry for `u`, pushed. */
static void
push_unplayable(lua_State *L, const struct run_buf *b,
                const struct wtt_finger_unplayable *u)
{
    int folded = u->reason == WTT_FINGER_FOLDED;

    /* Fields in the order (and so the layout) the Lua code made them. */
    lua_createtable(L, 0, folded ? 5 : 4);                /* .. u */
    set_num(L, "start_s", b->in.start_s[u->note]);
    set_num(L, "end_s", b->in.end_s[u->note]);
    set_num(L, "pitch_midi", u->reason == WTT_FINGER_TOO_MANY
                             ? (double) u->pitch : b->in.pitch[u->note]);
    lua_pushstring(L, REASONS[u->reason]);
    lua_setfield(L, -2, "reason");
    if (folded) {
        set_num(L, "folded_to", u->pitch);
    }
}


/*
 * f:run(notes, fold) -> placed, unplayable, transitions, chords | nil,
 * err. `notes` (sorted by start_s, then pitch) get string, fret and chord
 * set, and pitch when folded; placed lists them by start, then pitch;
 * unplayable is new tables { start_s, end_s, pitch_midi, reason,
 * folded_to? }. Stack: before [f notes fold?], after
 * [f notes fold keys buf placed unplayable transitions chords] or
 * [.. nil err].
 */
static int
l_run(lua_State *L)
{
    struct fingering *f = check_searcher(L);
    int               fold = lua_toboolean(L, 3);
    int               k_pitch, k_string, placed_at;
    struct run_buf   *b;
    const char       *err;
    size_t            n;

    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 3);
    n = lua_objlen(L, 2);
    if (n > (size_t) 1 << 26) {
        lua_pushnil(L);
        lua_pushliteral(L, "too many notes");             /* .. nil err */
        return 2;
    }
    /* The keys, pushed once: a raw get or set with a key on the stack
     * does not hash the name again for every note. */
    lua_pushliteral(L, "pitch");
    k_pitch = lua_gettop(L);
    lua_pushliteral(L, "start_s");
    lua_pushliteral(L, "end_s");
    lua_pushliteral(L, "string");
    k_string = lua_gettop(L);
    lua_pushliteral(L, "fret");
    lua_pushliteral(L, "chord");                          /* .. keys */
    b = push_run_buf(L, n);                               /* .. keys buf */

    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, 2, (int) i + 1);                   /* .. note */
        if (!lua_istable(L, -1)) {
            return luaL_error(L, "fingering: note %d must be a table",
                              (int) i + 1);
        }
        b->pitch[i] = note_number(L, k_pitch, i + 1);
        b->start_s[i] = note_number(L, k_pitch + 1, i + 1);
        b->end_s[i] = note_number(L, k_pitch + 2, i + 1);
        lua_pop(L, 1);                                    /* .. */
    }
    if (wtt_finger_run(&f->inst, &f->p, &b->in, fold, &b->out, &err) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);                           /* .. nil err */
        return 2;
    }

    lua_createtable(L, (int) b->out.n_placed, 0);         /* .. placed */
    placed_at = lua_gettop(L);
    for (size_t j = 0; j < b->out.n_placed; j++) {
        size_t i = b->out.placed[j];
        lua_rawgeti(L, 2, (int) i + 1);                   /* .. note */
        set_int(L, k_string, b->out.string[i]);
        set_int(L, k_string + 1, b->out.fret[i]);
        set_int(L, k_string + 2, b->out.chord[i]);
        lua_rawseti(L, placed_at, (int) j + 1);           /* .. */
    }
    lua_createtable(L, (int) b->out.n_unplayable, 0);     /* .. unpl */
    for (size_t j = 0; j < b->out.n_unplayable; j++) {
        const struct wtt_finger_unplayable *u = &b->out.unplayable[j];
        if (u->reason == WTT_FINGER_FOLDED) {
            lua_rawgeti(L, 2, (int) u->note + 1);         /* .. note */
            set_int(L, k_pitch, u->pitch);
            lua_pop(L, 1);                                /* .. */
        }
        push_unplayable(L, b, u);                         /* .. unpl u */
        lua_rawseti(L, -2, (int) j + 1);                  /* .. unpl */
    }
    lua_pushnumber(L, (lua_Number) b->out.transitions);
    lua_pushinteger(L, (lua_Integer) b->out.n_chords);
    return 4;
}


static const luaL_Reg fingering_methods[] = {
    { "positions",  l_positions },
    { "playable",   l_playable },
    { "search",     l_search },
    { "run",        l_run },
    { NULL, NULL },
};

static const luaL_Reg tab_funcs[] = {
    { "fingering", l_fingering },
    { NULL, NULL },
};


int
luaopen_wtt_tab(lua_State *L)
{
    wtt_lua_class(L, FINGERING_MT, NULL, fingering_methods);
    lua_newtable(L);                                      /* tab */
    luaL_register(L, NULL, tab_funcs);
    return 1;
}
