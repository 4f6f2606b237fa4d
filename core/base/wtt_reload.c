/*
 * wtt_reload.c: route/plugin generations and hot reload (see wtt_reload.h).
 */
#include "wtt_reload.h"
#include "wtt_log.h"
#include "wtt_util.h"
#include "wtt_vm.h"

#include <dirent.h>
#include <errno.h>
#include <lauxlib.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>

#define MAX_FILES      1024
#define MAX_FILE_BYTES (4 << 20)

struct gen_file {
    char   *rel;          /* "routes/hello.lua", as shown in errors */
    char   *kind;         /* "route" or "plugin" */
    char   *src;
    size_t  len;
    char    sha[65];
};

struct wtt_generation {
    uint64_t         id;
    double           loaded_at;
    char             sha[65];      /* over all paths and file hashes */
    int              nfiles;
    struct gen_file *files;
    atomic_int       refs;
};

struct failure {
    char   file[256];
    int    line;
    char   message[1024];
    char   reason[32];
    double at;
};

static pthread_mutex_t  lock = PTHREAD_MUTEX_INITIALIZER;
/* Serialises whole reloads so two admins cannot interleave scan+publish. */
static pthread_mutex_t  reload_lock = PTHREAD_MUTEX_INITIALIZER;
static struct wtt_generation  *active;
static struct wtt_generation  *previous;
static struct failure   last_failure;
static int              have_failure;
static uint64_t         next_id = 1;
static _Atomic uint64_t active_id;
static _Atomic uint64_t failures;     /* reloads refused since start */


/* ---------------------------------------------------------------------------
 * Snapshots
 * ------------------------------------------------------------------------- */

static void
gen_free(struct wtt_generation *g)
{
    for (int i = 0; i < g->nfiles; i++) {
        free(g->files[i].rel);
        free(g->files[i].kind);
        free(g->files[i].src);
    }
    free(g->files);
    free(g);
}


void
wtt_reload_release(struct wtt_generation *g)
{
    if (g != NULL && atomic_fetch_sub(&g->refs, 1) == 1) {
        gen_free(g);
    }
}


uint64_t
wtt_reload_id(const struct wtt_generation *g)
{
    return g->id;
}


static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}


static int
wanted(const char *name)
{
    size_t n = strlen(name);
    /* Skip dotfiles and editor leftovers (".#x.lua", "x.lua~"). */
    return name[0] != '.' && n > 4 && strcmp(name + n - 4, ".lua") == 0;
}


/*
 * Collects "<dir>/<sub>..." Lua files recursively into `names` (display
 * names prefixed by `label`). Returns 0, or -1 with `err`.
 */
