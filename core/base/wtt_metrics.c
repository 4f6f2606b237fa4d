/*
 * wtt_metrics.c: the process's metric store (see wtt_metrics.h).
 *
 * Families are registered once and never removed; a family's series form
 * an append-only list, so a series pointer stays valid for the life of the
 * process and updates need no lock. Doubles are kept as their bits in
 * 64-bit atomics (C11 has no atomic add for double): adds are CAS loops.
 */
#include "wtt_metrics.h"
#include "wtt_lalloc.h"
#include "wtt_reload.h"

#include <dirent.h>
#include <malloc.h>
#include <math.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct wtt_series {
    struct wtt_series *next;
    int                family;
    char             **values;
    _Atomic uint64_t   value;     /* counter/gauge: double bits; histogram:
                                     the sum's bits */
    _Atomic uint64_t   count;     /* histogram: observations */
    _Atomic uint64_t   buckets[WTT_METRICS_MAX_BUCKETS];
};

struct family {
    char                 *name;
    char                 *help;
    enum wtt_metric_type  type;
    int                   nlabels;
    char                 *labels[WTT_METRICS_MAX_LABELS];
    int                   nbuckets;
    double                bounds[WTT_METRICS_MAX_BUCKETS];
    int                   nseries;
    wtt_series_t         *series;
    wtt_series_t         *last;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct family   families[WTT_METRICS_MAX_FAMILIES];
static int             nfamilies;
static _Atomic uint64_t dropped_series;


static uint64_t
bits_of(double v)
{
    uint64_t b;
    memcpy(&b, &v, sizeof(b));
    return b;
}


static double
double_of(uint64_t b)
{
    double v;
    memcpy(&v, &b, sizeof(v));
    return v;
}


static void
add_double(_Atomic uint64_t *slot, double v)
{
    uint64_t old = atomic_load_explicit(slot, memory_order_relaxed);

    while (!atomic_compare_exchange_weak_explicit(
               slot, &old, bits_of(double_of(old) + v),
               memory_order_relaxed, memory_order_relaxed)) {
    }
}


/* [a-zA-Z_:][a-zA-Z0-9_:]* (labels: no colon, and no "__" prefix). */
static int
valid_name(const char *s, int label)
{
    if (s == NULL || s[0] == '\0' || (s[0] >= '0' && s[0] <= '9')) {
        return 0;
    }
    if (label && strncmp(s, "__", 2) == 0) {
        return 0;
    }
    for (const char *p = s; *p != '\0'; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '_' || (!label && c == ':')))
        {
            return 0;
        }
    }
    return 1;
}


static int
same_shape(const struct family *f, enum wtt_metric_type type,
           const char *const *labels, int nlabels, const double *buckets,
           int nbuckets)
{
    if (f->type != type || f->nlabels != nlabels) {
        return 0;
    }
    for (int i = 0; i < nlabels; i++) {
        if (strcmp(f->labels[i], labels[i]) != 0) {
            return 0;
        }
    }
    if (type == WTT_METRIC_HISTOGRAM) {
        if (f->nbuckets != nbuckets) {
            return 0;
        }
        for (int i = 0; i < nbuckets; i++) {
            if (f->bounds[i] != buckets[i]) {
                return 0;
            }
        }
    }
    return 1;
}


static int
find_locked(const char *name)
{
    for (int i = 0; i < nfamilies; i++) {
        if (strcmp(families[i].name, name) == 0) {
            return i;
        }
    }
    return -1;
}


