/*
 * test_atomic_file.c: wtt_write_file_atomic and the wtt_atomic_* writer,
 * and the lowercase error text (wtt_util).
 */
#include "test.h"
#include "wtt_util.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>


/* Number of entries of `dir` other than . and .. (-1 when unreadable). */
static int
count_entries(const char *dir)
{
    DIR           *d = opendir(dir);
    struct dirent *de;
    int            n = 0;

    if (d == NULL) {
        return -1;
    }
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
            n++;
        }
    }
    closedir(d);
    return n;
}


static int
make_dir(char *tmpl)
{
    return mkdtemp(tmpl) != NULL ? 0 : -1;
}


static void
remove_dir(const char *dir)
{
    DIR           *d = opendir(dir);
    struct dirent *de;
    char           path[512];

    if (d != NULL) {
        while ((de = readdir(d)) != NULL) {
            if (strcmp(de->d_name, ".") != 0
                && strcmp(de->d_name, "..") != 0)
            {
                snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
                if (unlink(path) != 0) {
                    rmdir(path);
                }
            }
        }
        closedir(d);
    }
    rmdir(dir);
}


int
test_atomic_write(void)
{
    char        dir[] = "/tmp/wtt-atomic-XXXXXX";
    char        path[256];
    struct stat st;
    size_t      len = 0;
    char       *s;

    ASSERT(make_dir(dir) == 0);
    snprintf(path, sizeof(path), "%s/out.bin", dir);

    /* A new file: the content, mode 0644, nothing else in the directory. */
    ASSERT(wtt_write_file_atomic(path, "hello\0world", 11) == 0);
    s = wtt_read_file(path, 100, &len);
    ASSERT(s != NULL && len == 11 && memcmp(s, "hello\0world", 11) == 0);
    free(s);
    ASSERT(stat(path, &st) == 0 && (st.st_mode & 07777) == 0644);
    ASSERT(count_entries(dir) == 1);

    /* Replacing keeps the permission bits of the file it replaces. */
    ASSERT(chmod(path, 0600) == 0);
    ASSERT(wtt_write_file_atomic(path, "new", 3) == 0);
    s = wtt_read_file(path, 100, &len);
    ASSERT(s != NULL && len == 3 && memcmp(s, "new", 3) == 0);
    free(s);
    ASSERT(stat(path, &st) == 0 && (st.st_mode & 07777) == 0600);
    ASSERT(count_entries(dir) == 1);

    /* Written in pieces: the same whole file. */
    {
        struct wtt_atomic_file f;

        ASSERT(wtt_atomic_open(&f, path) == 0);
        ASSERT(count_entries(dir) == 2);       /* the temporary name */
        ASSERT(wtt_atomic_write(&f, "ab", 2) == 0);
        ASSERT(wtt_atomic_write(&f, "cd", 2) == 0);
        ASSERT(wtt_atomic_commit(&f) == 0);
        s = wtt_read_file(path, 100, &len);
        ASSERT(s != NULL && len == 4 && memcmp(s, "abcd", 4) == 0);
        free(s);
        ASSERT(count_entries(dir) == 1);

        /* Aborted: the old content stays, the temporary file goes. */
        ASSERT(wtt_atomic_open(&f, path) == 0);
        ASSERT(wtt_atomic_write(&f, "zz", 2) == 0);
        wtt_atomic_abort(&f);
        wtt_atomic_abort(&f);                  /* twice is harmless */
        s = wtt_read_file(path, 100, &len);
        ASSERT(s != NULL && len == 4 && memcmp(s, "abcd", 4) == 0);
        free(s);
        ASSERT(count_entries(dir) == 1);
    }
    remove_dir(dir);
    return 0;
}


int
test_atomic_write_errors(void)
{
    char dir[] = "/tmp/wtt-atomic-XXXXXX";
    char path[256];

    ASSERT(make_dir(dir) == 0);

    /* A directory nobody can create files in (even root, in /proc). */
    errno = 0;
    ASSERT(wtt_write_file_atomic("/proc/wtt-atomic-test", "x", 1) == -1);
    ASSERT(errno != 0);

    /* A directory that does not exist. */
    snprintf(path, sizeof(path), "%s/missing/out.bin", dir);
    errno = 0;
    ASSERT(wtt_write_file_atomic(path, "x", 1) == -1);
    ASSERT(errno == ENOENT);

    /* The rename fails (a directory is in the way): an error, and no
     * temporary file left behind. */
    snprintf(path, sizeof(path), "%s/taken", dir);
    ASSERT(mkdir(path, 0755) == 0);
    errno = 0;
    ASSERT(wtt_write_file_atomic(path, "x", 1) == -1);
    ASSERT(errno == EISDIR);
    ASSERT(count_entries(dir) == 1);           /* only "taken" */

    remove_dir(dir);
    return 0;
}


int
test_strerror_lower(void)
{
    char buf[128], small[4];

    ASSERT_STR_EQ(wtt_strerror(ENOENT, buf, sizeof(buf)),
                  "no such file or directory");
    ASSERT_STR_EQ(wtt_lowercase("Name or Service", buf, sizeof(buf)),
                  "name or service");
    ASSERT_STR_EQ(wtt_lowercase("ABCDEF", small, sizeof(small)), "abc");
    ASSERT_STR_EQ(wtt_lowercase(NULL, buf, sizeof(buf)), "unknown error");
    return 0;
}
