/*
 * wtt_midi_decode.c: midi.validate and midi.decode, the reader of
 * `wtt.midi`.
 *
 * Reading walks the buffer up to three times with one bounds-checked walker
 * (wtt_midi_smf.c): pass 1 validates and counts, pass 2 collects the tempo
 * map and program changes, pass 3 builds the Lua tables with times in
 * seconds. Scratch arrays live in userdata, so a Lua memory error while
 * building tables leaks nothing either.
 */
#include "wtt_midi_private.h"

#include <lauxlib.h>

#include <stdlib.h>
#include <string.h>


/* ------------------------------------------------------------------------
 * Reader: decode
 * ------------------------------------------------------------------------ */


typedef struct {
    uint64_t tick;
    uint32_t seq;
    uint32_t uspqn;
    double   sec;         /* time at `tick` */
} tempo_t;

typedef struct {
    uint64_t tick;
    uint32_t seq;
    int      ch;
    int      program;
} prog_t;

typedef struct {
    uint64_t on, off;
    uint32_t seq;
    int      pitch, vel, ch, track, program;
} dnote_t;


typedef struct {
    lua_State  *L;
    smf_t      *m;
    /* pass 1 counts */
    size_t      ntempo, nprog, nnotes;
    /* pass 2 arrays (userdata) */
    tempo_t    *tempo;
    prog_t     *prog;
    size_t      itempo, iprog;
    uint32_t    seq;
    /* pass 3 */
    dnote_t    *notes;
    size_t      inote;
    uint32_t    active[16][128];     /* note index + 1, per track */
    int         tracks_idx;          /* stack index of the tracks table */
    int         bends_idx;
    int         events_idx;          /* current track's events table */
    int         nevents;
    int         nbends;
    double      last_time;
} dec_t;


static int
count_fn(void *ud, const sev_t *ev)
{
    dec_t *d = ud;

    if (ev->kind == K_META && ev->meta == 0x51) {
        d->ntempo++;
    } else if (ev->kind == K_CHANNEL) {
        if ((ev->status & 0xF0) == 0xC0) {
            d->nprog++;
        } else if ((ev->status & 0xF0) == 0x90 && ev->d2 > 0) {
            d->nnotes++;
        }
    }
    return 0;
}


static int
collect_fn(void *ud, const sev_t *ev)
{
    dec_t *d = ud;

    if (ev->kind == K_META && ev->meta == 0x51) {
        tempo_t *t = &d->tempo[d->itempo++];
        t->tick = ev->tick;
        t->seq = d->seq++;
        t->uspqn = ((uint32_t) ev->data[0] << 16)
                   | ((uint32_t) ev->data[1] << 8) | ev->data[2];
    } else if (ev->kind == K_CHANNEL && (ev->status & 0xF0) == 0xC0) {
        prog_t *pc = &d->prog[d->iprog++];
        pc->tick = ev->tick;
        pc->seq = d->seq++;
        pc->ch = ev->status & 0x0F;
        pc->program = ev->d1;
    }
    return 0;
}


static int
cmp_tempo(const void *a, const void *b)
{
    const tempo_t *x = a, *y = b;

    if (x->tick != y->tick) {
        return x->tick < y->tick ? -1 : 1;
    }
    return x->seq < y->seq ? -1 : (x->seq > y->seq);
}


static int
cmp_prog(const void *a, const void *b)
{
    const prog_t *x = a, *y = b;

    if (x->ch != y->ch) {
        return x->ch < y->ch ? -1 : 1;
    }
    if (x->tick != y->tick) {
        return x->tick < y->tick ? -1 : 1;
    }
    return x->seq < y->seq ? -1 : (x->seq > y->seq);
}


static int
cmp_dnote(const void *a, const void *b)
{
    const dnote_t *x = a, *y = b;

    if (x->on != y->on) {
        return x->on < y->on ? -1 : 1;
    }
    if (x->pitch != y->pitch) {
        return x->pitch < y->pitch ? -1 : 1;
    }
    if (x->ch != y->ch) {
        return x->ch < y->ch ? -1 : 1;
    }
    return x->seq < y->seq ? -1 : (x->seq > y->seq);
}


