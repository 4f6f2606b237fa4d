/*
 * wtt_sys.c: the `wtt.sys` Lua module (see wtt_sys.h).
 *
 * Process and OS plumbing for the server and, above all, for test specs that
 * start real servers as child processes and talk raw TCP to them. Every
 * runtime failure comes back to Lua as `nil, "<op> failed: <reason>"`;
 * wrong argument types and values raise (house style 13).
 *
 * Children are started with posix_spawn, which uses vfork semantics on glibc:
 * a server with gigabytes mapped (models, CUDA) does not pay for a fork. The
 * child gets default signal dispositions, an empty signal mask and no file
 * descriptors other than 0-2.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "wtt_sys.h"
#include "wtt_luax.h"
#include "wtt_util.h"

#include <lua.h>
#include <lauxlib.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>


extern char **environ;

#define SYS_CONN_MT          "wtt.sys.conn"
#define SYS_DEFAULT_TIMEOUT  5.0
#define SYS_MAX_TIMEOUT      1e7          /* seconds; keeps ns math sane */
#define SYS_RECV_DEFAULT     65536
#define SYS_RECV_ALL_MAX     (16 * 1024 * 1024)
#define SYS_WAIT_STEP_MAX_NS 5000000ull   /* 5 ms between waitpid polls */

#if defined(__GLIBC__) \
    && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 29))
#define SYS_HAVE_SPAWN_CHDIR 1
#endif

#if defined(__GLIBC__) \
    && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
#define SYS_HAVE_SPAWN_CLOSEFROM 1
#endif


/* A raw TCP connection. Zero-filled on creation, so `open` starts at 0 and
 * a userdata whose connect failed owns nothing (fd 0 is never closed). */
typedef struct {
    int fd;
    int open;
} sys_conn_t;


/* ------------------------------------------------------------------------
 * Errors and argument helpers
 * ------------------------------------------------------------------------ */


/*
 * Pushes nil and "<op> failed: [<what>: ]<reason>", where reason is
 * strerror(err) in lowercase (house style 14). Returns 2.
 */
static int
push_fail(lua_State *L, const char *op, const char *what, int err)
{
    char        reason[128];
    const char *s = strerror(err);
    size_t      i;

    for (i = 0; s[i] != '\0' && i < sizeof(reason) - 1; i++) {
        reason[i] = (char) tolower((unsigned char) s[i]);
    }
    reason[i] = '\0';

    lua_pushnil(L);                                  /* nil */
    if (what == NULL) {
        lua_pushfstring(L, "%s failed: %s", op, reason);
    } else {
        lua_pushfstring(L, "%s failed: %s: %s", op, what, reason);
    }                                                /* nil err */
    return 2;
}


/* Pushes nil and a literal message (no errno). Returns 2. */
static int
push_nil_msg(lua_State *L, const char *msg)
{
    lua_pushnil(L);                                  /* nil */
    lua_pushstring(L, msg);                          /* nil msg */
    return 2;
}


/*
 * Reads an optional timeout in seconds at stack index `idx`: `def` when
 * absent, raises when negative or not a number.
 */
static double
opt_timeout(lua_State *L, int idx, double def)
{
    double t;

    if (lua_isnoneornil(L, idx)) {
        return def;
    }
    t = luaL_checknumber(L, idx);
    if (!(t >= 0)) {
        luaL_argerror(L, idx, "timeout must be a number >= 0");
    }
    return t > SYS_MAX_TIMEOUT ? SYS_MAX_TIMEOUT : t;
}


/*
 * Raises when the options table at `idx` holds a key that is not in `known`
 * (NULL terminated), so a typo such as `stdot` is not silently ignored.
 * Stack unchanged.
 */
static void
check_opts(lua_State *L, int idx, const char *const *known)
{
    const char *name;
    int         i, ok;

    lua_pushnil(L);                                  /* nil */
    while (lua_next(L, idx) != 0) {                  /* k v */
        if (lua_type(L, -2) != LUA_TSTRING) {
            luaL_argerror(L, idx, "option names must be strings");
        }
        name = lua_tostring(L, -2);
        ok = 0;
        for (i = 0; known[i] != NULL; i++) {
            if (strcmp(name, known[i]) == 0) {
                ok = 1;
                break;
            }
        }
        if (!ok) {
            luaL_argerror(L, idx,
                          lua_pushfstring(L, "unknown option '%s'", name));
        }
        lua_pop(L, 1);                               /* k */
    }
}


/*
 * Returns the string option `name` of the table at `idx`, or NULL when it is
 * absent; raises when it is not a string. The pointer stays valid while the
 * table is on the stack and unchanged. Stack unchanged.
 */
static const char *
opt_field_string(lua_State *L, int idx, const char *name)
{
    const char *s;

    if (idx == 0) {
        return NULL;
    }
    lua_getfield(L, idx, name);                      /* v */
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return NULL;
    }
    if (lua_type(L, -1) != LUA_TSTRING) {
        luaL_argerror(L, idx,
                      lua_pushfstring(L, "'%s' must be a string", name));
    }
    s = lua_tostring(L, -1);
    lua_pop(L, 1);                                   /* (anchored by table) */
    return s;
}


/* Returns the boolean option `name` of the table at `idx` (absent: 0). */
static int
opt_field_bool(lua_State *L, int idx, const char *name)
{
    int b;

    if (idx == 0) {
        return 0;
    }
    lua_getfield(L, idx, name);                      /* v */
    if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TBOOLEAN) {
        luaL_argerror(L, idx,
                      lua_pushfstring(L, "'%s' must be a boolean", name));
    }
    b = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return b;
}


/* Returns the number option `name` (absent: `def`); raises when negative. */
static double
opt_field_timeout(lua_State *L, int idx, const char *name, double def)
{
    double t;

    if (idx == 0) {
        return def;
    }
    lua_getfield(L, idx, name);                      /* v */
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return def;
    }
    if (lua_type(L, -1) != LUA_TNUMBER || !(lua_tonumber(L, -1) >= 0)) {
        luaL_argerror(L, idx,
                      lua_pushfstring(L, "'%s' must be a number >= 0", name));
    }
    t = lua_tonumber(L, -1);
    lua_pop(L, 1);
    return t > SYS_MAX_TIMEOUT ? SYS_MAX_TIMEOUT : t;
}


/* Index of the optional options table at `idx`, or 0 when absent. */
static int
opt_table(lua_State *L, int idx)
{
    if (lua_isnoneornil(L, idx)) {
        return 0;
    }
    luaL_checktype(L, idx, LUA_TTABLE);
    return idx;
}


/*
 * Stores the string on top of the stack in the anchor table at `anchor` and
 * pops it. Returns a pointer that stays valid while the anchor table lives.
 */
static const char *
anchor_top(lua_State *L, int anchor, int *count)
{
    const char *s = lua_tostring(L, -1);

    lua_rawseti(L, anchor, ++*count);                /* (popped) */
    return s;
}


/* ------------------------------------------------------------------------
 * Processes
 * ------------------------------------------------------------------------ */


static const struct {
    const char *name;
    int         signo;
} signal_names[] = {
    { "HUP",   SIGHUP },
    { "INT",   SIGINT },
    { "QUIT",  SIGQUIT },
    { "ABRT",  SIGABRT },
    { "KILL",  SIGKILL },
    { "USR1",  SIGUSR1 },
    { "USR2",  SIGUSR2 },
    { "PIPE",  SIGPIPE },
    { "ALRM",  SIGALRM },
    { "TERM",  SIGTERM },
    { "CHLD",  SIGCHLD },
    { "CONT",  SIGCONT },
    { "STOP",  SIGSTOP },
    { "TSTP",  SIGTSTP },
    { "WINCH", SIGWINCH },
    { NULL, 0 },
};


