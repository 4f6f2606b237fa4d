/*
 * wtt_tabdoc.c: the tab document's check, the text buffer, and numbers
 * written as LuaJIT writes them (see wtt_tabdoc.h).
 *
 * LuaJIT formats numbers with its own exact formatter, which rounds an
 * exact decimal tie away from zero where glibc's printf rounds it to even
 * (2^-21 is 4.7683715820313e-07 in LuaJIT, ...312e-07 in printf). So the
 * digits are computed here, exactly, in 128-bit integers: a double is
 * m * 2^e, and m * 2^e * 10^k is a ratio of integers that divides with a
 * remainder to round by. Magnitudes too far from 1 for that (below about
 * 1e-14 or above 1e38, never seen in a tab) fall back to printf, whose
 * digits differ from LuaJIT's only on an exact tie.
 */
#include "wtt_tabdoc.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

typedef unsigned __int128 u128;

#define POW10_14    100000000000000ULL
#define POW10_13    10000000000000ULL
#define MAX_SCALE   27          /* 5^27 < 2^63 */
/* A transparent huge page (x86-64 and arm64 with 4 KiB pages). */
#define HUGE_PAGE   ((size_t) 2 << 20)


/* -------------------------------------------------------------------------
 * The document
 * ---------------------------------------------------------------------- */

/* Whether [first, first + n) lies within an array of `size`. */
static int
in_range(size_t first, size_t n, size_t size)
{
    return first <= size && n <= size - first;
}


int
wtt_tabdoc_check(const struct wtt_tabdoc *doc, char *err, size_t err_size)
{
    size_t next = 0;

    if (doc->n_strings < 1 || doc->n_strings > WTT_TABDOC_MAX_STRINGS) {
        snprintf(err, err_size, "tab document: a tuning has 1 to %d strings",
                 WTT_TABDOC_MAX_STRINGS);
        return -1;
    }
    if ((doc->n_measures > 0 && doc->measures == NULL)
        || (doc->n_events > 0 && doc->events == NULL)
        || (doc->n_event_notes > 0 && doc->event_notes == NULL)
        || (doc->n_notes > 0 && doc->notes == NULL)
        || (doc->n_techniques > 0 && doc->techniques == NULL)
        || (doc->n_unplayable > 0 && doc->unplayable == NULL))
    {
        snprintf(err, err_size, "tab document: an array is missing");
        return -1;
    }
    for (size_t i = 0; i < doc->n_measures; i++) {
        const struct wtt_tab_measure *m = &doc->measures[i];
        if (m->event_first != next
            || !in_range(m->event_first, m->n_events, doc->n_events))
        {
            snprintf(err, err_size, "tab document: measure %zu's events do "
                     "not follow the previous measure's", i + 1);
            return -1;
        }
        next += m->n_events;
    }
    if (next != doc->n_events) {
        snprintf(err, err_size, "tab document: %zu events belong to no "
                 "measure", doc->n_events - next);
        return -1;
    }
    for (size_t i = 0; i < doc->n_events; i++) {
        const struct wtt_tab_event *e = &doc->events[i];
        if (!in_range(e->note_first, e->n_notes, doc->n_event_notes)) {
            snprintf(err, err_size, "tab document: event %zu's notes are "
                     "out of range", i + 1);
            return -1;
        }
    }
    for (size_t i = 0; i < doc->n_notes; i++) {
        const struct wtt_tab_note *n = &doc->notes[i];
        if (!in_range(n->tech_first, n->n_tech, doc->n_techniques)
            || n->duration.s == NULL)
        {
            snprintf(err, err_size, "tab document: note %zu has techniques "
                     "out of range or no duration", i + 1);
            return -1;
        }
    }
    for (size_t i = 0; i < doc->n_techniques; i++) {
        if (doc->techniques[i].type.s == NULL) {
            snprintf(err, err_size, "tab document: technique %zu has no "
                     "type", i + 1);
            return -1;
        }
    }
    for (size_t i = 0; i < doc->n_unplayable; i++) {
        if (doc->unplayable[i].reason.s == NULL) {
            snprintf(err, err_size, "tab document: unplayable note %zu has "
                     "no reason", i + 1);
            return -1;
        }
    }
    return 0;
}


