/*
 * wtt_fingering.h: the search of tab fingering (docs/tab.md, "Fingering"):
 * the candidate fingerings of each chord and a Viterbi search through the
 * whole piece for the cheapest path, the hand's position carried along it.
 *
 * Plain C over libc: no Lua, no allocation the caller must free.
 * wtt_finger_run is the whole fingering of a piece, from its notes to
 * their strings and frets: range checks and octave folding, chord
 * grouping, removing notes from chords that cannot be fingered, the
 * search, and the list of notes it could not play. The Lua side
 * (lua/wtt/tab/finger.lua, through core/bind/wtt_tab.c) copies the notes
 * in and the answer out.
 *
 *     struct wtt_finger_instrument inst = {
 *         .n_strings = 6, .tuning = { 64, 59, 55, 50, 45, 40 },
 *         .capo = 0, .max_fret = 22, .ordered = 1 };
 *     struct wtt_finger_params p = { ... the tab plugin's settings ... };
 *     struct wtt_finger_notes notes = { pitch, start_s, end_s, n };
 *     struct wtt_finger_placement out = { ... arrays of n (2n) ... };
 *     const char *err;
 *     if (wtt_finger_check(&inst, &p, &err) != 0
 *         || wtt_finger_run(&inst, &p, &notes, fold, &out, &err) != 0)
 *     {
 *         report(err);
 *     }
 *
 * Strings count from 1, the highest; frets from the capo, as tabs write
 * them. Costs are computed in double in the same order as the Lua code
 * they replaced, so results do not depend on the compiler (the build turns
 * off floating-point contraction for this file).
 *
 * Every function that can fail returns -1 and points `*err` at static
 * text; none keeps state, so all may run on any thread.
 */
#ifndef WTT_FINGERING_H
#define WTT_FINGERING_H

#include <stddef.h>

#define WTT_FINGER_MAX_STRINGS     12
#define WTT_FINGER_MAX_FRET        127
#define WTT_FINGER_MAX_CANDIDATES  4096
/* Assignments one chord may weigh: a 7-string chord of 7 notes needs
 * 13,700 at most; a larger search is refused, not run for minutes. */
#define WTT_FINGER_MAX_WORK        (1L << 22)

struct wtt_finger_instrument {
    int n_strings;                             /* 1..12 */
    int tuning[WTT_FINGER_MAX_STRINGS];        /* open pitch, string 1 first,
                                                  without the capo */
    int capo;                                  /* 0..max_fret - 1 */
    int max_fret;                              /* highest fret from the nut */
    int ordered;                               /* strings in pitch order: a
                                                  voice crossing costs */
};

/* The weights and limits of the tab plugin (plugins/tab/schema.lua). */
struct wtt_finger_params {
    double move;          /* per fret the hand moves between chords */
    double move_line;     /* the same between single notes */
    double stretch;       /* per fret of span beyond two */
    double height;        /* per fret from `home` */
    double home;          /* the hand's home position */
    double open;          /* bonus per open string */
    double string;        /* per string crossed between single notes */
    double ring;          /* cutting off a note that still sounds */
    double skip;          /* per unused string inside a chord */
    double cross;         /* per pair of crossed voices */
    double bass;          /* a fretted bass on an inner string */
    int    span;          /* largest fret distance of fretted notes */
    int    span_open;     /* the same with open strings */
    int    candidates;    /* fingerings kept per chord, 1..4096 */
    double chord_gap_ms;  /* a note this close to a chord's previous note
                             joins it ... */
    double chord_window_ms;  /* ... when this close to its first */
};

/* One fingering of a chord: note i on string[i], fret[i]. */
struct wtt_finger_candidate {
    double        cost;                            /* shape cost */
    unsigned char string[WTT_FINGER_MAX_STRINGS];
    unsigned char fret[WTT_FINGER_MAX_STRINGS];
    int           lo;        /* lowest fretted fret; 0 when all open */
    int           hi;        /* highest fretted fret; 0 when all open */
    unsigned      order;     /* rank in enumeration order (breaks ties) */
};

/*
 * The notes of a piece, chord after chord: chord c is `size[c]` notes
 * (1..n_strings), each chord's notes sorted by pitch (the order the shape
 * cost reads). The arrays are the caller's and are only read.
 */
struct wtt_finger_piece {
    const int    *pitch;      /* MIDI 0..127 */
    const double *start_s;
    const double *end_s;
    size_t        n_notes;
    const int    *size;
    size_t        n_chords;   /* the sizes sum to n_notes */
};

/* Why a note is listed as unplayable (docs/tab.md, "Fingering"). */
enum wtt_finger_reason {
    WTT_FINGER_OUT_OF_RANGE = 1,  /* no position on the instrument */
    WTT_FINGER_FOLDED,            /* none either: moved by octaves into
                                     range, and placed there */
    WTT_FINGER_TOO_MANY           /* removed from a chord that could not
                                     be fingered */
};

