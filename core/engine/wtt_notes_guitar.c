/*
 * wtt_notes_guitar.c: the decoding mode for plucked strings (see
 * wtt_notes_guitar.h).
 *
 * The official decoding runs first (wtt_notes_extract in official mode,
 * without bends), then each enabled rule is one pass over the note list, in
 * this order: range, retrigger, split, ghost, weak, bend, register (strum
 * and chord are no passes of their own: they make retrigger, ghost, weak
 * and bend spare the strings of a strum or a chord). A pass marks the
 * notes it removes with n_frames = 0
 * and drops them at its end.
 * Last, every note gets its amplitude, onset, times and bends from the
 * posteriorgrams as the official code computes them.
 *
 * The passes read a few frames around each note through wtt_post_get, so
 * they cost little beside the inference, and keep working when the rows are
 * in a file (wtt_frame_store). The decisions were chosen on the tuning
 * half of the development set (docs/accuracy.md, docs/engine.md).
 *
 * Built with -DWTT_GUITAR_EXPERIMENT (never in a release), the extraction
 * reads overrides of the settings from WTT_GUITAR_TUNE ("weak_amp=0.38,
 * strum_weak=6", the field names of struct wtt_guitar_tuning) and appends
 * a line per note a rule removes or joins to the file WTT_GUITAR_TRACE
 * ("rule pitch start end [into_start into_end]", frames; "clip" before
 * each decoding). The settings were searched that way, decoding saved
 * posteriorgrams as bench/accuracy/redecode.lua does.
 */
#include "wtt_notes_guitar.h"
#include "wtt_util.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_PITCH      WTT_N_PITCHES
#define MIDI_OFFSET  21
#define GUITAR_MIN_NOTE_FRAMES 4
#define SYNC_WINDOW  6          /* frames around a note where a root's
                                   attack is looked for */
#define SYNC_ONSET   0.3        /* an onset posterior that counts as one */
#define STRUM_ONSET  0.5        /* an onset of a string in a strum */


const char *const wtt_notes_rule_names[] = {
    "ghost", "weak", "retrigger", "split", "bend", "range", "register",
    "strum", "chord", NULL
};


struct wtt_guitar_tuning
wtt_notes_guitar_defaults(int mode)
{
    struct wtt_guitar_tuning t;

    memset(&t, 0, sizeof(t));
    t.attack_onset = 0.7;
    t.attack_onset_min = 0.45;
    t.attack_rise = 0.1;
    t.ghost_frames = 10;
    t.ghost_root_min = 0.3;
    t.ghost_sync = 4;
    t.ghost_interval[0] = 12;       /* the octave (2nd harmonic) */
    t.ghost_ratio[0] = 0.6;
    t.ghost_interval[1] = 19;       /* the 3rd harmonic */
    t.ghost_ratio[1] = 0.5;
    t.ghost_interval[2] = 24;       /* the 4th */
    t.ghost_ratio[2] = 0.7;
    t.ghost_interval[3] = 28;       /* the 5th */
    t.ghost_ratio[3] = 0.8;
    t.weak_amp = 0.42;
    t.weak_rise = 0.25;
    t.weak_low_pitch = 42;          /* F#2: drop tunings' low strings */
    t.weak_low_scale = 0.7;
    t.retrigger_gap = 3;
    t.retrigger_peak = 0.35;
    t.retrigger_ioi = 9;
    t.split_margin = 10;
    t.bend_max = 2;
    t.bend_level = 0.25;
    t.bend_onset = 0.8;
    t.register_pitch = 64;          /* E4 */
    t.onset_low = 0.45;
    t.onset_high = 0.5;
    t.strum_min = 4;
    t.strum_ghost = 5;
    t.strum_ghost_ratio = 0.2;
    t.strum_weak = 8;
    t.strum_weak_onset = 0.7;
    t.strum_retrigger = 6;
    t.strum_retrigger_onset = 0.5;
    t.keep_frames = 15;
    t.keep_strum = 1;
    t.bend_fall = 0;
    t.chord_frames = 25;
    t.chord_pitches = 3;
    t.chord_strum = 5;
    t.chord_memory = 30;
    if (mode == WTT_NOTES_BASS) {
        /* A bass is not strummed and its low notes are its notes: the
         * settings before the strum rule, the low bar and the onset peak
         * test of retrigger (which cost the tuning half's bass clips 0.071:
         * docs/engine.md). */
        t.attack_onset = 0.7;
        t.ghost_sync = 2;
        t.ghost_ratio[0] = 0.65;
        t.weak_amp = 0.4;
        t.bend_onset = 0.7;
        t.weak_low_pitch = 0;
        t.retrigger_peak = 2.0;     /* never: a peak is at most 1 */
        t.onset_high = 0.6;
        t.strum_ghost_ratio = 0.4;
        t.strum_weak = 6;
        t.strum_weak_onset = 0.8;
        t.strum_retrigger_onset = 0.5;
        /* and, where guitar's settings moved when the development set's
         * fifth version was searched, bass keeps those of before */
        t.attack_onset_min = 0.5;
        t.ghost_ratio[1] = 0.4;
        t.ghost_ratio[3] = 0.7;
        t.retrigger_gap = 2;
        t.split_margin = 8;
        t.bend_level = 0.3;
        t.bend_fall = 15;
        t.onset_low = 0.5;
        t.strum_retrigger = 5;
        t.keep_frames = 0;
        t.chord_frames = 0;
        t.chord_strum = 0;
        t.chord_memory = 0;
        t.lowest = 23;              /* B0, a five-string's low B */
        t.highest = 72;             /* C5, a six-string's high C, 24th fret */
    } else {
        t.lowest = 28;              /* E1: drop tunings and basses pass */
        t.highest = 88;             /* E6, the top string's 24th fret */
    }
    return t;
}


