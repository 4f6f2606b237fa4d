/*
 * wtt_technique.h: playing techniques of tablature from what the
 * transcription knows (docs/tab.md, "Techniques"): bends and vibrato
 * from a note's pitch-bend contour, hammer-ons, pull-offs and slides
 * where a note follows another on its string with no new pluck, and
 * let-ring where a note still sounds when the next chord starts on
 * another string.
 *
 * Plain C over libc and libm: no Lua. lua/wtt/tab/technique.lua drives it
 * through wtt.core.technique (core/bind/wtt_tab_technique.c), which reads
 * each note's fields and contour straight from its Lua table and makes the
 * techniques' tables:
 *
 *     struct wtt_technique_pass p;
 *     wtt_technique_pass_init(&p, run, cap, done, ctx);
 *     for (each note, in order) {
 *         struct wtt_technique_contour c;
 *         wtt_technique_contour_start(&c);
 *         wtt_technique_contour_add(&c, bins, n);   (as often as needed)
 *         wtt_technique_contour_end(&c, &note.bend);
 *         if (wtt_technique_pass_add(&p, &note, &err) != 0) ...
 *     }
 *     wtt_technique_pass_end(&p);
 *
 * A note's techniques are final when the next chord starts (its let-ring
 * depends on it): the pass holds the notes of the current chord and hands
 * each to `done` then, in order. `done` may leave by longjmp (a Lua
 * error): the pass holds nothing that would leak. Values are computed in
 * double in the same order as the Lua code this replaced (the build turns
 * off floating-point contraction for this file).
 *
 * Functions that can fail return -1 and point `*err` at static text; none
 * keeps state, so all may run on any thread.
 */
#ifndef WTT_TECHNIQUE_H
#define WTT_TECHNIQUE_H

#include <stddef.h>

#define WTT_TECHNIQUE_MAX_STRING 64      /* strings are 1 .. this */

enum wtt_technique_type {
    WTT_TECHNIQUE_NONE = 0,
    WTT_TECHNIQUE_BEND,
    WTT_TECHNIQUE_VIBRATO,
    WTT_TECHNIQUE_HAMMER_ON,
    WTT_TECHNIQUE_PULL_OFF,
    WTT_TECHNIQUE_SLIDE,
};

/* A pitch-bend contour (1/3-semitone bins per frame, relative to the
 * note's pitch) read a few bins at a time. */
struct wtt_technique_contour {
    size_t n;            /* bins read */
    size_t at;           /* 1-based: the first bin of the largest size */
    size_t held;         /* bins of 2 or more */
    double peak, prev;   /* the largest bin; the last bin */
    int    turns, dir;   /* changes of direction; the last direction */
};

/* What a contour shows. */
struct wtt_technique_bend {
    int    type;         /* WTT_TECHNIQUE_NONE, _BEND or _VIBRATO */
    double semitones;    /* a bend's height, in half steps */
    int    release;      /* a bend that comes back down */
};

/* A note as the pass reads it. */
struct wtt_technique_note {
    double                    start_s, end_s;
    double                    fret;
    double                    onset;       /* the onset posterior, 0..1 */
    int                       has_onset;   /* 0: unknown (no legato) */
    int                       string;      /* 1 .. MAX_STRING */
    int                       same_chord;  /* the previous note's chord */
    struct wtt_technique_bend bend;        /* from its contour */
};

/* A note's techniques, final. */
struct wtt_technique_result {
    size_t                    note;       /* 1-based, in the order added */
    struct wtt_technique_bend bend;
    int                       legato;     /* NONE, HAMMER_ON ... SLIDE */
    size_t                    from;       /* the legato's first note */
    int                       up;         /* a slide's direction */
    int                       let_ring;
    /* the pass's own: the note's end and string, for its let-ring */
    double                    end_s;
    int                       string;
};

typedef void (*wtt_technique_done)(void *ctx,
                                   const struct wtt_technique_result *r);

struct wtt_technique_pass {
    struct {
        size_t note;                      /* 0: none yet */
        double fret, end_s;
    }                            last[WTT_TECHNIQUE_MAX_STRING];
    struct wtt_technique_result *run;     /* the current chord's notes */
    size_t                       n_run, cap;
    size_t                       n;       /* notes added */
    wtt_technique_done           done;
    void                        *ctx;
};

void wtt_technique_contour_start(struct wtt_technique_contour *c);
void wtt_technique_contour_add(struct wtt_technique_contour *c,
                               const double *bins, size_t n);

/*
 * What the contour shows: vibrato (four turns or more within a semitone),
 * a bend (a rise of two bins or more for two frames or more; its release
 * when it ends below half its height), or nothing (fewer than three
 * bins, a dip).
 */
void wtt_technique_contour_end(const struct wtt_technique_contour *c,
                               struct wtt_technique_bend *out);

/*
 * The kind of legato from fret `from` to fret `to` (different frets): a
 * slide beyond four frets or from an open string down, else a hammer-on
 * up or a pull-off down. Sets *up for a slide's direction.
 */
int wtt_technique_legato_kind(double from, double to, int *up);

/*
 * Starts a pass: `run` has room for `cap` notes of one chord (a chord of
 * more is an error); `done` gets every note's result.
 */
void wtt_technique_pass_init(struct wtt_technique_pass *p,
                             struct wtt_technique_result *run, size_t cap,
                             wtt_technique_done done, void *ctx);

/*
 * Adds the next note (sorted by start). Returns 0, or -1 with `*err` for
 * a string out of range or a chord of more than `cap` notes.
 */
int wtt_technique_pass_add(struct wtt_technique_pass *p,
                           const struct wtt_technique_note *n,
                           const char **err);

/* Hands the last chord's notes to `done`. */
void wtt_technique_pass_end(struct wtt_technique_pass *p);

#endif
