/*
 * wtt_midi.c: the `wtt.midi` Lua module (see wtt_midi.h, docs/midi.md).
 *
 * Writing happens in two phases so that a Lua error can never leak C memory:
 * the notes are first copied out of their Lua tables into userdata arrays
 * (this may raise on misuse), then pure C code builds the file in malloc'd
 * buffers that are freed before control returns to Lua.
 *
 * Reading walks the buffer up to three times with one bounds-checked walker:
 * pass 1 validates and counts, pass 2 collects the tempo map and program
 * changes, pass 3 builds the Lua tables with times in seconds. Scratch
 * arrays live in userdata, so a Lua memory error while building tables
 * leaks nothing either.
 */
#include "wtt_midi.h"
#include "wtt_luax.h"
#include "wtt_util.h"

#include <lauxlib.h>

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#define DEFAULT_TEMPO       120.0
#define DEFAULT_DIVISION    220       /* pretty_midi's default resolution */
#define DEFAULT_PROGRAM     25        /* Acoustic Guitar (steel) */
#define DEFAULT_BEND_RANGE  2         /* semitones; GM default */
#define BINS_PER_SEMITONE   3         /* Basic Pitch contour bins */
#define MAX_TICK            0x0FFFFFFFu   /* largest 4-byte delta time */
#define MAX_DIVISION        0x7FFF
#define ERRLEN              256

#define EV_CTL              0         /* order of events on one tick */
#define EV_BEND             1
#define EV_OFF              2
#define EV_ON               3


/* ------------------------------------------------------------------------
 * General MIDI programs
 * ------------------------------------------------------------------------ */


static const char *const gm_names[128] = {
    "Acoustic Grand Piano", "Bright Acoustic Piano", "Electric Grand Piano",
    "Honky-tonk Piano", "Electric Piano 1", "Electric Piano 2", "Harpsichord",
    "Clavinet", "Celesta", "Glockenspiel", "Music Box", "Vibraphone",
    "Marimba", "Xylophone", "Tubular Bells", "Dulcimer", "Drawbar Organ",
    "Percussive Organ", "Rock Organ", "Church Organ", "Reed Organ",
    "Accordion", "Harmonica", "Tango Accordion", "Acoustic Guitar (nylon)",
    "Acoustic Guitar (steel)", "Electric Guitar (jazz)",
    "Electric Guitar (clean)", "Electric Guitar (muted)", "Overdriven Guitar",
    "Distortion Guitar", "Guitar Harmonics", "Acoustic Bass",
    "Electric Bass (finger)", "Electric Bass (pick)", "Fretless Bass",
    "Slap Bass 1", "Slap Bass 2", "Synth Bass 1", "Synth Bass 2", "Violin",
    "Viola", "Cello", "Contrabass", "Tremolo Strings", "Pizzicato Strings",
    "Orchestral Harp", "Timpani", "String Ensemble 1", "String Ensemble 2",
    "Synth Strings 1", "Synth Strings 2", "Choir Aahs", "Voice Oohs",
    "Synth Voice", "Orchestra Hit", "Trumpet", "Trombone", "Tuba",
    "Muted Trumpet", "French Horn", "Brass Section", "Synth Brass 1",
    "Synth Brass 2", "Soprano Sax", "Alto Sax", "Tenor Sax", "Baritone Sax",
    "Oboe", "English Horn", "Bassoon", "Clarinet", "Piccolo", "Flute",
    "Recorder", "Pan Flute", "Blown Bottle", "Shakuhachi", "Whistle",
    "Ocarina", "Lead 1 (square)", "Lead 2 (sawtooth)", "Lead 3 (calliope)",
    "Lead 4 (chiff)", "Lead 5 (charang)", "Lead 6 (voice)", "Lead 7 (fifths)",
    "Lead 8 (bass + lead)", "Pad 1 (new age)", "Pad 2 (warm)",
    "Pad 3 (polysynth)", "Pad 4 (choir)", "Pad 5 (bowed)", "Pad 6 (metallic)",
    "Pad 7 (halo)", "Pad 8 (sweep)", "FX 1 (rain)", "FX 2 (soundtrack)",
    "FX 3 (crystal)", "FX 4 (atmosphere)", "FX 5 (brightness)",
    "FX 6 (goblins)", "FX 7 (echoes)", "FX 8 (sci-fi)", "Sitar", "Banjo",
    "Shamisen", "Koto", "Kalimba", "Bagpipe", "Fiddle", "Shanai",
    "Tinkle Bell", "Agogo", "Steel Drums", "Woodblock", "Taiko Drum",
    "Melodic Tom", "Synth Drum", "Reverse Cymbal", "Guitar Fret Noise",
    "Breath Noise", "Seashore", "Bird Tweet", "Telephone Ring", "Helicopter",
    "Applause", "Gunshot",
};


/* Short names for the instruments a user is likely to ask for. */
static const struct {
    const char *name;
    int         program;
} gm_aliases[] = {
    { "guitar",          25 },
    { "acoustic_guitar", 25 },
    { "electric_guitar", 27 },
    { "nylon_guitar",    24 },
    { "piano",            0 },
    { "electric_piano",   4 },   /* what the official tool always writes */
    { "bass",            33 },
    { NULL, 0 },
};


/* "Acoustic Guitar (nylon)" -> "acoustic_guitar_nylon" into buf[64]. */
static void
snake_name(const char *s, char *buf)
{
    size_t n = 0;
    int    sep = 0;

    for (; *s != '\0' && n < 62; s++) {
        if (isalnum((unsigned char) *s)) {
            if (sep && n > 0) {
                buf[n++] = '_';
            }
            buf[n++] = (char) tolower((unsigned char) *s);
            sep = 0;
        } else {
            sep = 1;
        }
    }
    buf[n] = '\0';
}


/* ------------------------------------------------------------------------
 * Byte buffer
 * ------------------------------------------------------------------------ */


