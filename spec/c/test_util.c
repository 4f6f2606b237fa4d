/*
 * test_util.c: wtt_util helpers.
 */
#include "test.h"
#include "wtt_util.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>


int
test_ct_equal(void)
{
    ASSERT(wtt_ct_equal("secret", 6, "secret", 6));
    ASSERT(!wtt_ct_equal("secret", 6, "secreT", 6));
    ASSERT(!wtt_ct_equal("secret", 6, "secret2", 7));
    ASSERT(!wtt_ct_equal("", 0, "x", 1));
    ASSERT(wtt_ct_equal("", 0, "", 0));
    ASSERT(!wtt_ct_equal("a\0b", 3, "a\0c", 3));
    return 0;
}


int
test_sha256(void)
{
    char hex[65];

    wtt_sha256_hex("abc", 3, hex);
    ASSERT_STR_EQ(hex, "ba7816bf8f01cfea414140de5dae2223"
                       "b00361a396177a9cb410ff61f20015ad");
    wtt_sha256_hex("", 0, hex);
    ASSERT_STR_EQ(hex, "e3b0c44298fc1c149afbf4c8996fb924"
                       "27ae41e4649b934ca495991b7852b855");
    return 0;
}


int
test_read_file(void)
{
    char   path[] = "/tmp/wtt-test-XXXXXX";
    int    fd = mkstemp(path);
    size_t len = 0;
    char  *s;

    ASSERT(fd >= 0);
    ASSERT(write(fd, "hello\0world", 11) == 11);
    close(fd);
    s = wtt_read_file(path, 100, &len);
    ASSERT(s != NULL && len == 11 && memcmp(s, "hello\0world", 11) == 0);
    free(s);
    s = wtt_read_file(path, 5, &len);
    ASSERT(s == NULL && errno == EFBIG);
    unlink(path);
    s = wtt_read_file(path, 100, &len);
    ASSERT(s == NULL && errno == ENOENT);
    ASSERT(wtt_read_file("/tmp", 100, &len) == NULL);
    return 0;
}


int
test_iso_time(void)
{
    char buf[40];

    ASSERT_STR_EQ(wtt_iso_time(0.5, buf, sizeof(buf)),
                  "1970-01-01T00:00:00.500Z");
    ASSERT_STR_EQ(wtt_iso_time(1700000000.0, buf, sizeof(buf)),
                  "2023-11-14T22:13:20.000Z");
    return 0;
}
