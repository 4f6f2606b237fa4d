/*
 * wtt_tab_out.c: the `wtt.core.tabout` Lua module (see wtt_tab_out.h):
 * reads a Lua tab document into the structs of core/tab/wtt_tabdoc.h and
 * writes it with the C writers.
 *
 * All memory a call uses belongs to one userdata, the module's store (an
 * upvalue of its functions), so a Lua error (out of memory) unwinds past
 * nothing unowned, and the arrays and the text are kept for the next call.
 * The arrays start in one block sized from the lists' lengths before they
 * are read: on a first call, arrays grown by doubling touched a hundred
 * fresh pages, each a page fault, where one block in a huge page takes
 * one (wtt_tab_alloc).
 * The field names are pushed once per call and looked up with lua_rawget,
 * so no key string is hashed per note.
 */
#include "wtt_tab_out.h"
#include "wtt_tabdoc.h"
#include "wtt_luax.h"

#include <lauxlib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STORE_MT        "wtt.core.tabout.store"
/* A store past this after a call gives its memory back. */
#define KEEP_BYTES      ((size_t) 16 * 1024 * 1024)
/* Technique lists remembered per call: notes share a few lists (none,
 * let ring), which need reading once. */
#define SEEN_SLOTS      16

/* The document's field names, pushed in this order. */
enum key {
    K_VERSION, K_TITLE, K_INSTRUMENT, K_TUNING, K_TUNING_NAME, K_CAPO,
    K_TEMPO_BPM, K_TIME_SIGNATURE, K_PICKUP_TICKS, K_DIVISIONS, K_MEASURES,
    K_NOTES, K_UNPLAYABLE, K_NUMBER, K_START_S, K_START_TICK, K_TICKS,
    K_EVENTS, K_TICK, K_REST, K_TIED, K_END_S, K_PITCH_MIDI, K_VELOCITY,
    K_STRING, K_FRET, K_MEASURE, K_BEAT, K_DURATION, K_TECHNIQUES, K_TYPE,
    K_SEMITONES, K_RELEASE, K_FROM, K_DIRECTION, K_REASON, K_FOLDED_TO,
    N_KEYS
};

static const char *const KEYS[N_KEYS] = {
    "version", "title", "instrument", "tuning", "tuning_name", "capo",
    "tempo_bpm", "time_signature", "pickup_ticks", "divisions", "measures",
    "notes", "unplayable", "number", "start_s", "start_tick", "ticks",
    "events", "tick", "rest", "tied", "end_s", "pitch_midi", "velocity",
    "string", "fret", "measure", "beat", "duration", "techniques", "type",
    "semitones", "release", "from", "direction", "reason", "folded_to",
};

/* What a format reads beyond the head, the measures and each note's
 * string, fret and techniques. */
#define READ_NOTE_TIMES     1u  /* every other field of a note */
#define READ_UNPLAYABLE     2u  /* the unplayable list */

/* Where the reader is, for its error messages. */
enum place { P_HEAD, P_MEASURE, P_EVENT, P_NOTE, P_TECH, P_UNPLAYABLE };

/* A growable array of the store. */
struct vec {
    void   *data;
    size_t  len;
    size_t  cap;
    int     borrowed;   /* data lies in the store's block */
};

/* The store's arrays, in the order of store_arrays. */
enum array { A_MEASURES, A_EVENTS, A_EVENT_NOTES, A_NOTES, A_TECHNIQUES,
             A_UNPLAYABLE, N_ARRAYS };

static const size_t ARRAY_SIZE[N_ARRAYS] = {
    sizeof(struct wtt_tab_measure), sizeof(struct wtt_tab_event),
    sizeof(int), sizeof(struct wtt_tab_note),
    sizeof(struct wtt_tab_technique), sizeof(struct wtt_tab_unplayable),
};

struct store {
    struct vec          measures;       /* struct wtt_tab_measure */
    struct vec          events;         /* struct wtt_tab_event */
    struct vec          event_notes;    /* int */
    struct vec          notes;          /* struct wtt_tab_note */
    struct vec          techniques;     /* struct wtt_tab_technique */
    struct vec          unplayable;     /* struct wtt_tab_unplayable */
    char               *block;          /* where the arrays start */
    size_t              block_size;
    struct wtt_tab_text text;
};

struct reader {
    lua_State    *L;
    int           keys;         /* stack index of KEYS[0] */
    struct store *st;
    const char   *format;       /* the error messages' prefix */
    unsigned      read;         /* READ_*: what beyond a note's string,
                                   fret and techniques */
    enum place    place;
    size_t        i, j;         /* 1-based indexes of the place */
    struct {
        const void *table;
        size_t      first, n;
    }             seen[SEEN_SLOTS];
    char          err[WTT_TAB_ERR_SIZE];
};


/* -------------------------------------------------------------------------
 * The store
 * ---------------------------------------------------------------------- */