typedef struct {
    unsigned char *p;
    size_t         len;
    size_t         cap;
    int            oom;
} buf_t;


static void
buf_reserve(buf_t *b, size_t more)
{
    unsigned char *np;
    size_t         cap;

    if (b->oom || b->len + more <= b->cap) {
        return;
    }
    cap = b->cap ? b->cap : 1024;
    while (cap < b->len + more) {
        cap *= 2;
    }
    np = realloc(b->p, cap);
    if (np == NULL) {
        b->oom = 1;
        return;
    }
    b->p = np;
    b->cap = cap;
}


static void
buf_add(buf_t *b, const void *data, size_t len)
{
    if (len == 0) {
        return;
    }
    buf_reserve(b, len);
    if (!b->oom) {
        memcpy(b->p + b->len, data, len);
        b->len += len;
    }
}


static void
buf_byte(buf_t *b, unsigned c)
{
    unsigned char ch = (unsigned char) c;

    buf_add(b, &ch, 1);
}


static void
buf_be32(buf_t *b, uint32_t v)
{
    unsigned char c[4] = {
        (unsigned char) (v >> 24), (unsigned char) (v >> 16),
        (unsigned char) (v >> 8), (unsigned char) v
    };

    buf_add(b, c, 4);
}


/* Writes `v` (at most 0x0FFFFFFF) as a variable-length quantity. */
static void
buf_vlq(buf_t *b, uint32_t v)
{
    unsigned char c[4];
    int           n = 0, i;

    c[n++] = v & 0x7F;
    while ((v >>= 7) != 0 && n < 4) {
        c[n++] = (unsigned char) (0x80 | (v & 0x7F));
    }
    for (i = n - 1; i >= 0; i--) {
        buf_byte(b, c[i]);
    }
}


/* ------------------------------------------------------------------------
 * Writer
 * ------------------------------------------------------------------------ */


typedef struct {
    double   tempo;              /* BPM */
    int      division;           /* ticks per quarter note */
    int      program;            /* 0-127 */
    int      multi;              /* one channel per voice */
    double   bend_range;         /* semitones for +-8192 */
    int      bend_per_semitone;  /* 3: bins, 1: semitones */
} wopts_t;


typedef struct {
    double   start, end;         /* seconds */
    int      pitch, vel;
    size_t   bend_off, nbends;   /* into the bend arrays */
    int      bend_times;         /* explicit times given */
    int      ch;
    int      keep_bends;
    int      merged;             /* absorbed by a same-pitch note */
    uint32_t on, off;            /* ticks */
    size_t   idx;                /* position in the input */
} enote_t;


typedef struct {
    uint32_t tick;
    uint32_t seq;
    uint8_t  cls;
    uint8_t  ch;
    uint8_t  d1, d2;
    int16_t  bend;
    uint8_t  reset;              /* note-on of a note without bends */
} mev_t;


typedef struct {
    enote_t       *notes;
    size_t         n;
    const double  *bv;           /* bend values */
    const double  *bt;           /* bend times, when given */
} input_t;


static int
cmp_start(const void *a, const void *b)
{
    const enote_t *x = *(const enote_t *const *) a;
    const enote_t *y = *(const enote_t *const *) b;

    if (x->start != y->start) {
        return x->start < y->start ? -1 : 1;
    }
    if (x->end != y->end) {
        return x->end < y->end ? -1 : 1;
    }
    if (x->pitch != y->pitch) {
        return x->pitch < y->pitch ? -1 : 1;
    }
    return x->idx < y->idx ? -1 : (x->idx > y->idx);
}


/* Channel, then start tick, then pitch: the order the fixes walk notes in. */
static int
cmp_chan_on(const void *a, const void *b)
{
    const enote_t *x = *(const enote_t *const *) a;
    const enote_t *y = *(const enote_t *const *) b;

    if (x->ch != y->ch) {
        return x->ch < y->ch ? -1 : 1;
    }
    if (x->on != y->on) {
        return x->on < y->on ? -1 : 1;
    }
    if (x->pitch != y->pitch) {
        return x->pitch < y->pitch ? -1 : 1;
    }
    return x->idx < y->idx ? -1 : (x->idx > y->idx);
}


static int
cmp_event(const void *a, const void *b)
{
    const mev_t *x = a, *y = b;

    if (x->ch != y->ch) {
        return x->ch < y->ch ? -1 : 1;
    }
    if (x->tick != y->tick) {
        return x->tick < y->tick ? -1 : 1;
    }
    if (x->cls != y->cls) {
        return x->cls < y->cls ? -1 : 1;
    }
    return x->seq < y->seq ? -1 : (x->seq > y->seq);
}


/* Seconds to ticks with the tempo as written (integer us per quarter). */
static double
ticks_per_second(const wopts_t *o, uint32_t *uspqn)
{
    double us = floor(60e6 / o->tempo + 0.5);

    if (us < 1) {
        us = 1;
    }
    if (us > 0xFFFFFF) {
        us = 0xFFFFFF;
    }
    *uspqn = (uint32_t) us;
    return o->division * 1e6 / us;
}


/*
 * Assigns channels, then drops the bends of notes that overlap another note
 * on their channel (a channel has one pitch wheel). Single mode: every note
 * on channel 0, which makes the drop rule the official
 * drop_overlapping_pitch_bends (note j overlaps note i when
 * start_j < end_i, in seconds). Multiple mode: each note takes the lowest
 * channel (0-15 without the drum channel 9) that is free at its start, so
 * every sounding voice bends on its own; past 15 voices a note shares the
 * channel that frees first, and the drop rule then applies there. `order`
 * is sorted by start.
 */