/*
 * Opens a stdio target for a child in the parent: "null" is /dev/null, any
 * other string a path (`flags` say how). The descriptor is close-on-exec and
 * at least 3, so the dup2 actions of one spawn never clobber each other.
 * Returns the fd, or -1 with errno set.
 */
static int
open_stdio(const char *spec, int flags)
{
    const char *path = strcmp(spec, "null") == 0 ? "/dev/null" : spec;
    int         fd, hi, saved;

    fd = open(path, flags | O_CLOEXEC, 0644);
    if (fd < 0 || fd >= 3) {
        return fd;
    }
    hi = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    saved = errno;
    close(fd);
    errno = saved;
    return hi;
}


#ifndef SYS_HAVE_SPAWN_CLOSEFROM
/*
 * Fallback where posix_spawn cannot close a range: marks every descriptor
 * of this process above 2 close-on-exec, which only changes what an exec
 * inherits. Best effort.
 */
static void
cloexec_all(void)
{
    DIR           *d = opendir("/proc/self/fd");
    struct dirent *de;
    int            fd, fl;

    if (d == NULL) {
        return;
    }
    while ((de = readdir(d)) != NULL) {
        fd = atoi(de->d_name);
        if (fd < 3 || fd == dirfd(d)) {
            continue;
        }
        fl = fcntl(fd, F_GETFD);
        if (fl >= 0 && !(fl & FD_CLOEXEC)) {
            fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
        }
    }
    closedir(d);
}
#endif


/*
 * Finds `name` in the colon-separated `path` list the way execvp does.
 * Pushes the full path (or nothing) and returns 0, or returns -1 with errno
 * ENOENT (nowhere) or EACCES (found, not executable).
 */
static int
search_path(lua_State *L, const char *name, const char *path)
{
    char        buf[PATH_MAX];
    const char *p = path, *end;
    struct stat st;
    int         denied = 0;
    size_t      dlen;

    for (;;) {
        end = strchr(p, ':');
        dlen = end == NULL ? strlen(p) : (size_t) (end - p);
        if (dlen == 0) {
            snprintf(buf, sizeof(buf), "./%s", name);   /* "" means "." */
        } else {
            snprintf(buf, sizeof(buf), "%.*s/%s", (int) dlen, p, name);
        }
        if (stat(buf, &st) == 0 && S_ISREG(st.st_mode)) {
            if (access(buf, X_OK) == 0) {
                lua_pushstring(L, buf);              /* exe */
                return 0;
            }
            denied = 1;
        }
        if (end == NULL) {
            break;
        }
        p = end + 1;
    }
    errno = denied ? EACCES : ENOENT;
    return -1;
}


/*
 * Builds the child's environment: the current one with the `env` table at
 * `env_idx` merged over it (false removes a name). Strings are kept in the
 * anchor table; the array is a userdata left on the stack.
 * Stack: before [...], after [... envp_userdata]. Raises on bad entries.
 */
static char **
build_env(lua_State *L, int env_idx, int anchor, int *count)
{
    char      **envp;
    const char *eq;
    size_t      n = 0, m = 0, k = 0;
    int         t;

    for (char **e = environ; *e != NULL; e++) {
        n++;
    }
    lua_pushnil(L);                                  /* nil */
    while (lua_next(L, env_idx) != 0) {              /* k v */
        if (lua_type(L, -2) != LUA_TSTRING) {
            luaL_argerror(L, 2, "env names must be strings");
        }
        if (lua_objlen(L, -2) == 0
            || strchr(lua_tostring(L, -2), '=') != NULL)
        {
            luaL_argerror(L, 2, lua_pushfstring(L, "bad env name '%s'",
                                                lua_tostring(L, -2)));
        }
        t = lua_type(L, -1);
        if (t != LUA_TSTRING && t != LUA_TNUMBER
            && !(t == LUA_TBOOLEAN && !lua_toboolean(L, -1)))
        {
            luaL_argerror(L, 2, lua_pushfstring(L,
                "env value for '%s' must be a string, number or false",
                lua_tostring(L, -2)));
        }
        m++;
        lua_pop(L, 1);                               /* k */
    }

    envp = lua_newuserdata(L, (n + m + 1) * sizeof(char *));
                                                     /* envp */
    for (char **e = environ; *e != NULL; e++) {
        eq = strchr(*e, '=');
        if (eq == NULL) {
            continue;
        }
        lua_pushlstring(L, *e, (size_t) (eq - *e));  /* envp name */
        lua_rawget(L, env_idx);                      /* envp override */
        t = lua_type(L, -1);
        lua_pop(L, 1);                               /* envp */
        if (t == LUA_TNIL) {
            lua_pushstring(L, *e);                   /* envp "n=v" */
            envp[k++] = (char *) anchor_top(L, anchor, count);
        }
    }

    lua_pushnil(L);                                  /* envp nil */
    while (lua_next(L, env_idx) != 0) {              /* envp k v */
        if (lua_type(L, -1) != LUA_TBOOLEAN) {
            lua_pushfstring(L, "%s=%s", lua_tostring(L, -2),
                            lua_tostring(L, -1));    /* envp k v "k=v" */
            envp[k++] = (char *) anchor_top(L, anchor, count);
        }
        lua_pop(L, 1);                               /* envp k */
    }
    envp[k] = NULL;
    return envp;
}


/*
 * sys.spawn(argv, opts?) -> pid | nil, err
 *
 * argv[1] is searched in the PATH the child will see. opts: env (merged over
 * the current environment, false removes), stdin ("null" default, "inherit"
 * or a path), stdout / stderr ("inherit" default, "null" or a path opened
 * for append; stderr may also be "stdout"), cwd, setsid.
 */
