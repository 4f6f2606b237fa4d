/*
 * fuzz_model.c: the model loader (core/engine/wtt_nn.c: model.json, a
 * TF.js graph model, parsed with cJSON; its nodes, attributes and inputs;
 * the weights manifest against the shard bytes; the input's shape; the
 * constant folding and the plan for the CPU backend), as a worker loads a
 * model folder an operator points it at.
 *
 * Input: model.json, a NUL byte, then the shard (group1-shard1of1.bin);
 * without a NUL, the shard is empty. Both are written into a folder of
 * their own (under TMPDIR) and loaded with Basic Pitch's signature
 * (wtt_pipeline_model_params: input_2 in, Identity, Identity_1 and
 * Identity_2 out), one thread, no SHA256SUMS. A model that loads is freed
 * without running: a run's cost grows with the shapes the input declares.
 */
#include "wtt_nn.h"
#include "wtt_pipeline.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[256];

static void
remove_dir(void)
{
    char path[300];

    snprintf(path, sizeof(path), "%s/model.json", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/group1-shard1of1.bin", dir);
    unlink(path);
    rmdir(dir);
}

static void
put(const char *name, const uint8_t *data, size_t n)
{
    char  path[300];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "wb");
    if (f == NULL || (n > 0 && fwrite(data, 1, n, f) != n) || fclose(f) != 0) {
        perror(path);
        abort();
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct wtt_model_params p = wtt_pipeline_model_params();
    struct wtt_model       *m = NULL;
    const uint8_t          *nul = memchr(data, '\0', size);
    size_t                  jlen = nul != NULL ? (size_t) (nul - data) : size;
    char                    err[512];

    if (dir[0] == '\0') {
        const char *tmp = getenv("TMPDIR");
        snprintf(dir, sizeof(dir), "%s/wtt-fuzz-model-XXXXXX",
                 tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
        if (mkdtemp(dir) == NULL) {
            perror("mkdtemp");
            abort();
        }
        atexit(remove_dir);
    }
    put("model.json", data, jlen);
    put("group1-shard1of1.bin", nul != NULL ? nul + 1 : data,
        nul != NULL ? size - jlen - 1 : 0);
    p.dir = dir;
    p.threads = 1;
    err[0] = '\0';
    if (wtt_model_load(&p, &m, err, sizeof(err)) == 0) {
        wtt_model_free(m);
        snprintf(err, sizeof(err), "loaded");
    } else if (err[0] == '\0') {
        abort();                     /* a refusal must say why */
    }
    if (getenv("WTT_FUZZ_VERBOSE") != NULL) {
        fprintf(stderr, "model: %s\n", err);   /* for writing seeds */
    }
    return 0;
}