static void
assign_channels(enote_t **order, size_t n, int multi)
{
    static const int chans[15] = { 0, 1, 2, 3, 4, 5, 6, 7, 8,
                                   10, 11, 12, 13, 14, 15 };
    double           busy[16];
    enote_t         *prev[16];
    size_t           i;
    int              c, k, best;
    enote_t         *y;

    for (k = 0; k < 16; k++) {
        busy[k] = 0;
        prev[k] = NULL;
    }

    for (i = 0; i < n; i++) {
        y = order[i];
        y->keep_bends = y->nbends > 0;
        best = 0;
        if (multi) {
            best = -1;
            for (k = 0; k < 15; k++) {
                c = chans[k];
                if (prev[c] == NULL || busy[c] <= y->start) {
                    best = c;
                    break;
                }
            }
            if (best < 0) {
                best = chans[0];
                for (k = 1; k < 15; k++) {
                    if (busy[chans[k]] < busy[best]) {
                        best = chans[k];
                    }
                }
            }
        }
        y->ch = best;

        if (prev[best] != NULL) {
            if (y->start < busy[best]) {
                y->keep_bends = 0;
            }
            if (y->start < prev[best]->end) {
                prev[best]->keep_bends = 0;
            }
        }
        if (prev[best] == NULL || y->end > busy[best]) {
            busy[best] = y->end;
        }
        prev[best] = y;
    }
}


/*
 * Same-pitch notes on one channel must not overlap in the file (a note-off
 * could not say which one it ends): the earlier note is cut at the later
 * one's start; two that start on the same tick merge into one with the later
 * end and the higher velocity. `order` is sorted by (channel, on tick).
 */
static void
fix_same_pitch(enote_t **order, size_t n)
{
    enote_t *open[128];
    size_t   i;
    int      ch = -1, k;
    enote_t *e, *p;

    for (i = 0; i < n; i++) {
        e = order[i];
        if (e->ch != ch) {
            ch = e->ch;
            for (k = 0; k < 128; k++) {
                open[k] = NULL;
            }
        }
        p = open[e->pitch];
        if (p != NULL && e->on < p->off) {
            if (p->on == e->on) {
                if (p->off > e->off) {
                    e->off = p->off;
                }
                if (p->vel > e->vel) {
                    e->vel = p->vel;
                }
                p->merged = 1;
            } else {
                p->off = e->on;
            }
        }
        open[e->pitch] = e;
    }
}


/* Writes one track chunk from the bytes in `t`. */
static void
put_track(buf_t *out, buf_t *t)
{
    buf_add(out, "MTrk", 4);
    buf_be32(out, (uint32_t) t->len);
    if (t->p != NULL) {
        buf_add(out, t->p, t->len);
    }
    if (t->oom) {
        out->oom = 1;
    }
    t->len = 0;
}


static void
put_meta(buf_t *t, uint32_t delta, unsigned type, const void *data,
    size_t len)
{
    buf_vlq(t, delta);
    buf_byte(t, 0xFF);
    buf_byte(t, type);
    buf_vlq(t, (uint32_t) len);
    buf_add(t, data, len);
}


/*
 * Builds the file. Returns 0 with a malloc'd buffer in *out (caller frees),
 * or -1 with a reason in `err`. Calls no Lua function.
 */