struct wtt_notes_params
wtt_notes_mode_params(int mode)
{
    struct wtt_notes_params p = wtt_notes_default_params();

    if (mode == WTT_NOTES_GUITAR || mode == WTT_NOTES_BASS) {
        p.mode = mode;
        p.rules = WTT_RULES_DEFAULT;
        p.min_note_frames = GUITAR_MIN_NOTE_FRAMES;
    }
    return p;
}


int
wtt_notes_mode_parse(const char *name)
{
    if (strcmp(name, "official") == 0) {
        return WTT_NOTES_OFFICIAL;
    }
    if (strcmp(name, "guitar") == 0) {
        return WTT_NOTES_GUITAR;
    }
    if (strcmp(name, "bass") == 0) {
        return WTT_NOTES_BASS;
    }
    return -1;
}


const char *
wtt_notes_mode_name(int mode)
{
    switch (mode) {
    case WTT_NOTES_OFFICIAL:
        return "official";
    case WTT_NOTES_GUITAR:
        return "guitar";
    case WTT_NOTES_BASS:
        return "bass";
    default:
        return NULL;
    }
}


int
wtt_notes_rules_parse(const char *list, unsigned *rules, char *err,
                      size_t errlen)
{
    unsigned    mask = 0;
    const char *s = list;

    *rules = 0;
    while (*s != '\0') {
        size_t len = strcspn(s, ",");
        int    found = 0;

        if (len == 3 && strncmp(s, "all", 3) == 0) {
            mask |= WTT_RULES_ALL;
            found = 1;
        } else if (len == 4 && strncmp(s, "none", 4) == 0) {
            found = 1;
        }
        for (int i = 0; !found && wtt_notes_rule_names[i] != NULL; i++) {
            if (strlen(wtt_notes_rule_names[i]) == len
                && strncmp(s, wtt_notes_rule_names[i], len) == 0)
            {
                mask |= 1u << i;
                found = 1;
            }
        }
        if (!found) {
            snprintf(err, errlen, "unknown rule '%.*s' (ghost, weak, "
                     "retrigger, split, bend, range, register, strum, chord, "
                     "all or none)",
                     len > 40 ? 40 : (int) len, s);
            return -1;
        }
        s += len;
        if (*s == ',') {
            s++;
        }
    }
    *rules = mask;
    return 0;
}


void
wtt_notes_rules_format(unsigned rules, char *buf, size_t len)
{
    size_t used = 0;

    if (len == 0) {
        return;
    }
    buf[0] = '\0';
    for (int i = 0; wtt_notes_rule_names[i] != NULL; i++) {
        if (rules & (1u << i)) {
            int k = snprintf(buf + used, len - used, "%s%s",
                             used > 0 ? "," : "", wtt_notes_rule_names[i]);
            if (k < 0 || (size_t) k >= len - used) {
                return;
            }
            used += (size_t) k;
        }
    }
}


/* ---------------------------------------------------------------------------
 * Reading the posteriorgrams
 * ------------------------------------------------------------------------- */

typedef struct {
    struct wtt_posteriors          *post;
    int                             n;          /* frames */
    int                             lo, hi;     /* columns read, as the
                                                   official min/max freq */
    const struct wtt_guitar_tuning *t;
    int                             strum;      /* WTT_RULE_STRUM is on */
    int                             chord;      /* WTT_RULE_CHORD is on */
} ctx_t;


#ifdef WTT_GUITAR_EXPERIMENT
/* Experiment builds only (see the top of this file). */
static FILE *trace_f;

static void trace(const ctx_t *x, const char *rule,
                  const struct wtt_note *a, const struct wtt_note *into);

