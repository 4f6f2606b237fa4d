/*
 * wtt_grid.h: the measure grid of tablature (docs/tab.md, "Rhythm"):
 * chord onsets quantised to 16ths and triplets, the type of every beat
 * chosen by dynamic programming, and one voice of events per measure cut
 * into notatable values.
 *
 * Plain C over libc and libm: no Lua. lua/wtt/tab/grid.lua checks the
 * rhythm estimate and drives it through wtt.core.grid
 * (core/bind/wtt_tab_grid.c), which reads the onsets straight from the
 * estimate's Lua arrays and makes the document's tables as the events
 * come out:
 *
 *     struct wtt_grid g;
 *     if (wtt_grid_init(&g, &meter, &weights, &err) != 0) ...
 *     work.bi, work.fr, work.pos = arrays of src.n_chords
 *     if (wtt_grid_onsets(&g, &src, &work, &err) != 0) ...
 *     work.types, work.back = arrays of work.nbeats and 3 x work.nbeats
 *     wtt_grid_place(&g, &src, &work);
 *     work.notes = room for the notes of the largest set of chords
 *                  sharing a position (at most all the notes)
 *     if (wtt_grid_write(&g, &src, &sink, &work, &err) != 0) ...
 *
 * Positions are "beat ticks": WTT_GRID_WHOLE / beat_type ticks per beat
 * from beats[0], so beat boundaries are multiples of a beat's ticks. The
 * document's ticks count from the pickup's start (or the first downbeat),
 * which may sit inside a beat when the pickup is a fraction of one.
 *
 * The notes come through callbacks (struct wtt_grid_source) and the
 * results go out through callbacks (struct wtt_grid_sink), so neither
 * side copies the piece: a first call pays for every fresh page of memory
 * it touches. Callbacks may leave by longjmp (a Lua error): these
 * functions hold nothing that would leak. Every value is computed in
 * double in the same order as the Lua code this replaced, so results are
 * the same to the bit (the build turns off floating-point contraction for
 * this file).
 *
 * Functions that can fail return -1 and point `*err` at static text; none
 * keeps state, so all may run on any thread.
 */
#ifndef WTT_GRID_H
#define WTT_GRID_H

#include <stddef.h>
#include <stdint.h>

#define WTT_GRID_DIVISIONS  12     /* ticks per quarter note */
#define WTT_GRID_WHOLE      48     /* ticks per whole note */
#define WTT_GRID_MAX_BEATS  ((size_t) 1 << 26)
#define WTT_GRID_MAX_STRING 64     /* strings are 1 .. this */

/* Beat types: straight (a 16th grid), 8th triplets, 16th triplets. */
enum wtt_grid_kind {
    WTT_GRID_STRAIGHT = 0,
    WTT_GRID_T3 = 1,
    WTT_GRID_T6 = 2,
};

/*
 * Quantisation costs, in units of one squared `err` of timing error
 * (wtt_grid_default_weights sets the defaults given here).
 */
struct wtt_grid_weights {
    double err;        /* 0.06: timing error (beats) that costs 1 */
    double c8;         /* 0.2: an onset on an 8th that is not the half */
    double c16;        /* 0.4: an onset on a 16th (or a 16th triplet) */
    double t3;         /* 1.2: a beat of 8th triplets */
    double t6;         /* 2.5: a beat of 16th triplets */
    double change;     /* 0.5: a beat whose type differs from the last's */
    double collide;    /* 4.0: two chords quantised to one position */
};

/* The rhythm estimate the grid is laid on (lua/wtt/tab/rhythm.lua). */
struct wtt_grid_meter {
    const double *beats;           /* tracked beat times (s), nb >= 1 */
    size_t        nb;
    double        tempo_bpm;       /* quarter notes per minute, > 0 */
    double        beat_type;       /* 2, 4 or 8 */
    double        beats_per_measure;
    double        pickup;          /* beats before the first downbeat */
    double        first_downbeat;  /* 1-based index into beats */
};

/* The settings of one grid, derived from a meter (wtt_grid_init). */
struct wtt_grid {
    const double           *beats;
    size_t                  nb;
    double                  period;    /* s per beat past the beats */
    double                  tpb;       /* ticks per beat */
    double                  step[3];   /* grid step per kind; 0: none */
    double                  per;       /* beats per measure */
    double                  pickup;
    double                  mticks;    /* ticks per measure */
    double                  ptick;     /* ticks of the pickup */
    double                  udown;     /* the first downbeat */
    double                  u0;        /* the document's tick 0 */
    double                  umin;      /* u0 in beats */
    struct wtt_grid_weights w;
};

/*
 * The onsets: one per chord, in time order, and their notes. Notes are
 * numbered from 1 as the caller's; a chord's notes come in ascending
 * order. string returns 0 for a note with no string (notes placed by the
 * fingering have one); n_notes bounds the note numbers.
 */
