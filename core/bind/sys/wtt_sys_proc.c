/*
 * wtt_sys_proc.c: `wtt.sys` processes: spawn, kill, wait, getpid.
 *
 * Children are started with posix_spawn, which uses vfork semantics on glibc:
 * a server with gigabytes mapped (models, CUDA) does not pay for a fork. The
 * child gets default signal dispositions, an empty signal mask and no file
 * descriptors other than 0-2.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "wtt_sys_private.h"
#include "wtt_luax.h"
#include "wtt_util.h"

#include <lauxlib.h>
#include <lua.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <systemd/sd-daemon.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>


extern char **environ;

#define SYS_WAIT_STEP_MAX_NS 5000000ull   /* 5 ms between waitpid polls */

#if defined(__GLIBC__) \
    && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 29))
#define SYS_HAVE_SPAWN_CHDIR 1
#endif

#if defined(__GLIBC__) \
    && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
#define SYS_HAVE_SPAWN_CLOSEFROM 1
#endif


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
    opts = wtt_lua_opt_table(L, 2);
    lua_settop(L, 2);
    lua_newtable(L);                                 /* argv opts anchor */
    anchor = 3;

    if (opts) {
        wtt_lua_check_opts(L, opts, known);
        lua_getfield(L, opts, "env");                /* ... anchor env */
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);                           /* ... anchor */
        } else {
            luaL_argcheck(L, lua_istable(L, -1), 2, "'env' must be a table");
            env_idx = lua_gettop(L);
        }
    }
    in = wtt_lua_opt_string(L, opts, "stdin", NULL, NULL);
    out = wtt_lua_opt_string(L, opts, "stdout", NULL, NULL);
    err = wtt_lua_opt_string(L, opts, "stderr", NULL, NULL);
    cwd = wtt_lua_opt_string(L, opts, "cwd", NULL, NULL);
    do_setsid = wtt_lua_opt_bool(L, opts, "setsid", 0);
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
            return wtt_lua_push_errno(L, "spawn", argv[0], errno);
        }
        exe = anchor_top(L, anchor, &count);
    }

    if (cwd != NULL) {
        fail_errno = stat(cwd, &st) != 0 ? errno
                     : !S_ISDIR(st.st_mode) ? ENOTDIR : 0;
        if (fail_errno != 0) {
            return wtt_lua_push_errno(L, "spawn",
                                      lua_pushfstring(L, "cwd %s", cwd),
                                      fail_errno);
        }
    }
#ifndef SYS_HAVE_SPAWN_CHDIR
    if (cwd != NULL) {
        return wtt__sys_push_msg(L, "spawn failed: cwd is not supported here");
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
        return wtt_lua_push_errno(L, "spawn", what, fail_errno);
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
    int         signo = SIGTERM;

    luaL_argcheck(L, pid != 0 && pid != -1, 1,
                  "refusing to signal pid 0 or -1");
    if (lua_type(L, 2) == LUA_TNUMBER) {
        signo = (int) lua_tointeger(L, 2);
        luaL_argcheck(L, signo >= 0 && signo < 65, 2, "bad signal number");
    } else if (!lua_isnoneornil(L, 2)) {
        name = luaL_checkstring(L, 2);
        signo = wtt__sys_signo(name);
        if (signo < 0) {
            return luaL_argerror(L, 2, lua_pushfstring(L,
                                 "unknown signal '%s'", name));
        }
    }

    if (kill((pid_t) pid, signo) != 0) {
        return wtt_lua_push_errno(L, "kill", NULL, errno);
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
        timeout = wtt__sys_opt_timeout(L, 2, 0);
    }

    rc = reap((pid_t) pid, &status, timeout);
    if (rc < 0) {
        return wtt_lua_push_errno(L, "wait", NULL, errno);
    }
    if (rc == 0) {
        return wtt__sys_push_msg(L, "timeout");
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


/* sys.getpid() -> pid */
static int
l_getpid(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer) getpid());
    return 1;
}


/* sys.notify(state) -> true | false | nil, err
 * Sends `state` ("READY=1", "STOPPING=1", ...) to the service manager
 * (sd_notify). false when the process was not started with NOTIFY_SOCKET
 * (not under systemd's Type=notify, or a plain shell): nothing to tell,
 * not an error. The variable is kept, so every state of the process's life
 * reaches the manager. */
static int
l_notify(lua_State *L)
{
    const char *state = luaL_checkstring(L, 1);
    int         rc = sd_notify(0, state);

    if (rc < 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "sd_notify: %s", strerror(-rc));
        return 2;
    }
    lua_pushboolean(L, rc > 0);
    return 1;
}


static const luaL_Reg proc_funcs[] = {
    { "notify", l_notify },
    { "spawn",  l_spawn },
    { "kill",   l_kill },
    { "wait",   l_wait },
    { "getpid", l_getpid },
    { NULL, NULL },
};


void
wtt__sys_open_proc(lua_State *L)
{
    luaL_register(L, NULL, proc_funcs);              /* sys */
}
