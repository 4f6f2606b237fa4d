/*
 * test_tabdoc.c: the tab document's C writers (core/tab/wtt_tabdoc.h):
 * the exact JSON and MusicXML of a small hand-built document, the errors
 * of documents they cannot write, the text buffer's growth and failure,
 * and numbers written as LuaJIT writes them.
 */
#include "test.h"
#include "wtt_tabdoc.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#define STR(lit) { (lit), sizeof(lit) - 1 }

/*
 * A 2/4 piece in two measures, capo 2: a chord (a let-ring note and a
 * bend with release), an 8th-triplet group whose second note is a
 * hammer-on with vibrato, tied to the third and across the bar line; two
 * unplayable notes. The same document as Lua tables gave the texts below
 * from the Lua writers these replaced.
 */
static const struct wtt_tab_technique TECHS[] = {
    { .type = STR("let_ring") },
    { .type = STR("bend"),
      .has = WTT_TECH_HAS_SEMITONES | WTT_TECH_HAS_RELEASE,
      .semitones = 1.5, .release = 1 },
    { .type = STR("hammer_on"), .has = WTT_TECH_HAS_FROM, .from = 3 },
    { .type = STR("vibrato") },
};

static const struct wtt_tab_note NOTES[] = {
    { .start_s = 0, .end_s = 0.5106382978723404, .beat = 1, .pitch_midi = 66,
      .velocity = 80, .string = 1, .fret = 0, .measure = 1, .tick = 0,
      .ticks = 12, .duration = STR("1/4"), .tech_first = 0, .n_tech = 1 },
    { .start_s = 0, .end_s = 0.5106382978723404, .beat = 1, .pitch_midi = 59,
      .velocity = 90, .string = 3, .fret = 2, .measure = 1, .tick = 0,
      .ticks = 12, .duration = STR("1/4"), .tech_first = 1, .n_tech = 1 },
    { .start_s = 0.5106382978723404, .end_s = 0.6808510638297872, .beat = 2,
      .pitch_midi = 64, .velocity = 0, .string = 2, .fret = 3, .measure = 1,
      .tick = 12, .ticks = 4, .duration = STR("1/12") },
    { .start_s = 0.6808510638297872, .end_s = 1.5319148936170213,
      .beat = 2.3333333333333335, .pitch_midi = 66, .velocity = 70,
      .string = 2, .fret = 5, .measure = 1, .tick = 16, .ticks = 32,
      .duration = STR("2/3"), .tech_first = 2, .n_tech = 2 },
};

static const int EVENT_NOTES[] = { 1, 2, 3, 4, 4, 4 };

static const struct wtt_tab_event EVENTS[] = {
    { .tick = 0, .ticks = 12, .note_first = 0, .n_notes = 2 },
    { .tick = 12, .ticks = 4, .note_first = 2, .n_notes = 1 },
    { .tick = 16, .ticks = 4, .note_first = 3, .n_notes = 1 },
    { .tick = 20, .ticks = 4, .tied = 1, .note_first = 4, .n_notes = 1 },
    { .tick = 0, .ticks = 24, .tied = 1, .note_first = 5, .n_notes = 1 },
};

static const struct wtt_tab_measure MEASURES[] = {
    { .number = 1, .start_s = 0, .start_tick = 0, .ticks = 24,
      .event_first = 0, .n_events = 4 },
    { .number = 2, .start_s = 1.0212765957446808, .start_tick = 24,
      .ticks = 24, .event_first = 4, .n_events = 1 },
};

static const struct wtt_tab_unplayable UNPLAYABLE[] = {
    { .start_s = 2.5, .end_s = 2.75, .pitch_midi = 30,
      .reason = STR("out_of_range"), .has_folded_to = 1, .folded_to = 42 },
    { .start_s = 3, .end_s = 3.5, .pitch_midi = 100,
      .reason = STR("too_many_notes") },
};


static struct wtt_tabdoc
tiny(void)
{
    struct wtt_tabdoc d = {
        .version = 1, .title = STR("Riff \"A\"/B <&> 'x'\t"),
        .instrument = STR("guitar"), .tuning_name = STR("standard"),
        .n_strings = 6, .tuning = { 64, 59, 55, 50, 45, 40 }, .capo = 2,
        .tempo_bpm = 117.5, .beats = 2, .beat_type = 4, .pickup_ticks = 0,
        .divisions = 12,
        .measures = MEASURES, .n_measures = 2,
        .events = EVENTS, .n_events = 5,
        .event_notes = EVENT_NOTES, .n_event_notes = 6,
        .notes = NOTES, .n_notes = 4,
        .techniques = TECHS, .n_techniques = 4,
        .unplayable = UNPLAYABLE, .n_unplayable = 2,
    };
    return d;
}

