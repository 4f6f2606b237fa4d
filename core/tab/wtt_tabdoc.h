/*
 * wtt_tabdoc.h: the tab document (docs/tab.md, "The tab document") as
 * plain C structs, the text buffer the tab formats are written into, and
 * the writers of the tab formats: JSON, MusicXML, ASCII, alphaTex and
 * Guitar Pro's GPIF (core/tab/wtt_tab_*.c).
 *
 * Plain C over libc: no Lua. The binding (core/bind/wtt_tab_out.c) reads
 * a Lua document into these structs; any other caller may build one by
 * hand. A document only borrows: its arrays and strings belong to the
 * caller and must outlive the calls that read them.
 *
 *     struct wtt_tabdoc  doc = { ... };
 *     struct wtt_tab_text out;
 *     char                err[WTT_TAB_ERR_SIZE];
 *
 *     wtt_tab_text_init(&out);
 *     if (wtt_tab_musicxml(&doc, &out, err, sizeof(err)) != 0) {
 *         report(err);
 *     } else {
 *         use(out.data, out.len);
 *     }
 *     wtt_tab_text_free(&out);
 *
 * The document is flat, so every format walks the same arrays: measures
 * hold ranges of `events` (consecutive, in order: the events of the whole
 * piece are one list, as ties across bar lines need), events hold ranges
 * of `event_notes` (1-based note numbers, as the Lua document has them),
 * notes hold ranges of `techniques` (notes may share a range). Note
 * numbers in events are not bounded by the struct: a writer that needs
 * the note checks it and fails with the event's place.
 *
 * Numbers are written as LuaJIT writes them (wtt_tab_text_luanum), so the
 * text is the one the Lua writers made, byte for byte.
 */
#ifndef WTT_TABDOC_H
#define WTT_TABDOC_H

#include <stddef.h>
#include <string.h>

/* The most strings a document's tuning may have (MusicXML numbers slurs
 * and slides by string). */
#define WTT_TABDOC_MAX_STRINGS  16
/* Room for any writer's error message. */
#define WTT_TAB_ERR_SIZE        192
/* The largest text a buffer grows to (a Lua string's limit is near 2 GB). */
#define WTT_TAB_TEXT_MAX        ((size_t) 1 << 30)

/* A borrowed string; `s` is NULL when the field is absent. */
struct wtt_tab_str {
    const char *s;
    size_t      len;
};

/* The technique types the writers know (docs/tab.md, "Techniques"). */
enum wtt_tab_tech_kind {
    WTT_TECH_OTHER = 0,
    WTT_TECH_BEND,
    WTT_TECH_VIBRATO,
    WTT_TECH_HAMMER_ON,
    WTT_TECH_PULL_OFF,
    WTT_TECH_SLIDE,
    WTT_TECH_LET_RING,
};

/* Which optional fields a technique has. */
#define WTT_TECH_HAS_SEMITONES  1u
#define WTT_TECH_HAS_RELEASE    2u
#define WTT_TECH_HAS_FROM       4u

struct wtt_tab_technique {
    struct wtt_tab_str type;       /* "bend", "slide", ... (any string) */
    unsigned           has;        /* WTT_TECH_HAS_* */
    double             semitones;  /* bend */
    int                release;    /* bend: 0 or 1 */
    int                from;       /* legato: the note number it comes
                                      from (1-based) */
    struct wtt_tab_str direction;  /* slide: "up" or "down"; optional */
};

struct wtt_tab_note {
    double             start_s;
    double             end_s;
    double             beat;
    int                pitch_midi;
    int                velocity;        /* 0 when the document has none */
    int                string;          /* 1 = highest */
    int                fret;            /* from the capo */
    int                measure;
    int                tick;            /* from the piece's start */
    int                ticks;
    struct wtt_tab_str duration;        /* "1/4"; written as it is */
    size_t             tech_first;      /* range of doc->techniques */
    size_t             n_tech;
};

struct wtt_tab_event {
    int    tick;                        /* from the measure's start */
    int    ticks;
    int    rest;                        /* 0 or 1 */
    int    tied;                        /* 0 or 1 */
    size_t note_first;                  /* range of doc->event_notes */
    size_t n_notes;
};

