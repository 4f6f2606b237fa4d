/*
 * runner.c: the C unit test runner. Every test is declared in TESTS below
 * (libuv's TEST_DECLARE pattern); ctest runs this binary once.
 */
#include "test.h"

#include <stdio.h>
#include <string.h>

#define X(name) int test_##name(void);
WTT_TESTS(X)
#undef X

static const struct {
    const char *name;
    int       (*fn)(void);
} tests[] = {
#define X(name) { #name, test_##name },
    WTT_TESTS(X)
#undef X
};


int
main(int argc, char **argv)
{
    int failed = 0, passed = 0, skipped = 0;

    for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
        int rc;

        if (argc > 1 && strcmp(argv[1], tests[i].name) != 0) {
            continue;
        }
        fflush(stdout);
        rc = tests[i].fn();
        if (rc == 0) {
            printf("ok %s\n", tests[i].name);
            passed++;
        } else if (rc == WTT_TEST_SKIP) {
            /* The test printed its reason (SKIP); it passed nothing. */
            printf("skip %s\n", tests[i].name);
            skipped++;
        } else {
            printf("FAIL %s\n", tests[i].name);
            failed++;
        }
    }
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    return failed != 0;
}
