/*
 * wtt_midi_smf.c: the bounds-checked walker over a Standard MIDI File that
 * midi.validate and midi.decode share. It checks every length against the
 * buffer and never reads outside it. See wtt_midi_private.h for the other
 * parts.
 */
#include "wtt_midi_private.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>


/* ------------------------------------------------------------------------
 * Reader: the walker
 * ------------------------------------------------------------------------ */


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
int
wtt__midi_smf_header(smf_t *m)
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
int
wtt__midi_smf_walk(smf_t *m, sev_fn fn, void *ud)
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