struct wtt_finger_unplayable {
    size_t note;      /* index into the notes */
    int    reason;    /* enum wtt_finger_reason */
    int    pitch;     /* FOLDED: the pitch it moved to; TOO_MANY: the pitch
                         it had (folded or not); OUT_OF_RANGE: -1 (the
                         note's own, which may not be an integer) */
};

/* A piece's notes, sorted by start, then pitch; the caller's, only read.
 * A pitch that is not a MIDI note the instrument has is out of range. */
struct wtt_finger_notes {
    const double *pitch;
    const double *start_s;
    const double *end_s;
    size_t        n;
};

/* What wtt_finger_run writes: arrays the caller allocates, `n` entries
 * each (the notes' count) and 2n for `unplayable` (a folded note may also
 * be removed from its chord). */
struct wtt_finger_placement {
    int    *pitch;      /* the pitch played (folded or not); -1 when the
                           note is out of range */
    int    *string;     /* 0 for a note not placed */
    int    *fret;
    int    *chord;      /* the chord's number, from 1; 0 not placed */
    size_t *placed;     /* the placed notes' indexes, by start, then pitch
                           (the order of the chords on ties) */
    size_t  n_placed;
    struct wtt_finger_unplayable *unplayable;   /* by start (out of range
                           first on ties, then removals chord by chord) */
    size_t  n_unplayable;
    size_t  n_chords;
    size_t  transitions;   /* candidate pairs weighed (the search's work) */
};

/*
 * Checks an instrument and settings: 1-12 strings, pitches and frets in
 * range, finite weights and chord windows, limits in range. Returns 0, or -1 with `*err`.
 * The other functions assume checked arguments.
 */
int wtt_finger_check(const struct wtt_finger_instrument *inst,
                     const struct wtt_finger_params *p, const char **err);

/*
 * Every (string, fret) that plays `pitch`, strings in order, into
 * `strings` and `frets` (room for n_strings each). Returns the count, 0
 * when the pitch is out of range.
 */
int wtt_finger_positions(const struct wtt_finger_instrument *inst, int pitch,
                         int *strings, int *frets);

/*
 * The candidate fingerings of one chord of `k` notes (sorted by pitch):
 * every assignment to distinct strings whose fretted notes span at most
 * `span` frets (`span_open` with open strings) on at most four distinct
 * frets. When more than `p->candidates` exist, the cheapest are kept,
 * sorted by cost, equal costs in enumeration order; otherwise all, in
 * enumeration order. `out` has room for p->candidates. Returns 0 with
 * `*n` set (0: the chord has no fingering), or -1 with `*err` (k out of
 * 1..n_strings, a pitch out of 0..127, too much work).
 */
int wtt_finger_candidates(const struct wtt_finger_instrument *inst,
                          const struct wtt_finger_params *p,
                          const int *pitch, size_t k,
                          struct wtt_finger_candidate *out, size_t *n,
                          const char **err);

/*
 * Whether a chord of `k` notes has a fingering: 1 yes, 0 no (stops at the
 * first), -1 with `*err` as wtt_finger_candidates.
 */
int wtt_finger_playable(const struct wtt_finger_instrument *inst,
                        const struct wtt_finger_params *p,
                        const int *pitch, size_t k, const char **err);

/*
 * The cheapest fingering of the whole piece: writes each note's string and
 * fret (arrays of piece->n_notes) and the number of candidate pairs weighed
 * (the search's work) into `*transitions`. Returns 0, or -1 with `*err`:
 * bad input, out of memory, or a chord without a fingering, whose index
 * goes to `*bad_chord` (may be NULL; SIZE_MAX for the other errors).
 */
int wtt_finger_search(const struct wtt_finger_instrument *inst,
                      const struct wtt_finger_params *p,
                      const struct wtt_finger_piece *piece,
                      int *strings, int *frets, size_t *transitions,
                      size_t *bad_chord, const char **err);

/*
 * The fingering of a piece (docs/tab.md, "Fingering"). A note without a
 * position is listed OUT_OF_RANGE, or with `fold` moved by octaves (up
 * above the lowest open string, then down below the highest fret) and,
 * when that has a position, listed FOLDED and played there. Notes that
 * start within chord_gap_ms of the chord's previous note and
 * chord_window_ms of its first form a chord, sorted by pitch, then start.
 * A chord with more notes than strings, then one without a fingering,
 * loses notes until it fits: the first inner note whose pitch class is
 * doubled, else the middle one (the lower of two), or of two notes the
 * higher; each is listed TOO_MANY. Then the search of
 * wtt_finger_search. Returns 0 with `*out` filled, or -1 with `*err`
 * (out of memory, a chord with too many fingerings to weigh, times that
 * are not finite).
 */
int wtt_finger_run(const struct wtt_finger_instrument *inst,
                   const struct wtt_finger_params *p,
                   const struct wtt_finger_notes *notes, int fold,
                   struct wtt_finger_placement *out, const char **err);

#endif
