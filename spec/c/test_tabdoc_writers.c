/*
 * test_tabdoc_writers.c: the ASCII, alphaTex and GPIF writers
 * (core/tab/wtt_tab_ascii.c, wtt_tab_alphatex.c, wtt_tab_gpif.c) and what
 * they share (core/tab/wtt_tab_events.h): the exact text of a small
 * hand-built document in each format, what they write of its variants,
 * their errors, the facts of a document, the written values of lengths,
 * pitch names and numbers.
 */
#include "test.h"
#include "wtt_tab_events.h"

#include <math.h>
#include <stdlib.h>

#define STR(lit) { (lit), sizeof(lit) - 1 }

/*
 * A 2/4 piece, capo 2, with a pickup: a let-ring note; a dotted-8th chord
 * (a bend with release, vibrato) whose bent note a 16th hammers on from;
 * an 8th-triplet group whose second note slides down from the first and
 * is tied on across the bar line; in the last measure two equal notes and
 * an 8th rest (GPIF shares their note, their beat and the rhythm). Two
 * unplayable notes. The same document as Lua tables gave the texts below
 * from the Lua writers these replaced.
 */
static const struct wtt_tab_technique TECHS[] = {
    { .type = STR("let_ring") },
    { .type = STR("bend"),
      .has = WTT_TECH_HAS_SEMITONES | WTT_TECH_HAS_RELEASE,
      .semitones = 1.5, .release = 1 },
    { .type = STR("vibrato") },
    { .type = STR("hammer_on"), .has = WTT_TECH_HAS_FROM, .from = 2 },
    { .type = STR("slide"), .has = WTT_TECH_HAS_FROM, .from = 5,
      .direction = STR("down") },
};

#define NOTE(s, f, first, n) \
    { .end_s = 1, .beat = 1, .pitch_midi = 60, .velocity = 80, .string = (s), \
      .fret = (f), .measure = 1, .ticks = 12, .duration = STR("1/4"), \
      .tech_first = (first), .n_tech = (n) }

static const struct wtt_tab_note NOTES[] = {
    NOTE(1, 0, 0, 1), NOTE(3, 2, 1, 1), NOTE(2, 3, 2, 1), NOTE(3, 4, 3, 1),
    NOTE(1, 5, 0, 0), NOTE(1, 3, 4, 1), NOTE(3, 2, 0, 0), NOTE(3, 2, 0, 0),
};

static const int EVENT_NOTES[] = { 1, 2, 3, 4, 5, 6, 6, 6, 7, 8 };

static const struct wtt_tab_event EVENTS[] = {
    { .tick = 0, .ticks = 12, .note_first = 0, .n_notes = 1 },
    { .tick = 0, .ticks = 9, .note_first = 1, .n_notes = 2 },
    { .tick = 9, .ticks = 3, .note_first = 3, .n_notes = 1 },
    { .tick = 12, .ticks = 4, .note_first = 4, .n_notes = 1 },
    { .tick = 16, .ticks = 4, .note_first = 5, .n_notes = 1 },
    { .tick = 20, .ticks = 4, .tied = 1, .note_first = 6, .n_notes = 1 },
    { .tick = 0, .ticks = 6, .tied = 1, .note_first = 7, .n_notes = 1 },
    { .tick = 6, .ticks = 6, .note_first = 8, .n_notes = 1 },
    { .tick = 12, .ticks = 6, .note_first = 9, .n_notes = 1 },
    { .tick = 18, .ticks = 6, .rest = 1, .note_first = 10 },
};

static const struct wtt_tab_measure MEASURES[] = {
    { .number = 0, .start_s = 0, .start_tick = 0, .ticks = 12,
      .event_first = 0, .n_events = 1 },
    { .number = 1, .start_s = 0.5, .start_tick = 12, .ticks = 24,
      .event_first = 1, .n_events = 5 },
    { .number = 2, .start_s = 1.5, .start_tick = 36, .ticks = 24,
      .event_first = 6, .n_events = 4 },
};