static int
l_spawn(lua_State *L)
{
    static const char *const known[] = {
        "env", "stdin", "stdout", "stderr", "cwd", "setsid", NULL
    };
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t          attr;
    sigset_t                   none, all;
    struct stat                st;
    const char                *in, *out, *err, *cwd, *exe, *path, *what;
    char                     **argv, **envp;
    size_t                     argc, len;
    pid_t                      pid;
    int                        opts, anchor, count = 0, env_idx = 0, fail_errno;
    int                        do_setsid, flags, rc, path_removed;
    int                        infd = -1, outfd = -1, errfd = -1;
    int                        have_fa = 0, have_attr = 0;

    luaL_checktype(L, 1, LUA_TTABLE);
    opts = opt_table(L, 2);
    lua_settop(L, 2);
    lua_newtable(L);                                 /* argv opts anchor */
    anchor = 3;

    if (opts) {
        check_opts(L, opts, known);
        lua_getfield(L, opts, "env");                /* ... anchor env */
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);                           /* ... anchor */
        } else {
            luaL_argcheck(L, lua_istable(L, -1), 2, "'env' must be a table");
            env_idx = lua_gettop(L);
        }
    }
    in = opt_field_string(L, opts, "stdin");
    out = opt_field_string(L, opts, "stdout");
    err = opt_field_string(L, opts, "stderr");
    cwd = opt_field_string(L, opts, "cwd");
    do_setsid = opt_field_bool(L, opts, "setsid");
    if (in == NULL) {
        in = "null";
    }
    if (out == NULL) {
        out = "inherit";
    }
    if (err == NULL) {
        err = "inherit";
    }

    argc = lua_objlen(L, 1);
    luaL_argcheck(L, argc > 0, 1, "argv must not be empty");
    argv = lua_newuserdata(L, (argc + 1) * sizeof(char *));
                                                     /* ... argv_ud */
    for (size_t i = 0; i < argc; i++) {
        lua_rawgeti(L, 1, (int) i + 1);              /* ... argv_ud a */
        if (!lua_isstring(L, -1)) {
            luaL_argerror(L, 1, lua_pushfstring(L,
                "argv[%d] must be a string", (int) i + 1));
        }
        lua_tolstring(L, -1, &len);
        if (strlen(lua_tostring(L, -1)) != len) {
            luaL_argerror(L, 1, "argv strings must not contain NUL");
        }
        argv[i] = (char *) anchor_top(L, anchor, &count);
    }
    argv[argc] = NULL;

    envp = env_idx ? build_env(L, env_idx, anchor, &count) : environ;
                                                     /* ... [envp_ud] */

    /* Resolve argv[1] against the child's PATH, not ours. */
    if (strchr(argv[0], '/') != NULL) {
        exe = argv[0];
    } else {
        path = NULL;
        path_removed = 0;
        if (env_idx) {
            lua_getfield(L, env_idx, "PATH");        /* ... PATH */
            if (lua_isstring(L, -1)) {
                path = anchor_top(L, anchor, &count);
            } else {
                path_removed = lua_isboolean(L, -1);  /* PATH = false */
                lua_pop(L, 1);
            }
        }
        if (path == NULL && !path_removed) {
            path = getenv("PATH");
        }
        if (path == NULL) {
            path = "/bin:/usr/bin";
        }
        if (search_path(L, argv[0], path) != 0) {
            if (errno == ENOENT) {
                lua_pushnil(L);
                lua_pushfstring(L, "spawn failed: %s: not found in PATH",
                                argv[0]);
                return 2;
            }
            return push_fail(L, "spawn", argv[0], errno);
        }
        exe = anchor_top(L, anchor, &count);
    }

    if (cwd != NULL) {
        fail_errno = stat(cwd, &st) != 0 ? errno
                     : !S_ISDIR(st.st_mode) ? ENOTDIR : 0;
        if (fail_errno != 0) {
            return push_fail(L, "spawn", lua_pushfstring(L, "cwd %s", cwd),
                             fail_errno);
        }
    }
#ifndef SYS_HAVE_SPAWN_CHDIR
    if (cwd != NULL) {
        return push_nil_msg(L, "spawn failed: cwd is not supported here");
    }
#endif

    /* From here on nothing may raise: descriptors and spawn objects are
     * released at `done`. */
    what = NULL;
    fail_errno = 0;

    if (strcmp(in, "inherit") != 0) {
        infd = open_stdio(in, O_RDONLY);
        if (infd < 0) {
            fail_errno = errno;
            what = in;
            goto done;
        }
    }
    if (strcmp(out, "inherit") != 0) {
        outfd = open_stdio(out, O_WRONLY | O_CREAT | O_APPEND);
        if (outfd < 0) {
            fail_errno = errno;
            what = out;
            goto done;
        }
    }
    if (strcmp(err, "inherit") != 0 && strcmp(err, "stdout") != 0) {
        errfd = open_stdio(err, O_WRONLY | O_CREAT | O_APPEND);
        if (errfd < 0) {
            fail_errno = errno;
            what = err;
            goto done;
        }
    }

    rc = posix_spawn_file_actions_init(&fa);
    if (rc != 0) {
        fail_errno = rc;
        goto done;
    }
    have_fa = 1;
    rc = posix_spawnattr_init(&attr);
    if (rc != 0) {
        fail_errno = rc;
        goto done;
    }
    have_attr = 1;

    rc = 0;
    if (infd >= 0) {
        rc |= posix_spawn_file_actions_adddup2(&fa, infd, 0);
    }
    if (outfd >= 0) {
        rc |= posix_spawn_file_actions_adddup2(&fa, outfd, 1);
    }
    if (errfd >= 0) {
        rc |= posix_spawn_file_actions_adddup2(&fa, errfd, 2);
    } else if (strcmp(err, "stdout") == 0) {
        rc |= posix_spawn_file_actions_adddup2(&fa, 1, 2);
    }
#ifdef SYS_HAVE_SPAWN_CHDIR
    if (cwd != NULL) {
        rc |= posix_spawn_file_actions_addchdir_np(&fa, cwd);
    }
#endif
#ifdef SYS_HAVE_SPAWN_CLOSEFROM
    rc |= posix_spawn_file_actions_addclosefrom_np(&fa, 3);
#else
    cloexec_all();
#endif

    /* Handlers are reset by exec anyway; SIG_IGN (the host ignores SIGPIPE)
     * and the mask would be inherited, so reset both. */
    sigemptyset(&none);
    sigfillset(&all);
    flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
    if (do_setsid) {
#ifdef POSIX_SPAWN_SETSID
        flags |= POSIX_SPAWN_SETSID;
#else
        flags |= POSIX_SPAWN_SETPGROUP;
        rc |= posix_spawnattr_setpgroup(&attr, 0);
#endif
    }
    rc |= posix_spawnattr_setsigmask(&attr, &none);
    rc |= posix_spawnattr_setsigdefault(&attr, &all);
    rc |= posix_spawnattr_setflags(&attr, (short) flags);
    if (rc != 0) {
        fail_errno = EINVAL;
        goto done;
    }

    rc = posix_spawn(&pid, exe, &fa, &attr, argv, envp);
    if (rc != 0) {
        fail_errno = rc;
        what = exe;
    }

done:
    if (have_attr) {
        posix_spawnattr_destroy(&attr);
    }
    if (have_fa) {
        posix_spawn_file_actions_destroy(&fa);
    }
    if (errfd >= 0) {
        close(errfd);
    }
    if (outfd >= 0) {
        close(outfd);
    }
    if (infd >= 0) {
        close(infd);
    }
    if (fail_errno != 0) {
        return push_fail(L, "spawn", what, fail_errno);
    }
    lua_pushinteger(L, (lua_Integer) pid);           /* ... pid */
    return 1;
}


/*
 * sys.kill(pid, sig?) -> true | nil, err
 *
 * sig is a number or a name ("TERM", "SIGTERM"); default TERM. A negative
 * pid signals the process group -pid. pid 0 and -1 raise: a test bug must
 * not signal every process we own.
 */
static int
l_kill(lua_State *L)
{
    lua_Integer pid = luaL_checkinteger(L, 1);
    const char *name;
    int         signo = SIGTERM, i;

    luaL_argcheck(L, pid != 0 && pid != -1, 1,
                  "refusing to signal pid 0 or -1");
    if (lua_type(L, 2) == LUA_TNUMBER) {
        signo = (int) lua_tointeger(L, 2);
        luaL_argcheck(L, signo >= 0 && signo < 65, 2, "bad signal number");
    } else if (!lua_isnoneornil(L, 2)) {
        name = luaL_checkstring(L, 2);
        if (strncmp(name, "SIG", 3) == 0) {
            name += 3;
        }
        for (i = 0; signal_names[i].name != NULL; i++) {
            if (strcmp(name, signal_names[i].name) == 0) {
                break;
            }
        }
        if (signal_names[i].name == NULL) {
            return luaL_argerror(L, 2, lua_pushfstring(L,
                                 "unknown signal '%s'", lua_tostring(L, 2)));
        }
        signo = signal_names[i].signo;
    }

    if (kill((pid_t) pid, signo) != 0) {
        return push_fail(L, "kill", NULL, errno);
    }
    lua_pushboolean(L, 1);                           /* true */
    return 1;
}


