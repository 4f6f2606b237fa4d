/*
 * test_notes_guitar.c: the guitar decoding mode's rules on small synthetic
 * posteriorgrams (core/engine/wtt_notes_guitar.c): each rule changes what
 * it should and nothing when it is off, the official mode is untouched, and
 * modes and rule lists parse or fail clearly.
 */
#include "test.h"
#include "wtt_notes.h"
#include "wtt_notes_guitar.h"

#include <stdint.h>
#include <stdlib.h>

#define COLS   WTT_POST_COLS
#define FRAMES 200
#define COL(midi) ((midi) - 21)

typedef struct {
    float rows[FRAMES * COLS];
} synth_t;


static synth_t *
synth_new(void)
{
    return calloc(1, sizeof(synth_t));
}


/* A sounding pitch: frame activation `level` over [from, to), its contour
 * at the pitch's bin, and (onset > 0) an onset peak at `from`. */
static void
sound(synth_t *s, int from, int to, int midi, float level, float onset)
{
    int c = COL(midi);

    for (int r = from; r < to; r++) {
        s->rows[r * COLS + WTT_POST_FRAMES + c] = level;
        s->rows[r * COLS + WTT_POST_CONTOURS + 3 * c] = level;
    }
    if (onset > 0) {
        s->rows[from * COLS + WTT_POST_ONSETS + c] = onset;
        s->rows[(from - 1) * COLS + WTT_POST_ONSETS + c] = onset * 0.3f;
        s->rows[(from + 1) * COLS + WTT_POST_ONSETS + c] = onset * 0.5f;
    }
}


/* Decodes `s` in `mode` with the rules named in `rules` (NULL: the mode's
 * default). Returns the count, or -1 on an error. */
static long
decode(const synth_t *s, int mode, const char *rules,
       struct wtt_note **notes)
{
    struct wtt_posteriors   post;
    struct wtt_notes_params p = wtt_notes_mode_params(mode);
    size_t                  n = 0;
    char                    err[256];
    int                     rc;

    if (rules != NULL
        && wtt_notes_rules_parse(rules, &p.rules, err, sizeof(err)) != 0)
    {
        return -1;
    }
    wtt_frame_store_init(&post.rows, COLS, SIZE_MAX);
    post.n_frames = FRAMES;
    post.n_samples = FRAMES * 256;
    if (wtt_frame_store_append(&post.rows, s->rows, FRAMES, err,
                               sizeof(err)) != 0)
    {
        wtt_posteriors_free(&post);
        return -1;
    }
    rc = wtt_notes_extract(&post, &p, notes, &n, err, sizeof(err));
    wtt_posteriors_free(&post);
    return rc == 0 ? (long) n : -1;
}


static int
count_pitch(const struct wtt_note *v, long n, int midi)
{
    int k = 0;

    for (long i = 0; i < n; i++) {
        k += v[i].pitch == midi;
    }
    return k;
}


static const struct wtt_note *
find_pitch(const struct wtt_note *v, long n, int midi)
{
    for (long i = 0; i < n; i++) {
        if (v[i].pitch == midi) {
            return &v[i];
        }
    }
    return NULL;
}