static int
encode(input_t *in, const wopts_t *o, unsigned char **out, size_t *outlen,
    char *err, size_t errlen)
{
    enote_t      **order = NULL;
    mev_t         *ev = NULL;
    size_t         i, j, nev = 0, maxev, n = in->n;
    buf_t          file = { 0 }, trk = { 0 };
    uint32_t       uspqn, seq = 0, last, tick, end_tick;
    double         tps, t, v, scale;
    int            ch, used[16] = { 0 }, ntracks = 1, cur_bend[16] = { 0 };
    unsigned char  b[8];
    const char    *name = gm_names[o->program];
    enote_t       *e;

    tps = ticks_per_second(o, &uspqn);

    order = malloc((n ? n : 1) * sizeof(*order));
    if (order == NULL) {
        goto oom;
    }
    maxev = 0;
    for (i = 0; i < n; i++) {
        e = &in->notes[i];
        order[i] = e;
        t = floor(e->start * tps + 0.5);
        v = floor(e->end * tps + 0.5);
        if (v > MAX_TICK - 1) {
            snprintf(err, errlen, "note %zu: time %.3f s beyond the "
                     "largest tick at this tempo", e->idx + 1, e->end);
            goto fail;
        }
        e->on = (uint32_t) t;
        e->off = (uint32_t) v;
        /* A note shorter than half a tick still sounds for one tick. */
        if (e->off <= e->on) {
            e->off = e->on + 1;
        }
        maxev += 3 + e->nbends;
    }

    if (n > 1) {
        qsort(order, n, sizeof(*order), cmp_start);
    }
    assign_channels(order, n, o->multi);
    if (n > 1) {
        qsort(order, n, sizeof(*order), cmp_chan_on);
    }
    fix_same_pitch(order, n);

    ev = malloc((maxev ? maxev : 1) * sizeof(*ev));
    if (ev == NULL) {
        goto oom;
    }

    /* Bend values: official units are 4096 per semitone (a +-2 semitone
     * range); other ranges scale, and everything clips to 14 bits. */
    scale = 8192.0 / (o->bend_range * o->bend_per_semitone);

    for (i = 0; i < n; i++) {
        e = order[i];
        if (e->merged) {
            continue;
        }
        used[e->ch] = 1;
        if (e->keep_bends) {
            for (j = 0; j < e->nbends; j++) {
                if (in->bt != NULL && e->bend_times) {
                    t = in->bt[e->bend_off + j];
                } else if (e->nbends == 1) {
                    t = e->start;
                } else {
                    /* np.linspace(start, end, n) */
                    t = e->start + (e->end - e->start) * (double) j
                        / (double) (e->nbends - 1);
                }
                tick = (uint32_t) floor(t * tps + 0.5);
                if (tick < e->on) {
                    tick = e->on;
                }
                if (tick > e->off) {
                    tick = e->off;
                }
                v = rint(in->bv[e->bend_off + j] * scale);
                if (v > 8191) {
                    v = 8191;
                }
                if (v < -8192) {
                    v = -8192;
                }
                ev[nev].tick = tick;
                ev[nev].seq = seq++;
                ev[nev].cls = EV_BEND;
                ev[nev].ch = (uint8_t) e->ch;
                ev[nev].bend = (int16_t) v;
                ev[nev].reset = 0;
                nev++;
            }
        }
        ev[nev].tick = e->on;
        ev[nev].seq = seq++;
        ev[nev].cls = EV_ON;
        ev[nev].ch = (uint8_t) e->ch;
        ev[nev].d1 = (uint8_t) e->pitch;
        ev[nev].d2 = (uint8_t) e->vel;
        ev[nev].reset = !e->keep_bends;
        nev++;
        ev[nev].tick = e->off;
        ev[nev].seq = seq++;
        ev[nev].cls = EV_OFF;
        ev[nev].ch = (uint8_t) e->ch;
        ev[nev].d1 = (uint8_t) e->pitch;
        ev[nev].d2 = 0;
        ev[nev].reset = 0;
        nev++;
    }
    if (nev > 1) {
        qsort(ev, nev, sizeof(*ev), cmp_event);
    }

    if (!o->multi) {
        used[0] = 1;
    }
    for (ch = 0; ch < 16; ch++) {
        ntracks += used[ch];
    }

    /* Header and tempo track. */
    buf_add(&file, "MThd", 4);
    buf_be32(&file, 6);
    b[0] = 0; b[1] = 1;
    b[2] = (unsigned char) (ntracks >> 8); b[3] = (unsigned char) ntracks;
    b[4] = (unsigned char) (o->division >> 8);
    b[5] = (unsigned char) o->division;
    buf_add(&file, b, 6);

    b[0] = 4; b[1] = 2; b[2] = 24; b[3] = 8;
    put_meta(&trk, 0, 0x58, b, 4);                  /* 4/4 */
    b[0] = (unsigned char) (uspqn >> 16);
    b[1] = (unsigned char) (uspqn >> 8);
    b[2] = (unsigned char) uspqn;
    put_meta(&trk, 0, 0x51, b, 3);
    put_meta(&trk, 0, 0x2F, NULL, 0);
    put_track(&file, &trk);

    /* One note track per channel used. */
    j = 0;
    for (ch = 0; ch < 16; ch++) {
        if (!used[ch]) {
            continue;
        }
        put_meta(&trk, 0, 0x03, name, strlen(name));
        buf_byte(&trk, 0);
        buf_byte(&trk, 0xC0 | ch);
        buf_byte(&trk, (unsigned) o->program);
        if (o->bend_range != DEFAULT_BEND_RANGE) {
            /* RPN 0,0 (pitch-bend sensitivity), then the null RPN. */
            int semis = (int) floor(o->bend_range);
            int cents = (int) floor((o->bend_range - semis) * 100 + 0.5);
            unsigned char rpn[] = {
                0, 0xB0, 101, 0,  0, 0xB0, 100, 0,
                0, 0xB0, 6, 0,    0, 0xB0, 38, 0,
                0, 0xB0, 101, 127, 0, 0xB0, 100, 127
            };
            if (cents > 99) {
                cents = 99;
            }
            rpn[11] = (unsigned char) semis;
            rpn[15] = (unsigned char) cents;
            for (i = 1; i < sizeof(rpn); i += 4) {
                rpn[i] = (unsigned char) (0xB0 | ch);
            }
            buf_add(&trk, rpn, sizeof(rpn));
        }

        last = 0;
        end_tick = 0;
        while (j < nev && ev[j].ch == ch) {
            mev_t *x = &ev[j++];

            if (x->cls == EV_ON && x->reset && cur_bend[ch] != 0) {
                buf_vlq(&trk, x->tick - last);
                last = x->tick;
                buf_byte(&trk, 0xE0 | ch);
                buf_byte(&trk, 0x00);
                buf_byte(&trk, 0x40);
                cur_bend[ch] = 0;
            }
            buf_vlq(&trk, x->tick - last);
            last = x->tick;
            switch (x->cls) {
            case EV_BEND: {
                unsigned u = (unsigned) (x->bend + 8192);
                buf_byte(&trk, 0xE0 | ch);
                buf_byte(&trk, u & 0x7F);
                buf_byte(&trk, (u >> 7) & 0x7F);
                cur_bend[ch] = x->bend;
                break;
            }
            case EV_ON:
                buf_byte(&trk, 0x90 | ch);
                buf_byte(&trk, x->d1);
                buf_byte(&trk, x->d2);
                break;
            default:
                buf_byte(&trk, 0x80 | ch);
                buf_byte(&trk, x->d1);
                buf_byte(&trk, 0);
                break;
            }
            if (x->tick > end_tick) {
                end_tick = x->tick;
            }
        }
        put_meta(&trk, 0, 0x2F, NULL, 0);
        put_track(&file, &trk);
    }

    free(trk.p);
    free(ev);
    free(order);
    if (file.oom) {
        free(file.p);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    *out = file.p;
    *outlen = file.len;
    return 0;

oom:
    snprintf(err, errlen, "out of memory");
fail:
    free(trk.p);
    free(file.p);
    free(ev);
    free(order);
    return -1;
}


/* ------------------------------------------------------------------------
 * Writer: Lua input
 * ------------------------------------------------------------------------ */


static const char *const encode_opt_names[] = {
    "tempo", "division", "program", "multiple_pitch_bends", "bend_range",
    "bend_unit", NULL
};


/* Reads the options table at `idx` (may be none). Raises on misuse. */
static void
read_opts(lua_State *L, int idx, wopts_t *o)
{
    lua_Number v;
    int        i, found;

    o->tempo = DEFAULT_TEMPO;
    o->division = DEFAULT_DIVISION;
    o->program = DEFAULT_PROGRAM;
    o->multi = 0;
    o->bend_range = DEFAULT_BEND_RANGE;
    o->bend_per_semitone = BINS_PER_SEMITONE;
    if (lua_isnoneornil(L, idx)) {
        return;
    }
    luaL_checktype(L, idx, LUA_TTABLE);

    lua_pushnil(L);                                           /* nil */
    while (lua_next(L, idx) != 0) {                           /* k v */
        if (lua_type(L, -2) != LUA_TSTRING) {
            luaL_argerror(L, idx, "option names must be strings");
        }
        found = 0;
        for (i = 0; encode_opt_names[i] != NULL; i++) {
            if (strcmp(encode_opt_names[i], lua_tostring(L, -2)) == 0) {
                found = 1;
            }
        }
        if (!found) {
            luaL_argerror(L, idx, lua_pushfstring(L, "unknown option '%s'",
                                                  lua_tostring(L, -2)));
        }
        lua_pop(L, 1);                                        /* k */
    }

    lua_getfield(L, idx, "tempo");                            /* v */
    if (!lua_isnil(L, -1)) {
        v = lua_tonumber(L, -1);
        if (lua_type(L, -1) != LUA_TNUMBER || !(v >= 4 && v <= 1000)) {
            luaL_argerror(L, idx, "'tempo' must be a number in 4-1000 BPM");
        }
        o->tempo = v;
    }
    lua_pop(L, 1);

    lua_getfield(L, idx, "division");                         /* v */
    if (!lua_isnil(L, -1)) {
        v = lua_tonumber(L, -1);
        if (lua_type(L, -1) != LUA_TNUMBER || v != floor(v) || v < 24
            || v > MAX_DIVISION)
        {
            luaL_argerror(L, idx, "'division' must be an integer in "
                          "24-32767");
        }
        o->division = (int) v;
    }
    lua_pop(L, 1);

    lua_getfield(L, idx, "program");                          /* v */
    if (lua_type(L, -1) == LUA_TSTRING) {
        lua_getfield(L, lua_upvalueindex(1), lua_tostring(L, -1)); /* v p */
        if (lua_isnil(L, -1)) {
            luaL_argerror(L, idx, lua_pushfstring(L, "unknown program '%s'",
                                                  lua_tostring(L, -2)));
        }
        o->program = (int) lua_tointeger(L, -1);
        lua_pop(L, 1);                                        /* v */
    } else if (!lua_isnil(L, -1)) {
        v = lua_tonumber(L, -1);
        if (lua_type(L, -1) != LUA_TNUMBER || v != floor(v) || v < 0
            || v > 127)
        {
            luaL_argerror(L, idx, "'program' must be 0-127 or a name in "
                          "midi.PROGRAMS");
        }
        o->program = (int) v;
    }
    lua_pop(L, 1);

    lua_getfield(L, idx, "multiple_pitch_bends");             /* v */
    if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TBOOLEAN) {
        luaL_argerror(L, idx, "'multiple_pitch_bends' must be a boolean");
    }
    o->multi = lua_toboolean(L, -1);
    lua_pop(L, 1);

    lua_getfield(L, idx, "bend_range");                       /* v */
    if (!lua_isnil(L, -1)) {
        v = lua_tonumber(L, -1);
        if (lua_type(L, -1) != LUA_TNUMBER || !(v >= 1 && v <= 24)) {
            luaL_argerror(L, idx, "'bend_range' must be 1-24 semitones");
        }
        o->bend_range = v;
    }
    lua_pop(L, 1);

    lua_getfield(L, idx, "bend_unit");                        /* v */
    if (!lua_isnil(L, -1)) {
        const char *s = lua_type(L, -1) == LUA_TSTRING
                        ? lua_tostring(L, -1) : "";
        if (strcmp(s, "bins") == 0) {
            o->bend_per_semitone = BINS_PER_SEMITONE;
        } else if (strcmp(s, "semitones") == 0) {
            o->bend_per_semitone = 1;
        } else {
            luaL_argerror(L, idx, "'bend_unit' must be \"bins\" or "
                          "\"semitones\"");
        }
    }
    lua_pop(L, 1);                                            /* */
}