/*
 * Reaps child `pid`, waiting at most `timeout` seconds (negative: block).
 * Waits on a pidfd where the kernel has them, else polls waitpid in sleeps
 * that grow to 5 ms. Returns 1 with `*status` set, 0 on timeout, or -1 with
 * errno set.
 */
static int
reap(pid_t pid, int *status, double timeout)
{
    struct pollfd   pfd;
    struct timespec ts;
    uint64_t        deadline, now, step = 100000ull, left;
    pid_t           r;
    int             pidfd = -1, saved;

    if (timeout < 0) {
        do {
            r = waitpid(pid, status, 0);
        } while (r < 0 && errno == EINTR);
        return r == pid ? 1 : -1;
    }

    deadline = wtt_deadline_after(timeout);
#ifdef SYS_pidfd_open
    if (timeout > 0) {
        pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
    }
#endif

    for (;;) {
        r = waitpid(pid, status, WNOHANG);
        if (r == pid) {
            break;
        }
        if (r < 0 && errno != EINTR) {
            saved = errno;
            if (pidfd >= 0) {
                close(pidfd);
            }
            errno = saved;
            return -1;
        }
        now = wtt_now_ns();
        if (now >= deadline) {
            if (pidfd >= 0) {
                close(pidfd);
            }
            return 0;
        }
        if (pidfd >= 0) {
            pfd.fd = pidfd;
            pfd.events = POLLIN;
            pfd.revents = 0;
            (void) poll(&pfd, 1, wtt_ms_until(deadline));
            continue;
        }
        left = deadline - now;
        if (left > step) {
            left = step;
        }
        ts.tv_sec = 0;
        ts.tv_nsec = (long) left;
        nanosleep(&ts, NULL);
        if (step < SYS_WAIT_STEP_MAX_NS) {
            step *= 2;
            if (step > SYS_WAIT_STEP_MAX_NS) {
                step = SYS_WAIT_STEP_MAX_NS;
            }
        }
    }

    if (pidfd >= 0) {
        close(pidfd);
    }
    return 1;
}


/*
 * sys.wait(pid, timeout?) -> "exited", code | "signaled", signo
 *                          | nil, "timeout" | nil, err
 *
 * timeout nil blocks, 0 polls once. Only children of this process can be
 * waited for (pid > 0).
 */
static int
l_wait(lua_State *L)
{
    lua_Integer pid = luaL_checkinteger(L, 1);
    double      timeout = -1;
    int         status = 0, rc;

    luaL_argcheck(L, pid > 0, 1, "pid must be > 0");
    if (!lua_isnoneornil(L, 2)) {
        timeout = opt_timeout(L, 2, 0);
    }

    rc = reap((pid_t) pid, &status, timeout);
    if (rc < 0) {
        return push_fail(L, "wait", NULL, errno);
    }
    if (rc == 0) {
        return push_nil_msg(L, "timeout");
    }
    if (WIFEXITED(status)) {
        lua_pushliteral(L, "exited");
        lua_pushinteger(L, WEXITSTATUS(status));     /* "exited" code */
    } else {
        lua_pushliteral(L, "signaled");
        lua_pushinteger(L, WTERMSIG(status));        /* "signaled" signo */
    }
    return 2;
}


/* ------------------------------------------------------------------------
 * Trapped signals: handlers that only count, polled from Lua
 * ------------------------------------------------------------------------ */

/* Arrivals per signal since it was trapped (or last cleared). The handler
 * only increments (lock-free atomics are async-signal-safe); any thread may
 * run it, any thread may poll. */
#define SYS_NSIG 65
static int sig_counts[SYS_NSIG];


static void
on_trapped_signal(int sig)
{
    if (sig > 0 && sig < SYS_NSIG) {
        __atomic_add_fetch(&sig_counts[sig], 1, __ATOMIC_SEQ_CST);
    }
}


/* The signal number named by the string at `idx` ("TERM" or "SIGTERM");
 * raises on an unknown name. */
static int
check_signal_name(lua_State *L, int idx)
{
    const char *name = luaL_checkstring(L, idx);
    int         i;

    if (strncmp(name, "SIG", 3) == 0) {
        name += 3;
    }
    for (i = 0; signal_names[i].name != NULL; i++) {
        if (strcmp(name, signal_names[i].name) == 0) {
            return signal_names[i].signo;
        }
    }
    return luaL_argerror(L, idx, lua_pushfstring(L, "unknown signal '%s'",
                                                 lua_tostring(L, idx)));
}


/* Applies `fn` to every name of the string-or-list argument 1. */
static void
each_signal(lua_State *L, void (*fn)(lua_State *, int))
{
    int i, n;

    if (lua_type(L, 1) == LUA_TSTRING) {
        fn(L, check_signal_name(L, 1));
        return;
    }
    luaL_checktype(L, 1, LUA_TTABLE);
    n = (int) lua_objlen(L, 1);
    for (i = 1; i <= n; i++) {
        lua_rawgeti(L, 1, i);                        /* ... name */
        fn(L, check_signal_name(L, lua_gettop(L)));
        lua_pop(L, 1);                               /* ... */
    }
}


static void
trap_one(lua_State *L, int signo)
{
    struct sigaction sa;

    if (signo == SIGKILL || signo == SIGSTOP) {
        luaL_error(L, "bad argument #1 to 'trap' (SIGKILL and SIGSTOP "
                   "cannot be trapped)");
        return;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_trapped_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    __atomic_store_n(&sig_counts[signo], 0, __ATOMIC_SEQ_CST);
    if (sigaction(signo, &sa, NULL) != 0) {
        luaL_error(L, "trap failed: %s", strerror(errno));
    }
}


static void
untrap_one(lua_State *L, int signo)
{
    struct sigaction sa;

    (void) L;
    if (signo == SIGKILL || signo == SIGSTOP) {
        return;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    sigaction(signo, &sa, NULL);
    __atomic_store_n(&sig_counts[signo], 0, __ATOMIC_SEQ_CST);
}


/* sys.trap(names) -> true: names is "TERM" or { "TERM", "INT" }. */
static int
l_trap(lua_State *L)
{
    each_signal(L, trap_one);
    lua_pushboolean(L, 1);
    return 1;
}


/* sys.untrap(names) -> true: back to the default disposition. */
static int
l_untrap(lua_State *L)
{
    each_signal(L, untrap_one);
    lua_pushboolean(L, 1);
    return 1;
}


/* sys.signaled(name [, clear]) -> boolean, count */
static int
l_signaled(lua_State *L)
{
    int signo = check_signal_name(L, 1);
    int n;

    if (lua_toboolean(L, 2)) {
        n = __atomic_exchange_n(&sig_counts[signo], 0, __ATOMIC_SEQ_CST);
    } else {
        n = __atomic_load_n(&sig_counts[signo], __ATOMIC_SEQ_CST);
    }
    lua_pushboolean(L, n > 0);
    lua_pushinteger(L, n);
    return 2;
}


/* ------------------------------------------------------------------------
 * Clocks and environment
 * ------------------------------------------------------------------------ */


/* sys.sleep(sec): sleeps the whole interval, across signals. */
static int
l_sleep(lua_State *L)
{
    double          sec = luaL_checknumber(L, 1);
    struct timespec ts, rem;

    if (!(sec > 0)) {
        return 0;
    }
    if (sec > SYS_MAX_TIMEOUT) {
        sec = SYS_MAX_TIMEOUT;
    }
    ts.tv_sec = (time_t) sec;
    ts.tv_nsec = (long) ((sec - (double) ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &rem) != 0 && errno == EINTR) {
        ts = rem;
    }
    return 0;
}


/* sys.now() -> monotonic seconds (float) */
static int
l_now(lua_State *L)
{
    lua_pushnumber(L, (lua_Number) wtt_now_ns() / 1e9);
    return 1;
}


/* sys.time() -> wall-clock seconds since the epoch (float) */
static int
l_time(lua_State *L)
{
    lua_pushnumber(L, wtt_wall_time());
    return 1;
}


/* sys.getpid() -> pid */
static int
l_getpid(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer) getpid());
    return 1;
}