/* Room for `n` more elements of `size` bytes. Returns 0, or -1. */
static int
vec_reserve(struct vec *v, size_t n, size_t size)
{
    size_t cap;
    void  *data;

    if (n <= v->cap - v->len) {
        return 0;
    }
    if (n > (SIZE_MAX / size) / 2 - v->len) {
        return -1;
    }
    cap = v->cap < 64 ? 64 : v->cap;
    while (cap < v->len + n) {
        cap *= 2;
    }
    /* Large arrays in huge pages, as the text (wtt_tab_alloc). */
    data = wtt_tab_alloc(cap * size);
    if (data == NULL) {
        return -1;
    }
    if (v->len > 0) {
        memcpy(data, v->data, v->len * size);
    }
    if (!v->borrowed) {
        free(v->data);
    }
    v->data = data;
    v->cap = cap;
    v->borrowed = 0;
    return 0;
}


static void
vec_free(struct vec *v)
{
    if (!v->borrowed) {
        free(v->data);
    }
    v->data = NULL;
    v->len = 0;
    v->cap = 0;
    v->borrowed = 0;
}


static struct vec *
store_array(struct store *st, enum array a)
{
    switch (a) {
    case A_MEASURES:    return &st->measures;
    case A_EVENTS:      return &st->events;
    case A_EVENT_NOTES: return &st->event_notes;
    case A_NOTES:       return &st->notes;
    case A_TECHNIQUES:  return &st->techniques;
    default:            return &st->unplayable;
    }
}


static size_t
store_bytes(struct store *st)
{
    size_t bytes = st->block_size + st->text.cap;

    for (int a = 0; a < N_ARRAYS; a++) {
        const struct vec *v = store_array(st, (enum array) a);
        if (!v->borrowed) {
            bytes += v->cap * ARRAY_SIZE[a];
        }
    }
    return bytes;
}


static void
store_free(struct store *st)
{
    for (int a = 0; a < N_ARRAYS; a++) {
        vec_free(store_array(st, (enum array) a));
    }
    free(st->block);
    st->block = NULL;
    st->block_size = 0;
    wtt_tab_text_free(&st->text);
}


/*
 * Lays the (empty) arrays out in the store's block for `count` elements
 * each, the block made larger when it must be. An array that kept memory
 * of its own big enough keeps it. Without the memory for a block, the
 * arrays grow on their own.
 */
static void
store_plan(struct store *st, const size_t count[N_ARRAYS])
{
    size_t at[N_ARRAYS], total = 0;

    for (int a = 0; a < N_ARRAYS; a++) {
        const struct vec *v = store_array(st, (enum array) a);
        at[a] = total;
        if (!v->borrowed && v->cap >= count[a]) {
            continue;
        }
        if (count[a] > (SIZE_MAX / 4 - total) / ARRAY_SIZE[a]) {
            return;
        }
        /* Each array on a cache line of its own. */
        total += (count[a] * ARRAY_SIZE[a] + 63) / 64 * 64;
    }
    if (total > st->block_size) {
        for (int a = 0; a < N_ARRAYS; a++) {
            struct vec *v = store_array(st, (enum array) a);
            if (v->borrowed) {
                vec_free(v);
            }
        }
        free(st->block);
        st->block = wtt_tab_alloc(total);
        st->block_size = st->block != NULL ? total : 0;
        if (st->block == NULL) {
            return;
        }
    }
    for (int a = 0; a < N_ARRAYS; a++) {
        struct vec *v = store_array(st, (enum array) a);
        if (!v->borrowed && v->cap >= count[a]) {
            continue;
        }
        vec_free(v);
        v->data = st->block + at[a];
        v->cap = count[a];
        v->borrowed = 1;
    }
}


/* Empties the store for the next call, giving its memory back when the
 * call needed more than KEEP_BYTES. */
static void
store_reset(struct store *st)
{
    if (store_bytes(st) > KEEP_BYTES) {
        store_free(st);
        return;
    }
    st->measures.len = 0;
    st->events.len = 0;
    st->event_notes.len = 0;
    st->notes.len = 0;
    st->techniques.len = 0;
    st->unplayable.len = 0;
    wtt_tab_text_clear(&st->text);
}


static int
l_store_gc(lua_State *L)
{
    store_free(luaL_checkudata(L, 1, STORE_MT));
    return 0;
}


/* -------------------------------------------------------------------------
 * Reading fields
 * ---------------------------------------------------------------------- */

/* Formats the error: "<format>: <place>.<key> must be <what> (got
 * <type>)", the place alone when `key` is NULL, with the offending value
 * at `idx`. Returns -1. */
static int
bad_at(struct reader *r, int idx, const char *key, const char *what)
{
    char where[64] = "";

    switch (r->place) {
    case P_HEAD:
        break;
    case P_MEASURE:
        snprintf(where, sizeof(where), "measures[%zu]", r->i);
        break;
    case P_EVENT:
        snprintf(where, sizeof(where), "measures[%zu].events[%zu]", r->i,
                 r->j);
        break;
    case P_NOTE:
        snprintf(where, sizeof(where), "notes[%zu]", r->i);
        break;
    case P_TECH:
        snprintf(where, sizeof(where), "notes[%zu].techniques[%zu]", r->i,
                 r->j);
        break;
    case P_UNPLAYABLE:
        snprintf(where, sizeof(where), "unplayable[%zu]", r->i);
        break;
    }
    snprintf(r->err, sizeof(r->err), "%s: %s%s%s must be %s (got %s)",
             r->format, where, where[0] != '\0' && key != NULL ? "." : "",
             key != NULL ? key : "", what, luaL_typename(r->L, idx));
    return -1;
}