#define TUNE_INT(f)    { #f, offsetof(struct wtt_guitar_tuning, f), 1 }
#define TUNE_DOUBLE(f) { #f, offsetof(struct wtt_guitar_tuning, f), 0 }

static void
tune_from_env(struct wtt_guitar_tuning *t)
{
    static const struct {
        const char *name;
        size_t      off;
        int         is_int;
    } fields[] = {
        TUNE_DOUBLE(attack_onset), TUNE_DOUBLE(attack_onset_min),
        TUNE_DOUBLE(attack_rise), TUNE_INT(ghost_frames),
        TUNE_DOUBLE(ghost_root_min), TUNE_INT(ghost_sync),
        TUNE_DOUBLE(ghost_ratio[0]), TUNE_DOUBLE(ghost_ratio[1]),
        TUNE_DOUBLE(ghost_ratio[2]), TUNE_DOUBLE(ghost_ratio[3]),
        TUNE_DOUBLE(weak_amp), TUNE_DOUBLE(weak_rise),
        TUNE_INT(weak_low_pitch), TUNE_DOUBLE(weak_low_scale),
        TUNE_INT(retrigger_gap), TUNE_DOUBLE(retrigger_peak),
        TUNE_INT(split_margin), TUNE_INT(bend_max), TUNE_DOUBLE(bend_level),
        TUNE_DOUBLE(bend_onset), TUNE_INT(lowest), TUNE_INT(highest),
        TUNE_INT(register_pitch), TUNE_DOUBLE(onset_low),
        TUNE_DOUBLE(onset_high), TUNE_INT(strum_min), TUNE_INT(strum_ghost),
        TUNE_DOUBLE(strum_ghost_ratio), TUNE_INT(strum_weak),
        TUNE_DOUBLE(strum_weak_onset), TUNE_INT(strum_retrigger),
        TUNE_DOUBLE(strum_retrigger_onset), TUNE_INT(keep_frames),
        TUNE_INT(keep_strum), TUNE_INT(bend_fall), TUNE_INT(chord_frames),
        TUNE_INT(chord_pitches), TUNE_INT(chord_strum),
        TUNE_INT(chord_memory), TUNE_INT(retrigger_ioi),
    };
    const char *env = getenv("WTT_GUITAR_TUNE");
    const char *tf = getenv("WTT_GUITAR_TRACE");
    static char from_file[4096];

    /* "@PATH" reads the settings from PATH at every decoding, so that a
     * search can change them between decodings in one process. */
    if (env != NULL && env[0] == '@') {
        FILE  *f = fopen(env + 1, "r");
        size_t n = f != NULL ? fread(from_file, 1, sizeof(from_file) - 1, f)
                             : 0;
        if (f != NULL) {
            fclose(f);
        }
        from_file[n] = '\0';
        env = from_file;
    }
    if (trace_f != NULL) {
        fclose(trace_f);
    }
    trace_f = tf != NULL ? fopen(tf, "a") : NULL;
    if (trace_f != NULL) {
        fputs("clip\n", trace_f);
    }
    for (const char *s = env; s != NULL && *s != '\0';) {
        size_t len = strcspn(s, "=");
        for (size_t k = 0; k < sizeof(fields) / sizeof(fields[0]); k++) {
            if (strlen(fields[k].name) == len
                && strncmp(s, fields[k].name, len) == 0 && s[len] == '=')
            {
                char *at = (char *) t + fields[k].off;
                if (fields[k].is_int) {
                    *(int *) at = atoi(s + len + 1);
                } else {
                    *(double *) at = atof(s + len + 1);
                }
            }
        }
        s = strchr(s, ',');
        s = s != NULL ? s + 1 : NULL;
    }
}

#define TRACE(rule, a, into) trace(x, rule, a, into)
#else
#define TRACE(rule, a, into) ((void) 0)
#endif


static double
frame_v(const ctx_t *x, int r, int c)
{
    if (r < 0 || r >= x->n || c < x->lo || c >= x->hi) {
        return 0.0;
    }
    return wtt_post_get(x->post, (size_t) r, WTT_POST_FRAMES + (size_t) c);
}


static double
onset_v(const ctx_t *x, int r, int c)
{
    if (r < 0 || r >= x->n || c < x->lo || c >= x->hi) {
        return 0.0;
    }
    return wtt_post_get(x->post, (size_t) r, WTT_POST_ONSETS + (size_t) c);
}


/* The highest onset posterior of pitch column c within a frame of r (the
 * official note's `onset`). */
static double
onset_near(const ctx_t *x, int r, int c)
{
    double best = 0.0;

    for (int i = r - 1; i <= r + 1; i++) {
        double v = onset_v(x, i, c);
        if (v > best) {
            best = v;
        }
    }
    return best;
}