int
wtt_metrics_family(const char *name, const char *help,
                   enum wtt_metric_type type, const char *const *labels,
                   int nlabels, const double *buckets, int nbuckets,
                   char *err, size_t errlen)
{
    struct family *f;
    int            i;

    if (!valid_name(name, 0)) {
        snprintf(err, errlen, "bad metric name '%s'", name ? name : "");
        return -1;
    }
    if (type != WTT_METRIC_COUNTER && type != WTT_METRIC_GAUGE
        && type != WTT_METRIC_HISTOGRAM)
    {
        snprintf(err, errlen, "%s: unknown metric type %d", name, (int) type);
        return -1;
    }
    if (nlabels < 0 || nlabels > WTT_METRICS_MAX_LABELS
        || (nlabels > 0 && labels == NULL))
    {
        snprintf(err, errlen, "%s: at most %d labels", name,
                 WTT_METRICS_MAX_LABELS);
        return -1;
    }
    for (i = 0; i < nlabels; i++) {
        if (!valid_name(labels[i], 1) || strcmp(labels[i], "le") == 0) {
            snprintf(err, errlen, "%s: bad label name '%s'", name,
                     labels[i] ? labels[i] : "");
            return -1;
        }
    }
    if (type != WTT_METRIC_HISTOGRAM) {
        nbuckets = 0;
    } else {
        if (nbuckets < 1 || nbuckets > WTT_METRICS_MAX_BUCKETS
            || buckets == NULL)
        {
            snprintf(err, errlen, "%s: 1 to %d buckets", name,
                     WTT_METRICS_MAX_BUCKETS);
            return -1;
        }
        for (i = 0; i < nbuckets; i++) {
            if (!isfinite(buckets[i]) || (i > 0 && buckets[i] <= buckets[i - 1])) {
                snprintf(err, errlen, "%s: buckets must be finite and "
                         "increasing", name);
                return -1;
            }
        }
    }

    pthread_mutex_lock(&lock);
    i = find_locked(name);
    if (i >= 0) {
        int same = same_shape(&families[i], type, labels, nlabels, buckets,
                              nbuckets);
        pthread_mutex_unlock(&lock);
        if (!same) {
            snprintf(err, errlen, "%s is registered with another type, "
                     "labels or buckets", name);
            return -1;
        }
        return i;
    }
    if (nfamilies == WTT_METRICS_MAX_FAMILIES) {
        pthread_mutex_unlock(&lock);
        snprintf(err, errlen, "%s: the store is full (%d families)", name,
                 WTT_METRICS_MAX_FAMILIES);
        return -1;
    }
    f = &families[nfamilies];
    memset(f, 0, sizeof(*f));
    f->name = strdup(name);
    f->help = strdup(help != NULL ? help : "");
    for (i = 0; i < nlabels; i++) {
        f->labels[i] = strdup(labels[i]);
    }
    if (f->name == NULL || f->help == NULL) {
        goto oom;
    }
    for (i = 0; i < nlabels; i++) {
        if (f->labels[i] == NULL) {
            goto oom;
        }
    }
    f->type = type;
    f->nlabels = nlabels;
    f->nbuckets = nbuckets;
    for (i = 0; i < nbuckets; i++) {
        f->bounds[i] = buckets[i];
    }
    i = nfamilies++;
    pthread_mutex_unlock(&lock);
    return i;

oom:
    free(f->name);
    free(f->help);
    for (i = 0; i < nlabels; i++) {
        free(f->labels[i]);
    }
    memset(f, 0, sizeof(*f));
    pthread_mutex_unlock(&lock);
    snprintf(err, errlen, "%s: out of memory", name);
    return -1;
}


int
wtt_metrics_find(const char *name)
{
    int i;

    pthread_mutex_lock(&lock);
    i = find_locked(name);
    pthread_mutex_unlock(&lock);
    return i;
}


static int
values_equal(const struct family *f, const wtt_series_t *s,
             const char *const *values)
{
    for (int i = 0; i < f->nlabels; i++) {
        if (strcmp(s->values[i], values[i] != NULL ? values[i] : "") != 0) {
            return 0;
        }
    }
    return 1;
}