/* bad_at for the value on top of the stack. */
static int
bad(struct reader *r, const char *key, const char *what)
{
    return bad_at(r, -1, key, what);
}


static int
out_of_memory(struct reader *r)
{
    snprintf(r->err, sizeof(r->err), "%s: out of memory", r->format);
    return -1;
}


/* Pushes t[KEYS[k]] (raw; `t` an absolute index) and returns its type. */
static int
field(struct reader *r, int t, enum key k)
{
    lua_pushvalue(r->L, r->keys + k);
    lua_rawget(r->L, t);
    return lua_type(r->L, -1);
}


/* The number on top as an int, when it is an integer that fits. */
static int
top_int(lua_State *L, int *out)
{
    lua_Number v = lua_tonumber(L, -1);

    if (!(v >= -2147483647.0 && v <= 2147483647.0) || v != (int) v) {
        return -1;
    }
    *out = (int) v;
    return 0;
}


/* The number at `idx`, the value of field KEYS[k]. */
static int
num_at(struct reader *r, int idx, enum key k, double *out)
{
    if (lua_type(r->L, idx) != LUA_TNUMBER) {
        return bad_at(r, idx, KEYS[k], "a number");
    }
    *out = lua_tonumber(r->L, idx);
    return 0;
}


/* The integer at `idx`; nil is `def` when `optional`. */
static int
int_at(struct reader *r, int idx, enum key k, int optional, int def,
       int *out)
{
    int        type = lua_type(r->L, idx);
    lua_Number v;

    if (type == LUA_TNIL && optional) {
        *out = def;
        return 0;
    }
    if (type != LUA_TNUMBER) {
        return bad_at(r, idx, KEYS[k], "an integer");
    }
    v = lua_tonumber(r->L, idx);
    if (!(v >= -2147483647.0 && v <= 2147483647.0) || v != (int) v) {
        return bad_at(r, idx, KEYS[k], "an integer");
    }
    *out = (int) v;
    return 0;
}


/* The string at `idx`; nil is NULL when `optional`. The string stays
 * anchored by the document. */
static int
str_at(struct reader *r, int idx, enum key k, int optional,
       struct wtt_tab_str *out)
{
    int type = lua_type(r->L, idx);

    if (type == LUA_TSTRING) {
        out->s = lua_tolstring(r->L, idx, &out->len);
    } else if (type == LUA_TNIL && optional) {
        out->s = NULL;
        out->len = 0;
    } else {
        return bad_at(r, idx, KEYS[k], "a string");
    }
    return 0;
}


static int
num_field(struct reader *r, int t, enum key k, double *out)
{
    field(r, t, k);
    if (num_at(r, -1, k, out) != 0) {
        return -1;
    }
    lua_pop(r->L, 1);
    return 0;
}


/* An integer field; an absent one is `def` when `optional`. */
static int
int_field(struct reader *r, int t, enum key k, int optional, int def,
          int *out)
{
    field(r, t, k);
    if (int_at(r, -1, k, optional, def, out) != 0) {
        return -1;
    }
    lua_pop(r->L, 1);
    return 0;
}


/* A string field; an absent one is NULL when `optional`. */
static int
str_field(struct reader *r, int t, enum key k, int optional,
          struct wtt_tab_str *out)
{
    field(r, t, k);
    if (str_at(r, -1, k, optional, out) != 0) {
        return -1;
    }
    lua_pop(r->L, 1);
    return 0;
}


/* Pushes the table field t[KEYS[k]]; with `optional`, nil and false push
 * nothing and answer 1. Returns 0 (pushed), 1 (absent) or -1. */
static int
table_field(struct reader *r, int t, enum key k, int optional)
{
    int type = field(r, t, k);

    if (type == LUA_TTABLE) {
        return 0;
    }
    if (optional && (type == LUA_TNIL || type == LUA_TBOOLEAN)
        && !lua_toboolean(r->L, -1))
    {
        lua_pop(r->L, 1);
        return 1;
    }
    return bad(r, KEYS[k], "a table");
}


/* Pushes element `n` (1-based) of the list at `t`, which is `place`,
 * when it is a table: 0; nil: 1 (the list ends, as ipairs ends); anything
 * else: -1. The reader is at the element after. */
static int
element(struct reader *r, int t, size_t n, enum place place)
{
    r->place = place;
    if (place == P_EVENT || place == P_TECH) {
        r->j = n;
    } else {
        r->i = n;
    }
    lua_rawgeti(r->L, t, (int) n);
    if (lua_type(r->L, -1) == LUA_TTABLE) {
        return 0;
    }
    if (lua_isnil(r->L, -1)) {
        lua_pop(r->L, 1);
        return 1;
    }
    return bad_at(r, -1, NULL, "a table");
}


/* The integers of the list at the top of the stack, appended to `v`;
 * `*n` is set to their count. Pops the list. */