/*
 * Reads number field `name` of the note table at `t` into *v. Returns 1 when
 * present, 0 when absent. Raises when it is not a number (misuse).
 */
static int
note_num(lua_State *L, int t, size_t i, const char *name, double *v)
{
    lua_getfield(L, t, name);                                 /* v */
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return 0;
    }
    if (lua_type(L, -1) != LUA_TNUMBER) {
        luaL_error(L, "bad note %d: '%s' must be a number", (int) i + 1,
                   name);
    }
    *v = lua_tonumber(L, -1);
    lua_pop(L, 1);                                            /* */
    return 1;
}


/*
 * Copies the notes list at `idx` into userdata arrays pushed on the stack
 * (notes, then bend values and times). Raises on misuse (wrong types,
 * missing fields). Returns 0, or -1 with a reason in `err` for values out of
 * range. Stack: [] -> [notes bv bt].
 */
static int
read_notes(lua_State *L, int idx, input_t *in, char *err, size_t errlen)
{
    size_t    n, i, j, nb, total = 0, off = 0;
    int       t;
    double    v, *bv, *bt;
    enote_t  *e;

    luaL_checktype(L, idx, LUA_TTABLE);
    n = lua_objlen(L, idx);
    if (n > 10000000) {
        luaL_argerror(L, idx, "too many notes");
    }

    /* Pass 1: types and the number of bend values. */
    for (i = 0; i < n; i++) {
        lua_rawgeti(L, idx, (int) i + 1);                     /* note */
        if (lua_type(L, -1) != LUA_TTABLE) {
            luaL_error(L, "bad note %d: table expected, got %s", (int) i + 1,
                       luaL_typename(L, -1));
        }
        lua_getfield(L, -1, "bends");                         /* note b */
        if (!lua_isnil(L, -1)) {
            if (lua_type(L, -1) != LUA_TTABLE) {
                luaL_error(L, "bad note %d: 'bends' must be a table",
                           (int) i + 1);
            }
            total += lua_objlen(L, -1);
            if (total > 100000000) {
                luaL_error(L, "bad note %d: too many bends", (int) i + 1);
            }
        }
        lua_pop(L, 2);                                        /* */
    }

    e = lua_newuserdata(L, (n ? n : 1) * sizeof(*e));         /* notes */
    bv = lua_newuserdata(L, (total ? total : 1) * sizeof(double));
    bt = lua_newuserdata(L, (total ? total : 1) * sizeof(double));
    memset(e, 0, (n ? n : 1) * sizeof(*e));                   /* notes bv bt */
    in->notes = e;
    in->n = n;
    in->bv = bv;
    in->bt = bt;

    for (i = 0; i < n; i++, e++) {
        lua_rawgeti(L, idx, (int) i + 1);                     /* .. note */
        t = lua_gettop(L);
        e->idx = i;
        if (!note_num(L, t, i, "start_s", &e->start)
            || !note_num(L, t, i, "end_s", &e->end))
        {
            luaL_error(L, "bad note %d: 'start_s' and 'end_s' are required",
                       (int) i + 1);
        }
        if (!note_num(L, t, i, "pitch", &v)) {
            luaL_error(L, "bad note %d: 'pitch' is required", (int) i + 1);
        }
        if (!isfinite(e->start) || !isfinite(e->end) || e->start < 0
            || e->end < e->start)
        {
            snprintf(err, errlen, "note %zu: times must be finite with "
                     "0 <= start_s <= end_s", i + 1);
            lua_pop(L, 1);
            return -1;
        }
        if (!(v >= 0 && v <= 127) || v != floor(v)) {
            snprintf(err, errlen, "note %zu: pitch must be an integer in "
                     "0-127", i + 1);
            lua_pop(L, 1);
            return -1;
        }
        e->pitch = (int) v;

        if (note_num(L, t, i, "velocity", &v)) {
            if (!(v >= 1 && v <= 127) || v != floor(v)) {
                snprintf(err, errlen, "note %zu: velocity must be an "
                         "integer in 1-127", i + 1);
                lua_pop(L, 1);
                return -1;
            }
            e->vel = (int) v;
        } else if (note_num(L, t, i, "amplitude", &v)) {
            if (!(v >= 0 && v <= 1)) {
                snprintf(err, errlen, "note %zu: amplitude must be in 0-1",
                         i + 1);
                lua_pop(L, 1);
                return -1;
            }
            /* int(np.round(127 * amplitude)): round half to even; a
             * velocity of 0 would be a note-off, so the floor is 1. */
            e->vel = (int) rint(127.0 * v);
            if (e->vel < 1) {
                e->vel = 1;
            }
        } else {
            luaL_error(L, "bad note %d: 'velocity' or 'amplitude' is "
                       "required", (int) i + 1);
        }

        lua_getfield(L, t, "bends");                          /* .. note b */
        nb = lua_isnil(L, -1) ? 0 : lua_objlen(L, -1);
        e->bend_off = off;
        e->nbends = nb;
        for (j = 0; j < nb; j++) {
            lua_rawgeti(L, -1, (int) j + 1);                  /* .. b v */
            if (lua_type(L, -1) != LUA_TNUMBER) {
                luaL_error(L, "bad note %d: bends must be numbers",
                           (int) i + 1);
            }
            bv[off + j] = lua_tonumber(L, -1);
            lua_pop(L, 1);                                    /* .. b */
            if (!isfinite(bv[off + j])) {
                snprintf(err, errlen, "note %zu: bend values must be finite",
                         i + 1);
                lua_pop(L, 2);
                return -1;
            }
        }
        lua_pop(L, 1);                                        /* .. note */

        lua_getfield(L, t, "bend_times");                     /* .. note bt */
        if (!lua_isnil(L, -1)) {
            if (lua_type(L, -1) != LUA_TTABLE || lua_objlen(L, -1) != nb) {
                luaL_error(L, "bad note %d: 'bend_times' must be a list as "
                           "long as 'bends'", (int) i + 1);
            }
            e->bend_times = 1;
            for (j = 0; j < nb; j++) {
                lua_rawgeti(L, -1, (int) j + 1);
                if (lua_type(L, -1) != LUA_TNUMBER) {
                    luaL_error(L, "bad note %d: bend times must be numbers",
                               (int) i + 1);
                }
                bt[off + j] = lua_tonumber(L, -1);
                lua_pop(L, 1);
                if (!isfinite(bt[off + j]) || bt[off + j] < 0) {
                    snprintf(err, errlen, "note %zu: bend times must be "
                             "finite and >= 0", i + 1);
                    lua_pop(L, 2);
                    return -1;
                }
            }
        }
        lua_pop(L, 2);                                        /* notes bv bt */
        off += nb;
    }
    return 0;
}