static const char TINY_JSON[] =
    "{\"version\":1,\"title\":\"Riff \\\"A\\\"\\/B <&> 'x'\\t\",\"instrumen"
    "t\":\"guitar\",\"tuning\":[64,59,55,50,45,40],\"tuning_name\":\"standa"
    "rd\",\"capo\":2,\"tempo_bpm\":117.5,\"time_signature\":[2,4],\"pickup_"
    "ticks\":0,\"divisions\":12,\n"
    "\"measures\":[\n"
    "{\"number\":1,\"start_s\":0,\"start_tick\":0,\"ticks\":24,\"events\":["
    "{\"tick\":0,\"ticks\":12,\"notes\":[1,2]},{\"tick\":12,\"ticks\":4,\"n"
    "otes\":[3]},{\"tick\":16,\"ticks\":4,\"notes\":[4]},{\"tick\":20,\"tic"
    "ks\":4,\"notes\":[4],\"tied\":true}]},\n"
    "{\"number\":2,\"start_s\":1.0212765957447,\"start_tick\":24,\"ticks\":"
    "24,\"events\":[{\"tick\":0,\"ticks\":24,\"notes\":[4],\"tied\":true}]}"
    "],\n"
    "\"notes\":[\n"
    "{\"start_s\":0,\"end_s\":0.51063829787234,\"pitch_midi\":66,\"velocity"
    "\":80,\"string\":1,\"fret\":0,\"measure\":1,\"beat\":1,\"duration\":\""
    "1/4\",\"tick\":0,\"ticks\":12,\"techniques\":[{\"type\":\"let_ring\"}]"
    "},\n"
    "{\"start_s\":0,\"end_s\":0.51063829787234,\"pitch_midi\":59,\"velocity"
    "\":90,\"string\":3,\"fret\":2,\"measure\":1,\"beat\":1,\"duration\":\""
    "1/4\",\"tick\":0,\"ticks\":12,\"techniques\":[{\"type\":\"bend\",\"sem"
    "itones\":1.5,\"release\":true}]},\n"
    "{\"start_s\":0.51063829787234,\"end_s\":0.68085106382979,\"pitch_midi"
    "\":64,\"velocity\":0,\"string\":2,\"fret\":3,\"measure\":1,\"beat\":2,"
    "\"duration\":\"1/12\",\"tick\":12,\"ticks\":4,\"techniques\":[]},\n"
    "{\"start_s\":0.68085106382979,\"end_s\":1.531914893617,\"pitch_midi\":"
    "66,\"velocity\":70,\"string\":2,\"fret\":5,\"measure\":1,\"beat\":2.33"
    "33333333333,\"duration\":\"2/3\",\"tick\":16,\"ticks\":32,\"techniques"
    "\":[{\"type\":\"hammer_on\",\"from\":3},{\"type\":\"vibrato\"}]}],\n"
    "\"unplayable\":[{\"start_s\":2.5,\"end_s\":2.75,\"pitch_midi\":30,\"re"
    "ason\":\"out_of_range\",\"folded_to\":42},\n"
    "{\"start_s\":3,\"end_s\":3.5,\"pitch_midi\":100,\"reason\":\"too_many_"
    "notes\"}]}\n";