/* Seconds at `tick`: SMPTE divisions are absolute, otherwise the map. */
static double
tick_time(const dec_t *d, uint64_t tick)
{
    int          div = d->m->division;
    size_t       lo, hi, mid;
    const tempo_t *t;

    if (div & 0x8000) {
        int    fps = -(int) (int8_t) (div >> 8);
        double rate = fps == 29 ? 29.97 : fps;
        return (double) tick / (rate * (div & 0xFF));
    }
    /* tempo[0] is always at tick 0; find the last entry <= tick. */
    lo = 0;
    hi = d->ntempo;
    while (hi - lo > 1) {
        mid = lo + (hi - lo) / 2;
        if (d->tempo[mid].tick <= tick) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    t = &d->tempo[lo];
    return t->sec + (double) (tick - t->tick) * t->uspqn / (1e6 * div);
}


/* Program on channel `ch` at `tick`: the last change at or before it. */
static int
program_at(const dec_t *d, int ch, uint64_t tick)
{
    size_t lo = 0, hi = d->nprog, mid;
    const prog_t *p;

    /* prog is sorted by (channel, tick): find the first entry after
     * (ch, tick); the one before it, if on `ch`, is in force. */
    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        p = &d->prog[mid];
        if (p->ch < ch || (p->ch == ch && p->tick <= tick)) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (lo > 0 && d->prog[lo - 1].ch == ch) {
        return d->prog[lo - 1].program;
    }
    return 0;
}


static void
set_num(lua_State *L, const char *k, double v)
{
    lua_pushnumber(L, v);
    lua_setfield(L, -2, k);
}


static void
set_str(lua_State *L, const char *k, const char *s)
{
    lua_pushstring(L, s);
    lua_setfield(L, -2, k);
}


static void
close_note(dec_t *d, int ch, int pitch, uint64_t tick)
{
    uint32_t k = d->active[ch][pitch];

    if (k != 0) {
        d->notes[k - 1].off = tick;
        d->active[ch][pitch] = 0;
    }
}


/* Pass 3: one Lua table per event; notes paired per track. */
static int
build_fn(void *ud, const sev_t *ev)
{
    static const char *const kinds[8] = {
        "note_off", "note_on", "poly_aftertouch", "control_change",
        "program_change", "channel_aftertouch", "pitch_bend", NULL
    };
    dec_t     *d = ud;
    lua_State *L = d->L;
    double     t;
    int        ch, hi, k;

    if (ev->kind == K_TRACK_START) {
        memset(d->active, 0, sizeof(d->active));
        lua_newtable(L);                                      /* .. ev */
        lua_pushvalue(L, -1);                                 /* .. ev ev */
        lua_rawseti(L, d->tracks_idx, ev->track + 1);         /* .. ev */
        d->events_idx = lua_gettop(L);
        d->nevents = 0;
        return 0;
    }
    if (ev->kind == K_TRACK_END) {
        for (ch = 0; ch < 16; ch++) {
            for (k = 0; k < 128; k++) {
                close_note(d, ch, k, ev->tick);
            }
        }
        lua_pop(L, 1);                                        /* .. */
        return 0;
    }

    t = tick_time(d, ev->tick);
    if (t > d->last_time) {
        d->last_time = t;
    }

    lua_createtable(L, 0, 6);                                 /* .. e */
    set_num(L, "tick", (double) ev->tick);
    set_num(L, "time", t);

    if (ev->kind == K_CHANNEL) {
        ch = ev->status & 0x0F;
        hi = (ev->status >> 4) & 0x07;
        set_num(L, "channel", ch);
        set_str(L, "type", kinds[hi]);
        switch (hi) {
        case 0:
        case 1:
            set_num(L, "note", ev->d1);
            set_num(L, "velocity", ev->d2);
            if (hi == 1 && ev->d2 > 0) {
                dnote_t *n;

                close_note(d, ch, ev->d1, ev->tick);
                n = &d->notes[d->inote];
                n->on = ev->tick;
                n->off = ev->tick;
                n->seq = (uint32_t) d->inote;
                n->pitch = ev->d1;
                n->vel = ev->d2;
                n->ch = ch;
                n->track = ev->track;
                n->program = program_at(d, ch, ev->tick);
                d->active[ch][ev->d1] = (uint32_t) ++d->inote;
            } else {
                close_note(d, ch, ev->d1, ev->tick);
            }
            break;
        case 2:
            set_num(L, "note", ev->d1);
            set_num(L, "value", ev->d2);
            break;
        case 3:
            set_num(L, "controller", ev->d1);
            set_num(L, "value", ev->d2);
            break;
        case 4:
            set_num(L, "program", ev->d1);
            break;
        case 5:
            set_num(L, "value", ev->d1);
            break;
        default: {
            int v = ((ev->d2 << 7) | ev->d1) - 8192;
            set_num(L, "value", v);
            lua_createtable(L, 0, 5);                         /* .. e b */
            set_num(L, "time", t);
            set_num(L, "tick", (double) ev->tick);
            set_num(L, "channel", ch);
            set_num(L, "track", ev->track + 1);
            set_num(L, "value", v);
            lua_rawseti(L, d->bends_idx, ++d->nbends);        /* .. e */
            break;
        }
        }
    } else if (ev->kind == K_SYSEX) {
        set_str(L, "type", "sysex");
        lua_pushlstring(L, (const char *) ev->data, ev->dlen);
        lua_setfield(L, -2, "data");
    } else {
        set_num(L, "meta", ev->meta);
        lua_pushlstring(L, (const char *) ev->data, ev->dlen);
        lua_setfield(L, -2, "data");
        if (ev->meta == 0x51) {
            uint32_t us = ((uint32_t) ev->data[0] << 16)
                          | ((uint32_t) ev->data[1] << 8) | ev->data[2];
            set_str(L, "type", "tempo");
            set_num(L, "uspqn", us);
            set_num(L, "bpm", 60e6 / us);
        } else if (ev->meta == 0x2F) {
            set_str(L, "type", "end_of_track");
        } else if (ev->meta == 0x03) {
            set_str(L, "type", "track_name");
        } else {
            set_str(L, "type", "meta");
        }
    }
    lua_rawseti(L, d->events_idx, ++d->nevents);              /* .. */
    return 0;
}


/* midi.validate(bytes) -> true | nil, err */
static int
l_validate(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    char   err[ERRLEN];
    smf_t  m;

    memset(&m, 0, sizeof(m));
    m.p = (const unsigned char *) s;
    m.len = len;
    m.err = err;
    m.errlen = sizeof(err);
    if (wtt__midi_smf_header(&m) != 0
        || wtt__midi_smf_walk(&m, NULL, NULL) != 0)
    {
        lua_pushnil(L);
        lua_pushfstring(L, "validate failed: %s", err);
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}


/*
 * midi.decode(bytes) -> { format, division, tempo, duration, tracks,
 * notes, bends } | nil, err
 */
static int
l_decode(lua_State *L)
{
    size_t   len, i;
    const char *s = luaL_checklstring(L, 1, &len);
    char     err[ERRLEN];
    smf_t    m;
    dec_t   *d;
    tempo_t *tm;
    int      res;

    memset(&m, 0, sizeof(m));
    m.p = (const unsigned char *) s;
    m.len = len;
    m.err = err;
    m.errlen = sizeof(err);

    d = lua_newuserdata(L, sizeof(*d));                       /* d */
    memset(d, 0, sizeof(*d));
    d->L = L;
    d->m = &m;

    if (wtt__midi_smf_header(&m) != 0
        || wtt__midi_smf_walk(&m, count_fn, d) != 0)
    {
        goto fail;
    }

    /* Pass 2: tempo map (plus an implicit 120 BPM at tick 0) and program
     * changes. */
    d->tempo = lua_newuserdata(L, (d->ntempo + 1) * sizeof(tempo_t));
    d->prog = lua_newuserdata(L, (d->nprog + 1) * sizeof(prog_t));
    d->notes = lua_newuserdata(L, (d->nnotes + 1) * sizeof(dnote_t));
    /* d tempo prog notes */
    memset(d->tempo, 0, (d->ntempo + 1) * sizeof(tempo_t));
    memset(d->prog, 0, (d->nprog + 1) * sizeof(prog_t));
    memset(d->notes, 0, (d->nnotes + 1) * sizeof(dnote_t));
    d->tempo[0].uspqn = 500000;
    d->itempo = 1;
    d->seq = 1;
    if (wtt__midi_smf_walk(&m, collect_fn, d) != 0) {
        goto fail;
    }
    d->ntempo = d->itempo;
    if (d->ntempo > 1) {
        qsort(d->tempo, d->ntempo, sizeof(tempo_t), cmp_tempo);
    }
    for (i = 1; i < d->ntempo; i++) {
        tm = &d->tempo[i];
        tm->sec = d->tempo[i - 1].sec
                  + (double) (tm->tick - d->tempo[i - 1].tick)
                    * d->tempo[i - 1].uspqn / (1e6 * (m.division & 0x7FFF));
    }
    d->nprog = d->iprog;
    if (d->nprog > 1) {
        qsort(d->prog, d->nprog, sizeof(prog_t), cmp_prog);
    }

    /* Pass 3: the result. */
    lua_createtable(L, 0, 8);                                 /* .. r */
    res = lua_gettop(L);
    set_num(L, "format", m.format);
    set_num(L, "division", m.division & 0x8000 ? -1 : m.division);
    if (m.division & 0x8000) {
        set_num(L, "smpte_fps", -(int) (int8_t) (m.division >> 8));
        set_num(L, "ticks_per_frame", m.division & 0xFF);
    }
    /* The first tempo in the file; 120 when there is none. */
    set_num(L, "tempo", 60e6 / d->tempo[d->ntempo > 1 ? 1 : 0].uspqn);
    lua_newtable(L);                                          /* .. r tr */
    d->tracks_idx = lua_gettop(L);
    lua_newtable(L);                                          /* .. r tr bd */
    d->bends_idx = lua_gettop(L);
    if (wtt__midi_smf_walk(&m, build_fn, d) != 0) {
        goto fail;
    }
    lua_setfield(L, res, "bends");                            /* .. r tr */
    lua_setfield(L, res, "tracks");                           /* .. r */

    if (d->inote > 1) {
        qsort(d->notes, d->inote, sizeof(dnote_t), cmp_dnote);
    }
    lua_createtable(L, (int) d->inote, 0);                    /* .. r nt */
    for (i = 0; i < d->inote; i++) {
        dnote_t *n = &d->notes[i];

        lua_createtable(L, 0, 7);                             /* .. r nt n */
        set_num(L, "start_s", tick_time(d, n->on));
        set_num(L, "end_s", tick_time(d, n->off));
        set_num(L, "pitch", n->pitch);
        set_num(L, "velocity", n->vel);
        set_num(L, "channel", n->ch);
        set_num(L, "program", n->program);
        set_num(L, "track", n->track + 1);
        lua_rawseti(L, -2, (int) i + 1);                      /* .. r nt */
    }
    lua_setfield(L, res, "notes");                            /* .. r */
    set_num(L, "duration", d->last_time);
    return 1;

fail:
    lua_pushnil(L);
    lua_pushfstring(L, "decode failed: %s", err);
    return 2;
}



const luaL_Reg wtt__midi_read_funcs[] = {
    { "decode",   l_decode },
    { "validate", l_validate },
    { NULL, NULL },
};