enum wtt_tab_tech_kind
wtt_tab_tech_kind(const struct wtt_tab_str *type)
{
    static const struct {
        const char            *name;
        size_t                 len;
        enum wtt_tab_tech_kind kind;
    } kinds[] = {
        { "bend", 4, WTT_TECH_BEND },
        { "vibrato", 7, WTT_TECH_VIBRATO },
        { "hammer_on", 9, WTT_TECH_HAMMER_ON },
        { "pull_off", 8, WTT_TECH_PULL_OFF },
        { "slide", 5, WTT_TECH_SLIDE },
        { "let_ring", 8, WTT_TECH_LET_RING },
    };

    if (type->s == NULL) {
        return WTT_TECH_OTHER;
    }
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (type->len == kinds[i].len
            && memcmp(type->s, kinds[i].name, type->len) == 0)
        {
            return kinds[i].kind;
        }
    }
    return WTT_TECH_OTHER;
}


/* -------------------------------------------------------------------------
 * The text buffer
 * ---------------------------------------------------------------------- */

void
wtt_tab_text_init(struct wtt_tab_text *t)
{
    t->data = NULL;
    t->len = 0;
    t->cap = 0;
    t->failed = 0;
}


void
wtt_tab_text_free(struct wtt_tab_text *t)
{
    free(t->data);
    wtt_tab_text_init(t);
}


void
wtt_tab_text_clear(struct wtt_tab_text *t)
{
    t->len = 0;
    t->failed = 0;
    if (t->data != NULL) {
        t->data[0] = '\0';
    }
}


/*
 * Memory of half a megabyte or more comes in transparent huge pages:
 * touching fresh memory costs a page fault per 4 KiB, and on a virtual
 * machine that took longer than writing the text (about 20 ms for the
 * 3.4 MB of a ten-minute piece's MusicXML, against half a millisecond in
 * huge pages). The block is rounded up to whole huge pages, as the kernel
 * gives them only for aligned 2 MiB ranges. Where it has none to give,
 * the block is ordinary memory.
 */
