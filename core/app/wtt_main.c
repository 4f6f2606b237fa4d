/*
 * wtt_main.c: the `wtt` binary and its subcommands.
 *
 * Every flag has an environment twin (12-factor); a flag simply sets its
 * variable before the subcommand runs, so the rest of the code reads the
 * environment only.
 */
#include "wtt_build_facts.h"
#include "wtt_fanout.h"
#include "wtt_heap.h"
#include "wtt_http_server.h"
#include "wtt_log.h"
#include "wtt_modules.h"
#include "wtt_thread.h"
#include "wtt_util.h"
#include "wtt_vm.h"

#include <lauxlib.h>
#include <limits.h>
#include <luajit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *flag;      /* "--listen" */
    const char *env;       /* "WTT_LISTEN" */
    const char *help;
} flag_t;

/* A command is run by C (`run`) or is a Lua script (`script`: the name of
 * lua/wtt/cli/<script>.lua), which reads its own arguments and prints its
 * own --help. */
typedef struct {
    const char   *name;
    int         (*run)(int argc, char **argv);
    const char   *script;
    const char   *usage;
    const char   *summary;
    const flag_t *flags;
    int           service;   /* runs for days: trims its heap (wtt_heap.h) */
} command_t;

static const flag_t path_flags[] = {
    { "--lua-dir",     "WTT_LUA_DIR",     "root of the Lua library (lua/)" },
    { "--routes-dir",  "WTT_ROUTES_DIR",  "directory of route files" },
    { "--plugins-dir", "WTT_PLUGINS_DIR", "directory of plugins" },
    { "--log-level",   "WTT_LOG_LEVEL",   "debug|info|warn|error" },
    { "--log-format",  "WTT_LOG_FORMAT",  "kv|json" },
    { NULL, NULL, NULL },
};

static const flag_t serve_flags[] = {
    { "--listen",        "WTT_LISTEN",      "host:port (127.0.0.1:8008)" },
    { "--threads",       "WTT_THREADS",     "serving threads (cores)" },
    { "--admin-token",   "WTT_ADMIN_TOKEN", "token for /_admin/*" },
    { "--max-body",      "WTT_MAX_BODY",    "raw/JSON body limit, bytes" },
    { "--max-upload",    "WTT_MAX_UPLOAD",  "multipart limit, bytes" },
    { "--conn-timeout",  "WTT_CONN_TIMEOUT", "idle connection timeout, s" },
    { "--drain",         "WTT_DRAIN_S",     "not-ready seconds after SIGTERM (5)" },
    { "--access-log",    "WTT_ACCESS_LOG",  "on|off" },
    { "--subscriber",    "WTT_SUBSCRIBER",  "on|off: result subscriber thread" },
    { NULL, NULL, NULL },
};

static int cmd_serve(int argc, char **argv);
static int cmd_run(int argc, char **argv);
static int cmd_version(int argc, char **argv);

static const command_t commands[] = {
    { "serve", cmd_serve, NULL, "wtt serve [flags]",
      "serve the HTTP API with the routes in routes/", serve_flags, 1 },
    { "run", cmd_run, NULL, "wtt run FILE.lua [args...]",
      "run a Lua script with every wtt module available", NULL, 0 },
    { "spec", NULL, "spec", "wtt spec [busted args...]",
      "run busted specs inside the embedded runtime", NULL, 0 },
    { "transcribe", NULL, "transcribe", "wtt transcribe IN... [options]",
      "transcribe audio files to MIDI and notes (no services needed)",
      NULL, 0 },
    { "tab", NULL, "tab", "wtt tab NOTES... -o OUT [options]",
      "tablature from notes files (.notes.csv, .notes.json, .mid)",
      NULL, 0 },
    { "worker", NULL, "worker", "wtt worker [options]",
      "claim tasks from Redis and transcribe them (see docs/worker.md)",
      NULL, 1 },
    { "subscriber", NULL, "subscriber", "wtt subscriber",
      "record task results from Redis in PostgreSQL (also runs in serve)",
      NULL, 1 },
    { "queue", NULL, "queue", "wtt queue COMMAND",
      "inspect and manage the queue: stats, dead letters, pause/resume",
      NULL, 0 },
    { "migrate", NULL, "migrate",
      "wtt migrate [--status] [--database-url URL]",
      "apply lua/migrations/*.sql to DATABASE_URL (idempotent, locked)",
      NULL, 0 },
    { "version", cmd_version, NULL, "wtt version",
      "print the version and build options", NULL, 0 },
    { NULL, NULL, NULL, NULL, NULL, NULL, 0 },
};


static void
print_flags(FILE *out, const flag_t *flags)
{
    for (const flag_t *f = flags; f != NULL && f->flag != NULL; f++) {
        fprintf(out, "  %-16s %-18s %s\n", f->flag, f->env, f->help);
    }
}


