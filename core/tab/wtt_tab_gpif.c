/*
 * wtt_tab_gpif.c: the GPIF XML of a Guitar Pro 7 file (Content/score.gpif)
 * from a tab document (see wtt_tabdoc.h and docs/tab.md, "alphaTex and
 * Guitar Pro"); lua/wtt/tab/out/gp.lua zips it.
 *
 * GPIF holds a Score (title), a MasterTrack (tracks, tempo automation,
 * pickup), Tracks (one staff with its Tuning and CapoFret properties),
 * MasterBars (time signature, one Bar per track), then Bars, Voices,
 * Beats, Notes and Rhythms, each a flat list that the one before refers
 * to by id. As in Guitar Pro's own files, equal beats, notes and rhythms
 * are written once and shared (alphaTab copies them as it reads them);
 * bars and voices are not, as alphaTab links each to its neighbours.
 *
 * GPIF counts strings from the lowest, from 0 (`String`), and lists the
 * tuning lowest first; the document counts from the highest, from 1.
 * Frets count from the capo in both. Hammer-ons, pull-offs and slides are
 * marked on the note the hand leaves (`HopoOrigin`, `Slide` flags 2 =
 * legato) and the one it reaches (`HopoDestination`); bends are in GPIF
 * units of 25 per quarter tone.
 *
 * One walk over the events gives every event its rhythm and beat and
 * every sounding of a note its note, by the key that makes them equal;
 * the lists are then written one after the other. Two soundings are the
 * same note when their keys are: string, fret and the tie ends, and for
 * a note with techniques (on its first sounding) or a legato it starts
 * (on its last), those as text, as lua/wtt/tab/out/gp.lua keyed them.
 */
#include "wtt_tab_events.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Rhythms a document can have: 6 values, each straight, dotted or a
 * triplet. */
#define MAX_RHYTHMS     18
/* A key set's first table (entries), grown by doubling. */
#define KEYS_FIRST      256

/* Track name, General MIDI program (0-based), clef and written octave per
 * instrument (guitars and basses are written an octave above where they
 * sound), in the order of WTT_TAB_TRACKS (wtt_tab_track_index); the first
 * is the default. */
static const struct {
    const char *instrument;
    const char *name;
    const char *program;
    const char *clef;
    const char *octave;
} TRACKS[] = {
    { "guitar", "Guitar", "25", "G2", "-1" },
    { "guitar7", "7-string guitar", "25", "G2", "-1" },
    { "bass", "Bass", "33", "F4", "-1" },
    { "bass5", "5-string bass", "33", "F4", "-1" },
    { "ukulele", "Ukulele", "24", "G2", "0" },
};

/* What a NoteValue of 1..32 is called. */
static const char *
note_value_name(int value)
{
    switch (value) {
    case 1:  return "Whole";
    case 2:  return "Half";
    case 4:  return "Quarter";
    case 8:  return "Eighth";
    case 16: return "16th";
    default: return "32nd";
    }
}

/* A set of byte strings, each given the next id as it is first added. */
struct keyset {
    uint32_t *slots;        /* id + 1; 0 empty */
    size_t    n_slots;      /* a power of two */
    struct key {
        uint64_t hash;
        size_t   at;        /* in `bytes` */
        size_t   len;
    }        *keys;         /* by id */
    size_t    n;
    size_t    cap;
    struct wtt_tab_text bytes;
};

/* A note as first written: the note and its sounding. */
struct note_def {
    int           ni;       /* 1-based */
    unsigned char first;
    unsigned char last;
    unsigned char origin;   /* WTT_ORIGIN_*, only on a last sounding */
};

struct writer {
    const struct wtt_tabdoc *doc;
    struct wtt_tab_text     *t;
    struct wtt_tab_facts     facts;
    int                      track;
    struct keyset            notes;     /* note keys -> note id */
    struct keyset            beats;     /* rhythm + note ids -> beat id */
    struct note_def         *note_defs; /* by note id */
    uint32_t                *beat_of;   /* per event: its beat id */
    uint32_t                *nids;      /* one event's note ids */
    int                      rhythm_ticks[MAX_RHYTHMS];    /* by id */
    int                      n_rhythms;
    char                    *err;
    size_t                   err_size;
};