static int
onset_peak(const ctx_t *x, int r, int c)
{
    double v = onset_v(x, r, c);

    return v > onset_v(x, r - 1, c) && v >= onset_v(x, r + 1, c);
}


/* How much the frame activation of column c rises at r: the highest of
 * frames r..r+3 minus the lowest of r-3..r-1. */
static double
rise_at(const ctx_t *x, int r, int c)
{
    double lo = 1.0, hi = 0.0;

    for (int i = r - 3; i < r; i++) {
        double v = frame_v(x, i, c);
        if (v < lo) {
            lo = v;
        }
    }
    for (int i = r; i <= r + 3; i++) {
        double v = frame_v(x, i, c);
        if (v > hi) {
            hi = v;
        }
    }
    return hi - lo;
}


/* Whether the string of pitch column c is attacked at frame r. */
static int
attacked(const ctx_t *x, int r, int c)
{
    double on = onset_near(x, r, c);

    if (on >= x->t->attack_onset) {
        return 1;
    }
    return on >= x->t->attack_onset_min
           && rise_at(x, r, c) >= x->t->attack_rise;
}


/* How many pitch columns other than c have an onset posterior of
 * STRUM_ONSET or more within 3 frames of r: the strings of a strum. */
static int
strum_at(const ctx_t *x, int r, int c)
{
    int count = 0;

    for (int q = 0; q < N_PITCH; q++) {
        if (q == c) {
            continue;
        }
        for (int i = r - 3; i <= r + 3; i++) {
            if (onset_v(x, i, q) >= STRUM_ONSET) {
                count++;
                break;
            }
        }
    }
    return count;
}


/* How many pitch columns other than c and its octave below have an onset
 * of STRUM_ONSET within 3 frames of r and are no overtone of another such
 * column (12, 19, 24 or 28 semitones above it): the distinct strings of a
 * chord, where strum_at also counts the overtones of a single note. */
static int
chord_at(const ctx_t *x, int r, int c)
{
    int set[N_PITCH], n = 0, count = 0;

    for (int q = 0; q < N_PITCH; q++) {
        for (int i = r - 3; i <= r + 3; i++) {
            if (onset_v(x, i, q) >= STRUM_ONSET) {
                set[n++] = q;
                break;
            }
        }
    }
    for (int a = 0; a < n; a++) {
        int over = 0;
        if (set[a] == c || set[a] == c - 12) {
            continue;
        }
        for (int b = 0; b < n && !over; b++) {
            int d = set[a] - set[b];
            over = d == 12 || d == 19 || d == 24 || d == 28;
        }
        count += !over;
    }
    return count;
}


/* Whether ghost must keep a note: a long one attacked with the strings of
 * a chord (struct wtt_guitar_tuning, chord_frames). */
static int
chord_string(const ctx_t *x, const struct wtt_note *nt)
{
    const struct wtt_guitar_tuning *t = x->t;

    return x->chord && t->chord_frames > 0 && nt->n_frames >= t->chord_frames
           && chord_at(x, nt->start_frame, nt->pitch - MIDI_OFFSET)
              >= t->chord_pitches;
}


/* Whether a note of column c starting at r is a string of a strum: the
 * strum rule is on, `min` other pitches or more are attacked with it
 * (strum_at) and its own onset reaches `onset`. */
static int
in_strum(const ctx_t *x, int r, int c, int min, double onset)
{
    return x->strum && onset_near(x, r, c) >= onset
           && strum_at(x, r, c) >= min;
}


/* Whether weak or bend must keep a note: a long one among other attacks
 * (struct wtt_guitar_tuning, keep_frames). */
static int
kept(const ctx_t *x, const struct wtt_note *nt)
{
    const struct wtt_guitar_tuning *t = x->t;

    return x->strum && t->keep_frames > 0 && nt->n_frames >= t->keep_frames
           && strum_at(x, nt->start_frame, nt->pitch - MIDI_OFFSET)
              >= t->keep_strum;
}


/* How far the highest onset posterior of column c within 2 frames of r
 * stands above the onsets around it: the peak minus the higher of the
 * lowest onset of the 6 frames before it and that of the 6 after. */
static double
onset_prominence(const ctx_t *x, int r, int c)
{
    double peak = 0.0, before = 1.0, after = 1.0;
    int    at = r;

    for (int i = r - 2; i <= r + 2; i++) {
        if (onset_v(x, i, c) > peak) {
            peak = onset_v(x, i, c);
            at = i;
        }
    }
    for (int i = at - 6; i < at; i++) {
        before = fmin(before, onset_v(x, i, c));
    }
    for (int i = at + 1; i <= at + 6; i++) {
        after = fmin(after, onset_v(x, i, c));
    }
    return peak - fmax(before, after);
}