int
test_notes_guitar_modes(void)
{
    unsigned rules;
    char     err[256], buf[256];

    ASSERT(wtt_notes_mode_parse("official") == WTT_NOTES_OFFICIAL);
    ASSERT(wtt_notes_mode_parse("guitar") == WTT_NOTES_GUITAR);
    ASSERT(wtt_notes_mode_parse("bass") == WTT_NOTES_BASS);
    ASSERT(wtt_notes_mode_parse("Guitar") == -1);
    ASSERT(wtt_notes_mode_parse("") == -1);
    ASSERT_STR_EQ(wtt_notes_mode_name(WTT_NOTES_BASS), "bass");
    ASSERT(wtt_notes_mode_name(7) == NULL);

    ASSERT(wtt_notes_rules_parse("ghost,bend", &rules, err, sizeof(err))
           == 0);
    ASSERT(rules == (WTT_RULE_GHOST | WTT_RULE_BEND));
    wtt_notes_rules_format(rules, buf, sizeof(buf));
    ASSERT_STR_EQ(buf, "ghost,bend");
    ASSERT(wtt_notes_rules_parse("all", &rules, err, sizeof(err)) == 0);
    ASSERT(rules == WTT_RULES_ALL);
    ASSERT(wtt_notes_rules_parse("none", &rules, err, sizeof(err)) == 0);
    ASSERT(rules == 0);
    ASSERT(wtt_notes_rules_parse("", &rules, err, sizeof(err)) == 0);
    ASSERT(rules == 0);
    ASSERT(wtt_notes_rules_parse("ghost,bogus", &rules, err, sizeof(err))
           == -1);
    ASSERT(strstr(err, "unknown rule 'bogus'") != NULL);
    ASSERT(wtt_notes_rules_parse("ghosts", &rules, err, sizeof(err)) == -1);
    ASSERT(wtt_notes_rules_parse("ghost,", &rules, err, sizeof(err)) == 0);
    ASSERT(rules == WTT_RULE_GHOST);
    ASSERT(wtt_notes_rules_parse("strum,weak", &rules, err, sizeof(err))
           == 0);
    ASSERT(rules == (WTT_RULE_STRUM | WTT_RULE_WEAK));
    wtt_notes_rules_format(WTT_RULES_ALL, buf, sizeof(buf));
    ASSERT_STR_EQ(buf, "ghost,weak,retrigger,split,bend,range,register,"
                  "strum,chord");

    /* The official parameters are the official mode's. */
    {
        struct wtt_notes_params a = wtt_notes_default_params();
        struct wtt_notes_params b = wtt_notes_mode_params(WTT_NOTES_OFFICIAL);
        struct wtt_notes_params g = wtt_notes_mode_params(WTT_NOTES_GUITAR);
        ASSERT(memcmp(&a, &b, sizeof(a)) == 0);
        ASSERT(g.mode == WTT_NOTES_GUITAR && g.rules == WTT_RULES_DEFAULT);
        ASSERT(g.min_note_frames == 4);
    }
    return 0;
}


int
test_notes_guitar_official_untouched(void)
{
    synth_t                *s = synth_new();
    struct wtt_note        *a = NULL, *b = NULL;
    struct wtt_posteriors   post;
    struct wtt_notes_params p = wtt_notes_default_params();
    size_t                  na = 0, nb = 0;
    char                    err[256];
    int                     rc;

    /* a chord with an octave ghost and a retrigger */
    sound(s, 10, 90, 45, 0.8f, 0.9f);
    sound(s, 10, 60, 57, 0.35f, 0.8f);
    sound(s, 40, 120, 52, 0.7f, 0.9f);
    s->rows[60 * COLS + WTT_POST_ONSETS + COL(45)] = 0.6f;
    wtt_frame_store_init(&post.rows, COLS, SIZE_MAX);
    post.n_frames = FRAMES;
    post.n_samples = FRAMES * 256;
    rc = wtt_frame_store_append(&post.rows, s->rows, FRAMES, err,
                                sizeof(err));
    /* rules and tuning are ignored by the official mode */
    ASSERT(rc == 0);
    ASSERT(wtt_notes_extract(&post, &p, &a, &na, err, sizeof(err)) == 0);
    p.rules = WTT_RULES_ALL;
    ASSERT(wtt_notes_extract(&post, &p, &b, &nb, err, sizeof(err)) == 0);
    ASSERT(na == nb && na >= 4);
    for (size_t i = 0; i < na; i++) {
        ASSERT(a[i].pitch == b[i].pitch);
        ASSERT(a[i].start_frame == b[i].start_frame);
        ASSERT(a[i].n_frames == b[i].n_frames);
        ASSERT(a[i].amplitude == b[i].amplitude);
        ASSERT(a[i].n_bends == b[i].n_bends);
        ASSERT(memcmp(a[i].bends, b[i].bends,
                      sizeof(int) * (size_t) a[i].n_bends) == 0);
    }
    wtt_notes_free(a, na);
    wtt_notes_free(b, nb);

    /* an unknown mode or rule bit fails clearly */
    p.mode = 9;
    ASSERT(wtt_notes_extract(&post, &p, &a, &na, err, sizeof(err)) == -1);
    ASSERT(strstr(err, "mode") != NULL);
    p.mode = WTT_NOTES_GUITAR;
    p.rules = 1u << 20;
    ASSERT(wtt_notes_extract(&post, &p, &a, &na, err, sizeof(err)) == -1);
    ASSERT(strstr(err, "rule") != NULL);
    wtt_posteriors_free(&post);
    free(s);
    return 0;
}