/* -------------------------------------------------------------------------
 * Key sets
 * ---------------------------------------------------------------------- */

static void
keyset_free(struct keyset *ks)
{
    free(ks->slots);
    free(ks->keys);
    wtt_tab_text_free(&ks->bytes);
    memset(ks, 0, sizeof(*ks));
}


static uint64_t
hash_bytes(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;        /* FNV-1a */

    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char) s[i];
        h *= 0x100000001b3ULL;
    }
    return h ^ (h >> 29);
}


/* Room for one more key: the table at most half full. */
static int
keyset_grow(struct keyset *ks)
{
    if (ks->n == ks->cap) {
        size_t      cap = ks->cap == 0 ? KEYS_FIRST : ks->cap * 2;
        struct key *keys;
        if (cap > UINT32_MAX / 4) {
            return -1;
        }
        keys = realloc(ks->keys, cap * sizeof(*keys));
        if (keys == NULL) {
            return -1;
        }
        ks->keys = keys;
        ks->cap = cap;
    }
    if (2 * (ks->n + 1) > ks->n_slots) {
        size_t    n_slots = ks->n_slots == 0 ? 2 * KEYS_FIRST
                                             : 2 * ks->n_slots;
        uint32_t *slots = calloc(n_slots, sizeof(*slots));
        if (slots == NULL) {
            return -1;
        }
        for (size_t id = 0; id < ks->n; id++) {
            size_t i = (size_t) ks->keys[id].hash & (n_slots - 1);
            while (slots[i] != 0) {
                i = (i + 1) & (n_slots - 1);
            }
            slots[i] = (uint32_t) id + 1;
        }
        free(ks->slots);
        ks->slots = slots;
        ks->n_slots = n_slots;
    }
    return 0;
}


/*
 * The id of the key made of the bytes from `at` to the end of the key
 * set's bytes (just appended by the caller): an old key's id, with the
 * bytes taken back, or the next id, with `*added` set. Returns -1 when
 * the memory cannot be had.
 */
static long
keyset_add(struct keyset *ks, size_t at, int *added)
{
    const char *key = ks->bytes.data + at;
    size_t      len = ks->bytes.len - at;
    uint64_t    h;
    size_t      i;

    *added = 0;
    if (ks->bytes.failed || keyset_grow(ks) != 0) {
        return -1;
    }
    h = hash_bytes(key, len);
    for (i = (size_t) h & (ks->n_slots - 1); ks->slots[i] != 0;
         i = (i + 1) & (ks->n_slots - 1))
    {
        const struct key *k = &ks->keys[ks->slots[i] - 1];
        if (k->hash == h && k->len == len
            && memcmp(ks->bytes.data + k->at, key, len) == 0)
        {
            ks->bytes.len = at;
            return (long) ks->slots[i] - 1;
        }
    }
    ks->keys[ks->n].hash = h;
    ks->keys[ks->n].at = at;
    ks->keys[ks->n].len = len;
    ks->slots[i] = (uint32_t) ks->n + 1;
    *added = 1;
    return (long) ks->n++;
}


/* -------------------------------------------------------------------------
 * The walk: ids
 * ---------------------------------------------------------------------- */

/* The id of the rhythm of `ticks`, made when new. Returns -1 when no
 * value fits. */
static int
rhythm_id(struct writer *w, int ticks)
{
    struct wtt_tab_value v;

    for (int id = 0; id < w->n_rhythms; id++) {
        if (w->rhythm_ticks[id] == ticks) {
            return id;
        }
    }
    if (wtt_tab_value_of(ticks, w->doc->divisions, &v) != 0) {
        return -1;
    }
    w->rhythm_ticks[w->n_rhythms] = ticks;
    return w->n_rhythms++;
}


/* Appends the key of one sounding of note `ni` to the note key set's
 * bytes: a number when it has no techniques and starts no legato here,
 * else text ("K origin type[semitones][r]..."). */