static const struct wtt_tab_unplayable UNPLAYABLE[] = {
    { .start_s = 2.5, .end_s = 2.75, .pitch_midi = 30,
      .reason = STR("out_of_range"), .has_folded_to = 1, .folded_to = 42 },
    { .start_s = 3.0625, .end_s = 3.5, .pitch_midi = 100,
      .reason = STR("too_many_notes") },
};


static struct wtt_tabdoc
riff(void)
{
    struct wtt_tabdoc d = {
        .version = 1, .title = STR("Riff \"A\" \\ ]]> <&>\t"),
        .instrument = STR("guitar"), .tuning_name = STR("standard"),
        .n_strings = 6, .tuning = { 64, 59, 55, 50, 45, 40 }, .capo = 2,
        .tempo_bpm = 117.5, .beats = 2, .beat_type = 4, .pickup_ticks = 12,
        .divisions = 12,
        .measures = MEASURES, .n_measures = 3,
        .events = EVENTS, .n_events = 10,
        .event_notes = EVENT_NOTES, .n_event_notes = 10,
        .notes = NOTES, .n_notes = 8,
        .techniques = TECHS, .n_techniques = 5,
        .unplayable = UNPLAYABLE, .n_unplayable = 2,
    };
    return d;
}

static const char TAB_ASCII[] =
    "Riff \"A\" \\ ]]> <&>\t\n"
    "Instrument: guitar   Tuning: E2 A2 D3 G3 B3 E4 (standard)\n"
    "Capo: 2   Tempo: 118 bpm   Time: 2/4\n"
    "\n"
    "  0     1                  2            \n"
    "e|0----|-----------5-\\3---|------------|\n"
    "B|-----|3~----------------|------------|\n"
    "G|-----|2b4r2---h4--------|---2--2-----|\n"
    "D|-----|------------------|------------|\n"
    "A|-----|------------------|------------|\n"
    "E|-----|------------------|------------|\n"
    "\n"
    "Not playable on this instrument:\n"
    "     2.500 s  F#1  (MIDI 30)  out of range, played as F#2\n"
    "     3.063 s  E7   (MIDI 100)  more notes than strings can hold\n"
    "\n"
    "h hammer-on  p pull-off  b bend  r release  / slide up  \\ slide down "
    " ~ vibrato\n";

static const char TAB_ALPHATEX[] =
    "\\title \"Riff \\\"A\\\" \\\\ ]]> <&>\\t\"\n"
    "\\track \"Guitar\" { instrument 25 }\n"
    "\\staff { score tabs }\n"
    "\\tuning (\"E4\" \"B3\" \"G3\" \"D3\" \"A2\" \"E2\")\n"
    "\\capo 2\n"
    "\\ts (2 4)\n"
    "\\tempo 117.5\n"
    "\\ac 0.1{lr}.4 |\n"
    "(2.3{b (0 3 0) h} 3.2{v}).8{d} 4.3.16 5.1{sl}.8{tu 3} 3.1.8{tu 3} 3.1{"
    "t}.8{tu 3} |\n"
    "3.1{t}.8 2.3.8 2.3.8 r.8\n";