static int
int_list(struct reader *r, struct vec *v, const char *key, size_t *n)
{
    lua_State *L = r->L;
    int        t = lua_gettop(L);
    size_t     count = 0;

    if (vec_reserve(v, lua_objlen(L, t), sizeof(int)) != 0) {
        return out_of_memory(r);
    }
    for (;;) {
        int x;
        lua_rawgeti(L, t, (int) count + 1);
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            break;
        }
        if (lua_type(L, -1) != LUA_TNUMBER || top_int(L, &x) != 0) {
            return bad(r, key, "a list of integers");
        }
        lua_pop(L, 1);
        if (vec_reserve(v, 1, sizeof(int)) != 0) {
            return out_of_memory(r);
        }
        ((int *) v->data)[v->len++] = x;
        count++;
    }
    lua_pop(L, 1);
    *n = count;
    return 0;
}


/* -------------------------------------------------------------------------
 * Reading the document
 * ---------------------------------------------------------------------- */

/* The fields of an event, in the order they are pushed. */
static const enum key EVENT_KEYS[] = {
    K_TICK, K_TICKS, K_REST, K_TIED, K_NOTES,
};
#define N_EVENT_KEYS (sizeof(EVENT_KEYS) / sizeof(EVENT_KEYS[0]))


/* The event at `t` (its fields pushed at once, then read by index). */
static int
read_event(struct reader *r, int t, struct wtt_tab_event *e)
{
    lua_State *L = r->L;
    int        v = t + 1;       /* the first value */
    int        type;

    for (size_t i = 0; i < N_EVENT_KEYS; i++) {
        lua_pushvalue(L, r->keys + EVENT_KEYS[i]);
        lua_rawget(L, t);
    }
    if (int_at(r, v, K_TICK, 0, 0, &e->tick) != 0
        || int_at(r, v + 1, K_TICKS, 0, 0, &e->ticks) != 0)
    {
        return -1;
    }
    e->rest = lua_toboolean(L, v + 2);
    e->tied = lua_toboolean(L, v + 3);
    e->note_first = r->st->event_notes.len;
    e->n_notes = 0;
    /* A rest's notes are optional (nil or false), and only MusicXML's
     * vibrato looks. */
    type = lua_type(L, v + 4);
    if (type == LUA_TTABLE) {
        lua_settop(L, v + 4);
        if (int_list(r, &r->st->event_notes, "notes", &e->n_notes) != 0) {
            return -1;
        }
    } else if (!e->rest || !(type == LUA_TNIL || (type == LUA_TBOOLEAN
                                                  && !lua_toboolean(L, v + 4))))
    {
        return bad_at(r, v + 4, "notes", "a table");
    }
    lua_settop(L, t);
    return 0;
}


static int
read_measures(struct reader *r, int doc)
{
    lua_State    *L = r->L;
    struct store *st = r->st;
    int           list;

    if (table_field(r, doc, K_MEASURES, 0) != 0) {
        return -1;
    }
    list = lua_gettop(L);
    for (size_t i = 1;; i++) {
        struct wtt_tab_measure m;
        int                    rc = element(r, list, i, P_MEASURE);
        int                    events;
        if (rc < 0) {
            return -1;
        }
        if (rc > 0) {
            break;
        }
        if (int_field(r, list + 1, K_NUMBER, 0, 0, &m.number) != 0
            || num_field(r, list + 1, K_START_S, &m.start_s) != 0
            || int_field(r, list + 1, K_START_TICK, 0, 0, &m.start_tick) != 0
            || int_field(r, list + 1, K_TICKS, 0, 0, &m.ticks) != 0
            || table_field(r, list + 1, K_EVENTS, 0) != 0)
        {
            return -1;
        }
        events = lua_gettop(L);
        m.event_first = st->events.len;
        m.n_events = 0;
        for (size_t j = 1;; j++) {
            struct wtt_tab_event e;
            rc = element(r, events, j, P_EVENT);
            if (rc < 0) {
                return -1;
            }
            if (rc > 0) {
                break;
            }
            if (read_event(r, events + 1, &e) != 0) {
                return -1;
            }
            lua_pop(L, 1);                          /* .. events */
            if (vec_reserve(&st->events, 1, sizeof(e)) != 0) {
                return out_of_memory(r);
            }
            ((struct wtt_tab_event *) st->events.data)[st->events.len++] = e;
            m.n_events++;
        }
        lua_pop(L, 2);                              /* .. list */
        if (vec_reserve(&st->measures, 1, sizeof(m)) != 0) {
            return out_of_memory(r);
        }
        ((struct wtt_tab_measure *) st->measures.data)[st->measures.len++]
            = m;
    }
    lua_pop(L, 1);
    return 0;
}


static int
read_technique(struct reader *r, int t, struct wtt_tab_technique *tc)
{
    int type;

    memset(tc, 0, sizeof(*tc));
    if (str_field(r, t, K_TYPE, 0, &tc->type) != 0
        || str_field(r, t, K_DIRECTION, 1, &tc->direction) != 0)
    {
        return -1;
    }
    type = field(r, t, K_SEMITONES);
    if (type == LUA_TNUMBER) {
        tc->has |= WTT_TECH_HAS_SEMITONES;
        tc->semitones = lua_tonumber(r->L, -1);
    } else if (type != LUA_TNIL) {
        return bad(r, "semitones", "a number");
    }
    lua_pop(r->L, 1);
    type = field(r, t, K_RELEASE);
    if (type == LUA_TBOOLEAN) {
        tc->has |= WTT_TECH_HAS_RELEASE;
        tc->release = lua_toboolean(r->L, -1);
    } else if (type != LUA_TNIL) {
        return bad(r, "release", "a boolean");
    }
    lua_pop(r->L, 1);
    type = field(r, t, K_FROM);
    if (type == LUA_TNUMBER && top_int(r->L, &tc->from) == 0) {
        tc->has |= WTT_TECH_HAS_FROM;
    } else if (type != LUA_TNIL) {
        return bad(r, "from", "an integer");
    }
    lua_pop(r->L, 1);
    return 0;
}