static void
put_note_key(struct writer *w, int ni, int first, int last, int origin)
{
    const struct wtt_tabdoc   *doc = w->doc;
    const struct wtt_tab_note *n = &doc->notes[ni - 1];
    struct wtt_tab_text       *t = &w->notes.bytes;
    long long                  key = ((long long) n->string * 256 + n->fret)
                                     * 4 + (first ? 0 : 2) + (last ? 0 : 1);

    if ((!first || n->n_tech == 0) && origin == WTT_ORIGIN_NONE) {
        char num[1 + sizeof(key)];
        num[0] = 'n';
        memcpy(num + 1, &key, sizeof(key));
        wtt_tab_text_put(t, num, sizeof(num));
        return;
    }
    wtt_tab_text_lit(t, "s");
    wtt_tab_text_luanum(t, (double) key);
    if (origin == WTT_ORIGIN_HOPO) {
        wtt_tab_text_lit(t, " hopo");
    } else if (origin == WTT_ORIGIN_SLIDE) {
        wtt_tab_text_lit(t, " slide");
    } else {
        wtt_tab_text_lit(t, " ");
    }
    if (!first) {
        return;
    }
    for (size_t j = 0; j < n->n_tech; j++) {
        const struct wtt_tab_technique *tc =
            &doc->techniques[n->tech_first + j];
        wtt_tab_text_lit(t, " ");
        wtt_tab_text_str(t, &tc->type);
        if (tc->has & WTT_TECH_HAS_SEMITONES) {
            wtt_tab_text_luanum(t, tc->semitones);
        }
        if ((tc->has & WTT_TECH_HAS_RELEASE) && tc->release) {
            wtt_tab_text_lit(t, "r");
        }
    }
}


static int
out_of_memory(struct writer *w)
{
    snprintf(w->err, w->err_size, "gp: out of memory");
    return -1;
}


/* The note id of note `ni` sounding in event `k`. Returns -1 with the
 * error. */
static long
note_id(struct writer *w, const struct wtt_tab_measure *m, size_t k, int ni,
        int first, int last)
{
    const struct wtt_tabdoc    *doc = w->doc;
    const struct wtt_tab_event *ev = &doc->events[k];
    size_t                      at = w->notes.bytes.len;
    int                         origin, added;
    long                        id;

    if (ni < 1 || (size_t) ni > doc->n_notes) {
        snprintf(w->err, w->err_size, "gp: measure %d, event at tick %d: "
                 "note %d is not in the notes list", m->number, ev->tick, ni);
        return -1;
    }
    origin = last ? w->facts.origin[ni - 1] : WTT_ORIGIN_NONE;
    put_note_key(w, ni, first, last, origin);
    id = keyset_add(&w->notes, at, &added);
    if (id < 0) {
        return out_of_memory(w);
    }
    if (added) {
        const struct wtt_tab_note      *n = &doc->notes[ni - 1];
        const struct wtt_tab_technique *bend =
            wtt_tab_first_tech(doc, &w->facts, n, WTT_TECH_BEND);
        if (first && bend != NULL && !(bend->has & WTT_TECH_HAS_SEMITONES)) {
            snprintf(w->err, w->err_size, "gp: notes[%d]: a bend has no "
                     "semitones", ni);
            return -1;
        }
        w->note_defs[id].ni = ni;
        w->note_defs[id].first = (unsigned char) first;
        w->note_defs[id].last = (unsigned char) last;
        w->note_defs[id].origin = (unsigned char) origin;
    }
    return id;
}