static const char TAB_GPIF[] =
    "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
    "<GPIF><GPVersion>7</GPVersion><Score><Title>Riff \"A\" \\ ]]&gt; &lt;&"
    "amp;&gt;\t</Title></Score><MasterTrack><Tracks>0</Tracks><Automations>"
    "<Automation><Type>Tempo</Type><Linear>false</Linear><Bar>0</Bar><Posit"
    "ion>0</Position><Visible>true</Visible><Value>117.5 2</Value></Automat"
    "ion></Automations><Anacrusis/></MasterTrack><Tracks><Track id=\"0\"><N"
    "ame><![CDATA[Guitar]]></Name><ShortName><![CDATA[Guitar]]></ShortName>"
    "<Color>200 0 0</Color><Staves><Staff><Properties><Property name=\"Capo"
    "Fret\"><Fret>2</Fret></Property><Property name=\"Tuning\"><Pitches>40 "
    "45 50 55 59 64</Pitches></Property></Properties></Staff></Staves><Tran"
    "spose><Chromatic>0</Chromatic><Octave>-1</Octave></Transpose><MidiConn"
    "ection><Port>0</Port><PrimaryChannel>0</PrimaryChannel><SecondaryChann"
    "el>1</SecondaryChannel></MidiConnection><Sounds><Sound><Name><![CDATA["
    "Guitar]]></Name><Path>Midi/25</Path><Role>Factory</Role><MIDI><LSB>0</"
    "LSB><MSB>0</MSB><Program>25</Program></MIDI></Sound></Sounds></Track><"
    "/Tracks><MasterBars><MasterBar><Key><AccidentalCount>0</AccidentalCoun"
    "t><Mode>Major</Mode></Key><Time>2/4</Time><Bars>0</Bars></MasterBar><M"
    "asterBar><Key><AccidentalCount>0</AccidentalCount><Mode>Major</Mode></"
    "Key><Time>2/4</Time><Bars>1</Bars></MasterBar><MasterBar><Key><Acciden"
    "talCount>0</AccidentalCount><Mode>Major</Mode></Key><Time>2/4</Time><B"
    "ars>2</Bars></MasterBar></MasterBars><Bars><Bar id=\"0\"><Clef>G2</Cle"
    "f><Voices>0 -1 -1 -1</Voices></Bar><Bar id=\"1\"><Clef>G2</Clef><Voice"
    "s>1 -1 -1 -1</Voices></Bar><Bar id=\"2\"><Clef>G2</Clef><Voices>2 -1 -"
    "1 -1</Voices></Bar></Bars><Voices><Voice id=\"0\"><Beats>0</Beats></Vo"
    "ice><Voice id=\"1\"><Beats>1 2 3 4 5</Beats></Voice><Voice id=\"2\"><B"
    "eats>6 7 7 8</Beats></Voice></Voices><Beats><Beat id=\"0\"><Rhythm ref"
    "=\"0\"/><Notes>0</Notes></Beat><Beat id=\"1\"><Rhythm ref=\"1\"/><Note"
    "s>1 2</Notes></Beat><Beat id=\"2\"><Rhythm ref=\"2\"/><Notes>3</Notes>"
    "</Beat><Beat id=\"3\"><Rhythm ref=\"3\"/><Notes>4</Notes></Beat><Beat "
    "id=\"4\"><Rhythm ref=\"3\"/><Notes>5</Notes></Beat><Beat id=\"5\"><Rhy"
    "thm ref=\"3\"/><Notes>6</Notes></Beat><Beat id=\"6\"><Rhythm ref=\"4\""
    "/><Notes>7</Notes></Beat><Beat id=\"7\"><Rhythm ref=\"4\"/><Notes>8</N"
    "otes></Beat><Beat id=\"8\"><Rhythm ref=\"4\"/></Beat></Beats><Notes><N"
    "ote id=\"0\"><LetRing/><Properties><Property name=\"String\"><String>5"
    "</String></Property><Property name=\"Fret\"><Fret>0</Fret></Property><"
    "/Properties></Note><Note id=\"1\"><Properties><Property name=\"String"
    "\"><String>3</String></Property><Property name=\"Fret\"><Fret>2</Fret>"
    "</Property><Property name=\"HopoOrigin\"><Enable/></Property><Property"
    " name=\"Bended\"><Enable/></Property><Property name=\"BendOriginValue"
    "\"><Float>0</Float></Property><Property name=\"BendOriginOffset\"><Flo"
    "at>0</Float></Property><Property name=\"BendMiddleValue\"><Float>75</F"
    "loat></Property><Property name=\"BendMiddleOffset1\"><Float>33</Float>"
    "</Property><Property name=\"BendMiddleOffset2\"><Float>66</Float></Pro"
    "perty><Property name=\"BendDestinationValue\"><Float>0</Float></Proper"
    "ty><Property name=\"BendDestinationOffset\"><Float>100</Float></Proper"
    "ty></Properties></Note><Note id=\"2\"><Vibrato>Slight</Vibrato><Proper"
    "ties><Property name=\"String\"><String>4</String></Property><Property "
    "name=\"Fret\"><Fret>3</Fret></Property></Properties></Note><Note id=\""
    "3\"><Properties><Property name=\"String\"><String>3</String></Property"
    "><Property name=\"Fret\"><Fret>4</Fret></Property><Property name=\"Hop"
    "oDestination\"><Enable/></Property></Properties></Note><Note id=\"4\">"
    "<Properties><Property name=\"String\"><String>5</String></Property><Pr"
    "operty name=\"Fret\"><Fret>5</Fret></Property><Property name=\"Slide\""
    "><Flags>2</Flags></Property></Properties></Note><Note id=\"5\"><Tie or"
    "igin=\"true\" destination=\"false\"/><Properties><Property name=\"Stri"
    "ng\"><String>5</String></Property><Property name=\"Fret\"><Fret>3</Fre"
    "t></Property></Properties></Note><Note id=\"6\"><Tie origin=\"true\" d"
    "estination=\"true\"/><Properties><Property name=\"String\"><String>5</"
    "String></Property><Property name=\"Fret\"><Fret>3</Fret></Property></P"
    "roperties></Note><Note id=\"7\"><Tie origin=\"false\" destination=\"tr"
    "ue\"/><Properties><Property name=\"String\"><String>5</String></Proper"
    "ty><Property name=\"Fret\"><Fret>3</Fret></Property></Properties></Not"
    "e><Note id=\"8\"><Properties><Property name=\"String\"><String>3</Stri"
    "ng></Property><Property name=\"Fret\"><Fret>2</Fret></Property></Prope"
    "rties></Note></Notes><Rhythms><Rhythm id=\"0\"><NoteValue>Quarter</Not"
    "eValue></Rhythm><Rhythm id=\"1\"><NoteValue>Eighth</NoteValue><Augment"
    "ationDot count=\"1\"/></Rhythm><Rhythm id=\"2\"><NoteValue>16th</NoteV"
    "alue></Rhythm><Rhythm id=\"3\"><NoteValue>Eighth</NoteValue><PrimaryTu"
    "plet num=\"3\" den=\"2\"/></Rhythm><Rhythm id=\"4\"><NoteValue>Eighth<"
    "/NoteValue></Rhythm></Rhythms></GPIF>\n";