/* Checks an environment variable name: non-empty, without '='. */
static const char *
check_env_name(lua_State *L, int idx)
{
    const char *name = luaL_checkstring(L, idx);

    luaL_argcheck(L, name[0] != '\0' && strchr(name, '=') == NULL, idx,
                  "bad environment variable name");
    return name;
}


/* sys.getenv(name) -> value | nil */
static int
l_getenv(lua_State *L)
{
    const char *v = getenv(check_env_name(L, 1));

    if (v == NULL) {
        lua_pushnil(L);
    } else {
        lua_pushstring(L, v);
    }
    return 1;
}


/* sys.setenv(name, value | nil) -> true | nil, err; nil unsets. */
static int
l_setenv(lua_State *L)
{
    const char *name = check_env_name(L, 1);
    int         rc;

    if (lua_isnoneornil(L, 2)) {
        rc = unsetenv(name);
    } else {
        rc = setenv(name, luaL_checkstring(L, 2), 1);
    }
    if (rc != 0) {
        return push_fail(L, "setenv", name, errno);
    }
    lua_pushboolean(L, 1);
    return 1;
}


/* ------------------------------------------------------------------------
 * Files and directories
 * ------------------------------------------------------------------------ */


/*
 * sys.mkdtemp(prefix?) -> path | nil, err
 *
 * Creates a fresh 0700 directory "<TMPDIR or /tmp>/<prefix>XXXXXX"; the
 * prefix defaults to "wtt-" and must not contain '/'.
 */
static int
l_mkdtemp(lua_State *L)
{
    const char *prefix = luaL_optstring(L, 1, "wtt-");
    const char *base = getenv("TMPDIR");
    char        buf[PATH_MAX];
    size_t      blen;
    int         n;

    luaL_argcheck(L, strchr(prefix, '/') == NULL, 1,
                  "prefix must not contain '/'");
    if (base == NULL || base[0] == '\0') {
        base = "/tmp";
    }
    blen = strlen(base);
    while (blen > 1 && base[blen - 1] == '/') {
        blen--;
    }
    n = snprintf(buf, sizeof(buf), "%.*s/%sXXXXXX", (int) blen, base, prefix);
    if (n < 0 || (size_t) n >= sizeof(buf)) {
        return push_fail(L, "mkdtemp", NULL, ENAMETOOLONG);
    }
    if (mkdtemp(buf) == NULL) {
        return push_fail(L, "mkdtemp", NULL, errno);
    }
    lua_pushstring(L, buf);
    return 1;
}


/*
 * Removes entry `name` of directory `dirfd`, depth first, never following a
 * symlink (a link is unlinked, not entered). `path` is the display path of
 * the entry, `len` its length; it is extended in place while descending and
 * names the failing entry on error. Entries that vanish meanwhile count as
 * removed. Returns 0, or -1 with errno set.
 */
static int
remove_at(int dirfd, const char *name, char *path, size_t len, size_t cap)
{
    struct stat    st;
    struct dirent *de;
    DIR           *dir;
    size_t         n, sub;
    int            fd, saved;

    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        return errno == ENOENT ? 0 : -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        if (unlinkat(dirfd, name, 0) != 0 && errno != ENOENT) {
            return -1;
        }
        return 0;
    }

    fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        return errno == ENOENT ? 0 : -1;
    }
    dir = fdopendir(fd);
    if (dir == NULL) {
        saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }

    for (;;) {
        errno = 0;
        de = readdir(dir);
        if (de == NULL) {
            if (errno != 0) {
                goto fail;
            }
            break;
        }
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) {
            continue;
        }
        n = strlen(de->d_name);
        sub = len;
        if (len + 1 + n < cap) {
            path[len] = '/';
            memcpy(path + len + 1, de->d_name, n + 1);
            sub = len + 1 + n;
        }
        if (remove_at(fd, de->d_name, path, sub, cap) != 0) {
            goto fail;
        }
        path[len] = '\0';
    }
    closedir(dir);

    if (unlinkat(dirfd, name, AT_REMOVEDIR) != 0 && errno != ENOENT) {
        return -1;
    }
    return 0;

fail:
    saved = errno;
    closedir(dir);
    errno = saved;
    return -1;
}


/*
 * sys.rmtree(path) -> true | nil, err
 *
 * Deletes path and everything below it without following symlinks: a link
 * inside the tree (or `path` itself, when a link) is removed, never its
 * target. Refuses "/" and "".
 */
static int
l_rmtree(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    char        buf[PATH_MAX], name[PATH_MAX];
    char       *real;
    struct stat st;
    size_t      len = strlen(path);

    luaL_argcheck(L, len > 0, 1, "path must not be empty");
    real = realpath(path, NULL);
    if (real != NULL) {
        int root = strcmp(real, "/") == 0;
        free(real);
        luaL_argcheck(L, !root, 1, "refusing to remove /");
    }
    if (len >= sizeof(buf)) {
        return push_fail(L, "rmtree", path, ENAMETOOLONG);
    }

    /* "link/" would resolve through a symlink: strip trailing slashes so
     * the last component is looked at with lstat semantics. */
    while (len > 1 && path[len - 1] == '/') {
        len--;
    }
    memcpy(name, path, len);
    name[len] = '\0';
    memcpy(buf, name, len + 1);

    if (lstat(name, &st) != 0) {
        return push_fail(L, "rmtree", path, errno);
    }
    if (remove_at(AT_FDCWD, name, buf, len, sizeof(buf)) != 0) {
        return push_fail(L, "rmtree", buf, errno);
    }
    lua_pushboolean(L, 1);
    return 1;
}


/*
 * sys.exists(path) -> "file" | "dir" | "link" | "other" | nil [, err]
 *
 * Uses lstat: a symlink is "link" whatever it points to. Missing paths give
 * a plain nil; other failures (permission) give nil, err.
 */
static int
l_exists(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    struct stat st;

    if (lstat(path, &st) != 0) {
        if (errno == ENOENT || errno == ENOTDIR) {
            lua_pushnil(L);
            return 1;
        }
        return push_fail(L, "exists", path, errno);
    }
    if (S_ISREG(st.st_mode)) {
        lua_pushliteral(L, "file");
    } else if (S_ISDIR(st.st_mode)) {
        lua_pushliteral(L, "dir");
    } else if (S_ISLNK(st.st_mode)) {
        lua_pushliteral(L, "link");
    } else {
        lua_pushliteral(L, "other");
    }
    return 1;
}


static int
cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}


