/*
 * wtt_midi_writer.c: the Standard MIDI File writer of `wtt.midi`: notes
 * (already copied out of Lua by wtt_midi_input.c) become a format 1 file in
 * a malloc'd buffer. No Lua here, so nothing can unwind through the
 * buffers. See wtt_midi_private.h for the other parts.
 */
#include "wtt_midi_private.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TICK            0x0FFFFFFFu   /* largest 4-byte delta time */

#define EV_CTL              0         /* order of events on one tick */
#define EV_BEND             1
#define EV_OFF              2
#define EV_ON               3


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
    uint32_t tick;
    uint32_t seq;
    uint8_t  cls;
    uint8_t  ch;
    uint8_t  d1, d2;
    int16_t  bend;
    uint8_t  reset;              /* note-on of a note without bends */
} mev_t;


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
int
wtt__midi_encode(input_t *in, const wopts_t *o, unsigned char **out,
    size_t *outlen, char *err, size_t errlen)
{
    enote_t      **order = NULL;
    mev_t         *ev = NULL;
    size_t         i, j, nev = 0, maxev, n = in->n;
    buf_t          file = { 0 }, trk = { 0 };
    uint32_t       uspqn, seq = 0, last, tick, end_tick;
    double         tps, t, v, scale;
    int            ch, used[16] = { 0 }, ntracks = 1, cur_bend[16] = { 0 };
    unsigned char  b[8];
    const char    *name = wtt__midi_gm_names[o->program];
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