/* The text's bytes equal `want` (NUL-terminated). */
static int
text_is(const struct wtt_tab_text *t, const char *want)
{
    size_t n = strlen(want);

    if (t->len != n || memcmp(t->data, want, n) != 0) {
        size_t i = 0;
        while (i < n && i < t->len && t->data[i] == want[i]) {
            i++;
        }
        fprintf(stderr, "text differs at byte %zu: got \"%.60s\"\n"
                "                   want \"%.60s\"\n", i,
                i < t->len ? t->data + i : "", want + i);
        return 0;
    }
    return 1;
}


/* Whether the text starts with `prefix`. */
static int
starts_with(const struct wtt_tab_text *t, const char *prefix)
{
    size_t n = strlen(prefix);

    if (t->len < n || memcmp(t->data, prefix, n) != 0) {
        fprintf(stderr, "text starts \"%.*s\"\n", (int) n, t->data);
        return 0;
    }
    return 1;
}


/* How many times `needle` is in the text. */
static int
count_of(const struct wtt_tab_text *t, const char *needle)
{
    int         n = 0;
    const char *p = t->data;

    while ((p = strstr(p, needle)) != NULL) {
        n++;
        p++;
    }
    return n;
}


int
test_tabdoc_ascii(void)
{
    struct wtt_tabdoc      d = riff();
    struct wtt_tab_text    t;
    struct wtt_tab_measure bars[10];
    struct wtt_tab_event   rests[10];
    char                   err[WTT_TAB_ERR_SIZE];

    wtt_tab_text_init(&t);
    ASSERT(wtt_tab_ascii(&d, &t, err, sizeof(err)) == 0);
    ASSERT(text_is(&t, TAB_ASCII));

    /* No title, instrument or tuning name, no capo, nothing unplayable;
     * a drop-D tuning's highest string keeps its capital. */
    d.title.s = NULL;
    d.instrument.s = NULL;
    d.tuning_name.s = NULL;
    d.capo = 0;
    d.tempo_bpm = 96.5;
    d.tuning[5] = 38;
    d.n_unplayable = 0;
    wtt_tab_text_clear(&t);
    ASSERT(wtt_tab_ascii(&d, &t, err, sizeof(err)) == 0);
    ASSERT(starts_with(&t, "Instrument: nil   Tuning: D2 A2 D3 G3 B3 E4 "
                       "(custom)\nCapo: none   Tempo: 97 bpm   Time: 2/4\n\n"
                       "  0     1"));
    ASSERT(strstr(t.data, "\nE|0----|") != NULL);
    ASSERT(strstr(t.data, "Not playable") == NULL);

    /* Ten bars of rest: seven fit in 80 columns, three go on. */
    for (int i = 0; i < 10; i++) {
        bars[i] = (struct wtt_tab_measure) { .number = i + 1, .ticks = 24,
                                             .event_first = (size_t) i,
                                             .n_events = 1 };
        rests[i] = (struct wtt_tab_event) { .ticks = 24, .rest = 1 };
    }
    d = riff();
    d.measures = bars;
    d.n_measures = 10;
    d.events = rests;
    d.n_events = 10;
    wtt_tab_text_clear(&t);
    ASSERT(wtt_tab_ascii(&d, &t, err, sizeof(err)) == 0);
    ASSERT(count_of(&t, "\ne|") == 2);
    ASSERT(strstr(t.data, "\ne|---------|---------|---------|---------|"
                  "---------|---------|---------|\n") != NULL);
    ASSERT(strstr(t.data, "\n  8         9         10        \n") != NULL);
    wtt_tab_text_free(&t);
    return 0;
}