static double
mean_frames(const ctx_t *x, int from, int to, int c)
{
    double sum = 0.0;

    if (to <= from) {
        return 0.0;
    }
    for (int r = from; r < to; r++) {
        sum += frame_v(x, r, c);
    }
    return sum / (double) (to - from);
}


#ifdef WTT_GUITAR_EXPERIMENT
/* A traced note's line: what the rules weigh at its start, to tell the
 * true notes a rule removes from the false ones. */
static void
trace(const ctx_t *x, const char *rule, const struct wtt_note *a,
      const struct wtt_note *into)
{
    int c = a->pitch - MIDI_OFFSET, r = a->start_frame;

    if (trace_f == NULL) {
        return;
    }
    fprintf(trace_f, "%s %d %d %d", rule, a->pitch, r, r + a->n_frames);
    if (into != NULL) {
        fprintf(trace_f, " %d %d", into->start_frame,
                into->start_frame + into->n_frames);
    }
    fprintf(trace_f, " onset=%.2f rise=%.2f amp=%.2f strum=%d chord=%d"
            " o12=%.2f o5=%.2f o7=%.2f\n",
            onset_near(x, r, c), rise_at(x, r, c),
            mean_frames(x, r, r + a->n_frames, c), strum_at(x, r, c),
            chord_at(x, r, c), onset_near(x, r, c - 12),
            onset_near(x, r, c - 5), onset_near(x, r, c + 7));
}
#endif


/* ---------------------------------------------------------------------------
 * The note list
 * ------------------------------------------------------------------------- */

typedef struct {
    struct wtt_note *v;
    size_t           n, cap;
} list_t;


static int
note_end(const struct wtt_note *a)
{
    return a->start_frame + a->n_frames;
}


static int
by_pitch_start(const void *pa, const void *pb)
{
    const struct wtt_note *a = pa, *b = pb;

    if (a->pitch != b->pitch) {
        return a->pitch < b->pitch ? -1 : 1;
    }
    if (a->start_frame != b->start_frame) {
        return a->start_frame < b->start_frame ? -1 : 1;
    }
    return (a->n_frames < b->n_frames) - (a->n_frames > b->n_frames);
}


static int
by_start_pitch(const void *pa, const void *pb)
{
    const struct wtt_note *a = pa, *b = pb;

    if (a->start_frame != b->start_frame) {
        return a->start_frame < b->start_frame ? -1 : 1;
    }
    if (a->pitch != b->pitch) {
        return a->pitch < b->pitch ? -1 : 1;
    }
    return (a->n_frames < b->n_frames) - (a->n_frames > b->n_frames);
}


/* qsort of the list. An empty list has no array (v is NULL), and qsort's
 * array must not be NULL even for no elements (found by
 * spec/fuzz/fuzz_posteriors.c: guitar mode over posteriors with no note). */
static void
sort_list(list_t *l, int (*cmp)(const void *, const void *))
{
    if (l->n > 1) {
        qsort(l->v, l->n, sizeof(*l->v), cmp);
    }
}


/* Drops the notes marked removed (n_frames 0). */
static void
compact(list_t *l)
{
    size_t k = 0;

    for (size_t i = 0; i < l->n; i++) {
        if (l->v[i].n_frames > 0) {
            l->v[k++] = l->v[i];
        }
    }
    l->n = k;
}


static void
push(list_t *l, const struct wtt_note *nt)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->v = wtt_realloc(l->v, l->cap * sizeof(*l->v));
    }
    l->v[l->n++] = *nt;
}


/* ---------------------------------------------------------------------------
 * The rules
 * ------------------------------------------------------------------------- */

static void
rule_range(const ctx_t *x, list_t *l)
{
    for (size_t i = 0; i < l->n; i++) {
        if (l->v[i].pitch < x->t->lowest || l->v[i].pitch > x->t->highest) {
            TRACE("range", &l->v[i], NULL);
            l->v[i].n_frames = 0;
        }
    }
    compact(l);
}


/* Joins a note to the one before it on its pitch when it starts where that
 * one ends with no attack of its own: not attacked, no sharp onset peak
 * (retrigger_peak) and, with the strum rule, not re-struck in a strum. */