/* sys.listdir(path) -> { names, sorted bytewise, no . and .. } | nil, err */
static int
l_listdir(lua_State *L)
{
    const char    *path = luaL_checkstring(L, 1);
    struct dirent *de;
    DIR           *dir;
    char         **names = NULL;
    size_t         n = 0, cap = 0;
    int            saved;

    dir = opendir(path);
    if (dir == NULL) {
        return push_fail(L, "listdir", path, errno);
    }
    for (;;) {
        errno = 0;
        de = readdir(dir);
        if (de == NULL) {
            break;
        }
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) {
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            names = wtt_realloc(names, cap * sizeof(char *));
        }
        names[n++] = wtt_strdup(de->d_name);
    }
    saved = errno;
    closedir(dir);

    if (saved != 0) {
        for (size_t i = 0; i < n; i++) {
            free(names[i]);
        }
        free(names);
        return push_fail(L, "listdir", path, saved);
    }

    if (n > 0) {
        qsort(names, n, sizeof(char *), cmp_names);  /* names is NULL at 0 */
    }
    lua_createtable(L, (int) n, 0);                  /* list */
    for (size_t i = 0; i < n; i++) {
        lua_pushstring(L, names[i]);                 /* list name */
        lua_rawseti(L, -2, (int) i + 1);             /* list */
        free(names[i]);
    }
    free(names);
    return 1;
}


/* sys.realpath(path) -> absolute path | nil, err */
static int
l_realpath(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    char       *real = realpath(path, NULL);

    if (real == NULL) {
        return push_fail(L, "realpath", path, errno);
    }
    lua_pushstring(L, real);
    free(real);
    return 1;
}


/* sys.symlink(target, link) -> true | nil, err */
static int
l_symlink(lua_State *L)
{
    const char *target = luaL_checkstring(L, 1);
    const char *link = luaL_checkstring(L, 2);

    if (symlink(target, link) != 0) {
        return push_fail(L, "symlink", link, errno);
    }
    lua_pushboolean(L, 1);
    return 1;
}


/*
 * sys.write_file(path, data) -> true | nil, err
 *
 * Writes "<path>.tmp.XXXXXX" in the same directory, fsyncs it and renames
 * it over path, so readers see the old or the new content, never a mix. An
 * existing file keeps its permission bits; a new one gets 0644.
 */
static int
l_write_file(lua_State *L)
{
    size_t      len, done = 0, plen;
    const char *path = luaL_checkstring(L, 1);
    const char *data = luaL_checklstring(L, 2, &len);
    struct stat st;
    mode_t      mode = 0644;
    ssize_t     n;
    char       *tmp;
    int         fd, saved;

    plen = strlen(path);
    tmp = wtt_malloc(plen + sizeof(".tmp.XXXXXX"));
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp.XXXXXX", sizeof(".tmp.XXXXXX"));

    if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
        mode = st.st_mode & 07777;
    }

    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        saved = errno;
        free(tmp);
        return push_fail(L, "write_file", path, saved);
    }
    if (fchmod(fd, mode) != 0) {
        goto fail;
    }
    while (done < len) {
        n = write(fd, data + done, len - done);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            goto fail;
        }
        done += (size_t) n;
    }
    if (fsync(fd) != 0) {
        goto fail;
    }
    if (close(fd) != 0) {
        fd = -1;
        goto fail;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        goto fail;
    }
    free(tmp);
    lua_pushboolean(L, 1);
    return 1;

fail:
    saved = errno;
    if (fd >= 0) {
        close(fd);
    }
    unlink(tmp);
    free(tmp);
    return push_fail(L, "write_file", path, saved);
}


/*
 * sys.read_file(path) -> data | nil, err
 *
 * Reads to end of file, so /proc files (which report size 0) work too.
 */
static int
l_read_file(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    struct stat st;
    size_t      cap = 8192, got = 0;
    ssize_t     n;
    char       *buf, *nbuf;
    int         fd, saved;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return push_fail(L, "read_file", path, errno);
    }
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
        cap = (size_t) st.st_size + 1;   /* +1: see EOF without a realloc */
    }
    buf = wtt_trymalloc(cap);
    if (buf == NULL) {
        errno = ENOMEM;
        goto fail;
    }
    for (;;) {
        if (got == cap) {
            nbuf = realloc(buf, cap * 2);
            if (nbuf == NULL) {
                errno = ENOMEM;
                goto fail;
            }
            buf = nbuf;
            cap *= 2;
        }
        n = read(fd, buf + got, cap - got);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            goto fail;
        }
        if (n == 0) {
            break;
        }
        got += (size_t) n;
    }
    close(fd);
    lua_pushlstring(L, buf, got);                    /* data */
    free(buf);
    return 1;

fail:
    saved = errno;
    free(buf);
    close(fd);
    return push_fail(L, "read_file", path, saved);
}


/* sys.file_size(path) -> bytes | nil, err (follows symlinks) */
static int
l_file_size(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    struct stat st;

    if (stat(path, &st) != 0) {
        return push_fail(L, "file_size", path, errno);
    }
    lua_pushnumber(L, (lua_Number) st.st_size);
    return 1;
}


/* ------------------------------------------------------------------------
 * Network: free ports and the raw TCP client
 * ------------------------------------------------------------------------ */


/* sys.free_port() -> port on 127.0.0.1 that is free right now | nil, err */
static int
l_free_port(lua_State *L)
{
    struct sockaddr_in sa;
    socklen_t          slen = sizeof(sa);
    int                fd, saved;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return push_fail(L, "free_port", NULL, errno);
    }
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = 0;
    if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) != 0
        || getsockname(fd, (struct sockaddr *) &sa, &slen) != 0)
    {
        saved = errno;
        close(fd);
        return push_fail(L, "free_port", NULL, saved);
    }
    close(fd);
    lua_pushinteger(L, ntohs(sa.sin_port));
    return 1;
}


/*
 * Connects a non-blocking socket to `ai`, first binding it to `src` (port 0)
 * when `src` is not NULL. Returns the fd, or -1 with a reason written to
 * `err` ("connection refused", "timeout", "bind: ...").
 */
static int
connect_one(const struct addrinfo *ai, const struct sockaddr_storage *src,
    socklen_t srclen, uint64_t deadline, char *err, size_t errlen)
{
    socklen_t  olen = sizeof(int);
    const char *s;
    int        fd, rc, soerr = 0, one = 1;
    size_t     i;

    if (src != NULL && src->ss_family != ai->ai_family) {
        snprintf(err, errlen, "bind address family does not match host");
        return -1;
    }
    fd = socket(ai->ai_family,
                ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                ai->ai_protocol);
    if (fd < 0) {
        soerr = errno;
        s = "socket: ";
        goto fail;
    }
    if (src != NULL && bind(fd, (const struct sockaddr *) src, srclen) != 0) {
        soerr = errno;
        s = "bind: ";
        goto fail;
    }

    rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
    if (rc != 0 && errno != EINPROGRESS && errno != EINTR) {
        soerr = errno;
        s = "";
        goto fail;
    }
    if (rc != 0) {
        rc = wtt_wait_fd(fd, POLLOUT, deadline);
        if (rc == 0) {
            snprintf(err, errlen, "timeout");
            close(fd);
            return -1;
        }
        if (rc < 0
            || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &olen) != 0)
        {
            soerr = errno;
        }
        if (soerr != 0) {
            s = "";
            goto fail;
        }
    }

    /* Protocol tests send deliberately tiny pieces; do not coalesce them. */
    (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;

fail:
    snprintf(err, errlen, "%s%s", s, strerror(soerr));
    for (i = 0; err[i] != '\0'; i++) {
        err[i] = (char) tolower((unsigned char) err[i]);
    }
    if (fd >= 0) {
        close(fd);
    }
    return -1;
}