int
test_tabdoc_alphatex(void)
{
    struct wtt_tabdoc   d = riff();
    struct wtt_tab_text t;
    char                err[WTT_TAB_ERR_SIZE];

    wtt_tab_text_init(&t);
    ASSERT(wtt_tab_alphatex(&d, &t, err, sizeof(err)) == 0);
    ASSERT(text_is(&t, TAB_ALPHATEX));

    /* No pickup, no capo, a bass, an empty title, a whole tempo. */
    d.pickup_ticks = 0;
    d.capo = 0;
    d.instrument = (struct wtt_tab_str) STR("bass");
    d.title = (struct wtt_tab_str) STR("");
    d.tempo_bpm = 90;
    wtt_tab_text_clear(&t);
    ASSERT(wtt_tab_alphatex(&d, &t, err, sizeof(err)) == 0);
    ASSERT(starts_with(&t, "\\track \"Bass\" { instrument 33 }\n"));
    ASSERT(strstr(t.data, "\\capo") == NULL);
    ASSERT(strstr(t.data, "\\tempo 90\n0.1{lr}.4 |\n") != NULL);

    /* Control characters in the title as \u00XX. */
    d.title = (struct wtt_tab_str) STR("a\001\177b");
    wtt_tab_text_clear(&t);
    ASSERT(wtt_tab_alphatex(&d, &t, err, sizeof(err)) == 0);
    ASSERT(starts_with(&t, "\\title \"a\\u0001\\u007fb\"\n"));
    wtt_tab_text_free(&t);
    return 0;
}


