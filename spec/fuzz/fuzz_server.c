/*
 * fuzz_server.c: see fuzz_server.h.
 *
 * The server is the product's: wtt_http_start with the configuration
 * `wtt serve` reads from the environment (core/bind/http_server/), the
 * built-in modules of the wtt program (core/app/wtt_modules.c), and the
 * routes and plugins of the source tree, each loaded into the serving
 * thread's Lua state as in production. It listens on an ephemeral
 * loopback port but every input comes through MHD_add_connection on a
 * socketpair (fuzz_conn.c), as the server's own backlog adoption does.
 *
 * What the fuzz run sets, unless the environment already does: one
 * serving thread (inputs are serialised anyway), no access log, log level
 * error, a 5 s route deadline, a 1 MiB upload cap, media in a temporary
 * directory removed at exit (uploads' temp files in a directory of
 * their own inside it, which must be empty after every input: a request
 * that ended leaves no partial file), no drain period when it stops at exit, and
 * Redis and PostgreSQL on loopback port 1 where nothing listens: every route that needs them meets the
 * "unavailable" path it meets in production when they are down (a 503),
 * with nothing mocked. The worker and admin tokens are set
 * (fuzz_server.h) so their routes are reachable past authentication.
 */
#include "fuzz_server.h"
#include "wtt_build_facts.h"
#include "wtt_http_private.h"
#include "wtt_log.h"
#include "wtt_metrics.h"
#include "wtt_modules.h"
#include "wtt_vm.h"

#include <dirent.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

static int  started;
static long sent_n, cut_n;

/* WTT_FUZZ_VERBOSE: how many exchanges hung up first (fuzz_conn.h). */
static void
report(void)
{
    if (getenv("WTT_FUZZ_VERBOSE") != NULL) {
        fprintf(stderr, "fuzz_server: %ld exchanges, %ld cut\n", sent_n,
                cut_n);
    }
}
static char media_dir[256];
static char tmp_dir[300];

static int
remove_one(const char *path, const struct stat *st, int flag,
           struct FTW *ftw)
{
    remove(path);
    return 0;
}