wtt_series_t *
wtt_metrics_series(int fi, const char *const *values)
{
    struct family *f;
    wtt_series_t  *s;

    pthread_mutex_lock(&lock);
    if (fi < 0 || fi >= nfamilies) {
        pthread_mutex_unlock(&lock);
        return NULL;
    }
    f = &families[fi];
    if (values == NULL && f->nlabels > 0) {
        pthread_mutex_unlock(&lock);
        return NULL;
    }
    for (s = f->series; s != NULL; s = s->next) {
        if (values_equal(f, s, values)) {
            pthread_mutex_unlock(&lock);
            return s;
        }
    }
    if (f->nseries >= WTT_METRICS_MAX_SERIES
        || (s = calloc(1, sizeof(*s))) == NULL)
    {
        pthread_mutex_unlock(&lock);
        atomic_fetch_add(&dropped_series, 1);
        return NULL;
    }
    s->family = fi;
    s->values = calloc((size_t) f->nlabels + 1, sizeof(char *));
    for (int i = 0; s->values != NULL && i < f->nlabels; i++) {
        s->values[i] = strdup(values[i] != NULL ? values[i] : "");
        if (s->values[i] == NULL) {
            for (int j = 0; j < i; j++) {
                free(s->values[j]);
            }
            free(s->values);
            s->values = NULL;
        }
    }
    if (s->values == NULL) {
        free(s);
        pthread_mutex_unlock(&lock);
        atomic_fetch_add(&dropped_series, 1);
        return NULL;
    }
    /* Appended, so a concurrent render sees the list as before or with
     * the new series whole (it walks under the same lock anyway). */
    if (f->last != NULL) {
        f->last->next = s;
    } else {
        f->series = s;
    }
    f->last = s;
    f->nseries++;
    pthread_mutex_unlock(&lock);
    return s;
}


void
wtt_metrics_add(wtt_series_t *s, double v)
{
    if (s == NULL || !isfinite(v)) {
        return;
    }
    switch (families[s->family].type) {
    case WTT_METRIC_COUNTER:
        if (v >= 0) {
            add_double(&s->value, v);
        }
        return;
    case WTT_METRIC_GAUGE:
        add_double(&s->value, v);
        return;
    default:             /* a histogram's value is its sum: not added to */
        return;
    }
}


void
wtt_metrics_set(wtt_series_t *s, double v)
{
    if (s != NULL && families[s->family].type == WTT_METRIC_GAUGE) {
        atomic_store_explicit(&s->value, bits_of(v), memory_order_relaxed);
    }
}


void
wtt_metrics_observe(wtt_series_t *s, double v)
{
    const struct family *f;

    if (s == NULL || isnan(v)) {
        return;
    }
    f = &families[s->family];
    if (f->type != WTT_METRIC_HISTOGRAM) {
        return;
    }
    /* Per bucket, not cumulative: render sums them, so an observation is
     * one increment however many buckets it falls under. */
    for (int i = 0; i < f->nbuckets; i++) {
        if (v <= f->bounds[i]) {
            atomic_fetch_add_explicit(&s->buckets[i], 1, memory_order_relaxed);
            break;
        }
    }
    add_double(&s->value, v);
    atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
}


/* ---------------------------------------------------------------------------
 * Rendering
 * ------------------------------------------------------------------------- */

typedef struct {
    char  *p;
    size_t len, cap;
    int    oom;
} buf_t;


static void
put(buf_t *b, const char *s, size_t n)
{
    if (b->oom) {
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        char  *p;
        while (b->len + n + 1 > cap) {
            cap *= 2;
        }
        p = realloc(b->p, cap);
        if (p == NULL) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}


static void
puts_(buf_t *b, const char *s)
{
    put(b, s, strlen(s));
}


static void
putf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
putf(buf_t *b, const char *fmt, ...)
{
    char    tmp[512];
    va_list ap;
    int     n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0) {
        put(b, tmp, (size_t) n < sizeof(tmp) ? (size_t) n : sizeof(tmp) - 1);
    }
}


/* A number as the format wants it: integers without a fraction. */
static void
put_number(buf_t *b, double v)
{
    if (isnan(v)) {
        puts_(b, "NaN");
    } else if (isinf(v)) {
        puts_(b, v > 0 ? "+Inf" : "-Inf");
    } else if (v == floor(v) && fabs(v) < 1e15) {
        putf(b, "%.0f", v);
    } else {
        putf(b, "%.17g", v);
    }
}