/* Gives every event its beat (and rhythm), every sounding its note. */
static int
walk(struct writer *w)
{
    const struct wtt_tabdoc *doc = w->doc;

    for (size_t mi = 0; mi < doc->n_measures; mi++) {
        const struct wtt_tab_measure *m = &doc->measures[mi];
        for (size_t j = 0; j < m->n_events; j++) {
            size_t                      k = m->event_first + j;
            const struct wtt_tab_event *ev = &doc->events[k];
            int32_t                     rid = rhythm_id(w, ev->ticks);
            size_t                      nn = ev->rest ? 0 : ev->n_notes;
            size_t                      at;
            int                         added;
            long                        bid;
            if (rid < 0) {
                return wtt_tab_value_error(w->err, w->err_size, m->number,
                                           ev->ticks, doc->divisions);
            }
            for (size_t i = 0; i < nn; i++) {
                long id = note_id(w, m, k,
                                  doc->event_notes[ev->note_first + i],
                                  !ev->tied, !w->facts.tied_on[k]);
                if (id < 0) {
                    return -1;
                }
                w->nids[i] = (uint32_t) id;
            }
            /* A beat's key: its rhythm, then its notes' ids. */
            at = w->beats.bytes.len;
            wtt_tab_text_put(&w->beats.bytes, (const char *) &rid,
                             sizeof(rid));
            wtt_tab_text_put(&w->beats.bytes, (const char *) w->nids,
                             nn * sizeof(uint32_t));
            bid = keyset_add(&w->beats, at, &added);
            if (bid < 0) {
                return out_of_memory(w);
            }
            w->beat_of[k] = (uint32_t) bid;
        }
    }
    return 0;
}


/* -------------------------------------------------------------------------
 * The lists
 * ---------------------------------------------------------------------- */

#define PUT(w, lit) wtt_tab_text_lit((w)->t, lit)

static void
put_s(struct writer *w, const char *s)
{
    wtt_tab_text_put(w->t, s, strlen(s));
}


/* Text as Guitar Pro writes it, in one CDATA section; text that cannot be
 * one (it holds "]]>") is escaped instead, since alphaTab reads only the
 * last of several CDATA sections. */
static void
put_cdata(struct writer *w, const char *s, size_t n)
{
    int has_end = 0;

    for (size_t i = 0; i + 3 <= n; i++) {
        if (s[i] == ']' && s[i + 1] == ']' && s[i + 2] == '>') {
            has_end = 1;
            break;
        }
    }
    if (!has_end) {
        PUT(w, "<![CDATA[");
        wtt_tab_text_put(w->t, s, n);
        PUT(w, "]]>");
        return;
    }
    for (size_t i = 0, run = 0; i <= n; i++) {
        const char *esc = NULL;
        if (i < n) {
            switch (s[i]) {
            case '&': esc = "&amp;"; break;
            case '<': esc = "&lt;"; break;
            case '>': esc = "&gt;"; break;
            default:  continue;
            }
        }
        wtt_tab_text_put(w->t, s + run, i - run);
        if (esc != NULL) {
            put_s(w, esc);
        }
        run = i + 1;
    }
}


static void
put_head(struct writer *w)
{
    const struct wtt_tabdoc *doc = w->doc;
    const char              *name = TRACKS[w->track].name;

    PUT(w, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<GPIF>"
        "<GPVersion>7</GPVersion><Score><Title>");
    if (doc->title.s != NULL) {
        put_cdata(w, doc->title.s, doc->title.len);
    } else {
        put_cdata(w, "", 0);
    }
    PUT(w, "</Title></Score><MasterTrack><Tracks>0</Tracks><Automations>"
        "<Automation><Type>Tempo</Type><Linear>false</Linear><Bar>0</Bar>"
        "<Position>0</Position><Visible>true</Visible><Value>");
    wtt_tab_text_decimal(w->t, doc->tempo_bpm);
    PUT(w, " 2</Value></Automation></Automations>");
    if (doc->pickup_ticks > 0) {
        PUT(w, "<Anacrusis/>");
    }
    PUT(w, "</MasterTrack><Tracks><Track id=\"0\"><Name>");
    put_cdata(w, name, strlen(name));
    PUT(w, "</Name><ShortName>");
    put_cdata(w, name, strlen(name));
    PUT(w, "</ShortName><Color>200 0 0</Color><Staves><Staff><Properties>"
        "<Property name=\"CapoFret\"><Fret>");
    wtt_tab_text_int(w->t, doc->capo);
    PUT(w, "</Fret></Property><Property name=\"Tuning\"><Pitches>");
    for (int s = doc->n_strings - 1; s >= 0; s--) {
        wtt_tab_text_int(w->t, doc->tuning[s]);
        if (s > 0) {
            PUT(w, " ");
        }
    }
    PUT(w, "</Pitches></Property></Properties></Staff></Staves>"
        "<Transpose><Chromatic>0</Chromatic><Octave>");
    put_s(w, TRACKS[w->track].octave);
    PUT(w, "</Octave></Transpose><MidiConnection><Port>0</Port>"
        "<PrimaryChannel>0</PrimaryChannel><SecondaryChannel>1"
        "</SecondaryChannel></MidiConnection><Sounds><Sound><Name>");
    put_cdata(w, name, strlen(name));
    PUT(w, "</Name><Path>Midi/");
    put_s(w, TRACKS[w->track].program);
    PUT(w, "</Path><Role>Factory</Role><MIDI><LSB>0</LSB><MSB>0</MSB>"
        "<Program>");
    put_s(w, TRACKS[w->track].program);
    PUT(w, "</Program></MIDI></Sound></Sounds></Track></Tracks>");
}