static const char TINY_MUSICXML[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n"
    "<!DOCTYPE score-partwise PUBLIC \"-//Recordare//DTD MusicXML 4.0 Partw"
    "ise//EN\" \"http://www.musicxml.org/dtds/partwise.dtd\">\n"
    "<score-partwise version=\"4.0\">\n"
    "<work><work-title>Riff &quot;A&quot;/B &lt;&amp;&gt; &apos;x&apos;\t</"
    "work-title></work>\n"
    "<identification><encoding><software>wtt</software></encoding></identif"
    "ication>\n"
    "<part-list><score-part id=\"P1\"><part-name>Guitar</part-name><score-i"
    "nstrument id=\"P1-I1\"><instrument-name>Guitar</instrument-name></scor"
    "e-instrument><midi-instrument id=\"P1-I1\"><midi-channel>1</midi-chann"
    "el><midi-program>26</midi-program></midi-instrument></score-part></par"
    "t-list>\n"
    "<part id=\"P1\">\n"
    "<measure number=\"1\">\n"
    "<attributes><divisions>12</divisions><key><fifths>0</fifths></key><tim"
    "e><beats>2</beats><beat-type>4</beat-type></time><staves>2</staves><cl"
    "ef number=\"1\"><sign>G</sign><line>2</line><clef-octave-change>-1</cl"
    "ef-octave-change></clef><clef number=\"2\"><sign>TAB</sign><line>5</li"
    "ne></clef><staff-details number=\"2\"><staff-lines>6</staff-lines><sta"
    "ff-tuning line=\"1\"><tuning-step>E</tuning-step><tuning-octave>2</tun"
    "ing-octave></staff-tuning><staff-tuning line=\"2\"><tuning-step>A</tun"
    "ing-step><tuning-octave>2</tuning-octave></staff-tuning><staff-tuning "
    "line=\"3\"><tuning-step>D</tuning-step><tuning-octave>3</tuning-octave"
    "></staff-tuning><staff-tuning line=\"4\"><tuning-step>G</tuning-step><"
    "tuning-octave>3</tuning-octave></staff-tuning><staff-tuning line=\"5\""
    "><tuning-step>B</tuning-step><tuning-octave>3</tuning-octave></staff-t"
    "uning><staff-tuning line=\"6\"><tuning-step>E</tuning-step><tuning-oct"
    "ave>4</tuning-octave></staff-tuning><capo>2</capo></staff-details></at"
    "tributes>\n"
    "<direction placement=\"above\"><direction-type><metronome><beat-unit>q"
    "uarter</beat-unit><per-minute>117.5</per-minute></metronome></directio"
    "n-type><staff>1</staff><sound tempo=\"117.5\"/></direction>\n"
    "<note><pitch><step>F</step><alter>1</alter><octave>4</octave></pitch><"
    "duration>12</duration><voice>1</voice><type>quarter</type><staff>1</st"
    "aff></note>\n"
    "<note><chord/><pitch><step>B</step><octave>3</octave></pitch><duration"
    ">12</duration><voice>1</voice><type>quarter</type><staff>1</staff></no"
    "te>\n"
    "<note><pitch><step>E</step><octave>4</octave></pitch><duration>4</dura"
    "tion><voice>1</voice><type>eighth</type><time-modification><actual-not"
    "es>3</actual-notes><normal-notes>2</normal-notes></time-modification><"
    "staff>1</staff><notations><tuplet type=\"start\" bracket=\"yes\"/><slu"
    "r type=\"start\" number=\"2\"/></notations></note>\n"
    "<note><pitch><step>F</step><alter>1</alter><octave>4</octave></pitch><"
    "duration>4</duration><tie type=\"start\"/><voice>1</voice><type>eighth"
    "</type><time-modification><actual-notes>3</actual-notes><normal-notes>"
    "2</normal-notes></time-modification><staff>1</staff><notations><tied t"
    "ype=\"start\"/><slur type=\"stop\" number=\"2\"/><ornaments><wavy-line"
    " type=\"start\" number=\"1\"/></ornaments></notations></note>\n"
    "<note><pitch><step>F</step><alter>1</alter><octave>4</octave></pitch><"
    "duration>4</duration><tie type=\"stop\"/><tie type=\"start\"/><voice>1"
    "</voice><type>eighth</type><time-modification><actual-notes>3</actual-"
    "notes><normal-notes>2</normal-notes></time-modification><staff>1</staf"
    "f><notations><tied type=\"stop\"/><tied type=\"start\"/><tuplet type="
    "\"stop\"/></notations></note>\n"
    "<backup><duration>24</duration></backup>\n"
    "<direction placement=\"below\"><direction-type><words>let ring</words>"
    "</direction-type><staff>2</staff></direction>\n"
    "<note><pitch><step>F</step><alter>1</alter><octave>4</octave></pitch><"
    "duration>12</duration><voice>5</voice><type>quarter</type><staff>2</st"
    "aff><notations><technical><string>1</string><fret>0</fret></technical>"
    "</notations></note>\n"
    "<note><chord/><pitch><step>B</step><octave>3</octave></pitch><duration"
    ">12</duration><voice>5</voice><type>quarter</type><staff>2</staff><not"
    "ations><technical><string>3</string><fret>2</fret><bend><bend-alter>1."
    "5</bend-alter></bend><bend><bend-alter>-1.5</bend-alter><release/></be"
    "nd></technical></notations></note>\n"
    "<note><pitch><step>E</step><octave>4</octave></pitch><duration>4</dura"
    "tion><voice>5</voice><type>eighth</type><time-modification><actual-not"
    "es>3</actual-notes><normal-notes>2</normal-notes></time-modification><"
    "staff>2</staff><notations><tuplet type=\"start\" bracket=\"yes\"/><slu"
    "r type=\"start\" number=\"2\"/><technical><string>2</string><fret>3</f"
    "ret><hammer-on number=\"2\" type=\"start\">H</hammer-on></technical></"
    "notations></note>\n"
    "<note><pitch><step>F</step><alter>1</alter><octave>4</octave></pitch><"
    "duration>4</duration><tie type=\"start\"/><voice>5</voice><type>eighth"
    "</type><time-modification><actual-notes>3</actual-notes><normal-notes>"
    "2</normal-notes></time-modification><staff>2</staff><notations><tied t"
    "ype=\"start\"/><slur type=\"stop\" number=\"2\"/><technical><string>2<"
    "/string><fret>5</fret><hammer-on number=\"2\" type=\"stop\"/></technic"
    "al><ornaments><wavy-line type=\"start\" number=\"2\"/></ornaments></no"
    "tations></note>\n"
    "<note><pitch><step>F</step><alter>1</alter><octave>4</octave></pitch><"
    "duration>4</duration><tie type=\"stop\"/><tie type=\"start\"/><voice>5"
    "</voice><type>eighth</type><time-modification><actual-notes>3</actual-"
    "notes><normal-notes>2</normal-notes></time-modification><staff>2</staf"
    "f><notations><tied type=\"stop\"/><tied type=\"start\"/><tuplet type="
    "\"stop\"/><technical><string>2</string><fret>5</fret></technical></not"
    "ations></note>\n"
    "</measure>\n"
    "<measure number=\"2\">\n"
    "<note><pitch><step>F</step><alter>1</alter><octave>4</octave></pitch><"
    "duration>24</duration><tie type=\"stop\"/><voice>1</voice><type>half</"
    "type><staff>1</staff><notations><tied type=\"stop\"/></notations></not"
    "e>\n"
    "<backup><duration>24</duration></backup>\n"
    "<note><pitch><step>F</step><alter>1</alter><octave>4</octave></pitch><"
    "duration>24</duration><tie type=\"stop\"/><voice>5</voice><type>half</"
    "type><staff>2</staff><notations><tied type=\"stop\"/><technical><strin"
    "g>2</string><fret>5</fret></technical></notations></note>\n"
    "<barline location=\"right\"><bar-style>light-heavy</bar-style></barlin"
    "e>\n"
    "</measure>\n"
    "</part>\n"
    "</score-partwise>\n";


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


int
test_tabdoc_json(void)
{
    struct wtt_tabdoc   d = tiny();
    struct wtt_tab_text t;
    char                err[WTT_TAB_ERR_SIZE];

    wtt_tab_text_init(&t);
    ASSERT(wtt_tab_json(&d, &t, err, sizeof(err)) == 0);
    ASSERT(text_is(&t, TINY_JSON));
    /* Appending to what the buffer holds; no title, no unplayable. */
    wtt_tab_text_clear(&t);
    wtt_tab_text_lit(&t, "x");
    d.title.s = NULL;
    d.n_unplayable = 0;
    ASSERT(wtt_tab_json(&d, &t, err, sizeof(err)) == 0);
    ASSERT(strncmp(t.data, "x{\"version\":1,\"instrument\":\"guitar\"", 35)
           == 0);
    ASSERT(strstr(t.data, "\"unplayable\":[]}\n") != NULL);
    wtt_tab_text_free(&t);
    return 0;
}


int
test_tabdoc_musicxml(void)
{
    struct wtt_tabdoc   d = tiny();
    struct wtt_tab_text t;
    char                err[WTT_TAB_ERR_SIZE];

    wtt_tab_text_init(&t);
    ASSERT(wtt_tab_musicxml(&d, &t, err, sizeof(err)) == 0);
    ASSERT(text_is(&t, TINY_MUSICXML));

    /* Silence: one bar of rest, as long as the time signature says. */
    wtt_tab_text_clear(&t);
    d.n_measures = d.n_events = 0;
    d.title.s = NULL;
    d.instrument = (struct wtt_tab_str) STR("bass");
    d.tempo_bpm = 97.0625;
    ASSERT(wtt_tab_musicxml(&d, &t, err, sizeof(err)) == 0);
    ASSERT(strstr(t.data, "<work>") == NULL);
    ASSERT(strstr(t.data, "<part-name>Bass</part-name>") != NULL);
    ASSERT(strstr(t.data, "<sign>F</sign><line>4</line>") != NULL);
    /* %.3f less its zeros, an exact tie rounded away from zero (LuaJIT) */
    ASSERT(strstr(t.data, "<per-minute>97.063</per-minute>") != NULL);
    ASSERT(strstr(t.data, "<measure number=\"1\">\n") != NULL);
    ASSERT(strstr(t.data, "<note><rest measure=\"yes\"/><duration>24"
                  "</duration><voice>1</voice><type>half</type>") != NULL);
    ASSERT(strstr(t.data, "light-heavy") != NULL);

    /* A pickup measure is number 0, implicit. */
    {
        struct wtt_tab_measure m[2];
        memcpy(m, MEASURES, sizeof(m));
        m[0].number = 0;
        d = tiny();
        d.measures = m;
        wtt_tab_text_clear(&t);
        ASSERT(wtt_tab_musicxml(&d, &t, err, sizeof(err)) == 0);
        ASSERT(strstr(t.data, "<measure number=\"0\" implicit=\"yes\">\n")
               != NULL);
    }
    wtt_tab_text_free(&t);
    return 0;
}


int
test_tabdoc_errors(void)
{
    struct wtt_tabdoc      d = tiny();
    struct wtt_tab_text    t;
    struct wtt_tab_event   ev[5];
    struct wtt_tab_note    notes[4];
    struct wtt_tab_measure m[2];
    int                    event_notes[6];
    char                   err[WTT_TAB_ERR_SIZE];

    wtt_tab_text_init(&t);
    memcpy(ev, EVENTS, sizeof(ev));
    memcpy(notes, NOTES, sizeof(notes));
    memcpy(m, MEASURES, sizeof(m));
    memcpy(event_notes, EVENT_NOTES, sizeof(event_notes));

    /* MusicXML: a length that is no one notatable value. */
    ev[1].ticks = 5;
    d.events = ev;
    ASSERT(wtt_tab_musicxml(&d, &t, err, sizeof(err)) == -1);
    ASSERT_STR_EQ("musicxml: measure 1, event at tick 12: 5 ticks is not a "
                  "notatable length", err);
    /* JSON writes it all the same. */
    wtt_tab_text_clear(&t);
    ASSERT(wtt_tab_json(&d, &t, err, sizeof(err)) == 0);

    /* A note on a string the instrument lacks, a note that is not there. */
    d = tiny();
    notes[1].string = 9;
    d.notes = notes;
    wtt_tab_text_clear(&t);
    ASSERT(wtt_tab_musicxml(&d, &t, err, sizeof(err)) == -1);
    ASSERT_STR_EQ("musicxml: measure 1, event at tick 0: note 2 has no "
                  "string and fret on this instrument", err);
    d = tiny();
    event_notes[5] = 9;
    d.event_notes = event_notes;
    wtt_tab_text_clear(&t);
    ASSERT(wtt_tab_musicxml(&d, &t, err, sizeof(err)) == -1);
    ASSERT_STR_EQ("musicxml: measure 2, event at tick 0: note 9 has no "
                  "string and fret on this instrument", err);

    /* Silence in a meter whose bar is no whole number of ticks. */
    d = tiny();
    d.n_measures = d.n_events = 0;
    d.beats = 7;
    d.beat_type = 32;
    ASSERT(wtt_tab_musicxml(&d, &t, err, sizeof(err)) == -1);
    ASSERT_STR_EQ("musicxml: measure 1, event at tick 0: 10 ticks is not a "
                  "notatable length", err);

    /* Documents that fail the check, in either writer. */
    d = tiny();
    d.n_strings = 0;
    ASSERT(wtt_tab_json(&d, &t, err, sizeof(err)) == -1);
    ASSERT(strstr(err, "1 to 16 strings") != NULL);
    d = tiny();
    m[1].event_first = 3;
    d.measures = m;
    ASSERT(wtt_tab_musicxml(&d, &t, err, sizeof(err)) == -1);
    ASSERT(strstr(err, "measure 2's events") != NULL);
    d = tiny();
    d.n_events = 4;
    ASSERT(wtt_tabdoc_check(&d, err, sizeof(err)) == -1);
    d = tiny();
    d.n_events = 6;
    ASSERT(wtt_tabdoc_check(&d, err, sizeof(err)) == -1);
    ASSERT_STR_EQ("tab document: 1 events belong to no measure", err);
    d = tiny();
    d.n_event_notes = 5;
    ASSERT(wtt_tab_json(&d, &t, err, sizeof(err)) == -1);
    ASSERT_STR_EQ("tab document: event 5's notes are out of range", err);
    d = tiny();
    d.n_techniques = 3;
    ASSERT(wtt_tabdoc_check(&d, err, sizeof(err)) == -1);
    d = tiny();
    notes[0] = NOTES[0];
    notes[0].duration.s = NULL;
    d.notes = notes;
    ASSERT(wtt_tabdoc_check(&d, err, sizeof(err)) == -1);
    d = tiny();
    d.notes = NULL;
    ASSERT(wtt_tabdoc_check(&d, err, sizeof(err)) == -1);
    d = tiny();
    ASSERT(wtt_tabdoc_check(&d, err, sizeof(err)) == 0);
    wtt_tab_text_free(&t);
    return 0;
}


int
test_tabdoc_text(void)
{
    struct wtt_tab_text t;
    const char         *err = NULL;
    size_t              n = 0;

    wtt_tab_text_init(&t);
    ASSERT(wtt_tab_text_status(&t, &err) == 0);
    /* From nothing past the huge-page size, by appends of every length. */
    for (size_t i = 0; n < ((size_t) 5 << 20); i++) {
        char   chunk[64];
        size_t len = i % 64;
        for (size_t j = 0; j < len; j++) {
            chunk[j] = (char) ('a' + (n + j) % 26);
        }
        wtt_tab_text_put(&t, chunk, len);
        n += len;
    }
    ASSERT(t.len == n && t.cap > n && t.data[n] == '\0');
    for (size_t j = 0; j < n; j++) {
        if (t.data[j] != (char) ('a' + j % 26)) {
            fprintf(stderr, "byte %zu lost in growth\n", j);
            return 1;
        }
    }
    /* Clearing keeps the memory. */
    {
        size_t cap = t.cap;
        wtt_tab_text_clear(&t);
        ASSERT(t.len == 0 && t.cap == cap);
        wtt_tab_text_int(&t, -42);
        wtt_tab_text_int(&t, INT64_MIN);
        ASSERT(text_is(&t, "-42-9223372036854775808"));
    }
    /* Past the limit: failed, and later appends do nothing. */
    ASSERT(wtt_tab_text_reserve(&t, WTT_TAB_TEXT_MAX) == -1);
    ASSERT(wtt_tab_text_status(&t, &err) == -1 && err != NULL);
    n = t.len;
    wtt_tab_text_lit(&t, "more");
    ASSERT(t.len == n);
    ASSERT(wtt_tab_text_reserve(&t, 1) == -1);
    wtt_tab_text_clear(&t);
    ASSERT(wtt_tab_text_status(&t, &err) == 0);
    wtt_tab_text_lit(&t, "ok");
    ASSERT(text_is(&t, "ok"));
    wtt_tab_text_free(&t);
    ASSERT(t.data == NULL && t.len == 0 && t.cap == 0);
    /* Small and large blocks, all of them writable. */
    {
        size_t sizes[] = { 0, 100, ((size_t) 1 << 19) - 1, (size_t) 1 << 19,
                           ((size_t) 3 << 20) + 5 };
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
            char *p = wtt_tab_alloc(sizes[i]);
            ASSERT(p != NULL);
            memset(p, 0x5a, sizes[i]);
            ASSERT(sizes[i] == 0 || p[sizes[i] - 1] == 0x5a);
            free(p);
        }
        ASSERT(wtt_tab_alloc(SIZE_MAX - 1) == NULL);
    }
    /* A writer reports the failure. */
    {
        struct wtt_tabdoc d = tiny();
        char              msg[WTT_TAB_ERR_SIZE];
        t.failed = 1;
        ASSERT(wtt_tab_json(&d, &t, msg, sizeof(msg)) == -1);
        ASSERT(strstr(msg, "out of memory") != NULL);
        ASSERT(wtt_tab_musicxml(&d, &t, msg, sizeof(msg)) == -1);
        wtt_tab_text_free(&t);
    }
    return 0;
}


