/*
 * wtt_metrics.h: the process's metric store, in the Prometheus text
 * exposition format (docs/metrics.md).
 *
 * A serving process runs several Lua states on several threads, so counters
 * that belong to the process cannot live in Lua tables: they live here, and
 * every state registers the same families by name (registering again with
 * the same type and labels returns the same family). Values are atomics, so
 * updating a series takes no lock; finding or creating a series takes the
 * store's lock, and callers on hot paths keep the series pointer.
 *
 *     int f = wtt_metrics_family("wtt_things_total", "Things done.",
 *                                WTT_METRIC_COUNTER, labels, 1, NULL, 0,
 *                                err, sizeof(err));
 *     wtt_series_t *s = wtt_metrics_series(f, values);
 *     wtt_metrics_add(s, 1);
 *     char *text = wtt_metrics_render(&len);     (free() it)
 */
#ifndef WTT_METRICS_H
#define WTT_METRICS_H

#include <stddef.h>

enum wtt_metric_type {
    WTT_METRIC_COUNTER,
    WTT_METRIC_GAUGE,
    WTT_METRIC_HISTOGRAM,
};

/* Bounds that keep the store small and its output bounded: a family with
 * WTT_METRICS_MAX_SERIES series refuses new label values (the caller's
 * update is dropped and counted in wtt_metrics_dropped_series_total). */
#define WTT_METRICS_MAX_FAMILIES  128
#define WTT_METRICS_MAX_LABELS    4
#define WTT_METRICS_MAX_BUCKETS   24
#define WTT_METRICS_MAX_SERIES    512

typedef struct wtt_series wtt_series_t;

/*
 * Registers a family, or finds the one of that name. Returns its index, or
 * -1 with the reason in `err`: a bad name or label name, too many labels or
 * buckets, buckets not increasing, a full store, or the name already taken
 * with another type, labels or buckets.
 */
int wtt_metrics_family(const char *name, const char *help,
                       enum wtt_metric_type type, const char *const *labels,
                       int nlabels, const double *buckets, int nbuckets,
                       char *err, size_t errlen);

/* The index of family `name`, or -1. */
int wtt_metrics_find(const char *name);

/* The series of family `f` with these label values (as many as the
 * family's labels), made on first use. NULL when `f` is not a family, the
 * family is full, `values` is NULL for a family with labels, or memory
 * runs out. */
wtt_series_t *wtt_metrics_series(int f, const char *const *values);

/* Counter and gauge: adds `v` (a counter ignores v < 0; a histogram,
 * anything). */
void wtt_metrics_add(wtt_series_t *s, double v);
/* Gauge: sets `v`. */
void wtt_metrics_set(wtt_series_t *s, double v);
/* Histogram: counts `v` into its bucket. */
void wtt_metrics_observe(wtt_series_t *s, double v);

/*
 * The whole store, then the process collectors (resident memory, open file
 * descriptors, Lua memory, and the reload generation where the process
 * serves routes), as exposition text. Returns a malloc'd string (its length
 * in *len), or NULL when out of memory.
 */
char *wtt_metrics_render(size_t *len);

/*
 * The HTTP server's request metrics (wtt_http_requests_total and
 * wtt_http_request_duration_seconds): `route` is the route pattern (NULL
 * or "" for a request no route matched), so the labels stay bounded.
 */
void wtt_metrics_http_request(const char *method, const char *route,
                              int status, double seconds);

#endif