/*
 * Shared by encode and write: reads args 1 (notes) and 2 (opts), encodes.
 * Returns 0 with a malloc'd buffer, or -1 with a reason in `err`.
 */
static int
encode_args(lua_State *L, int notes_idx, int opts_idx, unsigned char **out,
    size_t *len, char *err, size_t errlen)
{
    wopts_t o;
    input_t in;

    read_opts(L, opts_idx, &o);
    if (read_notes(L, notes_idx, &in, err, errlen) != 0) {
        return -1;
    }
    return encode(&in, &o, out, len, err, errlen);
}


/* midi.encode(notes [, opts]) -> bytes | nil, err */
static int
l_encode(lua_State *L)
{
    unsigned char *out;
    size_t         len;
    char           err[ERRLEN];

    if (encode_args(L, 1, 2, &out, &len, err, sizeof(err)) != 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "encode failed: %s", err);
        return 2;
    }
    lua_pushlstring(L, (const char *) out, len);              /* bytes */
    free(out);
    return 1;
}


/*
 * midi.write(path, notes [, opts]) -> true | nil, err. The file appears
 * whole or not at all (wtt_write_file_atomic): an existing file keeps its
 * permission bits; a new one gets 0644.
 */
static int
l_write(lua_State *L)
{
    const char    *path = luaL_checkstring(L, 1);
    unsigned char *out;
    size_t         len;
    char           err[ERRLEN];
    int            rc, e;

    if (encode_args(L, 2, 3, &out, &len, err, sizeof(err)) != 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "encode failed: %s", err);
        return 2;
    }
    rc = wtt_write_file_atomic(path, out, len);
    e = errno;
    free(out);
    if (rc != 0) {
        return wtt_lua_push_errno(L, "write", path, e);
    }
    lua_pushboolean(L, 1);
    return 1;
}