/* MasterBars, Bars and Voices: one of each per measure. */
static void
put_bars(struct writer *w)
{
    const struct wtt_tabdoc *doc = w->doc;

    PUT(w, "<MasterBars>");
    for (size_t mi = 0; mi < doc->n_measures; mi++) {
        PUT(w, "<MasterBar><Key><AccidentalCount>0</AccidentalCount>"
            "<Mode>Major</Mode></Key><Time>");
        wtt_tab_text_int(w->t, doc->beats);
        PUT(w, "/");
        wtt_tab_text_int(w->t, doc->beat_type);
        PUT(w, "</Time><Bars>");
        wtt_tab_text_int(w->t, (long long) mi);
        PUT(w, "</Bars></MasterBar>");
    }
    PUT(w, "</MasterBars><Bars>");
    for (size_t mi = 0; mi < doc->n_measures; mi++) {
        PUT(w, "<Bar id=\"");
        wtt_tab_text_int(w->t, (long long) mi);
        PUT(w, "\"><Clef>");
        put_s(w, TRACKS[w->track].clef);
        PUT(w, "</Clef><Voices>");
        wtt_tab_text_int(w->t, (long long) mi);
        PUT(w, " -1 -1 -1</Voices></Bar>");
    }
    PUT(w, "</Bars><Voices>");
    for (size_t mi = 0; mi < doc->n_measures; mi++) {
        const struct wtt_tab_measure *m = &doc->measures[mi];
        PUT(w, "<Voice id=\"");
        wtt_tab_text_int(w->t, (long long) mi);
        PUT(w, "\"><Beats>");
        for (size_t j = 0; j < m->n_events; j++) {
            if (j > 0) {
                PUT(w, " ");
            }
            wtt_tab_text_int(w->t, w->beat_of[m->event_first + j]);
        }
        PUT(w, "</Beats></Voice>");
    }
    PUT(w, "</Voices>");
}


static void
put_beats(struct writer *w)
{
    PUT(w, "<Beats>");
    for (size_t id = 0; id < w->beats.n; id++) {
        const struct key *k = &w->beats.keys[id];
        const char       *bytes = w->beats.bytes.data + k->at;
        size_t            nn = k->len / sizeof(uint32_t) - 1;
        int32_t           rid;
        memcpy(&rid, bytes, sizeof(rid));
        PUT(w, "<Beat id=\"");
        wtt_tab_text_int(w->t, (long long) id);
        PUT(w, "\"><Rhythm ref=\"");
        wtt_tab_text_int(w->t, rid);
        PUT(w, "\"/>");
        if (nn > 0) {
            PUT(w, "<Notes>");
            for (size_t i = 0; i < nn; i++) {
                uint32_t nid;
                memcpy(&nid, bytes + (i + 1) * sizeof(uint32_t),
                       sizeof(nid));
                if (i > 0) {
                    PUT(w, " ");
                }
                wtt_tab_text_int(w->t, nid);
            }
            PUT(w, "</Notes>");
        }
        PUT(w, "</Beat>");
    }
    PUT(w, "</Beats>");
}