/* HELP text escapes \ and newline; label values also ". */
static void
put_escaped(buf_t *b, const char *s, int quote)
{
    for (const char *p = s; *p != '\0'; p++) {
        if (*p == '\\') {
            puts_(b, "\\\\");
        } else if (*p == '\n') {
            puts_(b, "\\n");
        } else if (quote && *p == '"') {
            puts_(b, "\\\"");
        } else {
            put(b, p, 1);
        }
    }
}


static void
put_header(buf_t *b, const char *name, const char *help, const char *type)
{
    putf(b, "# HELP %s ", name);
    put_escaped(b, help, 0);
    putf(b, "\n# TYPE %s %s\n", name, type);
}


/* name{labels[,le="..."]} */
static void
put_series_name(buf_t *b, const struct family *f, const wtt_series_t *s,
                const char *suffix, const char *le)
{
    int first = 1;

    puts_(b, f->name);
    puts_(b, suffix);
    if (f->nlabels == 0 && le == NULL) {
        puts_(b, " ");
        return;
    }
    puts_(b, "{");
    for (int i = 0; i < f->nlabels; i++) {
        putf(b, "%s%s=\"", first ? "" : ",", f->labels[i]);
        put_escaped(b, s->values[i], 1);
        puts_(b, "\"");
        first = 0;
    }
    if (le != NULL) {
        putf(b, "%sle=\"%s\"", first ? "" : ",", le);
    }
    puts_(b, "} ");
}


static void
render_family(buf_t *b, const struct family *f)
{
    static const char *types[] = { "counter", "gauge", "histogram" };

    put_header(b, f->name, f->help, types[f->type]);
    for (const wtt_series_t *s = f->series; s != NULL; s = s->next) {
        if (f->type != WTT_METRIC_HISTOGRAM) {
            put_series_name(b, f, s, "", NULL);
            put_number(b, double_of(atomic_load(&s->value)));
            puts_(b, "\n");
            continue;
        }
        {
            /* Read the count first: buckets and sum may then be ahead of
             * it by an observation in flight, never behind, and +Inf is
             * the count, so the series stays consistent. */
            uint64_t count = atomic_load(&s->count), cum = 0;
            char     le[40];

            for (int i = 0; i < f->nbuckets; i++) {
                cum += atomic_load(&s->buckets[i]);
                if (cum > count) {
                    cum = count;
                }
                snprintf(le, sizeof(le), "%.17g", f->bounds[i]);
                put_series_name(b, f, s, "_bucket", le);
                putf(b, "%llu\n", (unsigned long long) cum);
            }
            put_series_name(b, f, s, "_bucket", "+Inf");
            putf(b, "%llu\n", (unsigned long long) count);
            put_series_name(b, f, s, "_sum", NULL);
            put_number(b, double_of(atomic_load(&s->value)));
            puts_(b, "\n");
            put_series_name(b, f, s, "_count", NULL);
            putf(b, "%llu\n", (unsigned long long) count);
        }
    }
}


static double
resident_bytes(void)
{
    FILE         *fp = fopen("/proc/self/statm", "r");
    unsigned long size = 0, resident = 0;
    int           n;

    if (fp == NULL) {
        return NAN;
    }
    n = fscanf(fp, "%lu %lu", &size, &resident);
    fclose(fp);
    return n == 2 ? (double) resident * (double) sysconf(_SC_PAGESIZE) : NAN;
}


static double
open_fds(void)
{
    DIR           *d = opendir("/proc/self/fd");
    struct dirent *e;
    long           n = 0;

    if (d == NULL) {
        return NAN;
    }
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.') {
            n++;
        }
    }
    closedir(d);
    return (double) (n - 1);   /* less the descriptor reading the list */
}


static void
render_gauge(buf_t *b, const char *name, const char *help, const char *type,
             double v)
{
    if (isnan(v)) {
        return;
    }
    put_header(b, name, help, type);
    puts_(b, name);
    puts_(b, " ");
    put_number(b, v);
    puts_(b, "\n");
}