struct wtt_tab_measure {
    int    number;                      /* 0 for a pickup */
    double start_s;
    int    start_tick;
    int    ticks;
    size_t event_first;                 /* range of doc->events */
    size_t n_events;
};

struct wtt_tab_unplayable {
    double             start_s;
    double             end_s;
    double             pitch_midi;
    struct wtt_tab_str reason;
    int                has_folded_to;
    double             folded_to;
};

struct wtt_tabdoc {
    int                 version;
    struct wtt_tab_str  title;          /* optional */
    struct wtt_tab_str  instrument;     /* optional ("guitar" for MusicXML) */
    struct wtt_tab_str  tuning_name;    /* optional */
    int                 n_strings;      /* 1..WTT_TABDOC_MAX_STRINGS */
    int                 tuning[WTT_TABDOC_MAX_STRINGS]; /* string 1 first,
                                                           without capo */
    int                 capo;
    double              tempo_bpm;
    int                 beats;          /* time_signature[1] */
    int                 beat_type;      /* time_signature[2] */
    int                 pickup_ticks;
    int                 divisions;

    const struct wtt_tab_measure    *measures;
    size_t                           n_measures;
    const struct wtt_tab_event      *events;
    size_t                           n_events;
    const int                       *event_notes;
    size_t                           n_event_notes;
    const struct wtt_tab_note       *notes;
    size_t                           n_notes;
    const struct wtt_tab_technique  *techniques;
    size_t                           n_techniques;
    const struct wtt_tab_unplayable *unplayable;
    size_t                           n_unplayable;
};


/* -------------------------------------------------------------------------
 * The document
 * ---------------------------------------------------------------------- */

/*
 * Checks the document's shape: the tuning's size, every range inside its
 * array, the measures' event ranges consecutive from 0 and covering every
 * event. Returns 0, or -1 with a message in `err`. The writers call it
 * first; the other functions assume a checked document.
 */
int wtt_tabdoc_check(const struct wtt_tabdoc *doc, char *err,
                     size_t err_size);

/* The kind of a technique's type string (WTT_TECH_OTHER when unknown). */
enum wtt_tab_tech_kind wtt_tab_tech_kind(const struct wtt_tab_str *type);

/*
 * `bytes` of memory (uninitialised) for a large array or text: from half
 * a megabyte up, in transparent huge pages (see wtt_tabdoc.c for why).
 * NULL when there is none. Free it with free().
 */
void *wtt_tab_alloc(size_t bytes);


/* -------------------------------------------------------------------------
 * The text buffer
 *
 * Appends never return an error: the first failure to grow (out of memory,
 * or past WTT_TAB_TEXT_MAX) marks the buffer failed and later appends do
 * nothing, so a writer checks once, at the end (wtt_tab_text_status),
 * rather than after each of its hundred thousand appends.
 * ---------------------------------------------------------------------- */

struct wtt_tab_text {
    char   *data;       /* NUL-terminated unless failed or never grown */
    size_t  len;
    size_t  cap;        /* bytes of data, the NUL included */
    int     failed;
};

void wtt_tab_text_init(struct wtt_tab_text *t);
/* Frees the memory; the buffer is empty and usable again. */
void wtt_tab_text_free(struct wtt_tab_text *t);
/* Empties the buffer (and clears a failure), keeping its memory. */
void wtt_tab_text_clear(struct wtt_tab_text *t);

/*
 * Makes room for `extra` more bytes at once. Returns 0, or -1 (and marks
 * the buffer failed) when the memory cannot be had.
 */
int wtt_tab_text_reserve(struct wtt_tab_text *t, size_t extra);

/* 0 when every append so far succeeded; -1 with `*err` otherwise. */
int wtt_tab_text_status(const struct wtt_tab_text *t, const char **err);

/* The slow path of wtt_tab_text_put: grows, then appends. */
void wtt_tab_text_put_grow(struct wtt_tab_text *t, const char *s, size_t n);

static inline void
wtt_tab_text_put(struct wtt_tab_text *t, const char *s, size_t n)
{
    if (t->cap - t->len > n && !t->failed) {
        memcpy(t->data + t->len, s, n);
        t->len += n;
        t->data[t->len] = '\0';
    } else {
        wtt_tab_text_put_grow(t, s, n);
    }
}