static void
usage(FILE *out)
{
    fprintf(out, "wtt %s: recordings to MIDI and guitar tabs\n\n"
                 "usage: wtt [path flags] COMMAND [args]\n\ncommands:\n",
            WTT_VERSION);
    for (const command_t *c = commands; c->name != NULL; c++) {
        fprintf(out, "  %-10s %s\n", c->name, c->summary);
    }
    fprintf(out, "\npath flags (flag, environment twin):\n");
    print_flags(out, path_flags);
    fprintf(out, "\n'wtt COMMAND --help' describes one command.\n");
}


static void
command_usage(const command_t *c)
{
    printf("usage: %s\n\n%s\n", c->usage, c->summary);
    if (c->flags != NULL) {
        printf("\nflags (flag, environment twin):\n");
        print_flags(stdout, c->flags);
    }
    printf("\npath flags:\n");
    print_flags(stdout, path_flags);
}


/*
 * Consumes "--flag value" and "--flag=value" pairs from the front of argv
 * that appear in `flags`, setting their variables. Returns how many argv
 * entries were consumed, or -1 after printing an error.
 */
static int
take_flags(int argc, char **argv, const flag_t *flags)
{
    int i = 0;

    while (i < argc && strncmp(argv[i], "--", 2) == 0) {
        const char   *eq = strchr(argv[i], '=');
        size_t        n = eq != NULL ? (size_t) (eq - argv[i])
                                     : strlen(argv[i]);
        const flag_t *f = NULL;

        for (const flag_t *g = flags; g->flag != NULL; g++) {
            if (strlen(g->flag) == n && strncmp(g->flag, argv[i], n) == 0) {
                f = g;
            }
        }
        if (f == NULL) {
            return i;
        }
        if (eq != NULL) {
            setenv(f->env, eq + 1, 1);
            i += 1;
        } else if (i + 1 < argc) {
            setenv(f->env, argv[i + 1], 1);
            i += 2;
        } else {
            fprintf(stderr, "wtt: %s needs a value\n", f->flag);
            return -1;
        }
    }
    return i;
}


static int
wants_help(int argc, char **argv)
{
    return argc > 0 && (strcmp(argv[0], "--help") == 0
                        || strcmp(argv[0], "-h") == 0);
}


static int
setup_paths(void)
{
    const char *err = NULL;

    wtt_log_init();
    if (wtt_vm_set_paths(NULL, NULL, NULL, &err) != 0) {
        fprintf(stderr, "wtt: %s\n", err);
        return -1;
    }
    return 0;
}


/* ---------------------------------------------------------------------------
 * Commands
 * ------------------------------------------------------------------------- */

static void cli_script(char *buf, size_t len, const char *name);


/* How long `serve` waits for the subscriber to stop after the server has. */
#define SUBSCRIBER_STOP_S 15.0


/*
 * The result subscriber runs beside the server, on its own thread with its
 * own state (docs/system-design.md section 1), unless WTT_SUBSCRIBER=off;
 * without DATABASE_URL it has nothing to record into and is not started.
 * Started once the server listens, so it inherits the server's signal mask.
 * Returns the thread, or NULL: not wanted, or it failed to start (logged;
 * the server serves on).
 */
static struct wtt_thread *
start_subscriber(void)
{
    struct wtt_thread *t;
    char               script[PATH_MAX + 32], err[256];

    if (getenv("DATABASE_URL") == NULL
        || strcmp(wtt_env("WTT_SUBSCRIBER", "on"), "off") == 0)
    {
        return NULL;
    }
    cli_script(script, sizeof(script), "subscriber");
    t = wtt_thread_start_file(script, "--in-serve", err, sizeof(err));
    if (t == NULL) {
        wtt_log(WTT_LOG_ERROR, "serve.subscriber_failed", "error", err,
                NULL);
    }
    return t;
}


/* Asks the subscriber to stop and waits for it: it returns between two
 * messages or ticks and closes its state and connections. */
static void
stop_subscriber(struct wtt_thread *t)
{
    wtt_thread_request_stop();
    if (wtt_thread_join(t, SUBSCRIBER_STOP_S) != 0) {
        wtt_log(WTT_LOG_WARN, "serve.subscriber_stuck", NULL);
    }
}