static void
rule_retrigger(const ctx_t *x, list_t *l)
{
    sort_list(l, by_pitch_start);
    for (size_t i = 0; i < l->n;) {
        struct wtt_note *a = &l->v[i];
        size_t           j = i + 1;

        for (; j < l->n && l->v[j].pitch == a->pitch; j++) {
            struct wtt_note *b = &l->v[j];
            int              c = b->pitch - MIDI_OFFSET;
            if (b->start_frame - note_end(a) > x->t->retrigger_gap) {
                break;
            }
            if (b->start_frame - a->start_frame < x->t->retrigger_ioi
                && onset_near(x, b->start_frame, c)
                   <= onset_near(x, a->start_frame, c))
            {
                /* too soon after a's own pluck */
            } else if (attacked(x, b->start_frame, c)
                || onset_prominence(x, b->start_frame, c)
                   >= x->t->retrigger_peak
                || in_strum(x, b->start_frame, c, x->t->strum_retrigger,
                            x->t->strum_retrigger_onset))
            {
                break;
            }
            TRACE("retrigger", b, a);
            if (note_end(b) > note_end(a)) {
                a->n_frames = note_end(b) - a->start_frame;
            }
            b->n_frames = 0;
        }
        i = j;
    }
    compact(l);
}


/* Cuts a note where its own pitch is attacked again (an onset peak that is
 * an attack), at least split_margin frames from either end. */
static void
rule_split(const ctx_t *x, list_t *l)
{
    int m = x->t->split_margin;

    /* l->n grows as pieces are pushed, so each piece is examined too. */
    for (size_t i = 0; i < l->n; i++) {
        int c = l->v[i].pitch - MIDI_OFFSET;
        int s = l->v[i].start_frame, e = note_end(&l->v[i]);

        for (int r = s + m; r <= e - m; r++) {
            struct wtt_note piece;
            if (!onset_peak(x, r, c) || !attacked(x, r, c)) {
                continue;
            }
            piece = l->v[i];
            piece.start_frame = r;
            piece.n_frames = e - r;
            l->v[i].n_frames = r - s;
            push(l, &piece);
            break;
        }
    }
}


/* Whether the pitch column r, below a note starting at s, was ringing or
 * attacked with the note (see struct wtt_guitar_tuning, ghost). */
static int
in_sync(const ctx_t *x, int s, int r)
{
    double best = 0.0;
    int    at = s;

    for (int i = s - SYNC_WINDOW; i <= s + SYNC_WINDOW; i++) {
        double v = onset_v(x, i, r);
        if (v > best) {
            best = v;
            at = i;
        }
    }
    return best < SYNC_ONSET || abs(at - s) <= x->t->ghost_sync;
}


/* Whether a note of the pitch of note i that starts within chord_memory
 * frames of it was spared as a string (verdict 2); the list is sorted by
 * pitch, then start. */
static int
spared_near(const ctx_t *x, const list_t *l, const unsigned char *verdict,
            size_t i)
{
    const struct wtt_note *a = &l->v[i];
    int                    m = x->t->chord_memory;

    for (size_t j = i; j-- > 0;) {
        const struct wtt_note *b = &l->v[j];
        if (b->pitch != a->pitch || a->start_frame - b->start_frame > m) {
            break;
        }
        if (verdict[j] == 2) {
            return 1;
        }
    }
    for (size_t j = i + 1; j < l->n; j++) {
        const struct wtt_note *b = &l->v[j];
        if (b->pitch != a->pitch || b->start_frame - a->start_frame > m) {
            break;
        }
        if (verdict[j] == 2) {
            return 1;
        }
    }
    return 0;
}


static void
rule_ghost(const ctx_t *x, list_t *l)
{
    const struct wtt_guitar_tuning *t = x->t;
    /* 0: no ghost; 1: a ghost; 2: a ghost to the ratios that the strum or
     * chord rule spares as a string */
    unsigned char *verdict = wtt_calloc(l->n + 1, 1);

    /* by pitch, then start, so that the notes of a pitch near a note
     * (chord_memory) are its neighbours in the list */
    sort_list(l, by_pitch_start);
    for (size_t i = 0; i < l->n; i++) {
        struct wtt_note *nt = &l->v[i];
        int              c = nt->pitch - MIDI_OFFSET;
        int              s = nt->start_frame;
        int              e = s + (nt->n_frames < t->ghost_frames
                                  ? nt->n_frames : t->ghost_frames);
        double           own = mean_frames(x, s, e, c);

        for (int k = 0; k < 4 && t->ghost_interval[k] != 0; k++) {
            int    r = c - t->ghost_interval[k];
            double root;
            if (r < 0 || r >= N_PITCH) {
                continue;
            }
            root = mean_frames(x, s, e, r);
            if (root < t->ghost_root_min || own >= t->ghost_ratio[k] * root
                || !in_sync(x, s, r))
            {
                continue;
            }
            if ((t->ghost_interval[k] == 12
                 && own >= t->strum_ghost_ratio * root
                 && in_strum(x, s, c, t->strum_ghost, 0.0))
                || chord_string(x, nt))
            {
                verdict[i] = 2;
                continue;
            }
            verdict[i] = 1;
            break;
        }
    }
    for (size_t i = 0; i < l->n; i++) {
        int keep = 0;
        if (verdict[i] != 1) {
            continue;
        }
        if (x->chord && t->chord_memory > 0) {
            keep = spared_near(x, l, verdict, i);
        }
        if (!keep) {
            TRACE("ghost", &l->v[i], NULL);
            l->v[i].n_frames = 0;
        }
    }
    free(verdict);
    compact(l);
}


