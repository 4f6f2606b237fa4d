/*
 * wtt_main.c: the `wtt` binary and its subcommands.
 *
 * Every flag has an environment twin (12-factor); a flag simply sets its
 * variable before the subcommand runs, so the rest of the code reads the
 * environment only.
 */
#include "wtt_backend_reg.h"
#include "wtt_http_server.h"
#include "wtt_log.h"
#include "wtt_modules.h"
#include "wtt_util.h"
#include "wtt_vm.h"

#include <lauxlib.h>
#include <luajit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *flag;      /* "--listen" */
    const char *env;       /* "WTT_LISTEN" */
    const char *help;
} flag_t;

typedef struct {
    const char   *name;
    int         (*run)(int argc, char **argv);
    const char   *usage;
    const char   *summary;
    const flag_t *flags;
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
    { "--access-log",    "WTT_ACCESS_LOG",  "on|off" },
    { "--subscriber",    "WTT_SUBSCRIBER",  "on|off: result subscriber thread" },
    { NULL, NULL, NULL },
};

static int cmd_serve(int argc, char **argv);
static int cmd_run(int argc, char **argv);
static int cmd_spec(int argc, char **argv);
static int cmd_version(int argc, char **argv);
static int cmd_migrate(int argc, char **argv);
static int cmd_transcribe(int argc, char **argv);
static int cmd_worker(int argc, char **argv);
static int cmd_subscriber(int argc, char **argv);
static int cmd_queue(int argc, char **argv);

static const command_t commands[] = {
    { "serve", cmd_serve, "wtt serve [flags]",
      "serve the HTTP API with the routes in routes/", serve_flags },
    { "run", cmd_run, "wtt run FILE.lua [args...]",
      "run a Lua script with every wtt module available", NULL },
    { "spec", cmd_spec, "wtt spec [busted args...]",
      "run busted specs inside the embedded runtime", NULL },
    { "transcribe", cmd_transcribe, "wtt transcribe IN... [options]",
      "transcribe audio files to MIDI and notes (no services needed)",
      NULL },
    { "worker", cmd_worker, "wtt worker [options]",
      "claim tasks from Redis and transcribe them (see docs/worker.md)",
      NULL },
    { "subscriber", cmd_subscriber, "wtt subscriber",
      "record task results from Redis in PostgreSQL (also runs in serve)",
      NULL },
    { "queue", cmd_queue, "wtt queue COMMAND",
      "inspect and manage the queue: stats, dead letters, pause/resume",
      NULL },
    { "migrate", cmd_migrate, "wtt migrate [--status] [--database-url URL]",
      "apply lua/migrations/*.sql to DATABASE_URL (idempotent, locked)",
      NULL },
    { "version", cmd_version, "wtt version",
      "print the version and build options", NULL },
    { NULL, NULL, NULL, NULL, NULL },
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

static int
cmd_serve(int argc, char **argv)
{
    struct wtt_http_config cfg;
    int                    n = 0, m;

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
    return wtt_http_serve(&cfg);
}


static int
cmd_run(int argc, char **argv)
{
    lua_State *L;
    int        rc;

    if (argc < 1) {
        fprintf(stderr, "usage: wtt run FILE.lua [args...]\n");
        return 2;
    }
    if (setup_paths() != 0) {
        return 1;
    }
    L = wtt_vm_new();
    if (L == NULL) {
        fprintf(stderr, "wtt: cannot create a Lua state\n");
        return 1;
    }
    rc = wtt_vm_run_file(L, argv[0], argc - 1, argv + 1);
    lua_close(L);
    return rc;
}


/* Runs lua/wtt/cli/<name>.lua with the command's arguments. */
static int
run_cli_script(const char *name, int argc, char **argv)
{
    char       script[PATH_MAX + 32];
    lua_State *L;
    int        rc;

    if (setup_paths() != 0) {
        return 1;
    }
    L = wtt_vm_new();
    if (L == NULL) {
        fprintf(stderr, "wtt: cannot create a Lua state\n");
        return 1;
    }
    snprintf(script, sizeof(script), "%s/wtt/cli/%s.lua",
             wtt_vm_paths()->lua_dir, name);
    rc = wtt_vm_run_file(L, script, argc, argv);
    lua_close(L);
    return rc;
}


static int
cmd_spec(int argc, char **argv)
{
    return run_cli_script("spec", argc, argv);
}


static int
cmd_transcribe(int argc, char **argv)
{
    return run_cli_script("transcribe", argc, argv);
}


static int
cmd_worker(int argc, char **argv)
{
    return run_cli_script("worker", argc, argv);
}


static int
cmd_subscriber(int argc, char **argv)
{
    return run_cli_script("subscriber", argc, argv);
}


static int
cmd_queue(int argc, char **argv)
{
    return run_cli_script("queue", argc, argv);
}


static int
cmd_migrate(int argc, char **argv)
{
    return run_cli_script("migrate", argc, argv);
}


/* The backends come from the engine's registry: what is compiled in, not
 * what the build machine had installed. */
static int
cmd_version(int argc, char **argv)
{
    printf("wtt %s (%s, backends:", WTT_VERSION, LUAJIT_VERSION);
    for (size_t i = 0; i < wtt_backend_count(); i++) {
        printf(" %s", wtt_backend_get(i)->name);
    }
    printf(")\n");
    return 0;
}


int
main(int argc, char **argv)
{
    int n;

    wtt_vm_set_modules(wtt_builtin_modules);
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
            /* `wtt spec --help` is busted's own help. */
            /* Lua-driven commands print their own help. */
            if (c->run != cmd_spec && c->run != cmd_transcribe
                && c->run != cmd_worker && c->run != cmd_queue
                && c->run != cmd_subscriber
                && wants_help(argc - 1, argv + 1))
            {
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
