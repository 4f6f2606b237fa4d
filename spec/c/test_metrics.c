/*
 * test_metrics.c: the process's metric store (core/base/wtt_metrics.c):
 * exact totals from several threads, the exposition text (escaping,
 * histogram buckets, sum and count), the per-family series cap, and the
 * errors for bad names, labels and buckets.
 *
 * The store is process-wide and keeps what is registered, so every test
 * uses family names of its own (ct_*).
 */
#include "test.h"
#include "wtt_metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define THREADS     4
#define PER_THREAD  20000


/* The value on the line of `text` that starts with `series` (the series'
 * name and labels and the space before the value), or NAN. */
static double
value_of(const char *text, const char *series)
{
    size_t      n = strlen(series);
    const char *p = text;

    while (p != NULL && *p != '\0') {
        if (strncmp(p, series, n) == 0) {
            return strtod(p + n, NULL);
        }
        p = strchr(p, '\n');
        if (p != NULL) {
            p++;
        }
    }
    return NAN;
}


/* Renders the store and reads one series' value. */
static double
rendered(const char *series)
{
    size_t len;
    char  *text = wtt_metrics_render(&len);
    double v;

    if (text == NULL) {
        return NAN;
    }
    v = value_of(text, series);
    free(text);
    return v;
}


/* Whether the rendered store has `line` as a whole line. */
static int
has_line(const char *line)
{
    size_t      len, n = strlen(line);
    char       *text = wtt_metrics_render(&len);
    const char *p = text;
    int         found = 0;

    while (p != NULL && *p != '\0' && !found) {
        found = strncmp(p, line, n) == 0 && (p[n] == '\n' || p[n] == '\0');
        p = strchr(p, '\n');
        if (p != NULL) {
            p++;
        }
    }
    free(text);
    return found;
}


struct hammer {
    int counter, histogram;
    int id;
};


/* Each thread looks its series up itself (so creation races too) and
 * updates the shared series and one of its own. */
static void *
hammer_main(void *arg)
{
    const struct hammer *h = arg;
    const char          *shared[] = { "shared" };
    char                 own_name[16];
    const char          *own[] = { own_name };

    snprintf(own_name, sizeof(own_name), "t%d", h->id);
    for (int i = 0; i < PER_THREAD; i++) {
        wtt_metrics_add(wtt_metrics_series(h->counter, shared), 1);
        wtt_metrics_add(wtt_metrics_series(h->counter, own), 0.5);
        /* 0.25 and 4 are exact in binary: the sum is exact too. */
        wtt_metrics_observe(wtt_metrics_series(h->histogram, NULL),
                            i % 2 ? 0.25 : 4);
    }
    return NULL;
}