static void
rule_weak(const ctx_t *x, list_t *l)
{
    const struct wtt_guitar_tuning *t = x->t;

    for (size_t i = 0; i < l->n; i++) {
        struct wtt_note *nt = &l->v[i];
        int              c = nt->pitch - MIDI_OFFSET;
        double           bar = t->weak_amp;

        if (nt->pitch < t->weak_low_pitch) {
            bar *= t->weak_low_scale;
        }
        if (mean_frames(x, nt->start_frame, note_end(nt), c) < bar
            && rise_at(x, nt->start_frame, c) < t->weak_rise
            && !in_strum(x, nt->start_frame, c, t->strum_weak,
                         t->strum_weak_onset)
            && !kept(x, nt))
        {
            TRACE("weak", nt, NULL);
            nt->n_frames = 0;
        }
    }
    compact(l);
}


/* Where a bent note ends: from its end, the activation is followed from
 * frame to frame to the strongest column within a semitone of the last
 * one and bend_max of the note's own, while it stays at bend_level, shows
 * no new attack (an onset peak of bend_onset) and, off the note's pitch,
 * was silent when the note was plucked (else it is another string) and,
 * with the chord rule, is not struck in a strum of chord_strum other
 * pitches (a chord change). The note's own end when the activation never
 * left its pitch. */
static int
bend_end(const ctx_t *x, const struct wtt_note *a)
{
    const struct wtt_guitar_tuning *t = x->t;
    int c = a->pitch - MIDI_OFFSET, at = c, e = note_end(a), bent = 0;

    for (; e < x->n; e++) {
        int    best = -1;
        double v = 0.0;
        for (int q = at - 1; q <= at + 1; q++) {
            if (abs(q - c) <= t->bend_max && frame_v(x, e, q) > v) {
                v = frame_v(x, e, q);
                best = q;
            }
        }
        if (best < 0 || v < t->bend_level
            || (best != c
                && frame_v(x, a->start_frame + 2, best) >= t->bend_level)
            || (onset_v(x, e, best) >= t->bend_onset
                && onset_peak(x, e, best))
            || (best != c && x->chord && t->chord_strum > 0
                && onset_near(x, e, best) >= STRUM_ONSET
                && strum_at(x, e, best) >= t->chord_strum))
        {
            break;
        }
        bent |= best != c;
        at = best;
    }
    return bent ? e : note_end(a);
}


/* Whether the activation of column c falls under `level` in frames
 * from..to. */
static int
falls_under(const ctx_t *x, int from, int to, int c, double level)
{
    for (int r = from; r <= to; r++) {
        if (frame_v(x, r, c) < level) {
            return 1;
        }
    }
    return 0;
}


/* Grows each bent note to its end and drops the notes that start inside it
 * within bend_max semitones with no attack of their own (its pieces). A
 * note of another pitch is a piece only where the bent note's pitch falls
 * silent around its start (bend_fall): beside a string that rings on, it
 * is another string. */
static void
rule_bend(const ctx_t *x, list_t *l)
{
    const struct wtt_guitar_tuning *t = x->t;

    sort_list(l, by_start_pitch);
    for (size_t i = 0; i < l->n; i++) {
        struct wtt_note *a = &l->v[i];
        int              e;

        if (a->n_frames == 0) {
            continue;
        }
        e = bend_end(x, a);
        for (size_t j = i + 1; j < l->n && l->v[j].start_frame < e; j++) {
            struct wtt_note *b = &l->v[j];
            if (b->n_frames == 0 || abs(b->pitch - a->pitch) > t->bend_max
                || onset_near(x, b->start_frame, b->pitch - MIDI_OFFSET)
                   >= t->bend_onset
                || (t->bend_fall > 0 && b->pitch != a->pitch
                    && !falls_under(x, b->start_frame - 2,
                                    b->start_frame + t->bend_fall,
                                    a->pitch - MIDI_OFFSET, t->bend_level))
                || kept(x, b))
            {
                continue;
            }
            if (note_end(b) > e && b->pitch == a->pitch) {
                e = note_end(b);
            }
            TRACE("bend", b, a);
            b->n_frames = 0;
        }
        a->n_frames = e - a->start_frame;
    }
    compact(l);
}