int
test_notes_guitar_ghost(void)
{
    synth_t         *s = synth_new();
    struct wtt_note *v;
    long             n;

    /* A2 with an octave ghost (A3 at under half its activation, attacked
     * with it) and a 3rd-harmonic ghost (E4); later D3 with a real octave
     * (D4 as loud as it). */
    sound(s, 10, 70, 45, 0.8f, 0.9f);
    sound(s, 10, 50, 57, 0.35f, 0.8f);
    sound(s, 10, 40, 64, 0.3f, 0.7f);
    sound(s, 100, 160, 50, 0.8f, 0.9f);
    sound(s, 101, 160, 62, 0.75f, 0.9f);

    n = decode(s, WTT_NOTES_OFFICIAL, NULL, &v);
    ASSERT(n == 5);
    wtt_notes_free(v, (size_t) n);

    n = decode(s, WTT_NOTES_GUITAR, "ghost", &v);
    ASSERT(n == 3);
    ASSERT(count_pitch(v, n, 45) == 1 && count_pitch(v, n, 57) == 0);
    ASSERT(count_pitch(v, n, 64) == 0);
    ASSERT(count_pitch(v, n, 50) == 1 && count_pitch(v, n, 62) == 1);
    wtt_notes_free(v, (size_t) n);

    /* off: the ghosts stay */
    n = decode(s, WTT_NOTES_GUITAR, "none", &v);
    ASSERT(n == 5);
    wtt_notes_free(v, (size_t) n);
    free(s);
    return 0;
}


int
test_notes_guitar_weak(void)
{
    synth_t         *s = synth_new();
    struct wtt_note *v;
    long             n;

    /* G3 swells slowly to a weak level (a resonance) and gets an onset at
     * 20 with no rise. C3 is weak too but rises from silence: a soft
     * pluck. B1 swells the same way to a lower level, which is not weak
     * for a low string in guitar mode (its bar is 0.7 x weak_amp below
     * F#2), and is for a bass. */
    for (int r = 3; r < 20; r++) {
        s->rows[r * COLS + WTT_POST_FRAMES + COL(55)] = 0.02f * (float) (r - 2);
    }
    sound(s, 20, 60, 55, 0.35f, 0.0f);
    s->rows[20 * COLS + WTT_POST_ONSETS + COL(55)] = 0.9f;
    sound(s, 100, 140, 48, 0.35f, 0.9f);
    for (int r = 143; r < 160; r++) {
        s->rows[r * COLS + WTT_POST_FRAMES + COL(35)] = 0.015f * (float) (r - 142);
    }
    sound(s, 160, 190, 35, 0.3f, 0.0f);
    s->rows[160 * COLS + WTT_POST_ONSETS + COL(35)] = 0.9f;

    n = decode(s, WTT_NOTES_GUITAR, "none", &v);
    ASSERT(count_pitch(v, n, 55) >= 1 && count_pitch(v, n, 48) == 1);
    ASSERT(count_pitch(v, n, 35) >= 1);
    wtt_notes_free(v, (size_t) n);
    n = decode(s, WTT_NOTES_GUITAR, "weak", &v);
    ASSERT(n == 2 && v[0].pitch == 48 && v[1].pitch == 35);
    wtt_notes_free(v, (size_t) n);
    n = decode(s, WTT_NOTES_BASS, "weak", &v);
    ASSERT(n == 1 && v[0].pitch == 48);
    wtt_notes_free(v, (size_t) n);
    free(s);
    return 0;
}