static void
remove_media(void)
{
    if (media_dir[0] != '\0') {
        nftw(media_dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
    }
}

/* At exit the server stops as on SIGTERM (wtt_http_run): its threads
 * end and their Lua states close, so LeakSanitizer's last check sees only
 * what was really lost. The signal is for this thread, which blocks it
 * (wtt_http_start) until wtt_http_run's wait takes it. */
static void
stop(void)
{
    pthread_kill(pthread_self(), SIGTERM);
    wtt_http_run();
}

static void
start(void)
{
    const char            *tmp = getenv("TMPDIR");
    const char            *err = NULL;
    struct wtt_http_config cfg;

    snprintf(media_dir, sizeof(media_dir), "%s/wtt-fuzz-media-XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    if (mkdtemp(media_dir) == NULL) {
        perror("fuzz_server: mkdtemp");
        abort();
    }
    atexit(remove_media);
    snprintf(tmp_dir, sizeof(tmp_dir), "%s/upload-tmp", media_dir);
    if (mkdir(tmp_dir, 0700) != 0) {
        perror("fuzz_server: mkdir");
        abort();
    }
    setenv("WTT_MEDIA_DIR", media_dir, 0);
    setenv("WTT_TMP_DIR", tmp_dir, 1);
    setenv("WTT_LISTEN", "127.0.0.1:0", 0);
    setenv("WTT_THREADS", "1", 0);
    setenv("WTT_ACCESS_LOG", "off", 0);
    setenv("WTT_LOG_LEVEL", "error", 0);
    setenv("WTT_ROUTE_TIMEOUT_MS", "5000", 0);
    setenv("WTT_MAX_UPLOAD", "1048576", 0);
    setenv("WTT_CONN_TIMEOUT", "10", 0);
    setenv("WTT_DRAIN_S", "0", 0);
    setenv("WTT_SHUTDOWN_GRACE_MS", "2000", 0);
    setenv("REDIS_URL", "redis://127.0.0.1:1", 0);
    setenv("DATABASE_URL", "postgresql://127.0.0.1:1/wtt", 0);
    setenv("WTT_WORKER_TOKEN", FUZZ_WORKER_TOKEN, 0);
    setenv("WTT_ADMIN_TOKEN", FUZZ_ADMIN_TOKEN, 0);

    wtt_vm_set_modules(wtt_builtin_modules);
    wtt_vm_set_runtime_facts(wtt_runtime_facts);
    wtt_log_init();
    if (wtt_vm_set_paths(NULL, NULL, NULL, &err) != 0) {
        fprintf(stderr, "fuzz_server: %s\n", err);
        abort();
    }
    wtt_http_config_from_env(&cfg);
    if (wtt_http_start(&cfg) != 0 || wtt__http_daemon() == NULL) {
        fprintf(stderr, "fuzz_server: the server did not start\n");
        abort();
    }
    atexit(stop);
    atexit(report);
    started = 1;
    /* The serving thread builds its Lua state (every route and plugin) on
     * its first request: done here, with time for it, so that no input
     * is cut short by the exchange's 300 ms of silence while it loads. */
    {
        static const char warm[] = "GET /livez HTTP/1.1\r\nHost: fuzz\r\n\r\n";
        struct fuzz_answer a;
        fuzz_conn_exchange(wtt__http_daemon(), 0, NULL, 60000, warm,
                           sizeof(warm) - 1, &a);
        if (fuzz_conn_status(&a) != 200) {
            fprintf(stderr, "fuzz_server: GET /livez answered:\n%s\n",
                    a.head);
            abort();
        }
    }
}

/* Requests answered 500 so far: the sum of wtt_http_requests_total's
 * series with status "500" (every answer is counted there, by status). */
static double
count_500(void)
{
    size_t  len;
    char   *text = wtt_metrics_render(&len);
    double  n = 0;

    if (text == NULL) {
        abort();
    }
    for (char *line = text; line != NULL && *line != '\0';) {
        char *end = strchr(line, '\n');
        if (strncmp(line, "wtt_http_requests_total{", 24) == 0
            && (end == NULL ? strstr(line, "status=\"500\"") != NULL
                            : memmem(line, (size_t) (end - line),
                                     "status=\"500\"", 12) != NULL))
        {
            const char *v = end != NULL ? end : line + strlen(line);
            while (v > line && v[-1] != ' ') {
                v--;
            }
            n += strtod(v, NULL);
        }
        line = end != NULL ? end + 1 : NULL;
    }
    free(text);
    return n;
}

/* The name of a file left in the upload temp directory, or NULL. */
static const char *
temp_left(void)
{
    static char    name[256];
    DIR           *d = opendir(tmp_dir);
    struct dirent *e;
    const char    *left = NULL;

    if (d == NULL) {
        abort();
    }
    while (left == NULL && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            snprintf(name, sizeof(name), "%s", e->d_name);
            left = name;
        }
    }
    closedir(d);
    return left;
}

int
fuzz_server_send(const void *req, size_t len, struct fuzz_answer *a)
{
    double          before;
    struct timespec nap = { 0, 200 * 1000 };

    if (!started) {
        start();
    }
    before = count_500();
    fuzz_conn_exchange(wtt__http_daemon(), 0, NULL, 300, req, len, a);
    sent_n++;
    cut_n += a->cut;
    /* The connection is closed; its last request is released (and
     * counted) on the server's thread just after. The route deadline is
     * 5 s: a request still there after 8 s is stuck. */
    for (int i = 0; i < 40000 && atomic_load(&wtt__http_inflight) > 0; i++) {
        nanosleep(&nap, NULL);
    }
    if (atomic_load(&wtt__http_inflight) > 0) {
        fprintf(stderr, "fuzz_server: a request still in flight 8 s after "
                "its connection closed; answer so far:\n%s\n", a->head);
        abort();
    }
    if (temp_left() != NULL) {
        fprintf(stderr, "fuzz_server: %s left in the upload temp directory "
                "after its request ended; answer:\n%s\n", temp_left(),
                a->head);
        abort();
    }
    if (count_500() != before) {
        fprintf(stderr, "fuzz_server: answered 500; answer:\n%s\n", a->head);
        abort();
    }
    return fuzz_conn_status(a);
}