int
test_metrics_threads(void)
{
    static const char *const labels[] = { "who" };
    static const double      bounds[] = { 1, 10 };
    struct hammer            h[THREADS];
    pthread_t                tid[THREADS];
    char                     err[160], series[64];
    int                      c, hi;

    c = wtt_metrics_family("ct_threads_total", "Updates.", WTT_METRIC_COUNTER,
                           labels, 1, NULL, 0, err, sizeof(err));
    hi = wtt_metrics_family("ct_threads_seconds", "Observations.",
                            WTT_METRIC_HISTOGRAM, NULL, 0, bounds, 2, err,
                            sizeof(err));
    ASSERT(c >= 0 && hi >= 0);
    for (int i = 0; i < THREADS; i++) {
        h[i] = (struct hammer) { c, hi, i };
        ASSERT(pthread_create(&tid[i], NULL, hammer_main, &h[i]) == 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(tid[i], NULL);
    }
    ASSERT(rendered("ct_threads_total{who=\"shared\"} ")
           == (double) THREADS * PER_THREAD);
    for (int i = 0; i < THREADS; i++) {
        snprintf(series, sizeof(series), "ct_threads_total{who=\"t%d\"} ", i);
        ASSERT(rendered(series) == PER_THREAD * 0.5);
    }
    ASSERT(rendered("ct_threads_seconds_count ") == (double) THREADS * PER_THREAD);
    ASSERT(rendered("ct_threads_seconds_bucket{le=\"1\"} ")
           == (double) THREADS * PER_THREAD / 2);
    ASSERT(rendered("ct_threads_seconds_bucket{le=\"10\"} ")
           == (double) THREADS * PER_THREAD);
    ASSERT(rendered("ct_threads_seconds_sum ")
           == THREADS * (PER_THREAD / 2) * (0.25 + 4));
    return 0;
}


int
test_metrics_escaping(void)
{
    static const char *const labels[] = { "path", "kind" };
    const char *values[] = { "a\"b\\c\nd", "plain" };
    char        err[160];
    int         f;

    f = wtt_metrics_family("ct_escaped_total", "Help with \\ and\nnewline.",
                           WTT_METRIC_COUNTER, labels, 2, NULL, 0, err,
                           sizeof(err));
    ASSERT(f >= 0);
    wtt_metrics_add(wtt_metrics_series(f, values), 3);
    /* HELP escapes backslash and newline, not quotes; label values all
     * three. */
    ASSERT(has_line("# HELP ct_escaped_total Help with \\\\ and\\nnewline."));
    ASSERT(has_line("# TYPE ct_escaped_total counter"));
    ASSERT(has_line("ct_escaped_total{path=\"a\\\"b\\\\c\\nd\",kind=\"plain\"} 3"));
    /* A missing value is the empty string, a series of its own. */
    values[1] = NULL;
    wtt_metrics_add(wtt_metrics_series(f, values), 1);
    ASSERT(has_line("ct_escaped_total{path=\"a\\\"b\\\\c\\nd\",kind=\"\"} 1"));
    return 0;
}


int
test_metrics_histogram(void)
{
    static const char *const labels[] = { "lane" };
    static const double      bounds[] = { 0.5, 1, 2.5 };
    const char              *fast[] = { "fast" };
    char                     err[160];
    wtt_series_t            *s;
    int                      f;

    f = wtt_metrics_family("ct_hist_seconds", "Durations.",
                           WTT_METRIC_HISTOGRAM, labels, 1, bounds, 3, err,
                           sizeof(err));
    ASSERT(f >= 0);
    s = wtt_metrics_series(f, fast);
    ASSERT(s != NULL);
    ASSERT(wtt_metrics_series(f, fast) == s);
    wtt_metrics_observe(s, 0.25);
    wtt_metrics_observe(s, 0.5);     /* le is inclusive */
    wtt_metrics_observe(s, 1);
    wtt_metrics_observe(s, 2);
    wtt_metrics_observe(s, 100);     /* above every bound: +Inf only */
    wtt_metrics_observe(s, NAN);     /* ignored */
    wtt_metrics_add(s, 5);           /* not a counter: ignored */
    ASSERT(has_line("# TYPE ct_hist_seconds histogram"));
    ASSERT(has_line("ct_hist_seconds_bucket{lane=\"fast\",le=\"0.5\"} 2"));
    ASSERT(has_line("ct_hist_seconds_bucket{lane=\"fast\",le=\"1\"} 3"));
    ASSERT(has_line("ct_hist_seconds_bucket{lane=\"fast\",le=\"2.5\"} 4"));
    ASSERT(has_line("ct_hist_seconds_bucket{lane=\"fast\",le=\"+Inf\"} 5"));
    ASSERT(has_line("ct_hist_seconds_sum{lane=\"fast\"} 103.75"));
    ASSERT(has_line("ct_hist_seconds_count{lane=\"fast\"} 5"));
    return 0;
}


int
test_metrics_counter_gauge(void)
{
    char          err[160];
    wtt_series_t *c, *g;
    int           fc, fg;

    fc = wtt_metrics_family("ct_cg_total", "A counter.", WTT_METRIC_COUNTER,
                            NULL, 0, NULL, 0, err, sizeof(err));
    fg = wtt_metrics_family("ct_cg_bytes", "A gauge.", WTT_METRIC_GAUGE, NULL,
                            0, NULL, 0, err, sizeof(err));
    ASSERT(fc >= 0 && fg >= 0);
    c = wtt_metrics_series(fc, NULL);
    g = wtt_metrics_series(fg, NULL);
    ASSERT(c != NULL && g != NULL);
    wtt_metrics_add(c, 2);
    wtt_metrics_add(c, -1);          /* a counter never goes down */
    wtt_metrics_add(c, NAN);
    wtt_metrics_add(c, INFINITY);
    wtt_metrics_set(c, 100);         /* set is for gauges */
    wtt_metrics_observe(c, 1);       /* observe is for histograms */
    ASSERT(has_line("ct_cg_total 2"));
    wtt_metrics_set(g, 10);
    wtt_metrics_add(g, -2.5);
    ASSERT(has_line("ct_cg_bytes 7.5"));
    /* The process collectors follow the store. */
    ASSERT(rendered("wtt_process_open_fds ") >= 3);
    ASSERT(rendered("wtt_process_resident_memory_bytes ") > 0);
#if !defined(__SANITIZE_ADDRESS__)
    {
        /* A live block of 8 MiB (mmapped by malloc) shows in use. */
        double before = rendered("wtt_malloc_in_use_bytes ");
        char  *big = malloc((size_t) 8 << 20);
        ASSERT(big != NULL);
        memset(big, 1, (size_t) 8 << 20);
        ASSERT(rendered("wtt_malloc_in_use_bytes ") >= before + (8 << 20));
        ASSERT(rendered("wtt_malloc_free_bytes ") >= 0);
        free(big);
    }
#endif
    return 0;
}


int
test_metrics_series_cap(void)
{
    static const char *const labels[] = { "id" };
    const char              *values[1];
    char                     err[160], id[16];
    double                   dropped;
    int                      f;

    f = wtt_metrics_family("ct_cap_total", "Capped.", WTT_METRIC_COUNTER,
                           labels, 1, NULL, 0, err, sizeof(err));
    ASSERT(f >= 0);
    values[0] = id;
    for (int i = 0; i < WTT_METRICS_MAX_SERIES; i++) {
        snprintf(id, sizeof(id), "%d", i);
        ASSERT(wtt_metrics_series(f, values) != NULL);
    }
    dropped = rendered("wtt_metrics_dropped_series_total ");
    ASSERT(dropped >= 0);
    snprintf(id, sizeof(id), "new");
    ASSERT(wtt_metrics_series(f, values) == NULL);
    wtt_metrics_add(wtt_metrics_series(f, values), 1);   /* dropped, no crash */
    ASSERT(rendered("wtt_metrics_dropped_series_total ") == dropped + 2);
    ASSERT(isnan(rendered("ct_cap_total{id=\"new\"} ")));
    /* Series made before the cap still count. */
    snprintf(id, sizeof(id), "7");
    wtt_metrics_add(wtt_metrics_series(f, values), 4);
    ASSERT(rendered("ct_cap_total{id=\"7\"} ") == 4);
    return 0;
}


/* wtt_metrics_family returns -1 and a non-empty reason. */
#define REFUSED(call)                                                     \
    do {                                                                  \
        err[0] = '\0';                                                    \
        ASSERT((call) == -1);                                             \
        ASSERT(err[0] != '\0');                                           \
    } while (0)

int
test_metrics_bad_input(void)
{
    static const char *const one[] = { "a" }, *const other[] = { "b" };
    static const char *const five[] = { "a", "b", "c", "d", "e" };
    static const char *const bad_label[][1] = {
        { "" }, { "1a" }, { "a-b" }, { "a:b" }, { "__a" }, { "le" }, { NULL },
    };
    static const double      up[] = { 1, 2 }, down[] = { 2, 1 },
                             same[] = { 1, 1 };
    double                   nan_b[] = { 1, NAN }, inf_b[] = { 1, INFINITY };
    double                   many[WTT_METRICS_MAX_BUCKETS + 1];
    char                     err[160];
    int                      f;

    REFUSED(wtt_metrics_family(NULL, "", WTT_METRIC_COUNTER, NULL, 0, NULL, 0,
                               err, sizeof(err)));
    REFUSED(wtt_metrics_family("", "", WTT_METRIC_COUNTER, NULL, 0, NULL, 0,
                               err, sizeof(err)));
    REFUSED(wtt_metrics_family("9lives", "", WTT_METRIC_COUNTER, NULL, 0,
                               NULL, 0, err, sizeof(err)));
    REFUSED(wtt_metrics_family("has space", "", WTT_METRIC_COUNTER, NULL, 0,
                               NULL, 0, err, sizeof(err)));
    REFUSED(wtt_metrics_family("dash-ed", "", WTT_METRIC_COUNTER, NULL, 0,
                               NULL, 0, err, sizeof(err)));
    ASSERT(strstr(err, "dash-ed") != NULL);
    for (size_t i = 0; i < sizeof(bad_label) / sizeof(bad_label[0]); i++) {
        REFUSED(wtt_metrics_family("ct_bad_label", "", WTT_METRIC_COUNTER,
                                   bad_label[i], 1, NULL, 0, err,
                                   sizeof(err)));
    }
    REFUSED(wtt_metrics_family("ct_bad_labels", "", WTT_METRIC_COUNTER, five,
                               5, NULL, 0, err, sizeof(err)));
    REFUSED(wtt_metrics_family("ct_bad_labels", "", WTT_METRIC_COUNTER, NULL,
                               -1, NULL, 0, err, sizeof(err)));
    REFUSED(wtt_metrics_family("ct_bad_labels", "", WTT_METRIC_COUNTER, NULL,
                               1, NULL, 0, err, sizeof(err)));
    REFUSED(wtt_metrics_family("ct_bad_hist", "", WTT_METRIC_HISTOGRAM, NULL,
                               0, NULL, 0, err, sizeof(err)));
    REFUSED(wtt_metrics_family("ct_bad_hist", "", WTT_METRIC_HISTOGRAM, NULL,
                               0, NULL, 2, err, sizeof(err)));
    REFUSED(wtt_metrics_family("ct_bad_hist", "", WTT_METRIC_HISTOGRAM, NULL,
                               0, down, 2, err, sizeof(err)));
    REFUSED(wtt_metrics_family("ct_bad_hist", "", WTT_METRIC_HISTOGRAM, NULL,
                               0, same, 2, err, sizeof(err)));
    REFUSED(wtt_metrics_family("ct_bad_hist", "", WTT_METRIC_HISTOGRAM, NULL,
                               0, nan_b, 2, err, sizeof(err)));
    REFUSED(wtt_metrics_family("ct_bad_hist", "", WTT_METRIC_HISTOGRAM, NULL,
                               0, inf_b, 2, err, sizeof(err)));
    for (int i = 0; i <= WTT_METRICS_MAX_BUCKETS; i++) {
        many[i] = i;
    }
    REFUSED(wtt_metrics_family("ct_bad_hist", "", WTT_METRIC_HISTOGRAM, NULL,
                               0, many, WTT_METRICS_MAX_BUCKETS + 1, err,
                               sizeof(err)));
    REFUSED(wtt_metrics_family("ct_bad_type", "", (enum wtt_metric_type) 7,
                               NULL, 0, NULL, 0, err, sizeof(err)));
    /* Nothing refused was registered. */
    ASSERT(wtt_metrics_find("ct_bad_label") == -1);
    ASSERT(wtt_metrics_find("ct_bad_hist") == -1);

    /* The same name again: the same shape finds it, another is refused. */
    f = wtt_metrics_family("ct_shape_total", "", WTT_METRIC_COUNTER, one, 1,
                           NULL, 0, err, sizeof(err));
    ASSERT(f >= 0);
    ASSERT(wtt_metrics_family("ct_shape_total", "other help",
                              WTT_METRIC_COUNTER, one, 1, NULL, 0, err,
                              sizeof(err)) == f);
    ASSERT(wtt_metrics_find("ct_shape_total") == f);
    REFUSED(wtt_metrics_family("ct_shape_total", "", WTT_METRIC_GAUGE, one, 1,
                               NULL, 0, err, sizeof(err)));
    REFUSED(wtt_metrics_family("ct_shape_total", "", WTT_METRIC_COUNTER, NULL,
                               0, NULL, 0, err, sizeof(err)));
    REFUSED(wtt_metrics_family("ct_shape_total", "", WTT_METRIC_COUNTER, other,
                               1, NULL, 0, err, sizeof(err)));
    f = wtt_metrics_family("ct_shape_seconds", "", WTT_METRIC_HISTOGRAM, NULL,
                           0, up, 2, err, sizeof(err));
    ASSERT(f >= 0);
    REFUSED(wtt_metrics_family("ct_shape_seconds", "", WTT_METRIC_HISTOGRAM,
                               NULL, 0, up, 1, err, sizeof(err)));

    /* Series of no family, or without the values the family needs. */
    ASSERT(wtt_metrics_series(-1, NULL) == NULL);
    ASSERT(wtt_metrics_series(WTT_METRICS_MAX_FAMILIES, NULL) == NULL);
    ASSERT(wtt_metrics_series(wtt_metrics_find("ct_shape_total"), NULL)
           == NULL);
    /* Updates of no series are no-ops. */
    wtt_metrics_add(NULL, 1);
    wtt_metrics_set(NULL, 1);
    wtt_metrics_observe(NULL, 1);
    return 0;
}


/* Last of the metrics tests: it fills the store for the rest of the
 * process. */
int
test_metrics_store_full(void)
{
    char err[160], name[32];
    int  f = 0, n = 0;

    while (n <= WTT_METRICS_MAX_FAMILIES) {
        snprintf(name, sizeof(name), "ct_fill_%d", n++);
        f = wtt_metrics_family(name, "", WTT_METRIC_GAUGE, NULL, 0, NULL, 0,
                               err, sizeof(err));
        if (f < 0) {
            break;
        }
    }
    ASSERT(f == -1);
    ASSERT(strstr(err, "full") != NULL);
    /* What is registered still works. */
    ASSERT(wtt_metrics_find("ct_fill_0") >= 0);
    wtt_metrics_set(wtt_metrics_series(wtt_metrics_find("ct_fill_0"), NULL),
                    42);
    ASSERT(rendered("ct_fill_0 ") == 42);
    return 0;
}