int
test_notes_guitar_retrigger(void)
{
    synth_t         *s = synth_new();
    struct wtt_note *v;
    long             n;

    /* E3 rings from 10 to 150; around 60 its onset swells to 0.6 and back
     * over a bed of 0.4, with no rise (another string was plucked): one
     * note. At 100 it is re-plucked (onset 0.9): two notes. A3 rings from
     * 10 to 150 too and its onset peaks sharply to 0.6 at 60, from nothing:
     * plucked again, two notes. */
    sound(s, 10, 150, 52, 0.7f, 0.9f);
    for (int r = 50; r <= 70; r++) {
        s->rows[r * COLS + WTT_POST_ONSETS + COL(52)] = 0.4f;
    }
    s->rows[58 * COLS + WTT_POST_ONSETS + COL(52)] = 0.5f;
    s->rows[59 * COLS + WTT_POST_ONSETS + COL(52)] = 0.55f;
    s->rows[60 * COLS + WTT_POST_ONSETS + COL(52)] = 0.6f;
    s->rows[61 * COLS + WTT_POST_ONSETS + COL(52)] = 0.55f;
    s->rows[62 * COLS + WTT_POST_ONSETS + COL(52)] = 0.5f;
    s->rows[100 * COLS + WTT_POST_ONSETS + COL(52)] = 0.9f;
    sound(s, 10, 150, 57, 0.7f, 0.9f);
    s->rows[60 * COLS + WTT_POST_ONSETS + COL(57)] = 0.6f;

    n = decode(s, WTT_NOTES_OFFICIAL, NULL, &v);
    ASSERT(count_pitch(v, n, 52) == 3 && count_pitch(v, n, 57) == 2);
    wtt_notes_free(v, (size_t) n);

    n = decode(s, WTT_NOTES_GUITAR, "retrigger", &v);
    ASSERT(n == 4);
    ASSERT(count_pitch(v, n, 52) == 2 && count_pitch(v, n, 57) == 2);
    ASSERT(v[0].start_frame == 10 && v[0].n_frames == 90);
    ASSERT(v[0].pitch == 52);
    ASSERT(find_pitch(v + 2, n - 2, 57)->start_frame == 60);
    ASSERT(find_pitch(v + 2, n - 2, 52)->start_frame == 100);
    wtt_notes_free(v, (size_t) n);

    n = decode(s, WTT_NOTES_GUITAR, "none", &v);
    ASSERT(n == 5);
    wtt_notes_free(v, (size_t) n);
    free(s);
    return 0;
}


int
test_notes_guitar_split(void)
{
    synth_t         *s = synth_new();
    struct wtt_note *v;
    long             n;

    /* A3 plucked at 10 and again at 60: the activation dips and rises, and
     * the onset posterior has a flat top over two frames, which the
     * official peak picking (strictly above both neighbours) passes by. */
    sound(s, 10, 120, 57, 0.8f, 0.9f);
    for (int r = 56; r < 60; r++) {
        s->rows[r * COLS + WTT_POST_FRAMES + COL(57)] = 0.45f;
    }
    s->rows[60 * COLS + WTT_POST_ONSETS + COL(57)] = 0.8f;
    s->rows[61 * COLS + WTT_POST_ONSETS + COL(57)] = 0.8f;

    n = decode(s, WTT_NOTES_GUITAR, "none", &v);
    ASSERT(n == 1);
    wtt_notes_free(v, (size_t) n);

    n = decode(s, WTT_NOTES_GUITAR, "split", &v);
    ASSERT(n == 2);
    ASSERT(v[0].start_frame == 10 && v[0].n_frames == 50);
    ASSERT(v[1].start_frame == 60 && v[1].pitch == 57);
    wtt_notes_free(v, (size_t) n);
    free(s);
    return 0;
}


int
test_notes_guitar_bend(void)
{
    synth_t               *s = synth_new();
    struct wtt_note       *v;
    const struct wtt_note *a;
    long                   n;

    /* G3 plucked at 10, bent a whole tone up through G#3 (frames 30-45)
     * to A3 (45-70), released back through G#3 to G3 (75-100). */
    sound(s, 10, 30, 55, 0.8f, 0.9f);
    sound(s, 30, 45, 56, 0.8f, 0.0f);
    sound(s, 45, 70, 57, 0.8f, 0.0f);
    sound(s, 70, 75, 56, 0.8f, 0.0f);
    sound(s, 75, 100, 55, 0.8f, 0.0f);
    /* Later, E3 and then F3 plucked (onset 0.9): two notes, not a bend. */
    sound(s, 130, 150, 52, 0.8f, 0.9f);
    sound(s, 150, 180, 53, 0.8f, 0.9f);

    n = decode(s, WTT_NOTES_OFFICIAL, NULL, &v);
    ASSERT(count_pitch(v, n, 56) + count_pitch(v, n, 57) >= 2);
    wtt_notes_free(v, (size_t) n);

    n = decode(s, WTT_NOTES_GUITAR, "bend", &v);
    ASSERT(count_pitch(v, n, 56) == 0 && count_pitch(v, n, 57) == 0);
    ASSERT(count_pitch(v, n, 55) == 1);
    a = find_pitch(v, n, 55);
    ASSERT(a->start_frame == 10 && a->n_frames == 90);
    /* the bends follow the contour: 0, up to +6 bins (a whole tone), 0 */
    ASSERT(a->n_bends == 90);
    ASSERT(a->bends[5] == 0 && a->bends[40] == 6 && a->bends[85] == 0);
    ASSERT(a->bends[25] == 3);
    ASSERT(count_pitch(v, n, 52) == 1 && count_pitch(v, n, 53) == 1);
    wtt_notes_free(v, (size_t) n);
    free(s);
    return 0;
}


