/*
 * wtt_tab_musicxml.c: MusicXML 4.0 of a tab document (see wtt_tabdoc.h
 * and docs/tab.md, "MusicXML"): one part with two staves, standard
 * notation on staff 1 and TAB on staff 2, the TAB staff carrying the
 * tuning, the capo and every note's string and fret.
 *
 * Both staves are written from one pass over the events per staff; what
 * the events need of the notes (where each note first and last sounds,
 * which start a legato, ring or have vibrato) is gathered in one pass
 * over the notes first.
 */
#include "wtt_tabdoc.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define F_VIBRATO       1u      /* a note with vibrato */
#define F_RING          2u      /* a note that lets ring */
#define F_START_SHIFT   4       /* the legato a note starts (tech kind) */

/* A triplet group is complete once its lengths add up to a multiple of 3
 * sixteenth-triplets (6 ticks at 12 divisions): no triplet length is a
 * multiple of 3 ticks, so no shorter run of them fills whole straight
 * time. */
#define TRIPLET_GROUP   6

static const char HEADER[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n"
    "<!DOCTYPE score-partwise PUBLIC"
    " \"-//Recordare//DTD MusicXML 4.0 Partwise//EN\""
    " \"http://www.musicxml.org/dtds/partwise.dtd\">\n"
    "<score-partwise version=\"4.0\">\n";

/* Pitch classes spelled with sharps. */
static const char STEP[12] = { 'C', 'C', 'D', 'D', 'E', 'F',
                               'F', 'G', 'G', 'A', 'A', 'B' };
static const char SHARP[12] = { 0, 1, 0, 1, 0, 0, 1, 0, 1, 0, 1, 0 };

/* Notatable lengths in ticks at 12 divisions (docs/tab.md). */
static const struct {
    const char *type;
    int         dots;
    int         triplet;
} LENGTHS[49] = {
    [48] = { "whole", 0, 0 },   [36] = { "half", 1, 0 },
    [24] = { "half", 0, 0 },    [18] = { "quarter", 1, 0 },
    [12] = { "quarter", 0, 0 }, [9] = { "eighth", 1, 0 },
    [6] = { "eighth", 0, 0 },   [3] = { "16th", 0, 0 },
    [16] = { "half", 0, 1 },    [8] = { "quarter", 0, 1 },
    [4] = { "eighth", 0, 1 },   [2] = { "16th", 0, 1 },
};

/* Clef of the notation staff, written at sounding pitch (the octave clefs
 * say the instrument sounds an octave below the usual written range). */
static const char CLEF_GUITAR[] =
    "<clef number=\"1\"><sign>G</sign><line>2</line>"
    "<clef-octave-change>-1</clef-octave-change></clef>";
static const char CLEF_BASS[] =
    "<clef number=\"1\"><sign>F</sign><line>4</line>"
    "<clef-octave-change>-1</clef-octave-change></clef>";
static const char CLEF_UKULELE[] =
    "<clef number=\"1\"><sign>G</sign><line>2</line></clef>";
/* Line 5 as other writers put it; musicxml2ly knows a TAB clef only
 * there. */
static const char TAB_CLEF[] =
    "<clef number=\"2\"><sign>TAB</sign><line>5</line></clef>";

/* Per instrument: part name, General MIDI program (1-based, as MusicXML
 * counts) and clef; the first is the default. */
static const struct {
    const char *instrument;
    const char *name;
    const char *program;
    const char *clef;
} PARTS[] = {
    { "guitar", "Guitar", "26", CLEF_GUITAR },
    { "guitar7", "7-string Guitar", "26", CLEF_GUITAR },
    { "bass", "Bass", "34", CLEF_BASS },
    { "bass5", "5-string Bass", "34", CLEF_BASS },
    { "ukulele", "Ukulele", "25", CLEF_UKULELE },
};

static const char LET_RING[] =
    "<direction placement=\"below\"><direction-type>"
    "<words>let ring</words></direction-type><staff>2</staff>"
    "</direction>\n";

/* Vibrato is a wavy line from the first event with it to the next event
 * without it, on each staff (number 1 and 2). Start and stop never share
 * a note: MuseScore 3 keeps one wavy-line per note and LilyPond cannot end
 * a spanner where it begins. A vibrato on the last event stays open. */
static const char *const WAVY_START[2] = {
    "<ornaments><wavy-line type=\"start\" number=\"1\"/></ornaments>",
    "<ornaments><wavy-line type=\"start\" number=\"2\"/></ornaments>",
};
static const char *const WAVY_STOP[2] = {
    "<ornaments><wavy-line type=\"stop\" number=\"1\"/></ornaments>",
    "<ornaments><wavy-line type=\"stop\" number=\"2\"/></ornaments>",
};

static const char TUPLET_START[] = "<tuplet type=\"start\" bracket=\"yes\"/>";
static const char TUPLET_STOP[] = "<tuplet type=\"stop\"/>";

struct writer {
    const struct wtt_tabdoc *doc;
    struct wtt_tab_text     *t;
    uint32_t                *first_ev;  /* per note: its first event + 1 */
    uint32_t                *last_ev;   /* per note: its last event + 1 */
    unsigned char           *facts;     /* per note: F_* */
    unsigned char           *kinds;     /* per technique: its kind */
    double                   full;      /* a full measure's ticks */
    int                      ringing;   /* the last sounding event rang */
    int                      wavy_open[2];
    int                      group[2];  /* triplet sum per staff */
    char                    *err;
    size_t                   err_size;
};

/* The length of an event as MusicXML writes it. */
struct length {
    int         ticks;
    int         t12;        /* at 12 divisions */
    const char *type;
    int         dots;
    int         triplet;
};


#define PUT(w, lit) wtt_tab_text_lit((w)->t, lit)

static void
put_s(struct writer *w, const char *s)
{
    wtt_tab_text_put(w->t, s, strlen(s));
}


/* Floor division and modulo, as Lua's // and %. */
static int
floor_div(int a, int b)
{
    int q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}


static int
floor_mod(int a, int b)
{
    return a - floor_div(a, b) * b;
}


/* A decimal without trailing zeros: 120, 117.5, 0.5 (as the Lua writer
 * made it: %d when whole, else %.3f less its trailing zeros). */
static void
put_decimal(struct writer *w, double x)
{
    if (x == floor(x)) {
        wtt_tab_text_luaint(w->t, x);
        return;
    }
    wtt_tab_text_fixed3(w->t, x);
    while (w->t->len > 0 && w->t->data[w->t->len - 1] == '0') {
        w->t->len--;
    }
    if (w->t->data != NULL) {
        w->t->data[w->t->len] = '\0';
    }
}


static void
put_escaped(struct writer *w, const struct wtt_tab_str *s)
{
    size_t run = 0;

    for (size_t i = 0; i < s->len; i++) {
        const char *esc;
        switch (s->s[i]) {
        case '&':  esc = "&amp;"; break;
        case '<':  esc = "&lt;"; break;
        case '>':  esc = "&gt;"; break;
        case '"':  esc = "&quot;"; break;
        case '\'': esc = "&apos;"; break;
        default:   continue;
        }
        wtt_tab_text_put(w->t, s->s + run, i - run);
        put_s(w, esc);
        run = i + 1;
    }
    wtt_tab_text_put(w->t, s->s + run, s->len - run);
}


static void
put_pitch(struct writer *w, int midi)
{
    int pc = floor_mod(midi, 12);
    char step[1] = { STEP[pc] };

    PUT(w, "<pitch><step>");
    wtt_tab_text_put(w->t, step, 1);
    PUT(w, "</step>");
    if (SHARP[pc]) {
        PUT(w, "<alter>1</alter>");
    }
    PUT(w, "<octave>");
    wtt_tab_text_int(w->t, floor_div(midi, 12) - 1);
    PUT(w, "</octave></pitch>");
}


static int
part_of(const struct wtt_tabdoc *doc)
{
    const struct wtt_tab_str *inst = &doc->instrument;

    if (inst->s == NULL) {
        return 0;
    }
    for (size_t i = 0; i < sizeof(PARTS) / sizeof(PARTS[0]); i++) {
        if (strlen(PARTS[i].instrument) == inst->len
            && memcmp(PARTS[i].instrument, inst->s, inst->len) == 0)
        {
            return (int) i;
        }
    }
    return 0;
}


static void
put_head(struct writer *w)
{
    const struct wtt_tabdoc *doc = w->doc;
    int                      part = part_of(doc);

    PUT(w, HEADER);
    if (doc->title.s != NULL) {
        PUT(w, "<work><work-title>");
        put_escaped(w, &doc->title);
        PUT(w, "</work-title></work>\n");
    }
    PUT(w, "<identification><encoding><software>wtt</software></encoding>"
        "</identification>\n<part-list>"
        "<score-part id=\"P1\"><part-name>");
    put_s(w, PARTS[part].name);
    PUT(w, "</part-name><score-instrument id=\"P1-I1\"><instrument-name>");
    put_s(w, PARTS[part].name);
    PUT(w, "</instrument-name></score-instrument>"
        "<midi-instrument id=\"P1-I1\"><midi-channel>1</midi-channel>"
        "<midi-program>");
    put_s(w, PARTS[part].program);
    PUT(w, "</midi-program></midi-instrument>"
        "</score-part></part-list>\n<part id=\"P1\">\n");
}


static void
put_attributes(struct writer *w)
{
    const struct wtt_tabdoc *doc = w->doc;
    int                      n = doc->n_strings;

    PUT(w, "<attributes><divisions>");
    wtt_tab_text_int(w->t, doc->divisions);
    PUT(w, "</divisions><key><fifths>0</fifths></key><time><beats>");
    wtt_tab_text_int(w->t, doc->beats);
    PUT(w, "</beats><beat-type>");
    wtt_tab_text_int(w->t, doc->beat_type);
    PUT(w, "</beat-type></time><staves>2</staves>");
    put_s(w, PARTS[part_of(doc)].clef);
    PUT(w, TAB_CLEF);
    PUT(w, "<staff-details number=\"2\"><staff-lines>");
    wtt_tab_text_int(w->t, n);
    PUT(w, "</staff-lines>");
    /* Line 1 is the lowest string, the last of the tuning. */
    for (int line = 1; line <= n; line++) {
        int  midi = doc->tuning[n - line];
        int  pc = floor_mod(midi, 12);
        char step[1] = { STEP[pc] };
        PUT(w, "<staff-tuning line=\"");
        wtt_tab_text_int(w->t, line);
        PUT(w, "\"><tuning-step>");
        wtt_tab_text_put(w->t, step, 1);
        PUT(w, "</tuning-step>");
        if (SHARP[pc]) {
            PUT(w, "<tuning-alter>1</tuning-alter>");
        }
        PUT(w, "<tuning-octave>");
        wtt_tab_text_int(w->t, floor_div(midi, 12) - 1);
        PUT(w, "</tuning-octave></staff-tuning>");
    }
    if (doc->capo > 0) {
        PUT(w, "<capo>");
        wtt_tab_text_int(w->t, doc->capo);
        PUT(w, "</capo>");
    }
    PUT(w, "</staff-details></attributes>\n");
}


static void
put_tempo(struct writer *w)
{
    PUT(w, "<direction placement=\"above\"><direction-type>"
        "<metronome><beat-unit>quarter</beat-unit><per-minute>");
    put_decimal(w, w->doc->tempo_bpm);
    PUT(w, "</per-minute></metronome></direction-type><staff>1</staff>"
        "<sound tempo=\"");
    put_decimal(w, w->doc->tempo_bpm);
    PUT(w, "\"/></direction>\n");
}


/* The length of `ticks`; 0, or -1 when it is not one notatable value. */
static int
length_of(const struct writer *w, int ticks, struct length *len)
{
    double t12 = (double) ticks * 12 / w->doc->divisions;
    int    i;

    if (!(t12 >= 0 && t12 <= 48) || t12 != floor(t12)) {
        return -1;
    }
    i = (int) t12;
    if (LENGTHS[i].type == NULL) {
        return -1;
    }
    len->ticks = ticks;
    len->t12 = i;
    len->type = LENGTHS[i].type;
    len->dots = LENGTHS[i].dots;
    len->triplet = LENGTHS[i].triplet;
    return 0;
}


static void
put_duration(struct writer *w, const struct length *len)
{
    PUT(w, "<duration>");
    wtt_tab_text_int(w->t, len->ticks);
    PUT(w, "</duration>");
}


/* What follows the duration (and ties): voice, type, dots, the 3:2. */
static void
put_type(struct writer *w, const struct length *len, int staff)
{
    if (staff == 1) {
        PUT(w, "<voice>1</voice><type>");
    } else {
        PUT(w, "<voice>5</voice><type>");
    }
    put_s(w, len->type);
    PUT(w, "</type>");
    for (int i = 0; i < len->dots; i++) {
        PUT(w, "<dot/>");
    }
    if (len->triplet) {
        PUT(w, "<time-modification><actual-notes>3</actual-notes>"
            "<normal-notes>2</normal-notes></time-modification>");
    }
}


static void
put_staff(struct writer *w, int staff)
{
    if (staff == 1) {
        PUT(w, "<staff>1</staff>");
    } else {
        PUT(w, "<staff>2</staff>");
    }
}


/* ' number="S"': slurs, slides and legato marks are numbered by string,
 * since a legato pair stays on one string and pairs on different strings
 * may overlap. */
static void
put_number(struct writer *w, int string)
{
    PUT(w, " number=\"");
    wtt_tab_text_int(w->t, string);
    PUT(w, "\"");
}


static const char *
legato_tag(int kind)
{
    return kind == WTT_TECH_HAMMER_ON ? "hammer-on" : "pull-off";
}


static void
put_bend(struct writer *w, const struct wtt_tab_technique *tc)
{
    double semitones = (tc->has & WTT_TECH_HAS_SEMITONES) ? tc->semitones
                                                          : 1;

    PUT(w, "<bend><bend-alter>");
    put_decimal(w, semitones);
    PUT(w, "</bend-alter></bend>");
    if ((tc->has & WTT_TECH_HAS_RELEASE) && tc->release) {
        PUT(w, "<bend><bend-alter>-");
        put_decimal(w, semitones);
        PUT(w, "</bend-alter><release/></bend>");
    }
}


/* What a note carries beyond its string and fret, for one staff. */
struct marks {
    int         first;      /* the note's first event: its techniques */
    int         tie_stop;
    int         tie_start;
    int         start;      /* the legato it starts here (tech kind), 0 */
    const char *tuplet_start;
    const char *tuplet_stop;
    const char *wavy;
};


/* The <technical> element's content on the TAB staff. */
static void
put_technical(struct writer *w, const struct wtt_tab_note *n,
              const struct marks *mk)
{
    const struct wtt_tabdoc *doc = w->doc;

    PUT(w, "<technical><string>");
    wtt_tab_text_int(w->t, n->string);
    PUT(w, "</string><fret>");
    wtt_tab_text_int(w->t, n->fret);
    PUT(w, "</fret>");
    if (mk->first) {
        for (size_t j = 0; j < n->n_tech; j++) {
            const struct wtt_tab_technique *tc =
                &doc->techniques[n->tech_first + j];
            int kind = w->kinds[n->tech_first + j];
            if (kind == WTT_TECH_HAMMER_ON || kind == WTT_TECH_PULL_OFF) {
                PUT(w, "<");
                put_s(w, legato_tag(kind));
                put_number(w, n->string);
                PUT(w, " type=\"stop\"/>");
            } else if (kind == WTT_TECH_BEND) {
                put_bend(w, tc);
            }
        }
    }
    if (mk->start == WTT_TECH_HAMMER_ON || mk->start == WTT_TECH_PULL_OFF) {
        PUT(w, "<");
        put_s(w, legato_tag(mk->start));
        put_number(w, n->string);
        PUT(w, " type=\"start\">");
        if (mk->start == WTT_TECH_HAMMER_ON) {
            PUT(w, "H</hammer-on>");
        } else {
            PUT(w, "P</pull-off>");
        }
    }
    PUT(w, "</technical>");
}


/* The <notations> of a note: ties, the tuplet bracket, legato slurs and
 * marks, bends, the wavy line; on the TAB staff the string and fret. */
static void
put_notations(struct writer *w, const struct wtt_tab_note *n, int staff,
              const struct marks *mk)
{
    int slurs = 0;

    if (mk->first) {
        for (size_t j = 0; j < n->n_tech; j++) {
            int kind = w->kinds[n->tech_first + j];
            if (kind == WTT_TECH_HAMMER_ON || kind == WTT_TECH_PULL_OFF
                || kind == WTT_TECH_SLIDE)
            {
                slurs = 1;
            }
        }
    }
    if (staff == 1 && !mk->tie_stop && !mk->tie_start && !mk->tuplet_start
        && !mk->tuplet_stop && !slurs && !mk->start && !mk->wavy)
    {
        return;
    }
    PUT(w, "<notations>");
    if (mk->tie_stop) {
        PUT(w, "<tied type=\"stop\"/>");
    }
    if (mk->tie_start) {
        PUT(w, "<tied type=\"start\"/>");
    }
    if (mk->tuplet_start) {
        put_s(w, mk->tuplet_start);
    }
    if (mk->tuplet_stop) {
        put_s(w, mk->tuplet_stop);
    }
    if (mk->first) {
        for (size_t j = 0; j < n->n_tech; j++) {
            int kind = w->kinds[n->tech_first + j];
            if (kind == WTT_TECH_HAMMER_ON || kind == WTT_TECH_PULL_OFF) {
                PUT(w, "<slur type=\"stop\"");
                put_number(w, n->string);
                PUT(w, "/>");
            } else if (kind == WTT_TECH_SLIDE) {
                PUT(w, "<slide type=\"stop\"");
                put_number(w, n->string);
                PUT(w, "/>");
            }
        }
    }
    if (mk->start == WTT_TECH_SLIDE) {
        PUT(w, "<slide type=\"start\" line-type=\"solid\"");
        put_number(w, n->string);
        PUT(w, "/>");
    } else if (mk->start) {
        PUT(w, "<slur type=\"start\"");
        put_number(w, n->string);
        PUT(w, "/>");
    }
    if (staff == 2) {
        put_technical(w, n, mk);
    }
    if (mk->wavy) {
        put_s(w, mk->wavy);
    }
    PUT(w, "</notations>");
}


/* Whether note `ni` is among the notes of event `e`. */
static int
event_has(const struct wtt_tabdoc *doc, const struct wtt_tab_event *e,
          int ni)
{
    const int *v = doc->event_notes + e->note_first;

    for (size_t i = 0; i < e->n_notes; i++) {
        if (v[i] == ni) {
            return 1;
        }
    }
    return 0;
}


/* One staff's notes (or rest) for event `k` of the piece. Returns 0, or
 * -1 with the event's part of the error message. */
static int
put_event(struct writer *w, size_t k, int staff, int full_rest,
          const char *wavy)
{
    const struct wtt_tabdoc    *doc = w->doc;
    const struct wtt_tab_event *ev = &doc->events[k];
    const struct wtt_tab_event *next = NULL;
    const char                 *tup_start = NULL, *tup_stop = NULL;
    struct length               len;

    if (length_of(w, ev->ticks, &len) != 0) {
        snprintf(w->err, w->err_size, "event at tick %d: %d ticks is not a "
                 "notatable length", ev->tick, ev->ticks);
        return -1;
    }
    /* Tuplet brackets: start on the first triplet after straight time,
     * stop once the group fills whole straight time. */
    if (len.triplet) {
        int *sum = &w->group[staff - 1];
        if (*sum == 0) {
            tup_start = TUPLET_START;
        }
        *sum += len.t12;
        if (*sum % TRIPLET_GROUP == 0) {
            tup_stop = TUPLET_STOP;
            *sum = 0;
        }
    }
    if (ev->rest) {
        if (full_rest) {
            PUT(w, "<note><rest measure=\"yes\"/>");
        } else {
            PUT(w, "<note><rest/>");
        }
        put_duration(w, &len);
        put_type(w, &len, staff);
        put_staff(w, staff);
        if (tup_start || tup_stop || wavy) {
            PUT(w, "<notations>");
            if (tup_start) {
                PUT(w, TUPLET_START);
            }
            if (tup_stop) {
                PUT(w, TUPLET_STOP);
            }
            if (wavy) {
                put_s(w, wavy);
            }
            PUT(w, "</notations>");
        }
        PUT(w, "</note>\n");
        return 0;
    }
    if (k + 1 < doc->n_events && doc->events[k + 1].tied) {
        next = &doc->events[k + 1];
    }
    for (size_t i = 0; i < ev->n_notes; i++) {
        int                        ni = doc->event_notes[ev->note_first + i];
        const struct wtt_tab_note *n;
        struct marks               mk;

        if (ni < 1 || (size_t) ni > doc->n_notes
            || doc->notes[ni - 1].string < 1
            || doc->notes[ni - 1].string > doc->n_strings)
        {
            snprintf(w->err, w->err_size, "event at tick %d: note %d has no "
                     "string and fret on this instrument", ev->tick, ni);
            return -1;
        }
        n = &doc->notes[ni - 1];
        mk.first = w->first_ev[ni - 1] == k + 1;
        mk.tie_stop = ev->tied;
        mk.tie_start = next != NULL && event_has(doc, next, ni);
        mk.start = w->last_ev[ni - 1] == k + 1
                   ? w->facts[ni - 1] >> F_START_SHIFT : 0;
        mk.tuplet_start = i == 0 ? tup_start : NULL;
        mk.tuplet_stop = i == 0 ? tup_stop : NULL;
        mk.wavy = i == 0 ? wavy : NULL;

        if (i > 0) {
            PUT(w, "<note><chord/>");
        } else {
            PUT(w, "<note>");
        }
        put_pitch(w, doc->tuning[n->string - 1] + doc->capo + n->fret);
        put_duration(w, &len);
        if (mk.tie_stop) {
            PUT(w, "<tie type=\"stop\"/>");
        }
        if (mk.tie_start) {
            PUT(w, "<tie type=\"start\"/>");
        }
        put_type(w, &len, staff);
        put_staff(w, staff);
        put_notations(w, n, staff, &mk);
        PUT(w, "</note>\n");
    }
    return 0;
}


/* Whether any note of event `e` has `flag`. */
static int
any_note(const struct writer *w, const struct wtt_tab_event *e,
         unsigned flag)
{
    const int *v = w->doc->event_notes + e->note_first;

    for (size_t i = 0; i < e->n_notes; i++) {
        if (v[i] >= 1 && (size_t) v[i] <= w->doc->n_notes
            && (w->facts[v[i] - 1] & flag))
        {
            return 1;
        }
    }
    return 0;
}


static int
put_measure(struct writer *w, const struct wtt_tab_measure *m, size_t mi)
{
    const struct wtt_tabdoc *doc = w->doc;
    int full_rest = m->n_events == 1 && (double) m->ticks == w->full;

    PUT(w, "<measure number=\"");
    wtt_tab_text_int(w->t, m->number);
    if (m->number == 0) {
        PUT(w, "\" implicit=\"yes\">\n");
    } else {
        PUT(w, "\">\n");
    }
    if (mi == 0) {
        put_attributes(w);
        put_tempo(w);
    }
    /* A measure starts a new tuplet group whatever the last one did. */
    w->group[0] = w->group[1] = 0;
    for (int staff = 1; staff <= 2; staff++) {
        if (staff == 2) {
            PUT(w, "<backup><duration>");
            wtt_tab_text_int(w->t, m->ticks);
            PUT(w, "</duration></backup>\n");
        }
        for (size_t j = 0; j < m->n_events; j++) {
            size_t                      k = m->event_first + j;
            const struct wtt_tab_event *ev = &doc->events[k];
            const char                 *wavy = NULL;
            int                         vib;
            if (staff == 2 && !ev->tied && !ev->rest) {
                int rs = any_note(w, ev, F_RING);
                if (rs && !w->ringing) {
                    PUT(w, LET_RING);
                }
                w->ringing = rs;
            }
            vib = any_note(w, ev, F_VIBRATO);
            if (vib != w->wavy_open[staff - 1]) {
                wavy = vib ? WAVY_START[staff - 1] : WAVY_STOP[staff - 1];
                w->wavy_open[staff - 1] = vib;
            }
            if (put_event(w, k, staff, full_rest, wavy) != 0) {
                char why[WTT_TAB_ERR_SIZE];
                snprintf(why, sizeof(why), "%s", w->err);
                snprintf(w->err, w->err_size, "musicxml: measure %d, %s",
                         m->number, why);
                return -1;
            }
        }
    }
    if (mi + 1 == doc->n_measures) {
        PUT(w, "<barline location=\"right\"><bar-style>light-heavy"
            "</bar-style></barline>\n");
    }
    PUT(w, "</measure>\n");
    return 0;
}


/* Per note: its first and last event, what it starts and has; per
 * technique, its kind. */
static int
note_facts(struct writer *w)
{
    const struct wtt_tabdoc *doc = w->doc;
    size_t                   n = doc->n_notes;

    if (doc->n_events >= UINT32_MAX || n > SIZE_MAX / 16
        || doc->n_techniques > SIZE_MAX / 2)
    {
        snprintf(w->err, w->err_size, "musicxml: too many events or notes");
        return -1;
    }
    w->first_ev = calloc(1, n * (2 * sizeof(uint32_t) + 1)
                            + doc->n_techniques + 1);
    if (w->first_ev == NULL) {
        snprintf(w->err, w->err_size, "musicxml: out of memory");
        return -1;
    }
    w->last_ev = w->first_ev + n;
    w->facts = (unsigned char *) (w->last_ev + n);
    w->kinds = w->facts + n;
    for (size_t i = 0; i < doc->n_techniques; i++) {
        w->kinds[i] = (unsigned char) wtt_tab_tech_kind(&doc->techniques[i]
                                                        .type);
    }
    for (size_t i = 0; i < n; i++) {
        const struct wtt_tab_note *note = &doc->notes[i];
        for (size_t j = 0; j < note->n_tech; j++) {
            const struct wtt_tab_technique *tc =
                &doc->techniques[note->tech_first + j];
            int kind = w->kinds[note->tech_first + j];
            if ((tc->has & WTT_TECH_HAS_FROM)
                && (kind == WTT_TECH_HAMMER_ON || kind == WTT_TECH_PULL_OFF
                    || kind == WTT_TECH_SLIDE))
            {
                /* The latest legato from a note wins, as in the Lua. */
                if (tc->from >= 1 && (size_t) tc->from <= n) {
                    unsigned char *f = &w->facts[tc->from - 1];
                    *f = (unsigned char) ((*f & ((1u << F_START_SHIFT) - 1))
                                          | (kind << F_START_SHIFT));
                }
            } else if (kind == WTT_TECH_VIBRATO) {
                w->facts[i] |= F_VIBRATO;
            }
            if (kind == WTT_TECH_LET_RING) {
                w->facts[i] |= F_RING;
            }
        }
    }
    for (size_t k = 0; k < doc->n_events; k++) {
        const struct wtt_tab_event *e = &doc->events[k];
        for (size_t i = 0; i < e->n_notes; i++) {
            int ni = doc->event_notes[e->note_first + i];
            if (ni >= 1 && (size_t) ni <= n) {
                if (w->first_ev[ni - 1] == 0) {
                    w->first_ev[ni - 1] = (uint32_t) k + 1;
                }
                w->last_ev[ni - 1] = (uint32_t) k + 1;
            }
        }
    }
    return 0;
}


static int
put_piece(struct writer *w)
{
    const struct wtt_tabdoc *doc = w->doc;

    /* Room for the whole score at once (about 400 bytes a note), rather
     * than growing it by copies. A failure shows in the status later. */
    if (doc->n_notes < WTT_TAB_TEXT_MAX / 448) {
        (void) wtt_tab_text_reserve(w->t, 448 * doc->n_notes + 4096);
    }
    put_head(w);
    for (size_t mi = 0; mi < doc->n_measures; mi++) {
        if (put_measure(w, &doc->measures[mi], mi) != 0) {
            return -1;
        }
    }
    PUT(w, "</part>\n</score-partwise>\n");
    return 0;
}


int
wtt_tab_musicxml(const struct wtt_tabdoc *doc, struct wtt_tab_text *out,
                 char *err, size_t err_size)
{
    struct writer            w;
    struct wtt_tabdoc        silence;
    struct wtt_tab_measure   bar;
    struct wtt_tab_event     rest;
    const char              *why;
    int                      rc;

    if (wtt_tabdoc_check(doc, err, err_size) != 0) {
        return -1;
    }
    memset(&w, 0, sizeof(w));
    w.t = out;
    w.err = err;
    w.err_size = err_size;
    w.full = (double) doc->beats * doc->divisions * 4 / doc->beat_type;
    if (doc->n_measures == 0) {
        /* Silence still makes a score: one bar of rest. */
        if (!(w.full >= 0 && w.full <= 1e9) || w.full != floor(w.full)) {
            /* As the Lua writer's %d put it: truncated. */
            long long shown = w.full >= -9e18 && w.full <= 9e18
                              ? (long long) w.full : (long long) INT64_MIN;
            snprintf(err, err_size, "musicxml: measure 1, event at tick 0: "
                     "%lld ticks is not a notatable length", shown);
            return -1;
        }
        silence = *doc;
        memset(&bar, 0, sizeof(bar));
        memset(&rest, 0, sizeof(rest));
        bar.number = 1;
        bar.ticks = (int) w.full;
        bar.n_events = 1;
        rest.ticks = (int) w.full;
        rest.rest = 1;
        silence.measures = &bar;
        silence.n_measures = 1;
        silence.events = &rest;
        silence.n_events = 1;
        doc = &silence;
    }
    w.doc = doc;
    if (note_facts(&w) != 0) {
        return -1;
    }
    rc = put_piece(&w);
    free(w.first_ev);
    if (rc != 0) {
        return -1;
    }
    if (wtt_tab_text_status(out, &why) != 0) {
        snprintf(err, err_size, "musicxml: %s", why);
        return -1;
    }
    return 0;
}