void *
wtt_tab_alloc(size_t bytes)
{
    void *p;

    if (bytes < HUGE_PAGE / 4) {
        return malloc(bytes == 0 ? 1 : bytes);
    }
    if (bytes > SIZE_MAX - HUGE_PAGE) {
        return NULL;
    }
    bytes = (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
    if (posix_memalign(&p, HUGE_PAGE, bytes) != 0) {
        return NULL;
    }
#ifdef MADV_HUGEPAGE
    (void) madvise(p, bytes, MADV_HUGEPAGE);
#endif
    return p;
}


int
wtt_tab_text_reserve(struct wtt_tab_text *t, size_t extra)
{
    size_t need, cap;
    char  *data;

    if (t->failed) {
        return -1;
    }
    if (extra > WTT_TAB_TEXT_MAX - t->len) {
        t->failed = 1;
        return -1;
    }
    need = t->len + extra + 1;
    if (need <= t->cap) {
        return 0;
    }
    /* Doubling keeps appends linear; the cap keeps the doubling from
     * overflowing. */
    cap = t->cap < 256 ? 256 : t->cap;
    while (cap < need) {
        cap = cap > (WTT_TAB_TEXT_MAX + 1) / 2 ? WTT_TAB_TEXT_MAX + 1
                                                : cap * 2;
    }
    if (cap >= HUGE_PAGE / 4) {
        /* The huge pages wtt_tab_alloc rounds up to, all usable. */
        cap = (cap + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
    }
    data = wtt_tab_alloc(cap);
    if (data == NULL) {
        t->failed = 1;
        return -1;
    }
    if (t->data != NULL) {
        memcpy(data, t->data, t->len + 1);
        free(t->data);
    }
    t->data = data;
    t->cap = cap;
    t->data[t->len] = '\0';
    return 0;
}


int
wtt_tab_text_status(const struct wtt_tab_text *t, const char **err)
{
    if (t->failed) {
        *err = "out of memory for the text (or past 1 GiB)";
        return -1;
    }
    return 0;
}


void
wtt_tab_text_put_grow(struct wtt_tab_text *t, const char *s, size_t n)
{
    if (wtt_tab_text_reserve(t, n) != 0) {
        return;
    }
    memcpy(t->data + t->len, s, n);
    t->len += n;
    t->data[t->len] = '\0';
}


/* -------------------------------------------------------------------------
 * Numbers
 * ---------------------------------------------------------------------- */

/* `v` in decimal into the end of `buf` (room for 20 digits); returns the
 * first digit. */
static char *
utoa_end(uint64_t v, char *end)
{
    char *p = end;

    do {
        *--p = (char) ('0' + v % 10);
        v /= 10;
    } while (v != 0);
    return p;
}


void
wtt_tab_text_int(struct wtt_tab_text *t, long long v)
{
    char     buf[24];
    char    *end = buf + sizeof(buf), *p;
    uint64_t u = v < 0 ? (uint64_t) 0 - (uint64_t) v : (uint64_t) v;

    p = utoa_end(u, end);
    if (v < 0) {
        *--p = '-';
    }
    wtt_tab_text_put(t, p, (size_t) (end - p));
}


void
wtt_tab_text_luaint(struct wtt_tab_text *t, double x)
{
    /* x86-64's cvttsd2si answers the int64 minimum for what it cannot
     * convert; LuaJIT's %d shows that. */
    if (x >= -9223372036854775808.0 && x < 9223372036854775808.0) {
        wtt_tab_text_int(t, (long long) x);
    } else {
        wtt_tab_text_lit(t, "-9223372036854775808");
    }
}


/*
 * round(a * 10^k), a finite and > 0, ties away from zero, computed
 * exactly into *out. Returns 0, or -1 when a * 10^k is beyond what 128
 * bits hold exactly (or the result beyond 64 bits).
 */
static int
scale_round(double a, int k, uint64_t *out)
{
    static const uint64_t pow5[MAX_SCALE + 1] = {
        1ULL, 5ULL, 25ULL, 125ULL, 625ULL, 3125ULL, 15625ULL, 78125ULL,
        390625ULL, 1953125ULL, 9765625ULL, 48828125ULL, 244140625ULL,
        1220703125ULL, 6103515625ULL, 30517578125ULL, 152587890625ULL,
        762939453125ULL, 3814697265625ULL, 19073486328125ULL,
        95367431640625ULL, 476837158203125ULL, 2384185791015625ULL,
        11920928955078125ULL, 59604644775390625ULL, 298023223876953125ULL,
        1490116119384765625ULL, 7450580596923828125ULL,
    };
    uint64_t bits, m;
    int      biased, e2, s;
    u128     num, den, q, r;

    memcpy(&bits, &a, sizeof(bits));
    biased = (int) ((bits >> 52) & 0x7ff);
    if (biased == 0 || biased == 0x7ff || k > MAX_SCALE || k < -MAX_SCALE) {
        return -1;
    }
    m = (bits & ((1ULL << 52) - 1)) | (1ULL << 52);
    e2 = biased - 1075;
    /* a * 10^k = m * 5^k * 2^(e2 + k) */
    if (k >= 0) {
        num = (u128) m * pow5[k];
        den = 1;
    } else {
        num = m;
        den = pow5[-k];
    }
    s = e2 + k;
    if (s >= 0) {
        /* num < 2^116 here; the result must stay below 2^64 anyway. */
        if (s > 64 || (num >> (127 - s)) != 0) {
            return -1;
        }
        num <<= s;
    } else if (den == 1) {
        /* A power-of-two divisor: shift, the usual case (a fraction). */
        if (-s >= 127) {
            *out = 0;       /* num < 2^116: below one half */
            return 0;
        }
        q = num >> -s;
        r = num & (((u128) 1 << -s) - 1);
        if (r >= ((u128) 1 << (-s - 1))) {
            q++;
        }
        if ((q >> 64) != 0) {
            return -1;
        }
        *out = (uint64_t) q;
        return 0;
    } else {
        if (-s > 60) {
            return -1;
        }
        den <<= -s;
    }
    q = num / den;
    r = num % den;
    if (r >= den - r) {
        q++;
    }
    if ((q >> 64) != 0) {
        return -1;
    }
    *out = (uint64_t) q;
    return 0;
}


/* floor(log10(a)) for a finite a > 0, or one off near a power of ten
 * (digits14 corrects it). A number of at least 1 counts the digits of its
 * integer part: no log10 for the seconds and beats a tab is made of. */
static int
decimal_exponent(double a)
{
    if (a >= 1 && a < 1e15) {
        uint64_t ip = (uint64_t) a;
        int      d = 0;
        while (ip >= 10) {
            ip /= 10;
            d++;
        }
        return d;
    }
    return (int) floor(log10(a));
}


/* The 14 significant digits of a (finite, > 0) and its decimal exponent:
 * a ~ digits * 10^(exp - 13). Returns 0, or -1 out of the exact range. */
static int
digits14(double a, uint64_t *digits, int *exp)
{
    int d = decimal_exponent(a);

    for (int tries = 0; tries < 4; tries++) {
        uint64_t n;
        if (scale_round(a, 13 - d, &n) != 0) {
            return -1;
        }
        if (n >= POW10_14) {
            d++;
        } else if (n < POW10_13) {
            d--;
        } else {
            *digits = n;
            *exp = d;
            return 0;
        }
    }
    return -1;
}


void
wtt_tab_text_luanum(struct wtt_tab_text *t, double x)
{
    char     buf[40], dig[14];
    char    *p = buf;
    uint64_t n;
    int      e, last;

    if (x != x) {
        wtt_tab_text_lit(t, "nan");
        return;
    }
    if (isinf(x)) {
        if (x < 0) {
            wtt_tab_text_lit(t, "-inf");
        } else {
            wtt_tab_text_lit(t, "inf");
        }
        return;
    }
    if (x == 0) {
        if (signbit(x)) {
            wtt_tab_text_lit(t, "-0");
        } else {
            wtt_tab_text_lit(t, "0");
        }
        return;
    }
    if (digits14(fabs(x), &n, &e) != 0) {
        int len = snprintf(buf, sizeof(buf), "%.14g", x);
        wtt_tab_text_put(t, buf, (size_t) len);
        return;
    }
    for (int i = 13; i >= 0; i--) {
        dig[i] = (char) ('0' + n % 10);
        n /= 10;
    }
    last = 13;              /* the last significant digit, zeros dropped */
    while (last > 0 && dig[last] == '0') {
        last--;
    }
    if (x < 0) {
        *p++ = '-';
    }
    if (e < -4 || e >= 14) {
        *p++ = dig[0];
        if (last > 0) {
            *p++ = '.';
            memcpy(p, dig + 1, (size_t) last);
            p += last;
        }
        *p++ = 'e';
        *p++ = e < 0 ? '-' : '+';
        e = e < 0 ? -e : e;
        if (e >= 100) {
            *p++ = (char) ('0' + e / 100);
        }
        *p++ = (char) ('0' + e / 10 % 10);
        *p++ = (char) ('0' + e % 10);
    } else if (e >= 0) {
        memcpy(p, dig, (size_t) e + 1);
        p += e + 1;
        if (last > e) {
            *p++ = '.';
            memcpy(p, dig + e + 1, (size_t) (last - e));
            p += last - e;
        }
    } else {
        *p++ = '0';
        *p++ = '.';
        for (int i = -1; i > e; i--) {
            *p++ = '0';
        }
        memcpy(p, dig, (size_t) last + 1);
        p += last + 1;
    }
    wtt_tab_text_put(t, buf, (size_t) (p - buf));
}


void
wtt_tab_text_fixed3(struct wtt_tab_text *t, double x)
{
    char     buf[64], *end = buf + sizeof(buf), *p;
    double   a = fabs(x);
    uint64_t n;

    if (x != x) {
        wtt_tab_text_lit(t, "nan");
        return;
    }
    if (isinf(x)) {
        if (x < 0) {
            wtt_tab_text_lit(t, "-inf");
        } else {
            wtt_tab_text_lit(t, "inf");
        }
        return;
    }
    if (a < 1e-4) {
        n = 0;
    } else if (scale_round(a, 3, &n) != 0) {
        /* Past 2^64 / 1000: an integer, so printf has no tie to break. */
        int len = snprintf(buf, sizeof(buf), "%.3f", x);
        wtt_tab_text_put(t, buf, (size_t) len);
        return;
    }
    p = end;
    for (int i = 0; i < 3; i++) {
        *--p = (char) ('0' + n % 10);
        n /= 10;
    }
    *--p = '.';
    p = utoa_end(n, p);
    if (signbit(x)) {
        *--p = '-';
    }
    wtt_tab_text_put(t, p, (size_t) (end - p));
}


void
wtt_tab_text_jsonnum(struct wtt_tab_text *t, double x)
{
    if (x != x || isinf(x)) {
        wtt_tab_text_lit(t, "null");
    } else if (x == floor(x) && x >= -9007199254740992.0
               && x <= 9007199254740992.0)
    {
        wtt_tab_text_int(t, (long long) x);
    } else {
        wtt_tab_text_luanum(t, x);
    }
}


void
wtt_tab_text_quoted(struct wtt_tab_text *t, const char *s, size_t n,
                    int json)
{
    static const char hex[] = "0123456789abcdef";
    size_t            run = 0;

    wtt_tab_text_lit(t, "\"");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char) s[i];
        char          esc[6] = { '\\', 0, 0, 0, 0, 0 };
        size_t        len = 2;
        if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7f
            && !(json && c == '/'))
        {
            continue;
        }
        wtt_tab_text_put(t, s + run, i - run);
        run = i + 1;
        switch (c) {
        case '"':  esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '/':  esc[1] = '/'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        case '\b': esc[1] = json ? 'b' : 0; break;
        case '\f': esc[1] = json ? 'f' : 0; break;
        default:
            break;
        }
        if (esc[1] == 0) {
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            len = 6;
        }
        wtt_tab_text_put(t, esc, len);
    }
    wtt_tab_text_put(t, s + run, n - run);
    wtt_tab_text_lit(t, "\"");
}


void
wtt_tab_text_jsonstr(struct wtt_tab_text *t, const char *s, size_t n)
{
    wtt_tab_text_quoted(t, s, n, 1);
}