int
test_notes_guitar_range_register(void)
{
    synth_t         *s = synth_new();
    struct wtt_note *v;
    long             n;

    sound(s, 10, 60, 93, 0.8f, 0.9f);       /* A6: above a guitar */
    sound(s, 10, 60, 76, 0.8f, 0.9f);       /* E5: above a bass */
    sound(s, 70, 120, 40, 0.8f, 0.9f);      /* E2 */
    sound(s, 130, 180, 71, 0.8f, 0.52f);    /* B4, a weak onset up high */
    sound(s, 130, 180, 43, 0.8f, 0.52f);    /* G2, the same down low */

    n = decode(s, WTT_NOTES_GUITAR, "none", &v);
    ASSERT(n == 5);
    wtt_notes_free(v, (size_t) n);
    n = decode(s, WTT_NOTES_GUITAR, "range", &v);
    ASSERT(n == 4 && count_pitch(v, n, 93) == 0);
    wtt_notes_free(v, (size_t) n);
    n = decode(s, WTT_NOTES_BASS, "range", &v);
    ASSERT(n == 3 && count_pitch(v, n, 40) == 1 && count_pitch(v, n, 43) == 1
           && count_pitch(v, n, 71) == 1);
    wtt_notes_free(v, (size_t) n);
    /* Bass asks more of an onset above E4 (0.6); guitar's tuning settled
     * on the same bar as below it (docs/engine.md), so its B4 stays. */
    n = decode(s, WTT_NOTES_BASS, "register", &v);
    ASSERT(n == 4 && count_pitch(v, n, 71) == 0);
    wtt_notes_free(v, (size_t) n);
    n = decode(s, WTT_NOTES_GUITAR, "register", &v);
    ASSERT(n == 5 && count_pitch(v, n, 71) == 1);
    wtt_notes_free(v, (size_t) n);
    free(s);
    return 0;
}


/* How many notes of pitch `midi` start at frame `at`. */
static int
starts_at(const struct wtt_note *v, long n, int midi, int at)
{
    int k = 0;

    for (long i = 0; i < n; i++) {
        k += v[i].pitch == midi && v[i].start_frame == at;
    }
    return k;
}


/* A strum at `at`: the strings attacked two by two, a frame apart, each
 * at `level` with an onset of 0.9. */
static void
strum_chord(synth_t *s, int at, int to, const int *pitches, int n,
            float level)
{
    for (int i = 0; i < n; i++) {
        sound(s, at + i / 2, to, pitches[i], level, 0.9f);
    }
}