static int
collect(const char *dir, const char *label, char ***names, int *n,
        char *err, size_t errlen)
{
    DIR           *d = opendir(dir);
    struct dirent *e;

    if (d == NULL) {
        if (errno == ENOENT) {
            return 0;     /* an absent plugins/ simply has no plugins */
        }
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        char        path[PATH_MAX], sub[PATH_MAX];
        struct stat st;

        if (e->d_name[0] == '.') {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        snprintf(sub, sizeof(sub), "%s/%s", label, e->d_name);
        if (stat(path, &st) != 0) {
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            if (collect(path, sub, names, n, err, errlen) != 0) {
                closedir(d);
                return -1;
            }
        } else if (S_ISREG(st.st_mode) && wanted(e->d_name)) {
            if (*n >= MAX_FILES) {
                snprintf(err, errlen, "more than %d files under %s",
                         MAX_FILES, label);
                closedir(d);
                return -1;
            }
            *names = wtt_realloc(*names, sizeof(char *) * (size_t) (*n + 1));
            (*names)[(*n)++] = wtt_strdup(sub);
        }
    }
    closedir(d);
    return 0;
}


/* Reads every file of `kind` under `root` into `g`. */
static int
scan_root(struct wtt_generation *g, const char *root, const char *label,
          const char *kind, char *err, size_t errlen)
{
    char **names = NULL;
    int    n = 0, rc = -1;

    if (collect(root, label, &names, &n, err, errlen) != 0) {
        goto done;
    }
    if (n > 0) {
        qsort(names, (size_t) n, sizeof(char *), cmp_str);
    }
    g->files = wtt_realloc(g->files,
                           sizeof(struct gen_file) * (size_t) (g->nfiles + n));
    for (int i = 0; i < n; i++) {
        struct gen_file *f = &g->files[g->nfiles];
        char             path[PATH_MAX];

        /* names[i] is "<label>/<rest>"; the file is <root>/<rest>. */
        snprintf(path, sizeof(path), "%s%s", root, names[i] + strlen(label));
        memset(f, 0, sizeof(*f));
        f->src = wtt_read_file(path, MAX_FILE_BYTES, &f->len);
        if (f->src == NULL) {
            snprintf(err, errlen, "%s: %s", names[i], strerror(errno));
            goto done;
        }
        f->rel = names[i];
        names[i] = NULL;
        f->kind = wtt_strdup(kind);
        wtt_sha256_hex(f->src, f->len, f->sha);
        g->nfiles++;
    }
    rc = 0;

done:
    for (int i = 0; i < n; i++) {
        free(names[i]);
    }
    free(names);
    return rc;
}


static struct wtt_generation *
scan(char *err, size_t errlen)
{
    const struct wtt_paths *p = wtt_vm_paths();
    struct wtt_generation         *g = wtt_calloc(1, sizeof(*g));
    char                   *all = NULL;
    size_t                  alen = 0;

    atomic_init(&g->refs, 1);
    if (scan_root(g, p->routes_dir, "routes", "route", err, errlen) != 0
        || scan_root(g, p->plugins_dir, "plugins", "plugin", err, errlen)
           != 0)
    {
        gen_free(g);
        return NULL;
    }
    for (int i = 0; i < g->nfiles; i++) {
        size_t add = strlen(g->files[i].rel) + 66;
        all = wtt_realloc(all, alen + add);
        alen += (size_t) snprintf(all + alen, add, "%s %s\n",
                                  g->files[i].rel, g->files[i].sha);
    }
    wtt_sha256_hex(all != NULL ? all : "", alen, g->sha);
    free(all);
    g->loaded_at = wtt_wall_time();
    return g;
}


/* ---------------------------------------------------------------------------
 * Building a generation in a state
 * ------------------------------------------------------------------------- */

/* Fills `f` from an error value {file=, line=, message=} or a string. */
static void
describe_error(lua_State *L, int idx, struct failure *f)
{
    if (idx < 0) {
        idx = lua_gettop(L) + idx + 1;
    }
    memset(f, 0, sizeof(*f));
    if (lua_istable(L, idx)) {
        lua_getfield(L, idx, "file");
        lua_getfield(L, idx, "line");
        lua_getfield(L, idx, "message");
        snprintf(f->file, sizeof(f->file), "%s",
                 lua_isstring(L, -3) ? lua_tostring(L, -3) : "");
        f->line = (int) lua_tointeger(L, -2);
        snprintf(f->message, sizeof(f->message), "%s",
                 lua_isstring(L, -1) ? lua_tostring(L, -1) : "unknown error");
        lua_pop(L, 3);
    } else {
        snprintf(f->message, sizeof(f->message), "%s",
                 lua_isstring(L, idx) ? lua_tostring(L, idx)
                                      : "unknown error");
    }
}


static void
format_failure(const struct failure *f, char *err, size_t errlen)
{
    if (f->file[0] != '\0') {
        snprintf(err, errlen, "%s:%d: %s", f->file, f->line, f->message);
    } else {
        snprintf(err, errlen, "%s", f->message);
    }
}


static int
build(lua_State *L, struct wtt_generation *g, struct failure *fail)
{
    int top = lua_gettop(L);

    lua_getglobal(L, "require");                       /* require */
    lua_pushliteral(L, "wtt.server");                  /* require name */
    if (wtt_vm_pcall(L, 1, 1) != 0) {                  /* server | err */
        describe_error(L, -1, fail);
        lua_settop(L, top);
        return -1;
    }
    lua_getfield(L, -1, "new");                        /* server new */
    lua_createtable(L, g->nfiles, 0);                  /* server new files */
    for (int i = 0; i < g->nfiles; i++) {
        lua_createtable(L, 0, 4);                      /* ... files f */
        lua_pushstring(L, g->files[i].rel);
        lua_setfield(L, -2, "path");
        lua_pushstring(L, g->files[i].kind);
        lua_setfield(L, -2, "kind");
        lua_pushlstring(L, g->files[i].src, g->files[i].len);
        lua_setfield(L, -2, "source");
        lua_pushstring(L, g->files[i].sha);
        lua_setfield(L, -2, "sha256");
        lua_rawseti(L, -2, i + 1);                     /* ... files */
    }
    lua_pushnumber(L, (lua_Number) g->id);             /* server new files id */
    if (wtt_vm_pcall(L, 2, 2) != 0) {                  /* server err */
        describe_error(L, -1, fail);
        lua_settop(L, top);
        return -1;
    }                                                  /* server app err */
    if (lua_isnil(L, -2)) {
        describe_error(L, -1, fail);
        lua_settop(L, top);
        return -1;
    }
    lua_pop(L, 1);                                     /* server app */
    lua_remove(L, -2);                                 /* app */
    return 0;
}


int
wtt_reload_build(lua_State *L, struct wtt_generation *g, char *err, size_t errlen)
{
    struct failure f;

    if (build(L, g, &f) != 0) {
        format_failure(&f, err, errlen);
        return -1;
    }
    return 0;
}


/* Builds `g` in a throwaway state: the validation step of every reload. */
static int
validate(struct wtt_generation *g, struct failure *fail)
{
    lua_State *L = wtt_vm_new();
    int        rc;

    if (L == NULL) {
        memset(fail, 0, sizeof(*fail));
        snprintf(fail->message, sizeof(fail->message),
                 "cannot create a Lua state");
        return -1;
    }
    rc = build(L, g, fail);
    wtt_vm_close(L);
    return rc;
}


/* ---------------------------------------------------------------------------
 * Publishing
 * ------------------------------------------------------------------------- */

static void
publish(struct wtt_generation *g)
{
    pthread_mutex_lock(&lock);
    wtt_reload_release(previous);
    previous = active;
    active = g;
    atomic_store(&active_id, g->id);
    pthread_mutex_unlock(&lock);
}


static void
record_failure(struct failure *f, const char *reason)
{
    char line[16];

    f->at = wtt_wall_time();
    snprintf(f->reason, sizeof(f->reason), "%s", reason);
    pthread_mutex_lock(&lock);
    last_failure = *f;
    have_failure = 1;
    atomic_fetch_add(&failures, 1);
    pthread_mutex_unlock(&lock);
    snprintf(line, sizeof(line), "%d", f->line);
    wtt_log(WTT_LOG_ERROR, "reload.failed", "reason", reason,
            "file", f->file, "line", line, "message", f->message, NULL);
}


static uint64_t
load(const char *reason, char *err, size_t errlen)
{
    struct failure  f;
    struct wtt_generation *g;
    char            id[24], files[16];

    memset(&f, 0, sizeof(f));
    g = scan(f.message, sizeof(f.message));
    if (g == NULL) {
        record_failure(&f, reason);
        format_failure(&f, err, errlen);
        return 0;
    }
    pthread_mutex_lock(&lock);
    g->id = next_id++;
    pthread_mutex_unlock(&lock);
    if (validate(g, &f) != 0) {
        record_failure(&f, reason);
        format_failure(&f, err, errlen);
        gen_free(g);
        return 0;
    }
    publish(g);
    snprintf(id, sizeof(id), "%llu", (unsigned long long) g->id);
    snprintf(files, sizeof(files), "%d", g->nfiles);
    wtt_log(WTT_LOG_INFO, "reload.done", "reason", reason, "generation", id,
            "files", files, "sha256", g->sha, NULL);
    return g->id;
}


int
wtt_reload_init(char *err, size_t errlen)
{
    return load("startup", err, errlen) != 0 ? 0 : -1;
}


uint64_t
wtt_reload_apply(const char *reason, char *err, size_t errlen)
{
    uint64_t id;

    pthread_mutex_lock(&reload_lock);
    sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
               (unsigned long long) (wtt_now_ns() / 1000));
    id = load(reason, err, errlen);
    sd_notify(0, "READY=1");
    pthread_mutex_unlock(&reload_lock);
    return id;
}