/*
 * sys.tcp_connect(host, port, opts?) -> conn | nil, err
 *
 * opts: timeout (seconds for the whole connect, default 5), bind (numeric
 * local source address, e.g. "127.0.0.2"). The socket is non-blocking,
 * close-on-exec and has TCP_NODELAY set.
 */
static int
l_tcp_connect(lua_State *L)
{
    static const char *const known[] = { "timeout", "bind", NULL };
    const char              *host = luaL_checkstring(L, 1);
    lua_Integer              port = luaL_checkinteger(L, 2);
    struct sockaddr_storage  src;
    struct sockaddr_in      *s4 = (struct sockaddr_in *) &src;
    struct sockaddr_in6     *s6 = (struct sockaddr_in6 *) &src;
    struct addrinfo          hints, *res = NULL, *ai;
    socklen_t                srclen = 0;
    sys_conn_t              *c;
    const char              *bind_addr;
    uint64_t                 deadline;
    double                   timeout;
    char                     portstr[16], err[160];
    int                      opts, fd = -1, rc;

    luaL_argcheck(L, port > 0 && port < 65536, 2, "port must be 1..65535");
    opts = opt_table(L, 3);
    if (opts) {
        check_opts(L, opts, known);
    }
    timeout = opt_field_timeout(L, opts, "timeout", SYS_DEFAULT_TIMEOUT);
    bind_addr = opt_field_string(L, opts, "bind");

    memset(&src, 0, sizeof(src));
    if (bind_addr != NULL) {
        if (inet_pton(AF_INET, bind_addr, &s4->sin_addr) == 1) {
            s4->sin_family = AF_INET;
            srclen = sizeof(*s4);
        } else if (inet_pton(AF_INET6, bind_addr, &s6->sin6_addr) == 1) {
            s6->sin6_family = AF_INET6;
            srclen = sizeof(*s6);
        } else {
            return luaL_argerror(L, 3, "'bind' must be a numeric ip address");
        }
    }

    lua_settop(L, 3);
    c = lua_newuserdata(L, sizeof(sys_conn_t));      /* host port opts c */
    memset(c, 0, sizeof(*c));
    luaL_getmetatable(L, SYS_CONN_MT);               /* host port opts c mt */
    lua_setmetatable(L, -2);                         /* host port opts c */

    deadline = wtt_deadline_after(timeout);
    snprintf(portstr, sizeof(portstr), "%d", (int) port);
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    rc = getaddrinfo(host, portstr, &hints, &res);
    if (rc != 0) {
        snprintf(err, sizeof(err), "%s", gai_strerror(rc));
        for (size_t i = 0; err[i] != '\0'; i++) {
            err[i] = (char) tolower((unsigned char) err[i]);
        }
        lua_pushnil(L);
        lua_pushfstring(L, "connect failed: resolve %s: %s", host, err);
        return 2;
    }

    snprintf(err, sizeof(err), "no address");
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        fd = connect_one(ai, bind_addr ? &src : NULL, srclen, deadline,
                         err, sizeof(err));
        if (fd >= 0 || strcmp(err, "timeout") == 0) {
            break;
        }
    }
    freeaddrinfo(res);

    if (fd < 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "connect failed: %s", err);
        return 2;
    }
    c->fd = fd;
    c->open = 1;
    return 1;                                        /* ... c */
}


static sys_conn_t *
check_conn(lua_State *L)
{
    return luaL_checkudata(L, 1, SYS_CONN_MT);
}


/*
 * conn:send(data, timeout?) -> bytes | nil, "timeout", sent
 *                            | nil, "closed", sent | nil, err, sent
 *
 * Sends all of data, waiting up to timeout seconds (default 5) in total for
 * the peer to take it. A reset or broken pipe reads as "closed".
 */
static int
l_conn_send(lua_State *L)
{
    sys_conn_t *c = check_conn(L);
    size_t      len, sent = 0;
    const char *data = luaL_checklstring(L, 2, &len);
    double      timeout = opt_timeout(L, 3, SYS_DEFAULT_TIMEOUT);
    uint64_t    deadline;
    ssize_t     n;
    int         rc, nret;

    if (!c->open) {
        return push_nil_msg(L, "closed");
    }
    deadline = wtt_deadline_after(timeout);
    while (sent < len) {
        n = send(c->fd, data + sent, len - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n >= 0) {
            sent += (size_t) n;
            continue;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            rc = wtt_wait_fd(c->fd, POLLOUT, deadline);
            if (rc > 0) {
                continue;
            }
            if (rc == 0) {
                nret = push_nil_msg(L, "timeout");
            } else {
                nret = push_fail(L, "send", NULL, errno);
            }
        } else if (errno == EPIPE || errno == ECONNRESET) {
            nret = push_nil_msg(L, "closed");
        } else {
            nret = push_fail(L, "send", NULL, errno);
        }
        lua_pushinteger(L, (lua_Integer) sent);      /* nil err sent */
        return nret + 1;
    }
    lua_pushinteger(L, (lua_Integer) sent);
    return 1;
}


/*
 * Reads what is available on `c` without blocking, up to `max` bytes, onto
 * the buffer `b`. Returns the byte count and sets `*state`: 0 more may come,
 * 1 peer closed (EOF), 2 connection reset, -1 error (errno saved in
 * `*err`).
 */
static size_t
drain(sys_conn_t *c, luaL_Buffer *b, size_t max, int *state, int *err)
{
    size_t  got = 0, want;
    ssize_t n;
    char   *p;

    *state = 0;
    while (got < max) {
        want = max - got;
        if (want > LUAL_BUFFERSIZE) {
            want = LUAL_BUFFERSIZE;
        }
        p = luaL_prepbuffer(b);
        n = recv(c->fd, p, want, MSG_DONTWAIT);
        if (n > 0) {
            luaL_addsize(b, (size_t) n);
            got += (size_t) n;
            continue;
        }
        if (n == 0) {
            *state = 1;
        } else if (errno == EINTR) {
            continue;
        } else if (errno == ECONNRESET) {
            *state = 2;
        } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
            *state = -1;
            *err = errno;
        }
        break;
    }
    return got;
}


/*
 * conn:recv(max?, timeout?) -> data | nil, "timeout" | nil, "closed"[, "reset"]
 *                            | nil, err
 *
 * Waits at most timeout seconds (default 5) for data, then returns what is
 * available, up to max bytes (default 65536). Data that arrived before EOF
 * is returned first; the next call reports "closed".
 */
static int
l_conn_recv(lua_State *L)
{
    sys_conn_t *c = check_conn(L);
    lua_Integer max = luaL_optinteger(L, 2, SYS_RECV_DEFAULT);
    double      timeout = opt_timeout(L, 3, SYS_DEFAULT_TIMEOUT);
    luaL_Buffer b;
    uint64_t    deadline;
    size_t      got;
    int         rc, state, err = 0;

    luaL_argcheck(L, max > 0, 2, "max must be > 0");
    if (!c->open) {
        return push_nil_msg(L, "closed");
    }
    deadline = wtt_deadline_after(timeout);
    lua_settop(L, 3);
    for (;;) {
        rc = wtt_wait_fd(c->fd, POLLIN, deadline);
        if (rc == 0) {
            return push_nil_msg(L, "timeout");
        }
        if (rc < 0) {
            return push_fail(L, "recv", NULL, errno);
        }
        luaL_buffinit(L, &b);
        got = drain(c, &b, (size_t) max, &state, &err);
        luaL_pushresult(&b);                         /* ... data */
        if (got > 0) {
            return 1;
        }
        lua_pop(L, 1);
        if (state == 1) {
            return push_nil_msg(L, "closed");
        }
        if (state == 2) {
            push_nil_msg(L, "closed");
            lua_pushliteral(L, "reset");             /* nil "closed" "reset" */
            return 3;
        }
        if (state < 0) {
            return push_fail(L, "recv", NULL, err);
        }
        /* woken without data: wait again until the deadline */
    }
}