/* The techniques list at the top of the stack into the note's range (a
 * list seen before keeps its range). Pops the list. */
static int
read_techniques(struct reader *r, struct wtt_tab_note *n)
{
    lua_State    *L = r->L;
    struct store *st = r->st;
    int           list = lua_gettop(L);
    const void   *p = lua_topointer(L, list);
    size_t        slot = ((uintptr_t) p >> 4) % SEEN_SLOTS;

    if (r->seen[slot].table == p) {
        n->tech_first = r->seen[slot].first;
        n->n_tech = r->seen[slot].n;
        lua_pop(L, 1);
        return 0;
    }
    n->tech_first = st->techniques.len;
    n->n_tech = 0;
    /* Most notes have a list of their own, empty. */
    lua_rawgeti(L, list, 1);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 2);
        return 0;
    }
    lua_pop(L, 1);
    for (size_t j = 1;; j++) {
        struct wtt_tab_technique tc;
        int                      rc = element(r, list, j, P_TECH);
        if (rc < 0) {
            return -1;
        }
        if (rc > 0) {
            break;
        }
        if (read_technique(r, list + 1, &tc) != 0) {
            return -1;
        }
        lua_pop(L, 1);
        if (vec_reserve(&st->techniques, 1, sizeof(tc)) != 0) {
            return out_of_memory(r);
        }
        ((struct wtt_tab_technique *) st->techniques.data)
            [st->techniques.len++] = tc;
        n->n_tech++;
    }
    r->seen[slot].table = p;
    r->seen[slot].first = n->tech_first;
    r->seen[slot].n = n->n_tech;
    r->place = P_NOTE;
    lua_pop(L, 1);
    return 0;
}


/* The fields a whole note is read for, in the order they are pushed. */
static const enum key NOTE_KEYS[] = {
    K_START_S, K_END_S, K_PITCH_MIDI, K_VELOCITY, K_STRING, K_FRET,
    K_MEASURE, K_BEAT, K_DURATION, K_TICK, K_TICKS, K_TECHNIQUES,
};
#define N_NOTE_KEYS (sizeof(NOTE_KEYS) / sizeof(NOTE_KEYS[0]))


/* The note at `t` (its fields all pushed at once, then read by index:
 * half the calls of one field at a time, for 10,000 notes). */
static int
read_note(struct reader *r, int t, struct wtt_tab_note *n)
{
    lua_State *L = r->L;
    int        v = t + 1;       /* the first value */
    int        type;

    memset(n, 0, sizeof(*n));
    if (r->read & READ_NOTE_TIMES) {
        for (size_t i = 0; i < N_NOTE_KEYS; i++) {
            lua_pushvalue(L, r->keys + NOTE_KEYS[i]);
            lua_rawget(L, t);
        }
        if (num_at(r, v, K_START_S, &n->start_s) != 0
            || num_at(r, v + 1, K_END_S, &n->end_s) != 0
            || int_at(r, v + 2, K_PITCH_MIDI, 0, 0, &n->pitch_midi) != 0
            || int_at(r, v + 3, K_VELOCITY, 1, 0, &n->velocity) != 0
            || int_at(r, v + 4, K_STRING, 0, 0, &n->string) != 0
            || int_at(r, v + 5, K_FRET, 0, 0, &n->fret) != 0
            || int_at(r, v + 6, K_MEASURE, 0, 0, &n->measure) != 0
            || num_at(r, v + 7, K_BEAT, &n->beat) != 0
            || str_at(r, v + 8, K_DURATION, 0, &n->duration) != 0
            || int_at(r, v + 9, K_TICK, 0, 0, &n->tick) != 0
            || int_at(r, v + 10, K_TICKS, 0, 0, &n->ticks) != 0)
        {
            return -1;
        }
        v += 11;
    } else {
        for (size_t i = 4; i < 6; i++) {
            lua_pushvalue(L, r->keys + NOTE_KEYS[i]);
            lua_rawget(L, t);
        }
        lua_pushvalue(L, r->keys + K_TECHNIQUES);
        lua_rawget(L, t);
        if (int_at(r, v, K_STRING, 0, 0, &n->string) != 0
            || int_at(r, v + 1, K_FRET, 0, 0, &n->fret) != 0)
        {
            return -1;
        }
        /* A placeholder the check wants; this format does not write it. */
        n->duration.s = "";
        v += 2;
    }
    /* techniques: a table, or none (nil, false) */
    type = lua_type(L, v);
    if (type == LUA_TTABLE) {
        lua_settop(L, v);
        if (read_techniques(r, n) != 0) {
            return -1;
        }
        lua_settop(L, t);
        return 0;
    }
    if (type != LUA_TNIL && !(type == LUA_TBOOLEAN && !lua_toboolean(L, v))) {
        return bad_at(r, v, "techniques", "a table");
    }
    lua_settop(L, t);
    return 0;
}


