/*
 * wtt_tab_events.h: what the ASCII, alphaTex and Guitar Pro writers read
 * from a tab document (core/tab/wtt_tabdoc.h) beyond its fields: the kind
 * of each technique, which events a tie continues into, which notes start
 * a legato, the written value of an event's length, and the few ways the
 * formats write pitches and numbers.
 *
 * alphaTex and GPIF, like alphaTab's model, put hammer-ons, pull-offs and
 * slides on the note the hand moves *from*, and a tie on the note that
 * continues; the document puts legato techniques on the note moved *to*
 * (with `from`) and ties on the continuing event. wtt_tab_facts turns one
 * into the other once per call.
 *
 * Plain C over libc, for the writers in core/tab/; a checked document
 * (wtt_tabdoc_check) is assumed throughout.
 */
#ifndef WTT_TAB_EVENTS_H
#define WTT_TAB_EVENTS_H

#include "wtt_tabdoc.h"

/* The legato a note starts (wtt_tab_facts.origin). */
#define WTT_ORIGIN_NONE     0
#define WTT_ORIGIN_HOPO     1       /* a hammer-on or pull-off */
#define WTT_ORIGIN_SLIDE    2

/* The instruments the alphaTex and GPIF writers name a track for, in the
 * order their track tables follow. */
#define WTT_TAB_TRACKS { "guitar", "guitar7", "bass", "bass5", "ukulele" }

/* The place of the document's instrument in WTT_TAB_TRACKS; 0 (a guitar)
 * for one not listed there. */
int wtt_tab_track_index(const struct wtt_tabdoc *doc);

/* Room for a pitch's name ("C#-12345678") and its NUL. */
#define WTT_TAB_PITCH_NAME_SIZE 16

/* Per-call facts of a document, in one block. */
struct wtt_tab_facts {
    unsigned char *kinds;       /* per technique: enum wtt_tab_tech_kind */
    unsigned char *origin;      /* per note: WTT_ORIGIN_* */
    unsigned char *tied_on;     /* per event: 1 when the next event (the
                                   next one of its measure, or the first
                                   of the next measure) is tied to it */
};

/* The written value of a length: 1 whole ... 32 a 32nd. */
struct wtt_tab_value {
    int value;
    int dots;                   /* 0 or 1 */
    int tuplet;                 /* 3 for a 3:2 triplet, else 0 */
};

/*
 * Fills `f` for `doc`. Returns 0, or -1 when the memory cannot be had
 * (the writers report it as out of memory). Free it with
 * wtt_tab_facts_free.
 */
int wtt_tab_facts_init(struct wtt_tab_facts *f, const struct wtt_tabdoc *doc);
void wtt_tab_facts_free(struct wtt_tab_facts *f);

/* The first technique of `kind` on note `n` (kinds from the facts), or
 * NULL. */
const struct wtt_tab_technique *
wtt_tab_first_tech(const struct wtt_tabdoc *doc, const struct wtt_tab_facts *f,
                   const struct wtt_tab_note *n, enum wtt_tab_tech_kind kind);

/*
 * The written value of an event `ticks` long at `divisions` per quarter:
 * straight, dotted, then triplet, for each value from the whole down, the
 * first that divides evenly. Returns 0, or -1 when no single value fits.
 */
int wtt_tab_value_of(int ticks, int divisions, struct wtt_tab_value *v);

/* The error of an event no value fits: "measure M: an event of T ticks
 * (D per quarter) is not one notatable value". Returns -1. */
int wtt_tab_value_error(char *err, size_t err_size, int measure, int ticks,
                        int divisions);

/* Quarter tones of a bend of `semitones` (docs/tab.md: 0.5 steps):
 * floor(semitones * 2 + 0.5). */
double wtt_tab_quarter_tones(double semitones);

/*
 * The name of a MIDI pitch with sharps ("F#3"), NUL-terminated into
 * `buf`; returns its length.
 */
size_t wtt_tab_pitch_name(int pitch, char buf[WTT_TAB_PITCH_NAME_SIZE]);

/* The name alone ("F#"): 1 or 2 characters, not terminated. */
const char *wtt_tab_pitch_class_name(int pitch, size_t *len);

/* A number as alphaTex and GPIF write it: an integer without a fraction
 * (LuaJIT's %d), anything else with at most three decimals ("117.25"). */
void wtt_tab_text_decimal(struct wtt_tab_text *t, double x);

/* `n` copies of byte `c` (none when n <= 0). */
void wtt_tab_text_fill(struct wtt_tab_text *t, char c, long long n);

#endif