struct wtt_grid_source {
    void   *ctx;
    size_t  n_chords;
    size_t  n_notes;
    double  (*onset)(void *ctx, size_t chord);      /* 0-based; s */
    size_t  (*first)(void *ctx, size_t chord);      /* its first note */
    size_t  (*next)(void *ctx, size_t note);        /* 0 after the last */
    double  (*end_s)(void *ctx, size_t note);
    int     (*string)(void *ctx, size_t note);      /* 0 or 1..64 */
};

/* A measure as it is made (in order; start_tick in document ticks). */
struct wtt_grid_measure {
    double number;        /* 0 for a pickup measure, then 1, 2, ... */
    double start_tick;
    double ticks;
    double start_s;
    size_t onsets;        /* chord positions in it: its events, at least */
};

/* The fields every note of one event gets (docs/tab.md). */
struct wtt_grid_place {
    double tick;          /* document ticks */
    double ticks;         /* the event's whole length, ties included */
    double measure;       /* 0: the pickup measure */
    double beat;          /* 1-based, fractional */
};

/*
 * Where the results go, in order: a measure before its events; a chord
 * group (the notes of the chords sharing one position, ascending, and
 * their fields) before the rest leading up to it and its own pieces. An
 * event is a piece of the last measure: a rest, or a piece of the last
 * group (tied: a continuation). Each returns 0, or -1 to stop.
 */
struct wtt_grid_sink {
    void *ctx;
    int  (*measure)(void *ctx, const struct wtt_grid_measure *m);
    int  (*group)(void *ctx, const size_t *notes, size_t n,
                  const struct wtt_grid_place *p);
    int  (*event)(void *ctx, double tick, double ticks, int rest,
                  int tied);
};

/*
 * Working memory, the caller's: bi, fr and pos have n_chords entries;
 * types nbeats and back 3 x nbeats (wtt_grid_onsets sets nbeats); notes
 * n_cap (only as much is touched as the largest group needs).
 */
struct wtt_grid_work {
    int32_t *bi;      /* a chord's beat */
    double  *fr;      /* its fraction of that beat */
    double  *pos;     /* its position (beat ticks) */
    size_t   nbeats;  /* beats 0 .. nbeats - 1 hold chords */
    uint8_t *types;   /* per beat: enum wtt_grid_kind */
    uint8_t *back;    /* per beat and kind: the best previous kind */
    size_t  *notes;
    size_t   n_cap;
};

/* The default costs (see struct wtt_grid_weights). */
void wtt_grid_default_weights(struct wtt_grid_weights *w);

/*
 * The grid of meter `m` (whose beats must outlive it) with costs `w`.
 * Returns 0, or -1 with `*err` for a meter the grid cannot write (no
 * beats, a beat type other than 2, 4 or 8, a pickup that is not whole
 * 16ths below a measure, a first downbeat before the pickup's end, a
 * tempo that is not positive).
 */
int wtt_grid_init(struct wtt_grid *g, const struct wtt_grid_meter *m,
                  const struct wtt_grid_weights *w, const char **err);

/*
 * The position of time `t` (s) in beats from beats[0] (fractional),
 * walking from `*hint` (1-based: the answer for a nearby time), the first
 * and last intervals extended outside the beats. Sets *hint for the next
 * query (queries in time order walk little).
 */
double wtt_grid_locate(const struct wtt_grid *g, double t, size_t *hint);

/*
 * Cost of the onsets at beat fractions fr[0..n-1] (one beat's, in order)
 * written as `kind`, and their quantised offsets in ticks into q (when
 * not NULL).
 */
double wtt_grid_beat_cost(const struct wtt_grid *g, const double *fr,
                          size_t n, int kind, double *q);

/*
 * Every chord's beat and fraction (work->bi, work->fr), and work->nbeats.
 * Returns 0, or -1 with `*err` when the chords span more than
 * WTT_GRID_MAX_BEATS beats.
 */
int wtt_grid_onsets(const struct wtt_grid *g,
                    const struct wtt_grid_source *src,
                    struct wtt_grid_work *work, const char **err);

/*
 * The type of every beat (work->types) by dynamic programming, and every
 * chord's position (work->pos): chords rounded to one position share it
 * unless a string would sound twice, when the later one moves a grid step
 * on if that is still before the next chord.
 */
void wtt_grid_place(const struct wtt_grid *g,
                    const struct wtt_grid_source *src,
                    struct wtt_grid_work *work);

/*
 * The measures and their events into `sink`, with every chord group's
 * fields. Returns 0, or -1 with `*err` when the sink stopped or a stretch
 * could not be written in notatable values (never for placed chords).
 */
int wtt_grid_write(const struct wtt_grid *g,
                   const struct wtt_grid_source *src,
                   const struct wtt_grid_sink *sink,
                   struct wtt_grid_work *work, const char **err);

/*
 * The length of the next notatable piece from tick `at` ending by `stop`
 * within the measure starting at m0, mlen ticks long, in a grid whose beat
 * types are `types` (nbeats of them; straight past them); rest: a rest.
 * Returns 0 when there is none.
 */
int wtt_grid_piece(const struct wtt_grid *g, const uint8_t *types,
                   size_t nbeats, double at, double stop, double m0,
                   double mlen, int rest);

#endif