int
test_notes_guitar_strum(void)
{
    static const int c_major[] = { 43, 48, 52, 55, 64 };
    static const int a_major[] = { 45, 50, 55, 59, 64, 69 };
    synth_t         *s = synth_new();
    struct wtt_note *v;
    long             n;

    /* 1. A C chord (G2 in the bass) strummed at 10 whose C4 (an octave
     * over C3) reads at half C3's activation: a ghost to the ghost rule
     * alone, a doubled string in a strum. */
    strum_chord(s, 10, 60, c_major, 5, 0.7f);
    sound(s, 12, 60, 60, 0.35f, 0.9f);
    /* 2. An A chord at 70 with a weak F3 (0.32, rising from 0.1) for 40
     * frames: weak alone, kept in the strum (a long note among other
     * attacks). */
    strum_chord(s, 70, 110, a_major, 6, 0.7f);
    for (int r = 62; r < 70; r++) {
        s->rows[r * COLS + WTT_POST_FRAMES + COL(53)] = 0.1f;
    }
    sound(s, 70, 110, 53, 0.32f, 0.85f);
    /* 3. E2 rings from 120 to 190; at 150 the other strings of the chord
     * are struck and its onset swells to 0.6 over a bed of 0.4 (no sharp
     * peak, no rise): ringing on to retrigger alone, struck again in the
     * strum. */
    sound(s, 120, 190, 40, 0.7f, 0.9f);
    strum_chord(s, 150, 190, a_major, 6, 0.7f);
    for (int r = 140; r <= 160; r++) {
        s->rows[r * COLS + WTT_POST_ONSETS + COL(40)] = 0.4f;
    }
    s->rows[149 * COLS + WTT_POST_ONSETS + COL(40)] = 0.55f;
    s->rows[150 * COLS + WTT_POST_ONSETS + COL(40)] = 0.6f;
    s->rows[151 * COLS + WTT_POST_ONSETS + COL(40)] = 0.55f;

    n = decode(s, WTT_NOTES_GUITAR, "ghost", &v);
    ASSERT(starts_at(v, n, 60, 12) == 0);
    wtt_notes_free(v, (size_t) n);
    n = decode(s, WTT_NOTES_GUITAR, "ghost,strum", &v);
    ASSERT(starts_at(v, n, 60, 12) == 1);
    wtt_notes_free(v, (size_t) n);

    n = decode(s, WTT_NOTES_GUITAR, "weak", &v);
    ASSERT(starts_at(v, n, 60, 12) == 1 && starts_at(v, n, 53, 70) == 0);
    wtt_notes_free(v, (size_t) n);
    n = decode(s, WTT_NOTES_GUITAR, "weak,strum", &v);
    ASSERT(starts_at(v, n, 53, 70) == 1);
    wtt_notes_free(v, (size_t) n);

    n = decode(s, WTT_NOTES_GUITAR, "retrigger", &v);
    ASSERT(count_pitch(v, n, 40) == 1 && starts_at(v, n, 40, 120) == 1);
    wtt_notes_free(v, (size_t) n);
    n = decode(s, WTT_NOTES_GUITAR, "retrigger,strum", &v);
    ASSERT(count_pitch(v, n, 40) == 2 && starts_at(v, n, 40, 150) == 1);
    wtt_notes_free(v, (size_t) n);

    /* strum alone changes nothing */
    n = decode(s, WTT_NOTES_GUITAR, "strum", &v);
    {
        struct wtt_note *w;
        long             m = decode(s, WTT_NOTES_GUITAR, "none", &w);
        ASSERT(m == n);
        wtt_notes_free(w, (size_t) m);
    }
    wtt_notes_free(v, (size_t) n);
    free(s);
    return 0;
}


/* What the strum rule's keep spares: a long note among other attacks, from
 * weak and from bend; a short one it leaves to them. */
int
test_notes_guitar_keep(void)
{
    static const int chord[] = { 45, 57, 64 };
    synth_t         *s = synth_new();
    struct wtt_note *v;
    long             n;

    /* 1. In a chord struck at 10, a weak F3 (0.3, onset 0.6, rising from
     * 0.1) for 40 frames and a weak B3 for 8. */
    strum_chord(s, 10, 50, chord, 3, 0.7f);
    for (int r = 2; r < 10; r++) {
        s->rows[r * COLS + WTT_POST_FRAMES + COL(53)] = 0.1f;
        s->rows[r * COLS + WTT_POST_FRAMES + COL(59)] = 0.1f;
    }
    sound(s, 10, 50, 53, 0.3f, 0.6f);
    sound(s, 10, 18, 59, 0.3f, 0.6f);
    /* 2. E3 from 80 to 110, then F3 from 110 to 160 with an onset of 0.6,
     * as if E3 were bent up a semitone, while a chord is struck at 110. */
    sound(s, 80, 110, 52, 0.7f, 0.9f);
    sound(s, 110, 160, 53, 0.7f, 0.6f);
    strum_chord(s, 110, 160, chord, 3, 0.7f);

    n = decode(s, WTT_NOTES_GUITAR, "weak", &v);
    ASSERT(starts_at(v, n, 53, 10) == 0 && starts_at(v, n, 59, 10) == 0);
    wtt_notes_free(v, (size_t) n);
    n = decode(s, WTT_NOTES_GUITAR, "weak,strum", &v);
    ASSERT(starts_at(v, n, 53, 10) == 1 && starts_at(v, n, 59, 10) == 0);
    wtt_notes_free(v, (size_t) n);

    n = decode(s, WTT_NOTES_GUITAR, "bend", &v);
    ASSERT(starts_at(v, n, 52, 80) == 1 && starts_at(v, n, 53, 110) == 0);
    wtt_notes_free(v, (size_t) n);
    n = decode(s, WTT_NOTES_GUITAR, "bend,strum", &v);
    ASSERT(starts_at(v, n, 52, 80) == 1 && starts_at(v, n, 53, 110) == 1);
    wtt_notes_free(v, (size_t) n);

    /* bass keeps nothing this way: it is not strummed */
    n = decode(s, WTT_NOTES_BASS, "weak,strum", &v);
    ASSERT(starts_at(v, n, 53, 10) == 0);
    wtt_notes_free(v, (size_t) n);
    free(s);
    return 0;
}