/* ------------------------------------------------------------------------
 * Reader: the walker
 * ------------------------------------------------------------------------ */


typedef struct {
    int                   track;     /* 0-based */
    uint64_t              tick;
    int                   kind;      /* K_* */
    int                   status;    /* status byte for channel/sysex/meta */
    int                   d1, d2;
    int                   meta;
    const unsigned char  *data;
    size_t                dlen;
} sev_t;

enum { K_TRACK_START, K_TRACK_END, K_CHANNEL, K_SYSEX, K_META };

typedef int (*sev_fn)(void *ud, const sev_t *ev);


typedef struct {
    const unsigned char *p;
    size_t               len;
    int                  format;
    int                  ntracks;
    int                  division;   /* raw 16-bit field */
    size_t               first;      /* offset of the first chunk */
    char                *err;
    size_t               errlen;
} smf_t;


static int
smf_err(smf_t *m, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(m->err, m->errlen, fmt, ap);
    va_end(ap);
    return -1;
}


static uint32_t
be32(const unsigned char *b)
{
    return ((uint32_t) b[0] << 24) | ((uint32_t) b[1] << 16)
           | ((uint32_t) b[2] << 8) | (uint32_t) b[3];
}


/* Parses MThd. Returns 0 or -1. */
static int
smf_header(smf_t *m)
{
    uint32_t hlen;

    if (m->len < 14 || memcmp(m->p, "MThd", 4) != 0) {
        return smf_err(m, "not a MIDI file (no MThd header)");
    }
    hlen = be32(m->p + 4);
    if (hlen < 6) {
        return smf_err(m, "header chunk of %u bytes, 6 expected",
                       (unsigned) hlen);
    }
    if (hlen > m->len - 8) {
        return smf_err(m, "header chunk length %u past the end of the data",
                       (unsigned) hlen);
    }
    m->format = (m->p[8] << 8) | m->p[9];
    m->ntracks = (m->p[10] << 8) | m->p[11];
    m->division = (m->p[12] << 8) | m->p[13];
    m->first = 8 + (size_t) hlen;
    if (m->format > 2) {
        return smf_err(m, "unsupported format %d", m->format);
    }
    if (m->ntracks == 0) {
        return smf_err(m, "no tracks");
    }
    if (m->format == 0 && m->ntracks != 1) {
        return smf_err(m, "format 0 with %d tracks", m->ntracks);
    }
    if (m->division & 0x8000) {
        int fps = -(int) (int8_t) (m->division >> 8);
        if ((fps != 24 && fps != 25 && fps != 29 && fps != 30)
            || (m->division & 0xFF) == 0)
        {
            return smf_err(m, "bad SMPTE division 0x%04x", m->division);
        }
    } else if (m->division == 0) {
        return smf_err(m, "division of 0 ticks per quarter note");
    }
    return 0;
}


/* Reads a VLQ of at most 4 bytes from p[*i..end). Returns 0 or -1. */
static int
read_vlq(const unsigned char *p, size_t end, size_t *i, uint32_t *v)
{
    uint32_t r = 0;
    int      k;

    for (k = 0; k < 4; k++) {
        if (*i >= end) {
            return -1;
        }
        r = (r << 7) | (p[*i] & 0x7F);
        if (!(p[(*i)++] & 0x80)) {
            *v = r;
            return 0;
        }
    }
    return -1;
}


/*
 * Walks every track chunk, calling `fn` (may be NULL) for each event.
 * Unknown chunk types are skipped; chunks after the declared number of
 * tracks are ignored. Returns 0, or -1 with the reason in m->err (or the
 * callback's -1).
 */
