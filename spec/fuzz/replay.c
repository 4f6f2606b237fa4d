/*
 * replay.c: the main() of a fuzz target in the ordinary (gcc, plain or
 * ASan) builds. Every file named, or found directly in a directory named,
 * is fed once to the target's LLVMFuzzerTestOneInput, so ctest replays the
 * seed corpus and every regression input on each run (docs/reliability.md,
 * "Fuzzing"). A crash or sanitizer report fails the process; so does a
 * file that cannot be read, or finding no input at all, which would make
 * the check pass without checking anything.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
replay_file(const char *path)
{
    FILE   *f = fopen(path, "rb");
    uint8_t *buf;
    long    n;

    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0
        || fseek(f, 0, SEEK_SET) != 0)
    {
        fprintf(stderr, "replay: cannot read %s\n", path);
        if (f != NULL) {
            fclose(f);
        }
        return -1;
    }
    /* A copy of exactly n bytes, so ASan sees a read past the input. */
    buf = malloc(n > 0 ? (size_t) n : 1);
    if (buf == NULL || fread(buf, 1, (size_t) n, f) != (size_t) n) {
        fprintf(stderr, "replay: cannot read %s\n", path);
        free(buf);
        fclose(f);
        return -1;
    }
    fclose(f);
    LLVMFuzzerTestOneInput(buf, (size_t) n);
    free(buf);
    return 0;
}

static int
cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Replays the plain files of `dir` in name order. Returns their number or -1. */
static int
replay_dir(const char *dir)
{
    DIR           *d = opendir(dir);
    struct dirent *e;
    char         **names = NULL;
    size_t         n = 0, cap = 0;
    int            count = 0;

    if (d == NULL) {
        fprintf(stderr, "replay: cannot open %s\n", dir);
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') {
            continue;          /* ., .., and notes such as .README */
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            names = realloc(names, cap * sizeof(*names));
            if (names == NULL) {
                closedir(d);
                return -1;
            }
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    if (n > 0) {
        qsort(names, n, sizeof(*names), cmp_names);
    }
    for (size_t i = 0; i < n; i++) {
        char        path[4096];
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            if (replay_file(path) != 0) {
                count = -1;
            } else if (count >= 0) {
                count++;
            }
        }
        free(names[i]);
    }
    free(names);
    return count;
}

int
main(int argc, char **argv)
{
    int total = 0, bad = 0;

    for (int i = 1; i < argc; i++) {
        struct stat st;
        int         n;
        if (stat(argv[i], &st) != 0) {
            /* A target's regression directory exists only once something
             * was found; the corpus must exist. */
            continue;
        }
        n = S_ISDIR(st.st_mode) ? replay_dir(argv[i])
                                : (replay_file(argv[i]) == 0 ? 1 : -1);
        if (n < 0) {
            bad = 1;
        } else {
            total += n;
        }
    }
    printf("replay: %d inputs\n", total);
    if (bad || total == 0) {
        fprintf(stderr, "replay: %s\n", bad ? "unreadable input"
                                            : "no input found");
        return 1;
    }
    return 0;
}