/* How `put` writes x. */
static const char *
fmt(void (*put)(struct wtt_tab_text *, double), double x,
    struct wtt_tab_text *t)
{
    wtt_tab_text_clear(t);
    put(t, x);
    return t->data;
}


static uint64_t
xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}


/* A random double of any finite magnitude. */
static double
random_double(uint64_t *s)
{
    double   x;
    uint64_t bits;

    do {
        bits = xorshift(s);
        memcpy(&x, &bits, sizeof(x));
    } while (!isfinite(x));
    return x;
}


/* Whether x's 15th significant digit is an exact tie: a 5 and nothing
 * after it (glibc prints a double's exact decimal digits). */
static int
tie14(double x)
{
    char b[80];

    snprintf(b, sizeof(b), "%.60e", fabs(x));
    if (b[15] != '5') {
        return 0;
    }
    for (int i = 16; i < 62; i++) {
        if (b[i] != '0') {
            return 0;
        }
    }
    return 1;
}


int
test_tabdoc_numbers(void)
{
    struct wtt_tab_text t;
    uint64_t            seed = 0x9e3779b97f4a7c15ULL;
    char                want[64];

    wtt_tab_text_init(&t);
    /* LuaJIT's tostring: %.14g, exact ties away from zero. */
    ASSERT_STR_EQ("0", fmt(wtt_tab_text_luanum, 0, &t));
    ASSERT_STR_EQ("-0", fmt(wtt_tab_text_luanum, -0.0, &t));
    ASSERT_STR_EQ("nan", fmt(wtt_tab_text_luanum, NAN, &t));
    ASSERT_STR_EQ("nan", fmt(wtt_tab_text_luanum, -NAN, &t));
    ASSERT_STR_EQ("-inf", fmt(wtt_tab_text_luanum, -INFINITY, &t));
    ASSERT_STR_EQ("0.33333333333333", fmt(wtt_tab_text_luanum, 1.0 / 3, &t));
    ASSERT_STR_EQ("123.456", fmt(wtt_tab_text_luanum, 123.456, &t));
    ASSERT_STR_EQ("1e+15", fmt(wtt_tab_text_luanum, 1e15 + 0.5, &t));
    ASSERT_STR_EQ("1e-05", fmt(wtt_tab_text_luanum, 1e-5, &t));
    ASSERT_STR_EQ("0.0001", fmt(wtt_tab_text_luanum, 1e-4, &t));
    ASSERT_STR_EQ("99999999999999", fmt(wtt_tab_text_luanum, 99999999999999.0,
                                        &t));
    ASSERT_STR_EQ("1e+14", fmt(wtt_tab_text_luanum, 99999999999999.9, &t));
    ASSERT_STR_EQ("515.53540039063", fmt(wtt_tab_text_luanum,
                                         515.535400390625, &t));
    ASSERT_STR_EQ("4.7683715820313e-07", fmt(wtt_tab_text_luanum,
                                             ldexp(1, -21), &t));
    ASSERT_STR_EQ("-4.7683715820313e-07", fmt(wtt_tab_text_luanum,
                                              -ldexp(1, -21), &t));
    ASSERT_STR_EQ("1e+300", fmt(wtt_tab_text_luanum, 1e300, &t));
    ASSERT_STR_EQ("4.9406564584125e-324", fmt(wtt_tab_text_luanum,
                                              4.9406564584124654e-324, &t));
    /* printf's exact digits, but for ties (printf rounds them to even). */
    for (int i = 0; i < 300000; i++) {
        double x;
        switch (i % 3) {
        case 0:     /* any magnitude */
            x = random_double(&seed);
            break;
        case 1:     /* seconds to the microsecond */
            x = (double) (xorshift(&seed) % 1000000000) / 1e6;
            break;
        default:    /* few bits: ties */
            x = ldexp((double) (xorshift(&seed) % 1000000),
                      (int) (xorshift(&seed) % 60) - 50);
        }
        /* A tie goes away from zero: as printf rounds the next double
         * out from zero. */
        snprintf(want, sizeof(want), "%.14g",
                 tie14(x) ? nextafter(x, x < 0 ? -INFINITY : INFINITY) : x);
        if (strcmp(want, fmt(wtt_tab_text_luanum, x, &t)) != 0) {
            fprintf(stderr, "%a: %s, want %s\n", x, t.data, want);
            return 1;
        }
    }

    /* JSON: null, integers to 2^53, the rest as tostring. */
    ASSERT_STR_EQ("null", fmt(wtt_tab_text_jsonnum, NAN, &t));
    ASSERT_STR_EQ("null", fmt(wtt_tab_text_jsonnum, INFINITY, &t));
    ASSERT_STR_EQ("0", fmt(wtt_tab_text_jsonnum, -0.0, &t));
    ASSERT_STR_EQ("9007199254740992", fmt(wtt_tab_text_jsonnum,
                                          9007199254740992.0, &t));
    ASSERT_STR_EQ("9.007199254741e+15", fmt(wtt_tab_text_jsonnum,
                                            9007199254740994.0, &t));
    ASSERT_STR_EQ("2.5", fmt(wtt_tab_text_jsonnum, 2.5, &t));

    /* string.format("%.3f") and ("%d") as LuaJIT writes them. */
    ASSERT_STR_EQ("0.063", fmt(wtt_tab_text_fixed3, 0.0625, &t));
    ASSERT_STR_EQ("-0.188", fmt(wtt_tab_text_fixed3, -0.1875, &t));
    ASSERT_STR_EQ("117.500", fmt(wtt_tab_text_fixed3, 117.5, &t));
    ASSERT_STR_EQ("0.000", fmt(wtt_tab_text_fixed3, 4e-5, &t));
    ASSERT_STR_EQ("1.000", fmt(wtt_tab_text_fixed3, 1.0005, &t));
    ASSERT_STR_EQ("2.002", fmt(wtt_tab_text_fixed3, 2.0015, &t));
    ASSERT_STR_EQ("0.001", fmt(wtt_tab_text_fixed3, 0.0005, &t));
    ASSERT_STR_EQ("nan", fmt(wtt_tab_text_fixed3, NAN, &t));
    ASSERT_STR_EQ("2", fmt(wtt_tab_text_luaint, 2.7, &t));
    ASSERT_STR_EQ("-2", fmt(wtt_tab_text_luaint, -2.7, &t));
    ASSERT_STR_EQ("-9223372036854775808", fmt(wtt_tab_text_luaint, 1e20,
                                              &t));
    ASSERT_STR_EQ("-9223372036854775808", fmt(wtt_tab_text_luaint, INFINITY,
                                              &t));

    /* JSON strings as lua-cjson escapes them. */
    {
        char all[256];
        for (int c = 0; c < 256; c++) {
            all[c] = (char) c;
        }
        wtt_tab_text_clear(&t);
        wtt_tab_text_jsonstr(&t, all, sizeof(all));
        ASSERT(strncmp(t.data, "\"\\u0000\\u0001", 13) == 0);
        ASSERT(strstr(t.data, "\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e") != NULL);
        ASSERT(strstr(t.data, "\\u001f !\\\"#") != NULL);
        ASSERT(strstr(t.data, ".\\/0") != NULL);
        ASSERT(strstr(t.data, "[\\\\]") != NULL);
        ASSERT(strstr(t.data, "}~\\u007f\x80\x81") != NULL);
        ASSERT(t.data[t.len - 1] == '"' && (unsigned char) t.data[t.len - 2]
                                           == 0xff);
    }
    ASSERT(wtt_tab_tech_kind(&(struct wtt_tab_str) STR("slide"))
           == WTT_TECH_SLIDE);
    ASSERT(wtt_tab_tech_kind(&(struct wtt_tab_str) STR("slid"))
           == WTT_TECH_OTHER);
    ASSERT(wtt_tab_tech_kind(&(struct wtt_tab_str) { NULL, 0 })
           == WTT_TECH_OTHER);
    wtt_tab_text_free(&t);
    return 0;
}