int
test_tabdoc_gpif(void)
{
    struct wtt_tabdoc   d = riff();
    struct wtt_tab_text t;
    char                err[WTT_TAB_ERR_SIZE];

    wtt_tab_text_init(&t);
    ASSERT(wtt_tab_gpif(&d, &t, err, sizeof(err)) == 0);
    ASSERT(text_is(&t, TAB_GPIF));

    /* A title CDATA can hold; none; a ukulele without pickup. */
    d.title = (struct wtt_tab_str) STR("<a & b>");
    d.instrument = (struct wtt_tab_str) STR("ukulele");
    d.pickup_ticks = 0;
    wtt_tab_text_clear(&t);
    ASSERT(wtt_tab_gpif(&d, &t, err, sizeof(err)) == 0);
    ASSERT(strstr(t.data, "<Title><![CDATA[<a & b>]]></Title>") != NULL);
    ASSERT(strstr(t.data, "<Anacrusis/>") == NULL);
    ASSERT(strstr(t.data, "<Octave>0</Octave>") != NULL);
    ASSERT(strstr(t.data, "<Program>24</Program>") != NULL);
    d.title.s = NULL;
    wtt_tab_text_clear(&t);
    ASSERT(wtt_tab_gpif(&d, &t, err, sizeof(err)) == 0);
    ASSERT(strstr(t.data, "<Title><![CDATA[]]></Title>") != NULL);
    wtt_tab_text_free(&t);
    return 0;
}


typedef int (*writer_fn)(const struct wtt_tabdoc *, struct wtt_tab_text *,
                         char *, size_t);

/* Runs `write` on `d`, expecting it to fail with `want`. */
static int
fails_with(writer_fn write, const struct wtt_tabdoc *d, const char *want)
{
    struct wtt_tab_text t;
    char                err[WTT_TAB_ERR_SIZE] = "";
    int                 rc;

    wtt_tab_text_init(&t);
    rc = write(d, &t, err, sizeof(err));
    wtt_tab_text_free(&t);
    if (rc != -1 || strcmp(err, want) != 0) {
        fprintf(stderr, "rc %d, err \"%s\", want \"%s\"\n", rc, err, want);
        return 0;
    }
    return 1;
}