uint64_t
wtt_reload_rollback(char *err, size_t errlen)
{
    struct wtt_generation *g, *back;
    char            id[24], from[24];

    pthread_mutex_lock(&reload_lock);
    pthread_mutex_lock(&lock);
    back = previous;
    if (back == NULL) {
        pthread_mutex_unlock(&lock);
        pthread_mutex_unlock(&reload_lock);
        snprintf(err, errlen, "no previous generation to roll back to");
        return 0;
    }
    /* A copy under a new id: threads switch on id change, and the record
     * keeps telling the two apart. The sources are shared by reference. */
    g = wtt_calloc(1, sizeof(*g));
    atomic_init(&g->refs, 1);
    g->id = next_id++;
    g->loaded_at = wtt_wall_time();
    memcpy(g->sha, back->sha, sizeof(g->sha));
    g->nfiles = back->nfiles;
    g->files = wtt_calloc((size_t) (back->nfiles ? back->nfiles : 1),
                          sizeof(struct gen_file));
    for (int i = 0; i < back->nfiles; i++) {
        g->files[i].rel = wtt_strdup(back->files[i].rel);
        g->files[i].kind = wtt_strdup(back->files[i].kind);
        g->files[i].src = wtt_strndup(back->files[i].src, back->files[i].len);
        g->files[i].len = back->files[i].len;
        memcpy(g->files[i].sha, back->files[i].sha, 65);
    }
    snprintf(from, sizeof(from), "%llu", (unsigned long long) active->id);
    pthread_mutex_unlock(&lock);
    publish(g);
    pthread_mutex_unlock(&reload_lock);
    snprintf(id, sizeof(id), "%llu", (unsigned long long) g->id);
    wtt_log(WTT_LOG_WARN, "reload.rollback", "from", from, "generation", id,
            "sha256", g->sha, NULL);
    return g->id;
}