/* A bend's <Property> elements (GPIF: 25 per quarter tone, offsets
 * 0-100). */
static void
put_bend(struct writer *w, const struct wtt_tab_technique *bend)
{
    double v = 25 * wtt_tab_quarter_tones(bend->semitones);

    PUT(w, "<Property name=\"Bended\"><Enable/></Property>"
        "<Property name=\"BendOriginValue\"><Float>0</Float></Property>"
        "<Property name=\"BendOriginOffset\"><Float>0</Float></Property>");
    if ((bend->has & WTT_TECH_HAS_RELEASE) && bend->release) {
        PUT(w, "<Property name=\"BendMiddleValue\"><Float>");
        wtt_tab_text_luanum(w->t, v);
        PUT(w, "</Float></Property>"
            "<Property name=\"BendMiddleOffset1\"><Float>33</Float>"
            "</Property>"
            "<Property name=\"BendMiddleOffset2\"><Float>66</Float>"
            "</Property>"
            "<Property name=\"BendDestinationValue\"><Float>0</Float>"
            "</Property>");
    } else {
        PUT(w, "<Property name=\"BendDestinationValue\"><Float>");
        wtt_tab_text_luanum(w->t, v);
        PUT(w, "</Float></Property>");
    }
    PUT(w, "<Property name=\"BendDestinationOffset\"><Float>100</Float>"
        "</Property>");
}


/* One <Note>: `first` when its event starts the note (not a tied
 * continuation), `last` when the next event does not continue it. */
static void
put_note(struct writer *w, size_t id, const struct note_def *def)
{
    const struct wtt_tabdoc        *doc = w->doc;
    const struct wtt_tab_note      *n = &doc->notes[def->ni - 1];
    const struct wtt_tab_technique *bend;
    int                             has = def->first && n->n_tech > 0;

    PUT(w, "<Note id=\"");
    wtt_tab_text_int(w->t, (long long) id);
    PUT(w, "\">");
    if (!def->first || !def->last) {
        PUT(w, "<Tie origin=\"");
        if (def->last) {
            PUT(w, "false");
        } else {
            PUT(w, "true");
        }
        PUT(w, "\" destination=\"");
        if (def->first) {
            PUT(w, "false");
        } else {
            PUT(w, "true");
        }
        PUT(w, "\"/>");
    }
    if (has && wtt_tab_first_tech(doc, &w->facts, n, WTT_TECH_LET_RING)) {
        PUT(w, "<LetRing/>");
    }
    if (has && wtt_tab_first_tech(doc, &w->facts, n, WTT_TECH_VIBRATO)) {
        PUT(w, "<Vibrato>Slight</Vibrato>");
    }
    PUT(w, "<Properties><Property name=\"String\"><String>");
    wtt_tab_text_int(w->t, (long long) doc->n_strings - n->string);
    PUT(w, "</String></Property><Property name=\"Fret\"><Fret>");
    wtt_tab_text_int(w->t, n->fret);
    PUT(w, "</Fret></Property>");
    if (def->origin == WTT_ORIGIN_HOPO) {
        PUT(w, "<Property name=\"HopoOrigin\"><Enable/></Property>");
    } else if (def->origin == WTT_ORIGIN_SLIDE) {
        PUT(w, "<Property name=\"Slide\"><Flags>2</Flags></Property>");
    }
    if (has) {
        if (wtt_tab_first_tech(doc, &w->facts, n, WTT_TECH_HAMMER_ON)
            || wtt_tab_first_tech(doc, &w->facts, n, WTT_TECH_PULL_OFF))
        {
            PUT(w, "<Property name=\"HopoDestination\"><Enable/></Property>");
        }
        bend = wtt_tab_first_tech(doc, &w->facts, n, WTT_TECH_BEND);
        if (bend != NULL) {
            put_bend(w, bend);
        }
    }
    PUT(w, "</Properties></Note>");
}