static int
smf_walk(smf_t *m, sev_fn fn, void *ud)
{
    const unsigned char *p = m->p;
    size_t               pos = m->first, end, i, start;
    uint32_t             clen, delta, mlen;
    int                  track = 0, chunk = 0, running, st, nd;
    uint64_t             tick;
    sev_t                ev;

    while (track < m->ntracks) {
        chunk++;
        if (pos >= m->len || m->len - pos < 8) {
            return smf_err(m, "header declares %d tracks, found %d",
                           m->ntracks, track);
        }
        clen = be32(p + pos + 4);
        if (clen > m->len - pos - 8) {
            return smf_err(m, "chunk %d length %u past the end of the data",
                           chunk, (unsigned) clen);
        }
        if (memcmp(p + pos, "MTrk", 4) != 0) {
            pos += 8 + (size_t) clen;
            continue;
        }

        i = pos + 8;
        end = i + clen;
        tick = 0;
        running = 0;
        memset(&ev, 0, sizeof(ev));
        ev.track = track;
        ev.kind = K_TRACK_START;
        if (fn != NULL && fn(ud, &ev) != 0) {
            return -1;
        }

        while (i < end) {
            start = i;
            if (read_vlq(p, end, &i, &delta) != 0) {
                return smf_err(m, "track %d: bad delta time at byte %zu",
                               track + 1, start);
            }
            tick += delta;
            if (i >= end) {
                return smf_err(m, "track %d: truncated event at byte %zu",
                               track + 1, start);
            }
            memset(&ev, 0, sizeof(ev));
            ev.track = track;
            ev.tick = tick;

            st = p[i];
            if (st < 0x80) {
                if (running == 0) {
                    return smf_err(m, "track %d: data byte 0x%02x without "
                                   "running status at byte %zu", track + 1,
                                   st, i);
                }
                st = running;
            } else {
                i++;
            }

            if (st < 0xF0) {
                running = st;
                nd = (st & 0xF0) == 0xC0 || (st & 0xF0) == 0xD0 ? 1 : 2;
                if (end - i < (size_t) nd) {
                    return smf_err(m, "track %d: truncated event at byte "
                                   "%zu", track + 1, start);
                }
                if (p[i] & 0x80 || (nd == 2 && p[i + 1] & 0x80)) {
                    return smf_err(m, "track %d: bad data byte at byte %zu",
                                   track + 1, i);
                }
                ev.kind = K_CHANNEL;
                ev.status = st;
                ev.d1 = p[i];
                ev.d2 = nd == 2 ? p[i + 1] : 0;
                i += (size_t) nd;
            } else if (st == 0xF0 || st == 0xF7) {
                if (read_vlq(p, end, &i, &mlen) != 0 || mlen > end - i) {
                    return smf_err(m, "track %d: bad sysex length at byte "
                                   "%zu", track + 1, start);
                }
                ev.kind = K_SYSEX;
                ev.status = st;
                ev.data = p + i;
                ev.dlen = mlen;
                i += mlen;
            } else if (st == 0xFF) {
                if (i >= end) {
                    return smf_err(m, "track %d: truncated meta event at "
                                   "byte %zu", track + 1, start);
                }
                ev.meta = p[i++];
                if (read_vlq(p, end, &i, &mlen) != 0 || mlen > end - i) {
                    return smf_err(m, "track %d: bad meta length at byte "
                                   "%zu", track + 1, start);
                }
                ev.kind = K_META;
                ev.status = st;
                ev.data = p + i;
                ev.dlen = mlen;
                i += mlen;
                if (ev.meta == 0x51 && mlen != 3) {
                    return smf_err(m, "track %d: tempo event of %u bytes",
                                   track + 1, (unsigned) mlen);
                }
                if (ev.meta == 0x51
                    && (ev.data[0] | ev.data[1] | ev.data[2]) == 0)
                {
                    return smf_err(m, "track %d: tempo of 0 us per quarter "
                                   "note", track + 1);
                }
            } else {
                return smf_err(m, "track %d: unexpected status 0x%02x at "
                               "byte %zu", track + 1, st, start);
            }

            if (fn != NULL && fn(ud, &ev) != 0) {
                return -1;
            }
            if (ev.kind == K_META && ev.meta == 0x2F) {
                break;      /* end of track; trailing bytes ignored */
            }
        }

        memset(&ev, 0, sizeof(ev));
        ev.track = track;
        ev.tick = tick;
        ev.kind = K_TRACK_END;
        if (fn != NULL && fn(ud, &ev) != 0) {
            return -1;
        }
        track++;
        pos = end;
    }
    return 0;
}


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
    if (smf_header(&m) != 0 || smf_walk(&m, NULL, NULL) != 0) {
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

    if (smf_header(&m) != 0 || smf_walk(&m, count_fn, d) != 0) {
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
    if (smf_walk(&m, collect_fn, d) != 0) {
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
    if (smf_walk(&m, build_fn, d) != 0) {
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


/* ------------------------------------------------------------------------
 * Module
 * ------------------------------------------------------------------------ */


static const luaL_Reg midi_funcs[] = {
    { "encode",   l_encode },
    { "write",    l_write },
    { "decode",   l_decode },
    { "validate", l_validate },
    { NULL, NULL },
};


/*
 * Opens `wtt.midi`. Stack: before [], after [midi]. The functions share
 * one upvalue, a private copy of PROGRAMS. Returns 1.
 */
int
luaopen_wtt_midi(lua_State *L)
{
    char name[64];
    int  i;

    lua_newtable(L);                                          /* midi */

    lua_createtable(L, 0, 140);                               /* midi P */
    for (i = 0; i < 128; i++) {
        snake_name(gm_names[i], name);
        lua_pushinteger(L, i);
        lua_setfield(L, -2, name);
    }
    for (i = 0; gm_aliases[i].name != NULL; i++) {
        lua_pushinteger(L, gm_aliases[i].program);
        lua_setfield(L, -2, gm_aliases[i].name);
    }

    /* encode and write resolve program names through PROGRAMS, their
     * upvalue, so a caller editing midi.PROGRAMS cannot change them. */
    lua_createtable(L, 0, 140);                               /* midi P up */
    lua_pushnil(L);
    while (lua_next(L, -3) != 0) {                            /* .. up k v */
        lua_pushvalue(L, -2);                                 /* .. up k v k */
        lua_insert(L, -2);                                    /* .. up k k v */
        lua_rawset(L, -4);                                    /* .. up k */
    }                                                         /* midi P up */
    for (i = 0; midi_funcs[i].name != NULL; i++) {
        lua_pushvalue(L, -1);                                 /* .. up up */
        lua_pushcclosure(L, midi_funcs[i].func, 1);           /* .. up f */
        lua_setfield(L, -4, midi_funcs[i].name);              /* .. up */
    }
    lua_pop(L, 1);                                            /* midi P */
    lua_setfield(L, -2, "PROGRAMS");                          /* midi */

    lua_createtable(L, 128, 0);                               /* midi N */
    for (i = 0; i < 128; i++) {
        lua_pushstring(L, gm_names[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "PROGRAM_NAMES");                     /* midi */

    lua_pushnumber(L, DEFAULT_TEMPO);
    lua_setfield(L, -2, "DEFAULT_TEMPO");
    lua_pushinteger(L, DEFAULT_DIVISION);
    lua_setfield(L, -2, "DEFAULT_DIVISION");
    lua_pushinteger(L, DEFAULT_PROGRAM);
    lua_setfield(L, -2, "DEFAULT_PROGRAM");
    lua_pushinteger(L, DEFAULT_BEND_RANGE);
    lua_setfield(L, -2, "DEFAULT_BEND_RANGE");
    return 1;
}