uint64_t
wtt_reload_current_id(void)
{
    return atomic_load_explicit(&active_id, memory_order_acquire);
}


uint64_t
wtt_reload_failures(void)
{
    return atomic_load_explicit(&failures, memory_order_relaxed);
}


struct wtt_generation *
wtt_reload_acquire(void)
{
    struct wtt_generation *g;

    pthread_mutex_lock(&lock);
    g = active;
    if (g != NULL) {
        atomic_fetch_add(&g->refs, 1);
    }
    pthread_mutex_unlock(&lock);
    return g;
}


/* ---------------------------------------------------------------------------
 * The reload record
 * ------------------------------------------------------------------------- */

static void
push_gen(lua_State *L, const struct wtt_generation *g)
{
    char ts[40];

    lua_createtable(L, 0, 5);                          /* gen */
    lua_pushnumber(L, (lua_Number) g->id);
    lua_setfield(L, -2, "id");
    lua_pushstring(L, wtt_iso_time(g->loaded_at, ts, sizeof(ts)));
    lua_setfield(L, -2, "loaded_at");
    lua_pushstring(L, g->sha);
    lua_setfield(L, -2, "sha256");
    lua_createtable(L, 0, g->nfiles);                  /* gen files */
    for (int i = 0; i < g->nfiles; i++) {
        lua_pushstring(L, g->files[i].sha);
        lua_setfield(L, -2, g->files[i].rel);
    }
    lua_setfield(L, -2, "files");                      /* gen */
}


void
wtt_reload_push_record(lua_State *L)
{
    char ts[40];

    lua_createtable(L, 0, 3);                          /* rec */
    pthread_mutex_lock(&lock);
    if (active != NULL) {
        push_gen(L, active);
        lua_setfield(L, -2, "active");
    }
    if (previous != NULL) {
        push_gen(L, previous);
        lua_setfield(L, -2, "previous");
    }
    if (have_failure) {
        lua_createtable(L, 0, 5);                      /* rec fail */
        lua_pushstring(L, last_failure.file);
        lua_setfield(L, -2, "file");
        lua_pushinteger(L, last_failure.line);
        lua_setfield(L, -2, "line");
        lua_pushstring(L, last_failure.message);
        lua_setfield(L, -2, "message");
        lua_pushstring(L, last_failure.reason);
        lua_setfield(L, -2, "reason");
        lua_pushstring(L, wtt_iso_time(last_failure.at, ts, sizeof(ts)));
        lua_setfield(L, -2, "at");
        lua_setfield(L, -2, "last_failure");           /* rec */
    }
    pthread_mutex_unlock(&lock);
}