static void
rule_register(const ctx_t *x, list_t *l)
{
    const struct wtt_guitar_tuning *t = x->t;

    for (size_t i = 0; i < l->n; i++) {
        struct wtt_note *nt = &l->v[i];
        int    c = nt->pitch - MIDI_OFFSET;
        double on = onset_near(x, nt->start_frame, c);

        if (on < t->onset_low
            || (nt->pitch > t->register_pitch && on < t->onset_high
                && strum_at(x, nt->start_frame, c) < t->strum_min))
        {
            TRACE("register", nt, NULL);
            nt->n_frames = 0;
        }
    }
    compact(l);
}


/* ---------------------------------------------------------------------------
 * Extraction
 * ------------------------------------------------------------------------- */

/* The columns the official decoding reads for a min/max frequency (its
 * constrainFrequency, with Array.fill's index rules). */
static int
freq_column(double hz)
{
    double t = trunc(12.0 * (log2(hz) - log2(440.0)) + 69.0 - MIDI_OFFSET);

    if (t < 0) {
        t = N_PITCH + t < 0 ? 0 : N_PITCH + t;
    }
    return t > N_PITCH ? N_PITCH : (int) t;
}


int
wtt_notes_guitar_extract(struct wtt_posteriors *post,
                         const struct wtt_notes_params *p,
                         struct wtt_note **out, size_t *count, char *err,
                         size_t errlen)
{
    static const struct {
        unsigned bit;
        void   (*pass)(const ctx_t *, list_t *);
    } passes[] = {
        { WTT_RULE_RANGE, rule_range },
        { WTT_RULE_RETRIGGER, rule_retrigger },
        { WTT_RULE_SPLIT, rule_split },
        { WTT_RULE_GHOST, rule_ghost },
        { WTT_RULE_WEAK, rule_weak },
        { WTT_RULE_BEND, rule_bend },
        { WTT_RULE_REGISTER, rule_register },
    };
    struct wtt_guitar_tuning t;
    struct wtt_notes_params  base = *p;
    ctx_t                    x;
    list_t                   l = { NULL, 0, 0 };

    *out = NULL;
    *count = 0;
    if (p->mode != WTT_NOTES_GUITAR && p->mode != WTT_NOTES_BASS) {
        snprintf(err, errlen, "unknown decoding mode %d", p->mode);
        return -1;
    }
    if ((p->rules & ~WTT_RULES_ALL) != 0) {
        snprintf(err, errlen, "unknown rule bits 0x%x", p->rules);
        return -1;
    }
    t = p->tuning != NULL ? *p->tuning : wtt_notes_guitar_defaults(p->mode);
#ifdef WTT_GUITAR_EXPERIMENT
    tune_from_env(&t);
#endif
    base.mode = WTT_NOTES_OFFICIAL;
    base.tuning = NULL;
    base.pitch_bends = 0;
    if (wtt_notes_extract(post, &base, &l.v, &l.n, err, errlen) != 0) {
        return -1;
    }
    l.cap = l.n;
    x.post = post;
    x.n = (int) post->n_frames;
    x.lo = p->min_freq_hz > 0 ? freq_column(p->min_freq_hz) : 0;
    x.hi = p->max_freq_hz > 0 ? freq_column(p->max_freq_hz) : N_PITCH;
    x.t = &t;
    x.strum = (p->rules & WTT_RULE_STRUM) != 0;
    x.chord = (p->rules & WTT_RULE_CHORD) != 0;

    for (size_t k = 0; k < sizeof(passes) / sizeof(passes[0]); k++) {
        if (p->rules & passes[k].bit) {
            passes[k].pass(&x, &l);
        }
    }
    compact(&l);
#ifdef WTT_GUITAR_EXPERIMENT
    if (trace_f != NULL) {
        fclose(trace_f);
        trace_f = NULL;
    }
#endif
    sort_list(&l, by_start_pitch);

    for (size_t i = 0; i < l.n; i++) {
        struct wtt_note *nt = &l.v[i];
        int              c = nt->pitch - MIDI_OFFSET;
        nt->amplitude = mean_frames(&x, nt->start_frame, note_end(nt), c);
        nt->onset = onset_near(&x, nt->start_frame, c);
        nt->start_s = wtt_notes_frame_time(nt->start_frame);
        nt->end_s = nt->start_s
                    + (wtt_notes_frame_time(note_end(nt)) - nt->start_s);
        nt->bends = NULL;
        nt->n_bends = 0;
        if (p->pitch_bends) {
            wtt_notes_bends(post, nt, p->numpy_ties);
        }
    }
    if (wtt_frame_store_check(&post->rows, err, errlen) != 0) {
        wtt_notes_free(l.v, l.n);
        return -1;
    }
    *out = l.v;
    *count = l.n;
    return 0;
}