static int
read_notes(struct reader *r, int doc)
{
    lua_State    *L = r->L;
    struct store *st = r->st;
    int           list;

    if (table_field(r, doc, K_NOTES, 0) != 0) {
        return -1;
    }
    list = lua_gettop(L);
    if (vec_reserve(&st->notes, lua_objlen(L, list),
                    sizeof(struct wtt_tab_note)) != 0)
    {
        return out_of_memory(r);
    }
    for (size_t i = 1;; i++) {
        struct wtt_tab_note n;
        int                 rc;
        rc = element(r, list, i, P_NOTE);
        if (rc < 0) {
            return -1;
        }
        if (rc > 0) {
            break;
        }
        if (read_note(r, list + 1, &n) != 0) {
            return -1;
        }
        lua_pop(L, 1);
        if (vec_reserve(&st->notes, 1, sizeof(n)) != 0) {
            return out_of_memory(r);
        }
        ((struct wtt_tab_note *) st->notes.data)[st->notes.len++] = n;
    }
    lua_pop(L, 1);
    return 0;
}


/* The fields of an unplayable note, in the order they are pushed. */
static const enum key UNPLAYABLE_KEYS[] = {
    K_START_S, K_END_S, K_PITCH_MIDI, K_REASON, K_FOLDED_TO,
};
#define N_UNPLAYABLE_KEYS (sizeof(UNPLAYABLE_KEYS) / sizeof(UNPLAYABLE_KEYS[0]))


static int
read_unplayable(struct reader *r, int doc)
{
    lua_State    *L = r->L;
    struct store *st = r->st;
    int           list, v;

    if (table_field(r, doc, K_UNPLAYABLE, 0) != 0) {
        return -1;
    }
    list = lua_gettop(L);
    v = list + 2;               /* the first value, after the element */
    for (size_t i = 1;; i++) {
        struct wtt_tab_unplayable u;
        int                       rc = element(r, list, i, P_UNPLAYABLE);
        int                       type;
        if (rc < 0) {
            return -1;
        }
        if (rc > 0) {
            break;
        }
        memset(&u, 0, sizeof(u));
        for (size_t k = 0; k < N_UNPLAYABLE_KEYS; k++) {
            lua_pushvalue(L, r->keys + UNPLAYABLE_KEYS[k]);
            lua_rawget(L, list + 1);
        }
        if (num_at(r, v, K_START_S, &u.start_s) != 0
            || num_at(r, v + 1, K_END_S, &u.end_s) != 0
            || num_at(r, v + 2, K_PITCH_MIDI, &u.pitch_midi) != 0
            || str_at(r, v + 3, K_REASON, 0, &u.reason) != 0)
        {
            return -1;
        }
        type = lua_type(L, v + 4);
        if (type == LUA_TNUMBER) {
            u.has_folded_to = 1;
            u.folded_to = lua_tonumber(L, v + 4);
        } else if (type != LUA_TNIL) {
            return bad_at(r, v + 4, "folded_to", "a number");
        }
        lua_settop(L, list);
        if (vec_reserve(&st->unplayable, 1, sizeof(u)) != 0) {
            return out_of_memory(r);
        }
        ((struct wtt_tab_unplayable *) st->unplayable.data)
            [st->unplayable.len++] = u;
    }
    lua_pop(L, 1);
    return 0;
}


static int
read_head(struct reader *r, int doc, struct wtt_tabdoc *d)
{
    lua_State *L = r->L;
    int        list;
    size_t     n = 0;

    r->place = P_HEAD;
    if (int_field(r, doc, K_VERSION, 0, 0, &d->version) != 0
        || str_field(r, doc, K_TITLE, 1, &d->title) != 0
        || str_field(r, doc, K_INSTRUMENT, 1, &d->instrument) != 0
        || str_field(r, doc, K_TUNING_NAME, 1, &d->tuning_name) != 0
        || int_field(r, doc, K_CAPO, 0, 0, &d->capo) != 0
        || num_field(r, doc, K_TEMPO_BPM, &d->tempo_bpm) != 0
        || int_field(r, doc, K_PICKUP_TICKS, 0, 0, &d->pickup_ticks) != 0
        || int_field(r, doc, K_DIVISIONS, 0, 0, &d->divisions) != 0
        || table_field(r, doc, K_TUNING, 0) != 0)
    {
        return -1;
    }
    list = lua_gettop(L);
    for (;;) {
        lua_rawgeti(L, list, (int) n + 1);
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            break;
        }
        if (n == WTT_TABDOC_MAX_STRINGS || lua_type(L, -1) != LUA_TNUMBER
            || top_int(L, &d->tuning[n]) != 0)
        {
            return bad(r, "tuning", "a list of 1 to 16 integers");
        }
        lua_pop(L, 1);
        n++;
    }
    lua_pop(L, 1);
    d->n_strings = (int) n;
    if (table_field(r, doc, K_TIME_SIGNATURE, 0) != 0) {
        return -1;
    }
    list = lua_gettop(L);
    lua_rawgeti(L, list, 1);
    lua_rawgeti(L, list, 2);
    lua_rawgeti(L, list, 3);
    if (!lua_isnil(L, -1) || lua_type(L, -2) != LUA_TNUMBER
        || lua_type(L, -3) != LUA_TNUMBER)
    {
        return bad(r, "time_signature", "a list of two integers");
    }
    lua_pop(L, 1);
    if (top_int(L, &d->beat_type) != 0) {
        return bad(r, "time_signature", "a list of two integers");
    }
    lua_pop(L, 1);
    if (top_int(L, &d->beats) != 0) {
        return bad(r, "time_signature", "a list of two integers");
    }
    lua_pop(L, 2);
    return 0;
}