/* A string literal. */
#define wtt_tab_text_lit(t, lit) wtt_tab_text_put((t), (lit), sizeof(lit) - 1)

static inline void
wtt_tab_text_str(struct wtt_tab_text *t, const struct wtt_tab_str *s)
{
    wtt_tab_text_put(t, s->s, s->len);
}

/* An integer in decimal. */
void wtt_tab_text_int(struct wtt_tab_text *t, long long v);

/* A number as LuaJIT's tostring writes it: %.14g, but exact decimal
 * ties rounded away from zero, "nan", "inf", "-inf". */
void wtt_tab_text_luanum(struct wtt_tab_text *t, double x);

/* A number as LuaJIT's string.format("%d", x) writes it: truncated
 * towards zero; out of the int64 range (infinities, NaN), the int64
 * minimum, as x86-64 converts. */
void wtt_tab_text_luaint(struct wtt_tab_text *t, double x);

/* A number as LuaJIT's string.format("%.3f", x) writes it (exact ties
 * rounded away from zero, as LuaJIT does). */
void wtt_tab_text_fixed3(struct wtt_tab_text *t, double x);

/* A number in JSON as the tab writers write it: null for NaN and the
 * infinities, integers up to 2^53 as integers, others as luanum. */
void wtt_tab_text_jsonnum(struct wtt_tab_text *t, double x);

/* A JSON string, quoted and escaped as lua-cjson does ('/' as "\/",
 * control characters and DEL as \u00XX, bytes above 127 as they are). */
void wtt_tab_text_jsonstr(struct wtt_tab_text *t, const char *s, size_t n);

/* A quoted string with quotes, backslashes, \n \r \t and the other
 * control characters and DEL (\u00XX) escaped, as alphaTex reads it;
 * with `json`, also '/' and \b \f as JSON (wtt_tab_text_jsonstr). */
void wtt_tab_text_quoted(struct wtt_tab_text *t, const char *s, size_t n,
                         int json);


/* -------------------------------------------------------------------------
 * The writers
 *
 * Each appends one format's text to `out` and returns 0, or -1 with a
 * message in `err` (`err_size` bytes; WTT_TAB_ERR_SIZE is enough): a
 * document that fails wtt_tabdoc_check, one the format cannot write, or
 * out of memory. On failure `out` holds a partial text.
 * ---------------------------------------------------------------------- */

/* The `json` format (docs/tab.md, "The tab document"). */
int wtt_tab_json(const struct wtt_tabdoc *doc, struct wtt_tab_text *out,
                 char *err, size_t err_size);

/* MusicXML 4.0 (docs/tab.md, "MusicXML"). Fails, with the measure and
 * the event's tick, on an event whose length is not notatable or a note
 * with no string and fret on the instrument. */
int wtt_tab_musicxml(const struct wtt_tabdoc *doc, struct wtt_tab_text *out,
                     char *err, size_t err_size);

/* ASCII tab (docs/tab.md), systems wrapped at 80 columns.
 * Fails on an event's note that is not in the document, a bend with no
 * semitones or an unplayable pitch that is no whole number. */
int wtt_tab_ascii(const struct wtt_tabdoc *doc, struct wtt_tab_text *out,
                  char *err, size_t err_size);

/* alphaTex (docs/tab.md, "alphaTex and Guitar Pro"). Fails on an event
 * that is not one notatable value ("measure M: an event of T ticks (D per
 * quarter) is not one notatable value"), a note that is not in the
 * document or a bend with no semitones. */
int wtt_tab_alphatex(const struct wtt_tabdoc *doc, struct wtt_tab_text *out,
                     char *err, size_t err_size);

/* The GPIF XML of a Guitar Pro 7 file, Content/score.gpif (docs/tab.md,
 * "alphaTex and Guitar Pro"); it fails as wtt_tab_alphatex does. */
int wtt_tab_gpif(const struct wtt_tabdoc *doc, struct wtt_tab_text *out,
                 char *err, size_t err_size);

#endif