/* decode() with settings of its own instead of the mode's defaults. */
static long
decode_tuned(const synth_t *s, const char *rules,
             const struct wtt_guitar_tuning *t, struct wtt_note **notes)
{
    struct wtt_posteriors   post;
    struct wtt_notes_params p = wtt_notes_mode_params(WTT_NOTES_GUITAR);
    size_t                  n = 0;
    char                    err[256];
    int                     rc;

    if (wtt_notes_rules_parse(rules, &p.rules, err, sizeof(err)) != 0) {
        return -1;
    }
    p.tuning = t;
    wtt_frame_store_init(&post.rows, COLS, SIZE_MAX);
    post.n_frames = FRAMES;
    post.n_samples = FRAMES * 256;
    if (wtt_frame_store_append(&post.rows, s->rows, FRAMES, err,
                               sizeof(err)) != 0)
    {
        wtt_posteriors_free(&post);
        return -1;
    }
    rc = wtt_notes_extract(&post, &p, notes, &n, err, sizeof(err));
    wtt_posteriors_free(&post);
    return rc == 0 ? (long) n : -1;
}


/* The chord rule: a long octave at half its root's activation, attacked
 * with three other strings that are no overtones, is a string; so is the
 * same pitch in the next strum of the chord (its voicing repeats), but not
 * a second away. A bend is not followed into a pitch struck in a strum. */
int
test_notes_guitar_chord(void)
{
    static const int chord[] = { 47, 50, 52 };        /* B2 D3 E3 */
    static const int strum[] = { 60, 64, 67, 69, 72, 76 };
    synth_t         *s = synth_new();
    struct wtt_note *v;
    long             n;

    /* 1. G2 under the chord at 10, with G3 (0.35 beside G2's 0.8) for 26
     * frames: an octave ghost to the ratios, a string of the chord. At 38
     * G2 and a short G3 are struck again, the chord ringing on: kept as
     * the same voicing (within chord_memory, 30 frames). At 150, G2 and a
     * short G3 alone: a ghost. */
    sound(s, 10, 38, 43, 0.8f, 0.9f);
    strum_chord(s, 10, 70, chord, 3, 0.7f);
    sound(s, 10, 36, 55, 0.35f, 0.9f);
    sound(s, 38, 70, 43, 0.8f, 0.9f);
    sound(s, 38, 53, 55, 0.35f, 0.9f);
    sound(s, 150, 190, 43, 0.8f, 0.9f);
    sound(s, 150, 165, 55, 0.35f, 0.9f);

    n = decode(s, WTT_NOTES_GUITAR, "ghost", &v);
    ASSERT(count_pitch(v, n, 55) == 0);
    ASSERT(starts_at(v, n, 43, 10) == 1 && starts_at(v, n, 47, 10) == 1);
    wtt_notes_free(v, (size_t) n);
    n = decode(s, WTT_NOTES_GUITAR, "ghost,chord", &v);
    ASSERT(starts_at(v, n, 55, 10) == 1 && starts_at(v, n, 55, 38) == 1);
    ASSERT(starts_at(v, n, 55, 150) == 0);
    wtt_notes_free(v, (size_t) n);
    /* without the memory the short one in the next strum is a ghost */
    {
        struct wtt_guitar_tuning t =
            wtt_notes_guitar_defaults(WTT_NOTES_GUITAR);
        t.chord_memory = 0;
        n = decode_tuned(s, "ghost,chord", &t, &v);
        ASSERT(starts_at(v, n, 55, 10) == 1 && starts_at(v, n, 55, 38) == 0);
        wtt_notes_free(v, (size_t) n);
    }
    free(s);

    /* 2. E3 from 10 to 40, then F3 from 40 (onset 0.6) struck with six
     * other strings: to bend alone E3 bent up a semitone, to the chord
     * rule a chord change. */
    s = synth_new();
    sound(s, 10, 40, 52, 0.8f, 0.9f);
    sound(s, 40, 90, 53, 0.8f, 0.6f);
    for (int i = 0; i < 6; i++) {
        sound(s, 40, 90, strum[i], 0.7f, 0.9f);
    }
    n = decode(s, WTT_NOTES_GUITAR, "bend", &v);
    ASSERT(starts_at(v, n, 52, 10) == 1 && count_pitch(v, n, 53) == 0);
    wtt_notes_free(v, (size_t) n);
    n = decode(s, WTT_NOTES_GUITAR, "bend,chord", &v);
    ASSERT(starts_at(v, n, 52, 10) == 1 && starts_at(v, n, 53, 40) == 1);
    ASSERT(find_pitch(v, n, 52)->n_frames == 30);
    wtt_notes_free(v, (size_t) n);
    free(s);
    return 0;
}