static int
cmd_serve(int argc, char **argv)
{
    struct wtt_http_config cfg;
    struct wtt_thread     *sub;
    int                    n = 0, m, rc;

    /* Serve flags and path flags may come in any order. */
    do {
        m = take_flags(argc - n, argv + n, serve_flags);
        if (m > 0) {
            n += m;
        }
        if (m >= 0) {
            int k = take_flags(argc - n, argv + n, path_flags);
            if (k < 0) {
                return 2;
            }
            n += k;
            m = m > 0 ? m : k;
        }
    } while (m > 0);
    if (m < 0) {
        return 2;
    }
    if (n < argc) {
        fprintf(stderr, "wtt serve: unknown argument '%s' (see --help)\n",
                argv[n]);
        return 2;
    }
    if (setup_paths() != 0) {
        return 1;
    }
    wtt_http_config_from_env(&cfg);
    if (wtt_http_start(&cfg) != 0) {
        return 1;
    }
    sub = start_subscriber();
    rc = wtt_http_run();
    if (sub != NULL) {
        stop_subscriber(sub);
    }
    /* The event streams have ended with the server: the fan-out hub's
     * Redis connection can close (docs/web.md). */
    if (wtt_fanout_stop(SUBSCRIBER_STOP_S) != 0) {
        wtt_log(WTT_LOG_WARN, "serve.fanout_stuck", NULL);
    }
    return rc;
}


/* A service gives its allocator's free pages back every
 * WTT_HEAP_TRIM_INTERVAL_S (60; 0: never): docs/operations.md, "Memory". */
static int
start_heap_trim(void)
{
    const char *v = getenv("WTT_HEAP_TRIM_INTERVAL_S");
    double      s = 60;
    char        err[128], *end;

    if (v != NULL && *v != '\0') {
        s = strtod(v, &end);
        if (end == v || *end != '\0') {
            fprintf(stderr, "wtt: WTT_HEAP_TRIM_INTERVAL_S: not a number: "
                    "'%s'\n", v);
            return -1;
        }
    }
    if (wtt_heap_trim_every(s, err, sizeof(err)) != 0) {
        fprintf(stderr, "wtt: WTT_HEAP_TRIM_INTERVAL_S: %s\n", err);
        return -1;
    }
    return 0;
}


/* Path of lua/wtt/cli/<name>.lua into `buf`. After setup_paths. */
static void
cli_script(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/wtt/cli/%s.lua", wtt_vm_paths()->lua_dir, name);
}


/*
 * Runs the Lua file `path` with argv as `...` and `arg` in a fresh state,
 * then closes it: the one way `run` and every Lua-backed command start.
 * Returns the exit status (1 when the state cannot be made or the script
 * raises; a script may also os.exit with its own).
 */
static int
run_script(const char *path, int argc, char **argv)
{
    lua_State *L = wtt_vm_new();
    int        rc;

    if (L == NULL) {
        fprintf(stderr, "wtt: cannot create a Lua state\n");
        return 1;
    }
    rc = wtt_vm_run_file(L, path, argc, argv);
    wtt_vm_close(L);
    return rc;
}


/* A Lua-backed command: lua/wtt/cli/<c->script>.lua with its arguments. */
static int
run_cli_command(const command_t *c, int argc, char **argv)
{
    char script[PATH_MAX + 32];

    if (setup_paths() != 0) {
        return 1;
    }
    cli_script(script, sizeof(script), c->script);
    return run_script(script, argc, argv);
}


static int
cmd_run(int argc, char **argv)
{
    if (argc < 1) {
        fprintf(stderr, "usage: wtt run FILE.lua [args...]\n");
        return 2;
    }
    if (setup_paths() != 0) {
        return 1;
    }
    return run_script(argv[0], argc - 1, argv + 1);
}


/* The backends come from the engine's registry: what is compiled in, not
 * what the build machine had installed (wtt_build_facts.c). */
static int
cmd_version(int argc, char **argv)
{
    wtt_print_version(stdout);
    return 0;
}


int
main(int argc, char **argv)
{
    int n;

    wtt_vm_set_modules(wtt_builtin_modules);
    wtt_vm_set_runtime_facts(wtt_runtime_facts);
    n = take_flags(argc - 1, argv + 1, path_flags);
    if (n < 0) {
        return 2;
    }
    argc -= n + 1;
    argv += n + 1;
    if (argc < 1 || wants_help(argc, argv) || strcmp(argv[0], "help") == 0) {
        usage(argc < 1 ? stderr : stdout);
        return argc < 1 ? 2 : 0;
    }
    for (const command_t *c = commands; c->name != NULL; c++) {
        if (strcmp(argv[0], c->name) == 0) {
            if (c->service && !wants_help(argc - 1, argv + 1)
                && start_heap_trim() != 0)
            {
                return 2;
            }
            /* A Lua-backed command prints its own help (`wtt spec --help`
             * is busted's). */
            if (c->script != NULL) {
                return run_cli_command(c, argc - 1, argv + 1);
            }
            if (wants_help(argc - 1, argv + 1)) {
                command_usage(c);
                return 0;
            }
            return c->run(argc - 1, argv + 1);
        }
    }
    fprintf(stderr, "wtt: unknown command '%s'\n\n", argv[0]);
    usage(stderr);
    return 2;
}
