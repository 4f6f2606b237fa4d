/*
 * wtt_sys_fs.c: `wtt.sys` files and directories: mkdtemp, rmtree, exists,
 * listdir, realpath, symlink, write_file (atomic), read_file, file_size,
 * file_age.
 */
#include "wtt_sys_private.h"
#include "wtt_luax.h"
#include "wtt_util.h"

#include <lauxlib.h>
#include <lua.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>


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
        return wtt_lua_push_errno(L, "mkdtemp", NULL, ENAMETOOLONG);
    }
    if (mkdtemp(buf) == NULL) {
        return wtt_lua_push_errno(L, "mkdtemp", NULL, errno);
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
        return wtt_lua_push_errno(L, "rmtree", path, ENAMETOOLONG);
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
        return wtt_lua_push_errno(L, "rmtree", path, errno);
    }
    if (remove_at(AT_FDCWD, name, buf, len, sizeof(buf)) != 0) {
        return wtt_lua_push_errno(L, "rmtree", buf, errno);
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
        return wtt_lua_push_errno(L, "exists", path, errno);
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
        return wtt_lua_push_errno(L, "listdir", path, errno);
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
        return wtt_lua_push_errno(L, "listdir", path, saved);
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
        return wtt_lua_push_errno(L, "realpath", path, errno);
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
        return wtt_lua_push_errno(L, "symlink", link, errno);
    }
    lua_pushboolean(L, 1);
    return 1;
}


/*
 * sys.write_file(path, data) -> true | nil, err
 *
 * Atomic (wtt_write_file_atomic): readers see the old or the new content,
 * never a mix. An existing file keeps its permission bits; a new one gets
 * 0644.
 */
static int
l_write_file(lua_State *L)
{
    size_t      len;
    const char *path = luaL_checkstring(L, 1);
    const char *data = luaL_checklstring(L, 2, &len);

    if (wtt_write_file_atomic(path, data, len) != 0) {
        return wtt_lua_push_errno(L, "write_file", path, errno);
    }
    lua_pushboolean(L, 1);
    return 1;
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
        return wtt_lua_push_errno(L, "read_file", path, errno);
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
    return wtt_lua_push_errno(L, "read_file", path, saved);
}


/* sys.file_size(path) -> bytes | nil, err (follows symlinks) */
static int
l_file_size(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    struct stat st;

    if (stat(path, &st) != 0) {
        return wtt_lua_push_errno(L, "file_size", path, errno);
    }
    lua_pushnumber(L, (lua_Number) st.st_size);
    return 1;
}


/* sys.file_age(path) -> seconds since the last modification | nil, err
 * (lstat: a link's own age). The media sweep's grace period: a file that
 * is being written is young. Negative when the clock went back. */
static int
l_file_age(lua_State *L)
{
    const char     *path = luaL_checkstring(L, 1);
    struct stat     st;
    struct timespec now;

    if (lstat(path, &st) != 0) {
        return wtt_lua_push_errno(L, "file_age", path, errno);
    }
    clock_gettime(CLOCK_REALTIME, &now);
    lua_pushnumber(L, (lua_Number) (now.tv_sec - st.st_mtim.tv_sec)
                      + (lua_Number) (now.tv_nsec - st.st_mtim.tv_nsec) / 1e9);
    return 1;
}


/* sys.mkdirs(path [, mode]) -> true | nil, err
 * Creates `path` and its missing parents (mode 0755 by default, less the
 * umask), like `mkdir -p`; an existing directory is fine. No shell, so a
 * server never forks for it. */
static int
l_mkdirs(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    mode_t      mode = (mode_t) luaL_optinteger(L, 2, 0755);
    char        buf[PATH_MAX];
    size_t      len = strlen(path);
    size_t      i;
    struct stat st;

    if (len == 0 || len >= sizeof(buf)) {
        return wtt_lua_push_errno(L, "mkdirs", path,
                                  len == 0 ? ENOENT : ENAMETOOLONG);
    }
    memcpy(buf, path, len + 1);
    /* Each prefix ending before a '/', then the whole path. */
    for (i = 1; i <= len; i++) {
        if (i < len && buf[i] != '/') {
            continue;
        }
        buf[i] = '\0';
        if (mkdir(buf, mode) != 0 && errno != EEXIST) {
            return wtt_lua_push_errno(L, "mkdirs", buf, errno);
        }
        if (i < len) {
            buf[i] = '/';
        }
    }
    if (stat(path, &st) != 0) {
        return wtt_lua_push_errno(L, "mkdirs", path, errno);
    }
    if (!S_ISDIR(st.st_mode)) {
        return wtt_lua_push_errno(L, "mkdirs", path, ENOTDIR);
    }
    lua_pushboolean(L, 1);
    return 1;
}


static const luaL_Reg fs_funcs[] = {
    { "mkdirs",     l_mkdirs },
    { "mkdtemp",    l_mkdtemp },
    { "rmtree",     l_rmtree },
    { "exists",     l_exists },
    { "listdir",    l_listdir },
    { "realpath",   l_realpath },
    { "symlink",    l_symlink },
    { "write_file", l_write_file },
    { "read_file",  l_read_file },
    { "file_size",  l_file_size },
    { "file_age",   l_file_age },
    { NULL, NULL },
};


void
wtt__sys_open_fs(lua_State *L)
{
    luaL_register(L, NULL, fs_funcs);                /* sys */
}