/* The length of the list at the top of the stack (0 when it is no
 * table); pops it. */
static size_t
pop_len(lua_State *L)
{
    size_t n = lua_type(L, -1) == LUA_TTABLE ? lua_objlen(L, -1) : 0;

    lua_pop(L, 1);
    return n;
}


/*
 * Lays the store's arrays out for the document at `doc` (store_plan):
 * measures, events, notes and unplayable notes as long as their lists,
 * the notes of the events and the techniques as long as they usually are
 * (an array grows past it if need be). Malformed fields count as empty;
 * reading them reports them.
 */
static void
plan_arrays(struct reader *r, int doc)
{
    lua_State *L = r->L;
    size_t     count[N_ARRAYS] = { 0 };

    field(r, doc, K_MEASURES);
    if (lua_type(L, -1) == LUA_TTABLE) {
        int list = lua_gettop(L);
        count[A_MEASURES] = lua_objlen(L, list);
        for (size_t i = 1; i <= count[A_MEASURES]; i++) {
            lua_rawgeti(L, list, (int) i);
            if (lua_type(L, -1) == LUA_TTABLE) {
                field(r, list + 1, K_EVENTS);
                count[A_EVENTS] += pop_len(L);
            }
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
    field(r, doc, K_NOTES);
    count[A_NOTES] = pop_len(L);
    if (r->read & READ_UNPLAYABLE) {
        field(r, doc, K_UNPLAYABLE);
        count[A_UNPLAYABLE] = pop_len(L);
    }
    /* A chord's notes once each, and again in each event tied to it. */
    count[A_EVENT_NOTES] = count[A_NOTES] + count[A_EVENTS] / 4 + 64;
    /* Notes share technique lists, and most have none. */
    count[A_TECHNIQUES] = count[A_NOTES] / 8 + 64;
    store_plan(r->st, count);
}


/* Reads the document at `doc` into `d`, its arrays in the store. */
static int
read_doc(struct reader *r, int doc, struct wtt_tabdoc *d)
{
    struct store *st = r->st;

    memset(d, 0, sizeof(*d));
    plan_arrays(r, doc);
    if (read_head(r, doc, d) != 0 || read_measures(r, doc) != 0
        || read_notes(r, doc) != 0
        || ((r->read & READ_UNPLAYABLE) && read_unplayable(r, doc) != 0))
    {
        return -1;
    }
    d->measures = st->measures.data;
    d->n_measures = st->measures.len;
    d->events = st->events.data;
    d->n_events = st->events.len;
    d->event_notes = st->event_notes.data;
    d->n_event_notes = st->event_notes.len;
    d->notes = st->notes.data;
    d->n_notes = st->notes.len;
    d->techniques = st->techniques.data;
    d->n_techniques = st->techniques.len;
    d->unplayable = st->unplayable.data;
    d->n_unplayable = st->unplayable.len;
    return 0;
}


/* -------------------------------------------------------------------------
 * Lua functions
 * ---------------------------------------------------------------------- */

typedef int (*writer_fn)(const struct wtt_tabdoc *, struct wtt_tab_text *,
                         char *, size_t);

/* Reads the document at stack index 1 into `d` (the store's arrays),
 * with the fields `read` names; the reader's keys go above the caller's
 * values and are popped again. Stack: unchanged. */
static int
read_into(lua_State *L, struct reader *r, const char *format, unsigned read,
          struct wtt_tabdoc *d)
{
    int top = lua_gettop(L), rc;

    luaL_checkstack(L, N_KEYS + 32, "tabout: keys");
    memset(r, 0, sizeof(*r));
    r->L = L;
    r->st = lua_touserdata(L, lua_upvalueindex(1));
    r->format = format;
    r->read = read;
    r->keys = top + 1;
    for (int k = 0; k < N_KEYS; k++) {
        lua_pushstring(L, KEYS[k]);                   /* ... keys.. */
    }
    store_reset(r->st);
    rc = read_doc(r, 1, d);
    lua_settop(L, top);                               /* ... */
    return rc;
}


/* Pushes nil and the reader's error, clearing the store. */
static int
fail(lua_State *L, struct reader *r)
{
    store_reset(r->st);
    lua_pushnil(L);
    lua_pushstring(L, r->err);
    return 2;
}


/*
 * Reads the document (argument 1) and writes it with `write`. Stack:
 * before [doc], after [doc text] or [doc nil err].
 */
static int
encode(lua_State *L, const char *format, unsigned read, writer_fn write)
{
    struct reader     r;
    struct wtt_tabdoc d;

    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);                                 /* doc */
    if (read_into(L, &r, format, read, &d) != 0
        || write(&d, &r.st->text, r.err, sizeof(r.err)) != 0)
    {
        return fail(L, &r);
    }
    lua_pushlstring(L, r.st->text.data, r.st->text.len);  /* doc text */
    store_reset(r.st);
    return 1;
}


/* tabout.json(doc) -> text | nil, err */
static int
l_json(lua_State *L)
{
    return encode(L, "json", READ_NOTE_TIMES | READ_UNPLAYABLE,
                  wtt_tab_json);
}


/* tabout.musicxml(doc) -> xml | nil, err */
static int
l_musicxml(lua_State *L)
{
    return encode(L, "musicxml", 0, wtt_tab_musicxml);
}


/* tabout.ascii(doc) -> text | nil, err */
static int
l_ascii(lua_State *L)
{
    return encode(L, "ascii", READ_UNPLAYABLE, wtt_tab_ascii);
}


/* tabout.alphatex(doc) -> text | nil, err */
static int
l_alphatex(lua_State *L)
{
    return encode(L, "alphatex", 0, wtt_tab_alphatex);
}


/* tabout.gpif(doc) -> xml | nil, err */
static int
l_gpif(lua_State *L)
{
    return encode(L, "gp", 0, wtt_tab_gpif);
}


/* The formats `many` writes: name (as lua/wtt/tab.lua names them; "gp"
 * is its GPIF, which Lua zips), the fields its writer reads, the writer. */
static const struct {
    const char *name;
    unsigned    read;
    writer_fn   write;
} FORMATS[] = {
    { "ascii",    READ_UNPLAYABLE,                   wtt_tab_ascii },
    { "json",     READ_NOTE_TIMES | READ_UNPLAYABLE, wtt_tab_json },
    { "musicxml", 0,                                 wtt_tab_musicxml },
    { "alphatex", 0,                                 wtt_tab_alphatex },
    { "gp",       0,                                 wtt_tab_gpif },
};
#define N_FORMATS (sizeof(FORMATS) / sizeof(FORMATS[0]))


/*
 * tabout.many(doc, formats) -> { [format] = text } | nil, err
 * Reads the document once, with the fields all of `formats` (a list of
 * names in FORMATS) need, and writes each: what `wtt tab` does with
 * several formats, at one reading's cost. Stack: before [doc formats],
 * after [doc formats result] or [doc formats nil err].
 */
static int
l_many(lua_State *L)
{
    struct reader     r;
    struct wtt_tabdoc d;
    unsigned          read = 0, want = 0;
    size_t            n;

    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TTABLE);
    n = lua_objlen(L, 2);
    for (size_t i = 1; i <= n; i++) {
        const char *f;
        size_t      k;
        lua_rawgeti(L, 2, (int) i);
        f = lua_tostring(L, -1);
        for (k = 0; f != NULL && k < N_FORMATS; k++) {
            if (strcmp(f, FORMATS[k].name) == 0) {
                break;
            }
        }
        if (f == NULL || k == N_FORMATS) {
            return luaL_argerror(L, 2, "a format of the tab writers");
        }
        lua_pop(L, 1);
        want |= 1u << k;
        read |= FORMATS[k].read;
    }
    lua_settop(L, 2);                                 /* doc formats */
    if (read_into(L, &r, "tab", read, &d) != 0) {
        return fail(L, &r);
    }
    lua_createtable(L, 0, (int) n);                   /* doc formats res */
    for (size_t k = 0; k < N_FORMATS; k++) {
        if (!(want & (1u << k))) {
            continue;
        }
        r.format = FORMATS[k].name;
        wtt_tab_text_clear(&r.st->text);
        if (FORMATS[k].write(&d, &r.st->text, r.err, sizeof(r.err)) != 0) {
            return fail(L, &r);
        }
        lua_pushlstring(L, r.st->text.data, r.st->text.len);
        lua_setfield(L, -2, FORMATS[k].name);         /* doc formats res */
    }
    store_reset(r.st);
    return 1;
}