int
test_tabdoc_writer_errors(void)
{
    struct wtt_tabdoc         d = riff();
    struct wtt_tab_event      ev[10];
    struct wtt_tab_technique  techs[5];
    struct wtt_tab_unplayable unplayable[2];
    int                       event_notes[10];

    memcpy(ev, EVENTS, sizeof(ev));
    memcpy(techs, TECHS, sizeof(techs));
    memcpy(unplayable, UNPLAYABLE, sizeof(unplayable));
    memcpy(event_notes, EVENT_NOTES, sizeof(event_notes));

    /* A length that is no one notatable value: ASCII writes it. */
    ev[2].ticks = 5;
    d.events = ev;
    ASSERT(fails_with(wtt_tab_alphatex, &d, "measure 1: an event of 5 ticks "
                      "(12 per quarter) is not one notatable value"));
    ASSERT(fails_with(wtt_tab_gpif, &d, "measure 1: an event of 5 ticks "
                      "(12 per quarter) is not one notatable value"));
    {
        struct wtt_tab_text t;
        char                err[WTT_TAB_ERR_SIZE];
        wtt_tab_text_init(&t);
        ASSERT(wtt_tab_ascii(&d, &t, err, sizeof(err)) == 0);
        wtt_tab_text_free(&t);
    }

    /* A note that is not there. */
    d = riff();
    event_notes[8] = 9;
    d.event_notes = event_notes;
    ASSERT(fails_with(wtt_tab_ascii, &d, "ascii: measure 2, event at tick 6: "
                      "note 9 is not in the notes list"));
    ASSERT(fails_with(wtt_tab_alphatex, &d, "alphatex: measure 2, event at "
                      "tick 6: note 9 is not in the notes list"));
    ASSERT(fails_with(wtt_tab_gpif, &d, "gp: measure 2, event at tick 6: "
                      "note 9 is not in the notes list"));

    /* A bend with no height. */
    d = riff();
    techs[1].has = WTT_TECH_HAS_RELEASE;
    d.techniques = techs;
    ASSERT(fails_with(wtt_tab_ascii, &d, "ascii: notes[2].techniques[1]: a "
                      "bend has no semitones"));
    ASSERT(fails_with(wtt_tab_alphatex, &d, "alphatex: notes[2]: a bend has "
                      "no semitones"));
    ASSERT(fails_with(wtt_tab_gpif, &d, "gp: notes[2]: a bend has no "
                      "semitones"));

    /* An unplayable pitch that names no note. */
    d = riff();
    unplayable[1].folded_to = 60.5;
    unplayable[1].has_folded_to = 1;
    d.unplayable = unplayable;
    ASSERT(fails_with(wtt_tab_ascii, &d, "ascii: unplayable[2]: a pitch that "
                      "is not a whole number"));

    /* A document that fails the check. */
    d = riff();
    d.n_strings = 0;
    ASSERT(fails_with(wtt_tab_ascii, &d, "tab document: a tuning has 1 to 16 "
                      "strings"));
    ASSERT(fails_with(wtt_tab_alphatex, &d, "tab document: a tuning has 1 to "
                      "16 strings"));
    ASSERT(fails_with(wtt_tab_gpif, &d, "tab document: a tuning has 1 to 16 "
                      "strings"));

    /* Out of memory for the text. */
    {
        writer_fn   writers[3] = { wtt_tab_ascii, wtt_tab_alphatex,
                                   wtt_tab_gpif };
        const char *names[3] = { "ascii: ", "alphatex: ", "gp: " };
        for (int i = 0; i < 3; i++) {
            struct wtt_tab_text t;
            char                err[WTT_TAB_ERR_SIZE];
            d = riff();
            wtt_tab_text_init(&t);
            t.failed = 1;
            ASSERT(writers[i](&d, &t, err, sizeof(err)) == -1);
            ASSERT(strncmp(err, names[i], strlen(names[i])) == 0);
            ASSERT(strstr(err, "out of memory") != NULL);
        }
    }
    return 0;
}