/* glibc's own view of its heap: a leak grows the bytes in use; blocks
 * freed but not given back (fragmentation, arenas' high-water marks) grow
 * the free bytes. RSS alone cannot tell the two apart. Absent under ASan,
 * whose allocator replaces malloc (glibc's counters would read ~0). */
static void
render_malloc(buf_t *b)
{
#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__) \
    && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    struct mallinfo2 mi = mallinfo2();

    render_gauge(b, "wtt_malloc_in_use_bytes",
                 "Bytes in live malloc blocks, mmapped ones included.",
                 "gauge", (double) (mi.uordblks + mi.hblkhd));
    render_gauge(b, "wtt_malloc_free_bytes",
                 "Free bytes malloc's arenas hold and have not given back.",
                 "gauge", (double) mi.fordblks);
#else
    (void) b;
#endif
}


char *
wtt_metrics_render(size_t *len)
{
    buf_t b = { NULL, 0, 0, 0 };

    pthread_mutex_lock(&lock);
    for (int i = 0; i < nfamilies; i++) {
        render_family(&b, &families[i]);
    }
    pthread_mutex_unlock(&lock);

    render_gauge(&b, "wtt_process_resident_memory_bytes",
                 "Resident memory of the process.", "gauge",
                 resident_bytes());
    render_gauge(&b, "wtt_process_open_fds",
                 "Open file descriptors of the process.", "gauge",
                 open_fds());
    render_gauge(&b, "wtt_lua_memory_bytes",
                 "Memory held by the process's Lua states, summed.", "gauge",
                 (double) wtt_lalloc_total_bytes());
    render_malloc(&b);
    render_gauge(&b, "wtt_metrics_dropped_series_total",
                 "Updates dropped because a family had too many series.",
                 "counter", (double) atomic_load(&dropped_series));
    if (wtt_reload_current_id() > 0) {
        render_gauge(&b, "wtt_reload_generation",
                     "Id of the active route and plugin generation.", "gauge",
                     (double) wtt_reload_current_id());
        render_gauge(&b, "wtt_reload_failures_total",
                     "Reloads refused because the new generation did not "
                     "build.", "counter", (double) wtt_reload_failures());
    }
    if (b.oom || b.p == NULL) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}


/* ---------------------------------------------------------------------------
 * The HTTP server's request metrics
 * ------------------------------------------------------------------------- */

static const double HTTP_BUCKETS[] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
    30, 60,
};

static pthread_once_t http_once = PTHREAD_ONCE_INIT;
static int            http_total = -1, http_duration = -1;


static void
http_register(void)
{
    static const char *const labels[] = { "method", "route", "status" };
    char err[160];

    http_total = wtt_metrics_family(
        "wtt_http_requests_total",
        "HTTP requests answered, by method, route pattern and status.",
        WTT_METRIC_COUNTER, labels, 3, NULL, 0, err, sizeof(err));
    http_duration = wtt_metrics_family(
        "wtt_http_request_duration_seconds",
        "Time from a request's headers to its response's end (streams "
        "included), by method and route pattern.",
        WTT_METRIC_HISTOGRAM, labels, 2, HTTP_BUCKETS,
        (int) (sizeof(HTTP_BUCKETS) / sizeof(HTTP_BUCKETS[0])), err,
        sizeof(err));
}


/* Methods outside the usual set share one label value: the label must not
 * take whatever a client sends. */
static const char *
method_label(const char *m)
{
    static const char *const known[] = {
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", NULL,
    };

    for (int i = 0; m != NULL && known[i] != NULL; i++) {
        if (strcmp(m, known[i]) == 0) {
            return known[i];
        }
    }
    return "other";
}


void
wtt_metrics_http_request(const char *method, const char *route, int status,
                         double seconds)
{
    char        code[8];
    const char *values[3];

    pthread_once(&http_once, http_register);
    snprintf(code, sizeof(code), "%d", status);
    values[0] = method_label(method);
    values[1] = (route != NULL && route[0] != '\0') ? route : "none";
    values[2] = code;
    wtt_metrics_add(wtt_metrics_series(http_total, values), 1);
    wtt_metrics_observe(wtt_metrics_series(http_duration, values), seconds);
}