/*
 * conn:recv_all(timeout?, max?) -> data, "closed" | data, "timeout"
 *                                | data, "limit" | nil, err
 *
 * Reads until the peer closes (or resets), timeout seconds pass (default 5)
 * or max bytes (default 16 MiB) have been read; returns everything read and
 * which of the three ended it.
 */
static int
l_conn_recv_all(lua_State *L)
{
    sys_conn_t *c = check_conn(L);
    double      timeout = opt_timeout(L, 2, SYS_DEFAULT_TIMEOUT);
    lua_Integer max = luaL_optinteger(L, 3, SYS_RECV_ALL_MAX);
    luaL_Buffer b;
    const char *why;
    uint64_t    deadline;
    size_t      total = 0;
    int         rc, state = 0, err = 0;

    luaL_argcheck(L, max > 0, 3, "max must be > 0");
    if (!c->open) {
        return push_nil_msg(L, "closed");
    }
    deadline = wtt_deadline_after(timeout);
    lua_settop(L, 3);
    luaL_buffinit(L, &b);
    for (;;) {
        if (total >= (size_t) max) {
            why = "limit";
            break;
        }
        rc = wtt_wait_fd(c->fd, POLLIN, deadline);
        if (rc == 0) {
            why = "timeout";
            break;
        }
        if (rc < 0) {
            state = -1;
            err = errno;
            why = NULL;
            break;
        }
        total += drain(c, &b, (size_t) max - total, &state, &err);
        if (state != 0) {
            why = state > 0 ? "closed" : NULL;
            break;
        }
    }
    luaL_pushresult(&b);                             /* ... data */
    if (why == NULL) {
        lua_pop(L, 1);
        return push_fail(L, "recv", NULL, err);
    }
    lua_pushstring(L, why);                          /* ... data why */
    return 2;
}


/* conn:shutdown(how?) -> true | nil, err; how: "write" (default), "read",
 * "both". */
static int
l_conn_shutdown(lua_State *L)
{
    static const char *const hows[] = { "read", "write", "both", NULL };
    static const int         vals[] = { SHUT_RD, SHUT_WR, SHUT_RDWR };
    sys_conn_t              *c = check_conn(L);
    int                      how = luaL_checkoption(L, 2, "write", hows);

    if (!c->open) {
        return push_nil_msg(L, "closed");
    }
    if (shutdown(c->fd, vals[how]) != 0) {
        return push_fail(L, "shutdown", NULL, errno);
    }
    lua_pushboolean(L, 1);
    return 1;
}


/* conn:close() -> true; also __gc. Safe to call any number of times. */
static int
l_conn_close(lua_State *L)
{
    sys_conn_t *c = check_conn(L);

    if (c->open) {
        close(c->fd);
        c->open = 0;
        c->fd = -1;
    }
    lua_pushboolean(L, 1);
    return 1;
}


/* conn:fd() -> descriptor number | nil, "closed" */
static int
l_conn_fd(lua_State *L)
{
    sys_conn_t *c = check_conn(L);

    if (!c->open) {
        return push_nil_msg(L, "closed");
    }
    lua_pushinteger(L, c->fd);
    return 1;
}


static int
l_conn_tostring(lua_State *L)
{
    sys_conn_t *c = check_conn(L);

    if (c->open) {
        lua_pushfstring(L, SYS_CONN_MT " (fd %d)", c->fd);
    } else {
        lua_pushliteral(L, SYS_CONN_MT " (closed)");
    }
    return 1;
}


/* ------------------------------------------------------------------------
 * Machine
 * ------------------------------------------------------------------------ */


/* sys.cpu_count() -> CPUs this process may run on (affinity), at least 1 */
static int
l_cpu_count(lua_State *L)
{
    cpu_set_t set;
    long      n = 0;

    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        n = CPU_COUNT(&set);
    }
    if (n < 1) {
        n = sysconf(_SC_NPROCESSORS_ONLN);
    }
    lua_pushinteger(L, n < 1 ? 1 : (lua_Integer) n);
    return 1;
}


/* sys.rss_kb(pid?) -> resident set in KiB (VmRSS) | nil, err; default self */
static int
l_rss_kb(lua_State *L)
{
    lua_Integer pid = luaL_optinteger(L, 1, (lua_Integer) getpid());
    char        path[64], line[256];
    long long   kb;
    FILE       *f;
    int         saved;

    luaL_argcheck(L, pid > 0, 1, "pid must be > 0");
    snprintf(path, sizeof(path), "/proc/%lld/status", (long long) pid);
    f = fopen(path, "re");
    if (f == NULL) {
        saved = errno;
        return push_fail(L, "rss_kb",
                         lua_pushfstring(L, "pid %d", (int) pid), saved);
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "VmRSS: %lld kB", &kb) == 1) {
            fclose(f);
            lua_pushinteger(L, (lua_Integer) kb);
            return 1;
        }
    }
    fclose(f);
    lua_pushnil(L);
    lua_pushfstring(L, "rss_kb failed: pid %d has no resident set", (int) pid);
    return 2;
}


/* ------------------------------------------------------------------------
 * Module
 * ------------------------------------------------------------------------ */


static const luaL_Reg conn_methods[] = {
    { "send",       l_conn_send },
    { "recv",       l_conn_recv },
    { "recv_all",   l_conn_recv_all },
    { "shutdown",   l_conn_shutdown },
    { "close",      l_conn_close },
    { "fd",         l_conn_fd },
    { "__gc",       l_conn_close },
    { "__tostring", l_conn_tostring },
    { NULL, NULL },
};


static const luaL_Reg sys_funcs[] = {
    { "spawn",       l_spawn },
    { "kill",        l_kill },
    { "wait",        l_wait },
    { "sleep",       l_sleep },
    { "now",         l_now },
    { "time",        l_time },
    { "getpid",      l_getpid },
    { "getenv",      l_getenv },
    { "setenv",      l_setenv },
    { "mkdtemp",     l_mkdtemp },
    { "rmtree",      l_rmtree },
    { "exists",      l_exists },
    { "listdir",     l_listdir },
    { "realpath",    l_realpath },
    { "symlink",     l_symlink },
    { "write_file",  l_write_file },
    { "read_file",   l_read_file },
    { "file_size",   l_file_size },
    { "free_port",   l_free_port },
    { "tcp_connect", l_tcp_connect },
    { "cpu_count",   l_cpu_count },
    { "rss_kb",      l_rss_kb },
    { "trap",        l_trap },
    { "untrap",      l_untrap },
    { "signaled",    l_signaled },
    { NULL, NULL },
};


/*
 * Opens `wtt.sys`. Stack: before [], after [sys]. Registers the metatable
 * "wtt.sys.conn" in the registry. Returns 1.
 */
int
luaopen_wtt_sys(lua_State *L)
{
    wtt_lua_class(L, SYS_CONN_MT, conn_methods, conn_methods);

    lua_newtable(L);                                 /* sys */
    luaL_register(L, NULL, sys_funcs);               /* sys */
    return 1;
}