int
test_tabdoc_events(void)
{
    struct wtt_tabdoc      d = riff();
    struct wtt_tab_facts   f;
    struct wtt_tab_value   v;
    struct wtt_tab_text    t;
    struct wtt_tab_measure bars[4];
    char                   name[WTT_TAB_PITCH_NAME_SIZE];
    size_t                 len;

    /* Written values at 12 per quarter, and at 480. */
    ASSERT(wtt_tab_value_of(48, 12, &v) == 0 && v.value == 1 && v.dots == 0
           && v.tuplet == 0);
    ASSERT(wtt_tab_value_of(36, 12, &v) == 0 && v.value == 2 && v.dots == 1);
    ASSERT(wtt_tab_value_of(16, 12, &v) == 0 && v.value == 2
           && v.tuplet == 3);
    ASSERT(wtt_tab_value_of(3, 12, &v) == 0 && v.value == 16 && v.dots == 0);
    ASSERT(wtt_tab_value_of(2, 12, &v) == 0 && v.value == 16
           && v.tuplet == 3);
    ASSERT(wtt_tab_value_of(60, 480, &v) == 0 && v.value == 32);
    ASSERT(wtt_tab_value_of(90, 480, &v) == 0 && v.value == 32
           && v.dots == 1);
    ASSERT(wtt_tab_value_of(5, 12, &v) == -1);
    ASSERT(wtt_tab_value_of(96, 12, &v) == -1);
    ASSERT(wtt_tab_value_of(0, 12, &v) == -1);

    /* Pitch names with sharps, octaves as floor(pitch / 12) - 1. */
    len = wtt_tab_pitch_name(61, name);
    ASSERT(len == 3 && strcmp(name, "C#4") == 0);
    ASSERT(wtt_tab_pitch_name(0, name) == 3 && strcmp(name, "C-1") == 0);
    ASSERT(wtt_tab_pitch_name(-1, name) == 3 && strcmp(name, "B-2") == 0);
    ASSERT(wtt_tab_pitch_name(127, name) == 2 && strcmp(name, "G9") == 0);
    ASSERT(strncmp(wtt_tab_pitch_class_name(-11, &len), "C#", 2) == 0
           && len == 2);

    /* Decimals: whole, three places less their zeros, LuaJIT's ties. */
    wtt_tab_text_init(&t);
    wtt_tab_text_decimal(&t, 120);
    wtt_tab_text_lit(&t, " ");
    wtt_tab_text_decimal(&t, 117.25);
    wtt_tab_text_lit(&t, " ");
    wtt_tab_text_decimal(&t, 97.0625);
    wtt_tab_text_lit(&t, " ");
    wtt_tab_text_decimal(&t, 0.0001);
    wtt_tab_text_lit(&t, " ");
    wtt_tab_text_decimal(&t, -0.0);
    wtt_tab_text_lit(&t, " ");
    wtt_tab_text_decimal(&t, INFINITY);
    ASSERT(text_is(&t, "120 117.25 97.063 0. 0 inf"));
    wtt_tab_text_clear(&t);
    wtt_tab_text_fill(&t, '-', 3);
    wtt_tab_text_fill(&t, ' ', 0);
    wtt_tab_text_fill(&t, ' ', -2);
    wtt_tab_text_fill(&t, '=', 2);
    wtt_tab_text_fill(&t, ' ', 70);
    ASSERT(t.len == 75 && strncmp(t.data, "---==   ", 8) == 0
           && t.data[74] == ' ');
    wtt_tab_text_free(&t);
    ASSERT(wtt_tab_quarter_tones(1.5) == 3 && wtt_tab_quarter_tones(0.2) == 0
           && wtt_tab_quarter_tones(0.25) == 1);

    /* Facts: kinds, the legato each note starts, ties on. */
    ASSERT(wtt_tab_facts_init(&f, &d) == 0);
    ASSERT(f.kinds[0] == WTT_TECH_LET_RING && f.kinds[4] == WTT_TECH_SLIDE);
    ASSERT(f.origin[1] == WTT_ORIGIN_HOPO && f.origin[4] == WTT_ORIGIN_SLIDE);
    ASSERT(f.origin[0] == WTT_ORIGIN_NONE && f.origin[5] == WTT_ORIGIN_NONE);
    ASSERT(!f.tied_on[3] && f.tied_on[4] && f.tied_on[5] && !f.tied_on[6]
           && !f.tied_on[9]);
    ASSERT(wtt_tab_first_tech(&d, &f, &NOTES[1], WTT_TECH_BEND)
           == &TECHS[1]);
    ASSERT(wtt_tab_first_tech(&d, &f, &NOTES[1], WTT_TECH_VIBRATO) == NULL);
    wtt_tab_facts_free(&f);
    ASSERT(f.kinds == NULL);

    /* An empty measure between breaks a tie on. */
    memcpy(bars, MEASURES, sizeof(MEASURES));
    bars[1].n_events = 4;
    bars[2] = (struct wtt_tab_measure) { .number = 2, .event_first = 5 };
    bars[3] = MEASURES[2];
    bars[3].number = 3;
    bars[3].event_first = 5;
    bars[3].n_events = 5;
    d.measures = bars;
    d.n_measures = 4;
    ASSERT(wtt_tab_facts_init(&f, &d) == 0);
    ASSERT(!f.tied_on[4] && f.tied_on[5]);
    wtt_tab_facts_free(&f);
    return 0;
}