static const luaL_Reg store_meta[] = {
    { "__gc", l_store_gc },
    { NULL, NULL },
};

static const luaL_Reg tabout_funcs[] = {
    { "json",     l_json },
    { "musicxml", l_musicxml },
    { "ascii",    l_ascii },
    { "alphatex", l_alphatex },
    { "gpif",     l_gpif },
    { "many",     l_many },
    { NULL, NULL },
};


int
luaopen_wtt_tab_out(lua_State *L)
{
    struct store *st;

    wtt_lua_class(L, STORE_MT, store_meta, NULL);
    lua_newtable(L);                                  /* tabout */
    /* One store for every format: the stage writes them one after the
     * other, so the memory one format touched serves the next. */
    st = lua_newuserdata(L, sizeof(*st));             /* tabout st */
    memset(st, 0, sizeof(*st));
    wtt_tab_text_init(&st->text);
    luaL_getmetatable(L, STORE_MT);                   /* tabout st mt */
    lua_setmetatable(L, -2);                          /* tabout st */
    for (const luaL_Reg *f = tabout_funcs; f->name != NULL; f++) {
        lua_pushvalue(L, -1);                         /* tabout st st */
        lua_pushcclosure(L, f->func, 1);              /* tabout st fn */
        lua_setfield(L, -3, f->name);                 /* tabout st */
    }
    lua_pop(L, 1);                                    /* tabout */
    return 1;
}