static void
put_rhythms(struct writer *w)
{
    PUT(w, "<Rhythms>");
    for (int id = 0; id < w->n_rhythms; id++) {
        struct wtt_tab_value v;
        /* Every rhythm kept has a value (rhythm_id). */
        (void) wtt_tab_value_of(w->rhythm_ticks[id], w->doc->divisions, &v);
        PUT(w, "<Rhythm id=\"");
        wtt_tab_text_int(w->t, id);
        PUT(w, "\"><NoteValue>");
        put_s(w, note_value_name(v.value));
        PUT(w, "</NoteValue>");
        if (v.dots > 0) {
            PUT(w, "<AugmentationDot count=\"1\"/>");
        }
        if (v.tuplet) {
            PUT(w, "<PrimaryTuplet num=\"3\" den=\"2\"/>");
        }
        PUT(w, "</Rhythm>");
    }
    PUT(w, "</Rhythms>");
}


static void
put_piece(struct writer *w)
{
    put_head(w);
    put_bars(w);
    put_beats(w);
    PUT(w, "<Notes>");
    for (size_t id = 0; id < w->notes.n; id++) {
        put_note(w, id, &w->note_defs[id]);
    }
    PUT(w, "</Notes>");
    put_rhythms(w);
    PUT(w, "</GPIF>\n");
}


static void
writer_free(struct writer *w)
{
    keyset_free(&w->notes);
    keyset_free(&w->beats);
    free(w->note_defs);
    free(w->beat_of);
    free(w->nids);
    wtt_tab_facts_free(&w->facts);
}


/* The per-event and per-note arrays of the walk. */
static int
writer_alloc(struct writer *w)
{
    const struct wtt_tabdoc *doc = w->doc;
    size_t                   most = 1;

    if (doc->n_events >= UINT32_MAX / 2 || doc->n_event_notes >= UINT32_MAX / 2)
    {
        return -1;
    }
    for (size_t k = 0; k < doc->n_events; k++) {
        if (doc->events[k].n_notes > most) {
            most = doc->events[k].n_notes;
        }
    }
    w->note_defs = malloc((doc->n_event_notes + 1) * sizeof(struct note_def));
    w->beat_of = malloc((doc->n_events + 1) * sizeof(uint32_t));
    w->nids = malloc(most * sizeof(uint32_t));
    if (w->note_defs == NULL || w->beat_of == NULL || w->nids == NULL
        || wtt_tab_facts_init(&w->facts, doc) != 0)
    {
        return -1;
    }
    return 0;
}


int
wtt_tab_gpif(const struct wtt_tabdoc *doc, struct wtt_tab_text *out,
             char *err, size_t err_size)
{
    struct writer w;
    const char   *why;
    int           rc;

    if (wtt_tabdoc_check(doc, err, err_size) != 0) {
        return -1;
    }
    memset(&w, 0, sizeof(w));
    w.doc = doc;
    w.t = out;
    w.err = err;
    w.err_size = err_size;
    w.track = wtt_tab_track_index(doc);
    wtt_tab_text_init(&w.notes.bytes);
    wtt_tab_text_init(&w.beats.bytes);
    if (writer_alloc(&w) != 0) {
        writer_free(&w);
        return out_of_memory(&w);
    }
    rc = walk(&w);
    if (rc == 0) {
        /* About 100 bytes a measure and 30 a note, beats and notes
         * shared; growing past it copies the text. */
        if (doc->n_measures + doc->n_events + doc->n_event_notes
            < WTT_TAB_TEXT_MAX / 256)
        {
            (void) wtt_tab_text_reserve(out, 160 * doc->n_measures
                                             + 16 * doc->n_events
                                             + 200 * w.notes.n
                                             + 24 * w.beats.n + 2048);
        }
        put_piece(&w);
        if (wtt_tab_text_status(out, &why) != 0) {
            snprintf(err, err_size, "gp: %s", why);
            rc = -1;
        }
    }
    writer_free(&w);
    return rc;
}