/* bend's pieces: with the fall test (bend_fall: bass mode's default; guitar
 * mode's search turned it off), a note of a neighbouring pitch inside a
 * note that rings on at its own pitch is another string, not a piece of a
 * bend. */
int
test_notes_guitar_bend_fall(void)
{
    synth_t                 *s = synth_new();
    struct wtt_note         *v;
    long                     n;
    struct wtt_guitar_tuning t = wtt_notes_guitar_defaults(WTT_NOTES_GUITAR);

    /* E3 rings from 10 to 100; F#3 is plucked lightly (onset 0.6) at 40. */
    sound(s, 10, 100, 52, 0.7f, 0.9f);
    sound(s, 40, 60, 54, 0.6f, 0.6f);

    t.bend_fall = 15;
    n = decode_tuned(s, "bend", &t, &v);
    ASSERT(starts_at(v, n, 52, 10) == 1 && starts_at(v, n, 54, 40) == 1);
    wtt_notes_free(v, (size_t) n);
    t.bend_fall = 0;
    n = decode_tuned(s, "bend", &t, &v);
    ASSERT(starts_at(v, n, 52, 10) == 1 && count_pitch(v, n, 54) == 0);
    wtt_notes_free(v, (size_t) n);
    free(s);
    return 0;
}


/* retrigger's second onset: a weaker onset peak within retrigger_ioi
 * frames of a note's start is the same pluck; a stronger one, or one
 * later, is not. */
int
test_notes_guitar_second_onset(void)
{
    synth_t                 *s = synth_new();
    struct wtt_note         *v;
    long                     n;
    struct wtt_guitar_tuning t = wtt_notes_guitar_defaults(WTT_NOTES_GUITAR);

    /* E3 plucked at 10 (0.9) with a second peak of 0.7 at 16; A3 at 10
     * (0.6) then 0.95 at 16; C4 at 10 and again (0.7) at 30. */
    sound(s, 10, 60, 52, 0.7f, 0.9f);
    s->rows[16 * COLS + WTT_POST_ONSETS + COL(52)] = 0.7f;
    sound(s, 10, 60, 57, 0.7f, 0.6f);
    s->rows[16 * COLS + WTT_POST_ONSETS + COL(57)] = 0.95f;
    sound(s, 10, 60, 60, 0.7f, 0.9f);
    s->rows[30 * COLS + WTT_POST_ONSETS + COL(60)] = 0.7f;

    n = decode(s, WTT_NOTES_GUITAR, "none", &v);
    ASSERT(count_pitch(v, n, 52) == 2 && count_pitch(v, n, 57) == 2);
    ASSERT(count_pitch(v, n, 60) == 2);
    wtt_notes_free(v, (size_t) n);
    n = decode(s, WTT_NOTES_GUITAR, "retrigger", &v);
    ASSERT(count_pitch(v, n, 52) == 1 && starts_at(v, n, 52, 10) == 1);
    ASSERT(find_pitch(v, n, 52)->n_frames == 50);
    ASSERT(count_pitch(v, n, 57) == 2 && count_pitch(v, n, 60) == 2);
    wtt_notes_free(v, (size_t) n);
    t.retrigger_ioi = 0;
    n = decode_tuned(s, "retrigger", &t, &v);
    ASSERT(count_pitch(v, n, 52) == 2);
    wtt_notes_free(v, (size_t) n);
    free(s);
    return 0;
}
