/*
 * wtt_nn.c: loading, planning and running a TF.js graph (see wtt_nn.h).
 *
 * Loading parses model.json with cJSON, reads the weight shards in manifest
 * order and builds one node per graph node. Planning runs every node whose
 * inputs do not depend on the fed input once, at load time, on the host
 * backend (constant folding: shape arithmetic and weight transposes
 * disappear), for a batch of one item. Each worker thread gets its own copy
 * of the remaining nodes ("exec") with its own buffers, allocated on the
 * first item and reused; items are spread over the workers. Kernels are
 * reached only through the backend tables (wtt_backend.h): the host's for
 * folding, the chosen one for every run.
 */
#include "wtt_nn.h"
#include "wtt_backend_reg.h"
#include "wtt_log.h"
#include "wtt_tensor.h"
#include "wtt_util.h"
#include "wtt_cpus.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_JSON_BYTES   (16u << 20)
#define MAX_SHARD_BYTES  (256u << 20)
#define MAX_THREADS      64


/* One graph node as parsed: what every exec copies. */
typedef struct {
    struct wtt_node  tmpl;          /* op and parameters; out unused */
    char            *name;
    int              nin;
    int              in[WTT_MAX_SRC];
    int              is_const;
    const char      *tf_op;         /* the op's name in model.json */
    int              min_in, max_in; /* inputs its op takes */
    int64_t          shape[WTT_MAX_RANK];   /* Placeholder: attr shape */
    int              shape_rank;    /* -1: none given */
} gnode_t;

/* A worker's private instance of the non-constant nodes. */
typedef struct {
    struct wtt_node *nodes;         /* one per graph node */
    struct wtt_tensor input;        /* `batch` items of the placeholder */
    void            *ctx;           /* the backend's context (stream...) */
    int              batch;         /* items one run takes (halved on OOM) */
    void            *arena;         /* the nodes' outputs, lent (or NULL) */
} exec_t;

struct wtt_model {
    int                nodes_n;
    gnode_t           *g;
    struct wtt_node   *consts;      /* folded outputs, shared read-only */
    /* Copies of the constants a run reads, in the run backend's memory;
     * NULL when that backend is the host's (it reads consts directly). */
    struct wtt_tensor *staged;
    int               *order;       /* topological order of all nodes */
    int                order_n;
    int                input_node;
    int64_t            in_ne[WTT_MAX_RANK];     /* batch of one */
    int                in_rank;
    size_t             in_size;
    int                out_node[WTT_MODEL_MAX_OUTPUTS];
    size_t             out_size[WTT_MODEL_MAX_OUTPUTS];
    int                n_outputs;
    int                nthreads;
    int                batch;       /* items per worker run, at load */
    int                device;
    long               runs;        /* wtt_model_run calls (test hook) */
    long               fault_after; /* test hook: fail runs past this */
    exec_t            *execs;
    struct pool       *pool;        /* the run threads, once started */
    int                pool_failed; /* they could not start: make them */
    const struct wtt_backend *be;   /* runs the execs */
    const struct wtt_backend *host; /* holds the weights, folds constants */
    char               hash[65];
};

struct pool;
static struct pool *pool_start(struct wtt_model *m);
static void pool_stop(struct wtt_model *m);

/* With the number of inputs each op takes (control inputs, "^name", aside):
 * the kernels read their sources without counting them, so a node with
 * fewer is refused here (a graph whose Identity had no input made the
 * folding read a NULL source: spec/fuzz/regress/model/). */
static const struct {
    const char *name;
    enum wtt_op op;
    int         min_in, max_in;
} op_names[] = {
    { "Const", WTT_OP_CONST, 0, 0 },
    { "Placeholder", WTT_OP_PLACEHOLDER, 0, 0 },
    { "Identity", WTT_OP_IDENTITY, 1, 1 },
    { "Shape", WTT_OP_SHAPE, 1, 1 },
    { "Reshape", WTT_OP_RESHAPE, 2, 2 },
    { "ExpandDims", WTT_OP_EXPAND_DIMS, 2, 2 },
    { "Squeeze", WTT_OP_SQUEEZE, 1, 1 },
    { "StridedSlice", WTT_OP_STRIDED_SLICE, 4, 4 },
    { "Pack", WTT_OP_PACK, 1, WTT_MAX_SRC },
    { "ConcatV2", WTT_OP_CONCAT, 2, WTT_MAX_SRC },
    { "Transpose", WTT_OP_TRANSPOSE, 2, 2 },
    { "Pad", WTT_OP_PAD, 2, 2 },
    { "MirrorPad", WTT_OP_MIRROR_PAD, 2, 2 },
    { "Conv2D", WTT_OP_CONV2D, 2, 2 },
    { "_FusedConv2D", WTT_OP_CONV2D, 2, WTT_MAX_SRC },
    { "Add", WTT_OP_ADD, 2, 2 },
    { "AddV2", WTT_OP_ADD, 2, 2 },
    { "Sub", WTT_OP_SUB, 2, 2 },
    { "Mul", WTT_OP_MUL, 2, 2 },
    { "DivNoNan", WTT_OP_DIV_NO_NAN, 2, 2 },
    { "Neg", WTT_OP_NEG, 1, 1 },
    { "Square", WTT_OP_SQUARE, 1, 1 },
    { "Sqrt", WTT_OP_SQRT, 1, 1 },
    { "Log", WTT_OP_LOG, 1, 1 },
    { "Sigmoid", WTT_OP_SIGMOID, 1, 1 },
    { "Sum", WTT_OP_SUM, 2, 2 },
    { "Min", WTT_OP_MIN, 2, 2 },
    { "Max", WTT_OP_MAX, 2, 2 },
};

struct wtt_model_params
wtt_model_default_params(void)
{
    struct wtt_model_params p;

    memset(&p, 0, sizeof(p));
    return p;
}


/* ---------------------------------------------------------------------------
 * Tensor memory through a backend's buffers
 * ------------------------------------------------------------------------- */

/* Makes `t` an owned tensor of `dtype` and shape `ne[rank]` in `b`'s
 * memory (t must own nothing yet). Returns 0, or -1 out of memory. */
static int
tensor_new(const struct wtt_backend *b, void *ctx, struct wtt_tensor *t,
           int dtype, int rank, const int64_t *ne)
{
    int64_t n = 1;
    size_t  bytes;

    for (int i = 0; i < rank; i++) {
        n *= ne[i];
    }
    bytes = (size_t) n * 4;
    t->data = b->buffer_alloc(ctx, bytes);
    if (t->data == NULL) {
        return -1;
    }
    t->cap = bytes ? bytes : 1;
    t->dtype = dtype;
    t->rank = rank;
    memcpy(t->ne, ne, sizeof(int64_t) * (size_t) rank);
    return 0;
}


static void
tensor_release(const struct wtt_backend *b, void *ctx, struct wtt_tensor *t)
{
    if (t->cap != 0 && !t->lent) {
        b->buffer_free(ctx, t->data);
    }
    t->data = NULL;
    t->cap = 0;
    t->lent = 0;
}


/* ---------------------------------------------------------------------------
 * Parsing model.json
 * ------------------------------------------------------------------------- */

static int
find_node(const struct wtt_model *m, const char *name)
{
    for (int i = 0; i < m->nodes_n; i++) {
        if (strcmp(m->g[i].name, name) == 0) {
            return i;
        }
    }
    return -1;
}


static cJSON *
attr(const cJSON *node, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(node, "attr"), key);
}


static long
attr_int(const cJSON *node, const char *key, long def)
{
    cJSON *a = attr(node, key), *i;

    i = cJSON_GetObjectItemCaseSensitive(a, "i");
    if (cJSON_IsString(i)) {
        return strtol(i->valuestring, NULL, 10);
    }
    if (cJSON_IsNumber(i)) {
        return (long) i->valuedouble;
    }
    return def;
}


/* attr.<key>.list.i as ints; returns the count. */
static int
attr_ints(const cJSON *node, const char *key, int *out, int max)
{
    cJSON *list = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(attr(node, key), "list"), "i");
    cJSON *e;
    int    n = 0;

    cJSON_ArrayForEach(e, list) {
        if (n < max) {
            out[n++] = cJSON_IsString(e) ? atoi(e->valuestring)
                                         : (int) e->valuedouble;
        }
    }
    return n;
}


static int
b64val(int c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}


/* TF.js stores string attributes base64-encoded. */
static void
b64decode(const char *in, char *out, size_t max)
{
    size_t   n = 0;
    unsigned acc = 0;
    int      bits = 0;

    for (; *in && n + 1 < max; in++) {
        int v = b64val((unsigned char) *in);
        if (v < 0) {
            continue;
        }
        acc = (acc << 6) | (unsigned) v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (char) ((acc >> bits) & 0xff);
        }
    }
    out[n] = '\0';
}


static void
attr_str(const cJSON *node, const char *key, char *out, size_t max)
{
    cJSON *s = cJSON_GetObjectItemCaseSensitive(attr(node, key), "s");

    out[0] = '\0';
    if (cJSON_IsString(s)) {
        b64decode(s->valuestring, out, max);
    }
}


static int
parse_node(struct wtt_model *m, int idx, const cJSON *jn, char *err,
           size_t errlen)
{
    gnode_t         *g = &m->g[idx];
    struct wtt_node *t = &g->tmpl;
    const cJSON     *op = cJSON_GetObjectItemCaseSensitive(jn, "op");
    char             s[64];
    int              found = 0;

    for (size_t i = 0; i < sizeof(op_names) / sizeof(op_names[0]); i++) {
        if (cJSON_IsString(op) && strcmp(op->valuestring, op_names[i].name)
                                  == 0)
        {
            t->op = op_names[i].op;
            g->tf_op = op_names[i].name;
            g->min_in = op_names[i].min_in;
            g->max_in = op_names[i].max_in;
            found = 1;
        }
    }
    if (!found) {
        snprintf(err, errlen, "unsupported op '%s' at node '%s'",
                 cJSON_IsString(op) ? op->valuestring : "?", g->name);
        return -1;
    }
    t->name = g->name;
    for (int i = 0; i < 4; i++) {
        t->strides[i] = 1;
        t->dilations[i] = 1;
    }
    attr_ints(jn, "strides", t->strides, 4);
    attr_ints(jn, "dilations", t->dilations, 4);
    attr_str(jn, "padding", s, sizeof(s));
    if (t->op == WTT_OP_CONV2D) {
        if (strcmp(s, "SAME") == 0) {
            t->padding = WTT_PAD_SAME;
        } else if (strcmp(s, "VALID") == 0) {
            t->padding = WTT_PAD_VALID;
        } else {
            snprintf(err, errlen, "node '%s': unsupported padding '%s'",
                     g->name, s);
            return -1;
        }
        attr_str(jn, "data_format", s, sizeof(s));
        if (s[0] != '\0' && strcmp(s, "NHWC") != 0) {
            snprintf(err, errlen, "node '%s': unsupported data format '%s'",
                     g->name, s);
            return -1;
        }
    }
    {
        cJSON *fl = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(attr(jn, "fused_ops"), "list"),
            "s");
        cJSON *e;
        cJSON_ArrayForEach(e, fl) {
            char f[32];
            b64decode(cJSON_IsString(e) ? e->valuestring : "", f, sizeof(f));
            if (strcmp(f, "BiasAdd") == 0) {
                t->fused_bias = 1;
            } else if (strcmp(f, "Relu") == 0) {
                t->fused_relu = 1;
            } else {
                snprintf(err, errlen, "node '%s': unsupported fused op '%s'",
                         g->name, f);
                return -1;
            }
        }
    }
    t->begin_mask = (int) attr_int(jn, "begin_mask", 0);
    t->end_mask = (int) attr_int(jn, "end_mask", 0);
    t->ellipsis_mask = (int) attr_int(jn, "ellipsis_mask", 0);
    t->new_axis_mask = (int) attr_int(jn, "new_axis_mask", 0);
    t->shrink_axis_mask = (int) attr_int(jn, "shrink_axis_mask", 0);
    t->axis = (int) attr_int(jn, "axis", 0);
    {
        cJSON *kd = cJSON_GetObjectItemCaseSensitive(attr(jn, "keep_dims"),
                                                     "b");
        t->keep_dims = cJSON_IsTrue(kd);
    }
    t->n_squeeze = attr_ints(jn, "squeeze_dims", t->squeeze_dims,
                             WTT_MAX_RANK);
    attr_str(jn, "mode", s, sizeof(s));
    t->reflect = strcmp(s, "SYMMETRIC") != 0;
    g->shape_rank = -1;
    if (t->op == WTT_OP_PLACEHOLDER) {
        cJSON *dims = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(attr(jn, "shape"), "shape"),
            "dim");
        cJSON *d;
        g->shape_rank = 0;
        cJSON_ArrayForEach(d, dims) {
            cJSON *size = cJSON_GetObjectItemCaseSensitive(d, "size");
            if (g->shape_rank >= WTT_MAX_RANK) {
                snprintf(err, errlen, "node '%s': shape rank above %d",
                         g->name, WTT_MAX_RANK);
                return -1;
            }
            g->shape[g->shape_rank++] =
                cJSON_IsString(size) ? strtoll(size->valuestring, NULL, 10)
                : cJSON_IsNumber(size) ? (int64_t) size->valuedouble : -1;
        }
    }
    return 0;
}


/* Resolves input names ("node", "node:0"; "^ctrl" is skipped). */
static int
link_inputs(struct wtt_model *m, int idx, const cJSON *jn, char *err,
            size_t errlen)
{
    gnode_t *g = &m->g[idx];
    cJSON   *in = cJSON_GetObjectItemCaseSensitive(jn, "input"), *e;

    cJSON_ArrayForEach(e, in) {
        char  name[512];
        char *colon;
        int   j;

        if (!cJSON_IsString(e) || e->valuestring[0] == '^') {
            continue;
        }
        snprintf(name, sizeof(name), "%s", e->valuestring);
        colon = strrchr(name, ':');
        if (colon != NULL && strcmp(colon, ":0") == 0) {
            *colon = '\0';
        } else if (colon != NULL) {
            snprintf(err, errlen, "node '%s': multi-output input '%s'",
                     g->name, e->valuestring);
            return -1;
        }
        j = find_node(m, name);
        if (j < 0 || g->nin >= WTT_MAX_SRC) {
            snprintf(err, errlen, "node '%s': unknown input '%s'", g->name,
                     e->valuestring);
            return -1;
        }
        g->in[g->nin++] = j;
    }
    if (g->nin < g->min_in || g->nin > g->max_in) {
        snprintf(err, errlen, "node '%s': %s takes %d to %d inputs, not %d",
                 g->name, g->tf_op, g->min_in, g->max_in, g->nin);
        return -1;
    }
    return 0;
}


/* Reads the weight shards and assigns them to the Const nodes. */
static int
load_weights(struct wtt_model *m, const char *dir, const cJSON *manifest,
             char *err, size_t errlen)
{
    const cJSON *group;
    char        *blob = NULL;
    size_t       blob_len = 0, off = 0;
    int          rc = -1;

    cJSON_ArrayForEach(group, manifest) {
        const cJSON *paths = cJSON_GetObjectItemCaseSensitive(group, "paths");
        const cJSON *weights = cJSON_GetObjectItemCaseSensitive(group,
                                                                "weights");
        const cJSON *p, *w;

        free(blob);
        blob = NULL;
        blob_len = 0;
        off = 0;
        cJSON_ArrayForEach(p, paths) {
            char   path[PATH_MAX];
            size_t len;
            char  *part;
            if (!cJSON_IsString(p) || strchr(p->valuestring, '/') != NULL) {
                snprintf(err, errlen, "weights manifest: bad shard path");
                goto done;
            }
            snprintf(path, sizeof(path), "%s/%s", dir, p->valuestring);
            part = wtt_read_file(path, MAX_SHARD_BYTES, &len);
            if (part == NULL) {
                snprintf(err, errlen, "%s: %s", path, strerror(errno));
                goto done;
            }
            blob = wtt_realloc(blob, blob_len + len + 1);
            memcpy(blob + blob_len, part, len);
            blob_len += len;
            free(part);
        }
        cJSON_ArrayForEach(w, weights) {
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(w, "name");
            const cJSON *shape = cJSON_GetObjectItemCaseSensitive(w, "shape");
            const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(w, "dtype");
            const cJSON *d;
            int64_t      ne[WTT_MAX_RANK];
            int          rank = 0, idx, dt;
            size_t       bytes;

            if (!cJSON_IsString(name) || !cJSON_IsString(dtype)) {
                snprintf(err, errlen, "weights manifest: malformed entry");
                goto done;
            }
            if (cJSON_GetObjectItemCaseSensitive(w, "quantization") != NULL) {
                snprintf(err, errlen, "weight '%s': quantized weights are "
                         "not supported", name->valuestring);
                goto done;
            }
            cJSON_ArrayForEach(d, shape) {
                if (rank >= WTT_MAX_RANK || !cJSON_IsNumber(d)
                    || d->valuedouble < 0)
                {
                    snprintf(err, errlen, "weight '%s': bad shape",
                             name->valuestring);
                    goto done;
                }
                ne[rank++] = (int64_t) d->valuedouble;
            }
            if (strcmp(dtype->valuestring, "float32") == 0) {
                dt = WTT_F32;
            } else if (strcmp(dtype->valuestring, "int32") == 0) {
                dt = WTT_I32;
            } else {
                snprintf(err, errlen, "weight '%s': unsupported dtype '%s'",
                         name->valuestring, dtype->valuestring);
                goto done;
            }
            idx = find_node(m, name->valuestring);
            if (idx < 0 || m->g[idx].tmpl.op != WTT_OP_CONST) {
                snprintf(err, errlen, "weight '%s' has no Const node",
                         name->valuestring);
                goto done;
            }
            tensor_release(m->host, NULL, &m->consts[idx].out);
            if (tensor_new(m->host, NULL, &m->consts[idx].out, dt, rank, ne)
                != 0)
            {
                snprintf(err, errlen, "out of memory");
                goto done;
            }
            bytes = (size_t) wtt_tensor_nelem(&m->consts[idx].out) * 4;
            if (off + bytes > blob_len) {
                snprintf(err, errlen, "weights: shards hold %zu bytes, the "
                         "manifest needs more (at '%s')", blob_len,
                         name->valuestring);
                goto done;
            }
            memcpy(m->consts[idx].out.data, blob + off, bytes);
            off += bytes;
            m->g[idx].is_const = 2;     /* has data */
        }
        if (off != blob_len) {
            snprintf(err, errlen, "weights: shards hold %zu bytes, the "
                     "manifest describes %zu", blob_len, off);
            goto done;
        }
    }
    for (int i = 0; i < m->nodes_n; i++) {
        if (m->g[i].tmpl.op == WTT_OP_CONST && m->g[i].is_const != 2) {
            snprintf(err, errlen, "Const node '%s' has no weights",
                     m->g[i].name);
            goto done;
        }
    }
    rc = 0;

done:
    free(blob);
    return rc;
}


/* Checks files listed in SHA256SUMS (when present) and computes the hash. */
static int
check_sums(struct wtt_model *m, const char *dir, char *err, size_t errlen)
{
    char   path[PATH_MAX], *sums, *line, *save = NULL, all[4096];
    size_t len, alen = 0;

    snprintf(path, sizeof(path), "%s/SHA256SUMS", dir);
    sums = wtt_read_file(path, 1 << 16, &len);
    if (sums == NULL) {
        m->hash[0] = '\0';
        return 0;     /* optional: a model folder without a manifest */
    }
    for (line = strtok_r(sums, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save))
    {
        char   want[65], name[256], got[65], fpath[PATH_MAX];
        char  *data;
        size_t dlen;

        /* sha256sum lines: "<hex>  <name>" or "<hex> *<name>". */
        if (sscanf(line, "%64s %255s", want, name) != 2) {
            continue;
        }
        if (name[0] == '*') {
            memmove(name, name + 1, strlen(name));
        }
        if (strlen(want) != 64 || strchr(name, '/') != NULL) {
            snprintf(err, errlen, "SHA256SUMS: malformed line '%.80s'",
                     line);
            free(sums);
            return -1;
        }
        snprintf(fpath, sizeof(fpath), "%s/%s", dir, name);
        data = wtt_read_file(fpath, MAX_SHARD_BYTES, &dlen);
        if (data == NULL) {
            snprintf(err, errlen, "%s: %s", fpath, strerror(errno));
            free(sums);
            return -1;
        }
        wtt_sha256_hex(data, dlen, got);
        free(data);
        if (strcmp(got, want) != 0) {
            snprintf(err, errlen, "%s: checksum mismatch (got %.16s..., "
                     "expected %.16s...)", name, got, want);
            free(sums);
            return -1;
        }
        alen += (size_t) snprintf(all + alen, sizeof(all) - alen, "%s %s\n",
                                  name, got);
        if (alen >= sizeof(all)) {
            alen = sizeof(all) - 1;
        }
    }
    free(sums);
    wtt_sha256_hex(all, alen, m->hash);
    return 0;
}


/* ---------------------------------------------------------------------------
 * Planning
 * ------------------------------------------------------------------------- */

static int
topo_visit(struct wtt_model *m, int i, char *state, char *err, size_t errlen)
{
    if (state[i] == 2) {
        return 0;
    }
    if (state[i] == 1) {
        snprintf(err, errlen, "graph has a cycle at '%s'", m->g[i].name);
        return -1;
    }
    state[i] = 1;
    for (int k = 0; k < m->g[i].nin; k++) {
        if (topo_visit(m, m->g[i].in[k], state, err, errlen) != 0) {
            return -1;
        }
    }
    state[i] = 2;
    m->order[m->order_n++] = i;
    return 0;
}


/* Points exec node i's sources at the right tensors: constants staged in
 * the run backend's memory once there are any (after folding). */
static void
wire(struct wtt_model *m, exec_t *x, int i)
{
    struct wtt_node *n = &x->nodes[i];

    n->nsrc = m->g[i].nin;
    for (int k = 0; k < n->nsrc; k++) {
        int j = m->g[i].in[k];
        if (!m->g[j].is_const) {
            n->src[k] = &x->nodes[j].out;
        } else if (m->staged != NULL && x->nodes != m->consts
                   && m->staged[j].data != NULL)
        {
            n->src[k] = &m->staged[j];
        } else {
            n->src[k] = &m->consts[j].out;
        }
    }
}


/* Folds every node that does not depend on the input, once. */
static int
fold(struct wtt_model *m, char *err, size_t errlen)
{
    exec_t shell = { .nodes = m->consts };

    for (int k = 0; k < m->order_n; k++) {
        int        i = m->order[k];
        gnode_t   *g = &m->g[i];
        int        all = g->tmpl.op != WTT_OP_PLACEHOLDER;
        const char *why = NULL;

        if (g->tmpl.op == WTT_OP_CONST) {
            continue;
        }
        for (int s = 0; s < g->nin && all; s++) {
            all = m->g[g->in[s]].is_const != 0;
        }
        if (!all) {
            continue;
        }
        wire(m, &shell, i);
        if (m->host->compute(&m->consts[i], &why) != 0) {
            snprintf(err, errlen, "folding '%s': %s", g->name, why);
            return -1;
        }
        /* A view of another constant is fine: constants never change. */
        g->is_const = 1;
    }
    return 0;
}


/* Copies every constant a run reads into the run backend's memory, when
 * that backend is not the host's (with the first worker's context: the
 * workers share them read-only). */
static int
stage_consts(struct wtt_model *m, char *err, size_t errlen)
{
    const char *why = NULL;
    void       *ctx = m->execs[0].ctx;
    int         rc;

    if (m->be == m->host) {
        return 0;
    }
    m->staged = wtt_calloc((size_t) m->nodes_n, sizeof(struct wtt_tensor));
    for (int i = 0; i < m->nodes_n; i++) {
        if (m->g[i].is_const || m->g[i].tmpl.op == WTT_OP_PLACEHOLDER) {
            continue;
        }
        for (int k = 0; k < m->g[i].nin; k++) {
            int                      j = m->g[i].in[k];
            const struct wtt_tensor *c = &m->consts[j].out;
            struct wtt_tensor       *t = &m->staged[j];
            /* int32 constants are shape arithmetic (axes, paddings,
             * permutations), which a device backend reads on the host:
             * they stay in host memory, unstaged (kernels/cuda/ops.h). */
            if (!m->g[j].is_const || t->data != NULL
                || c->dtype == WTT_I32)
            {
                continue;
            }
            if (tensor_new(m->be, ctx, t, c->dtype, c->rank, c->ne) != 0) {
                snprintf(err, errlen, "%s backend: out of memory staging "
                         "'%s'", m->be->name, m->g[j].name);
                return WTT_ENOMEM;
            }
            rc = m->be->buffer_set(ctx, t->data, c->data,
                                   (size_t) wtt_tensor_nelem(c) * 4, &why);
            if (rc != 0) {
                snprintf(err, errlen, "%s backend: staging '%s': %s",
                         m->be->name, m->g[j].name, why);
                return rc;
            }
        }
    }
    rc = m->be->sync(ctx, &why);
    if (rc != 0) {
        snprintf(err, errlen, "%s backend: %s", m->be->name, why);
    }
    return rc;
}


/* The input buffer for `batch` items; the input node views it. */
static int
exec_input(struct wtt_model *m, exec_t *x, int batch)
{
    int64_t ne[WTT_MAX_RANK];

    memcpy(ne, m->in_ne, sizeof(ne));
    ne[0] = batch;
    tensor_release(m->be, x->ctx, &x->input);
    if (tensor_new(m->be, x->ctx, &x->input, WTT_F32, m->in_rank, ne) != 0) {
        return WTT_ENOMEM;
    }
    x->batch = batch;
    return 0;
}


static int
exec_init(struct wtt_model *m, exec_t *x, char *err, size_t errlen)
{
    x->nodes = wtt_calloc((size_t) m->nodes_n, sizeof(struct wtt_node));
    for (int i = 0; i < m->nodes_n; i++) {
        x->nodes[i] = m->g[i].tmpl;
        memset(&x->nodes[i].out, 0, sizeof(x->nodes[i].out));
        x->nodes[i].ctx = x->ctx;
    }
    if (exec_input(m, x, 1) != 0) {
        snprintf(err, errlen, "%s backend: out of memory", m->be->name);
        return WTT_ENOMEM;
    }
    for (int i = 0; i < m->nodes_n; i++) {
        if (!m->g[i].is_const) {
            wire(m, x, i);
        }
    }
    return 0;
}


static void
node_release(const struct wtt_backend *b, void *ctx, struct wtt_node *n)
{
    tensor_release(b, ctx, &n->out);
    if (n->scratch_free != NULL) {
        n->scratch_free(n->scratch);
    }
    n->scratch = NULL;
    n->scratch_free = NULL;
}


/* Releases the buffers of the non-constant nodes (they are allocated again,
 * at the size the next run needs). */
static void
exec_release_nodes(struct wtt_model *m, exec_t *x)
{
    for (int i = 0; x->nodes != NULL && i < m->nodes_n; i++) {
        if (!m->g[i].is_const && i != m->input_node) {
            node_release(m->be, x->ctx, &x->nodes[i]);
        }
    }
    if (x->arena != NULL) {
        m->be->buffer_free(x->ctx, x->arena);
        x->arena = NULL;
    }
}


/* ---------------------------------------------------------------------------
 * The arena: a host exec's activations in one buffer, by lifetime
 *
 * Every node owning its output buffer for good makes a window stream
 * through 26 MB of activations (Basic Pitch, one window), most of it dead
 * long before the window ends, so each op reads and writes memory no
 * cache holds. Once a warm-up run has sized every output, each is given a
 * slot of one buffer that no output alive at the same time shares (greedy
 * by size, lowest offset that fits: 5.6 MB here), and the tensor keeps it
 * as lent memory: kernels write into it as into their own buffer, and an
 * output that outgrew its slot would get a buffer of its own rather than
 * free the slot. Only for the host backend at one item per run (its
 * default), where every run has the shapes of the warm-up, and so the
 * same views.
 * ------------------------------------------------------------------------- */

#define SLOT_ALIGN 64

typedef struct {
    int    node;
    int    first, last;     /* positions in m->order: written, last read */
    size_t size, off;
} slot_t;


static int
slot_by_size(const void *a, const void *b)
{
    const slot_t *x = a, *y = b;

    if (x->size != y->size) {
        return x->size < y->size ? 1 : -1;
    }
    return x->first - y->first;
}


/* The node owning the buffer that node j's output lies in, or -1 (a
 * constant, the input, or nothing the exec owns). */
static int
owner_of(struct wtt_model *m, exec_t *x, int j)
{
    const char *p = x->nodes[j].out.data;

    if (m->g[j].is_const || j == m->input_node || p == NULL) {
        return -1;
    }
    if (x->nodes[j].out.cap > 0) {
        return j;
    }
    for (int i = 0; i < m->nodes_n; i++) {          /* a view */
        const struct wtt_tensor *t = &x->nodes[i].out;
        if (!m->g[i].is_const && i != m->input_node && t->cap > 0
            && p >= (const char *) t->data
            && p < (const char *) t->data + t->cap)
        {
            return i;
        }
    }
    return -1;
}


/* Places each slot at the lowest offset clear of the slots already placed
 * that are alive at the same time. Returns the arena's size. */
static size_t
place_slots(slot_t *s, int n)
{
    size_t total = 0;

    qsort(s, (size_t) n, sizeof(*s), slot_by_size);
    for (int a = 0; a < n; a++) {
        size_t off = 0;
        int    moved = 1;
        while (moved) {
            moved = 0;
            for (int b = 0; b < a; b++) {
                if (s[b].last < s[a].first || s[a].last < s[b].first) {
                    continue;                   /* never alive together */
                }
                if (off < s[b].off + s[b].size && s[b].off < off + s[a].size) {
                    off = (s[b].off + s[b].size + SLOT_ALIGN - 1)
                          / SLOT_ALIGN * SLOT_ALIGN;
                    moved = 1;
                }
            }
        }
        s[a].off = off;
        if (off + s[a].size > total) {
            total = off + s[a].size;
        }
    }
    return total;
}


/* After a warm-up run: the outputs moved into one arena. On failure
 * (memory) the exec keeps its own buffers, which work as before. */
static void
exec_arena(struct wtt_model *m, exec_t *x)
{
    int    *slot_of = wtt_calloc((size_t) m->nodes_n, sizeof(int));
    slot_t *s = wtt_calloc((size_t) m->nodes_n, sizeof(slot_t));
    int     n = 0;
    size_t  total;
    char   *arena;

    if (m->be != m->host || x->batch != 1 || x->arena != NULL) {
        goto out;
    }
    for (int i = 0; i < m->nodes_n; i++) {
        slot_of[i] = -1;
    }
    for (int k = 0; k < m->order_n; k++) {
        int i = m->order[k];
        if (!m->g[i].is_const && i != m->input_node
            && x->nodes[i].out.cap > 0 && !x->nodes[i].out.lent)
        {
            slot_of[i] = n;
            s[n].node = i;
            s[n].first = s[n].last = k;
            s[n].size = x->nodes[i].out.cap;
            n++;
        }
    }
    /* A slot lives until the last read of its node or of any view of it;
     * the outputs, until the run has copied them out. */
    for (int k = 0; k < m->order_n; k++) {
        int i = m->order[k];
        if (m->g[i].is_const) {
            continue;
        }
        for (int q = 0; q < m->g[i].nin; q++) {
            int o = owner_of(m, x, m->g[i].in[q]);
            if (o >= 0 && slot_of[o] >= 0 && s[slot_of[o]].last < k) {
                s[slot_of[o]].last = k;
            }
        }
    }
    for (int k = 0; k < m->n_outputs; k++) {
        int o = owner_of(m, x, m->out_node[k]);
        if (o >= 0 && slot_of[o] >= 0) {
            s[slot_of[o]].last = m->order_n;
        }
    }
    total = place_slots(s, n);
    arena = total > 0 ? m->be->buffer_alloc(x->ctx, total) : NULL;
    if (arena == NULL) {
        goto out;
    }
    for (int a = 0; a < n; a++) {
        struct wtt_tensor *t = &x->nodes[s[a].node].out;
        tensor_release(m->be, x->ctx, t);
        t->data = arena + s[a].off;
        t->cap = s[a].size;
        t->lent = 1;
    }
    x->arena = arena;
out:
    free(slot_of);
    free(s);
}


static void
exec_free(struct wtt_model *m, exec_t *x)
{
    exec_release_nodes(m, x);
    free(x->nodes);
    x->nodes = NULL;
    tensor_release(m->be, x->ctx, &x->input);
}


/* Per-op and per-stage time, printed at exit when WTT_NN_PROFILE is set
 * (development; see wtt_nn.h). */
static _Atomic uint64_t prof_ns[WTT_OP_COUNT];
static _Atomic uint64_t prof_stage_ns[WTT_STAGE_COUNT];
static _Atomic uint64_t prof_items;    /* items run, warm-ups included */
static atomic_int       prof_state;        /* 0 unknown, 1 off, 2 on */

static const char *const stage_names[WTT_STAGE_COUNT] = {
    [WTT_STAGE_DECODE] = "decode",
    [WTT_STAGE_RESAMPLE] = "resample",
    [WTT_STAGE_WINDOW] = "window",
    [WTT_STAGE_MODEL] = "model",
    [WTT_STAGE_POST] = "post",
    [WTT_STAGE_NOTES] = "notes",
};

/* The op families: which kind of kernel the time went to. */
enum { FAM_VIEW, FAM_LAYOUT, FAM_CONV, FAM_ELTWISE, FAM_REDUCE, FAM_COUNT };

static const char *const family_names[FAM_COUNT] = {
    "view", "layout", "conv", "eltwise", "reduce",
};


static int
op_family(int op)
{
    switch (op) {
    case WTT_OP_STRIDED_SLICE:
    case WTT_OP_PACK:
    case WTT_OP_CONCAT:
    case WTT_OP_TRANSPOSE:
    case WTT_OP_PAD:
    case WTT_OP_MIRROR_PAD:
        return FAM_LAYOUT;
    case WTT_OP_CONV2D:
        return FAM_CONV;
    case WTT_OP_SUM:
    case WTT_OP_MIN:
    case WTT_OP_MAX:
        return FAM_REDUCE;
    default:
        return op >= WTT_OP_ADD && op <= WTT_OP_SIGMOID ? FAM_ELTWISE
                                                          : FAM_VIEW;
    }
}


static void
prof_dump(void)
{
    uint64_t fam[FAM_COUNT] = { 0 }, ops = 0, stages = 0;

    fprintf(stderr, "nn-profile items=%llu\n",
            (unsigned long long) prof_items);
    for (int i = 0; i < WTT_OP_COUNT; i++) {
        if (prof_ns[i] != 0) {
            fprintf(stderr, "nn-profile op=%d ms=%.1f\n", i,
                    (double) prof_ns[i] / 1e6);
        }
        fam[op_family(i)] += prof_ns[i];
        ops += prof_ns[i];
    }
    for (int f = 0; f < FAM_COUNT && ops > 0; f++) {
        fprintf(stderr, "nn-profile family=%s ms=%.1f share=%.1f%%\n",
                family_names[f], (double) fam[f] / 1e6,
                100.0 * (double) fam[f] / (double) ops);
    }
    for (int k = 0; k < WTT_STAGE_COUNT; k++) {
        stages += prof_stage_ns[k];
    }
    for (int k = 0; k < WTT_STAGE_COUNT && stages > 0; k++) {
        fprintf(stderr, "nn-profile stage=%s ms=%.1f share=%.1f%%\n",
                stage_names[k], (double) prof_stage_ns[k] / 1e6,
                100.0 * (double) prof_stage_ns[k] / (double) stages);
    }
}


int
wtt_prof_on(void)
{
    int st = atomic_load_explicit(&prof_state, memory_order_relaxed);

    if (st == 0) {
        int expect = 0;
        st = getenv("WTT_NN_PROFILE") != NULL ? 2 : 1;
        if (atomic_compare_exchange_strong(&prof_state, &expect, st)
            && st == 2)
        {
            atexit(prof_dump);
        }
    }
    return st == 2;
}


void
wtt_prof_stage_add(enum wtt_prof_stage stage, uint64_t ns)
{
    if ((int) stage >= 0 && stage < WTT_STAGE_COUNT) {
        prof_stage_ns[stage] += ns;
    }
}


/* Copies output `k` of exec `x` (nb items) to `dst`; a device backend only
 * queues the copy (it lands by the sync). */
static int
take_output(struct wtt_model *m, exec_t *x, int k, size_t nb, float *dst,
            char *err, size_t errlen)
{
    const struct wtt_tensor *t = &x->nodes[m->out_node[k]].out;
    const char              *why = NULL;
    size_t                   want = nb * m->out_size[k];
    int                      rc;

    if (t->dtype != WTT_F32 || (size_t) wtt_tensor_nelem(t) != want) {
        snprintf(err, errlen, "output '%s' has %lld values, expected %zu",
                 m->g[m->out_node[k]].name, (long long) wtt_tensor_nelem(t),
                 want);
        return WTT_EFAIL;
    }
    rc = m->be->buffer_get(x->ctx, dst, t->data, sizeof(float) * want, &why);
    if (rc != 0) {
        snprintf(err, errlen, "%s backend: output '%s': %s", m->be->name,
                 m->g[m->out_node[k]].name, why);
    }
    return rc;
}


/* Runs `nb` (<= x->batch) items through exec `x` on the model's backend:
 * input in, every node, outputs out (outputs[k] + item * out_size[k]), one
 * sync. Returns 0 or a negative kind. */
static int
exec_run(struct wtt_model *m, exec_t *x, const float *items, size_t nb,
         float *const *outputs, char *err, size_t errlen)
{
    const char *why = NULL;
    int         rc, replay = 0, prof_on = wtt_prof_on();

    /* The input node sees nb items of the buffer made for x->batch. */
    x->nodes[m->input_node].out = x->input;
    x->nodes[m->input_node].out.cap = 0;
    x->nodes[m->input_node].out.ne[0] = (int64_t) nb;
    rc = m->be->buffer_set(x->ctx, x->input.data, items,
                           sizeof(float) * m->in_size * nb, &why);
    if (rc != 0) {
        snprintf(err, errlen, "%s backend: input: %s", m->be->name, why);
        return rc;
    }
    if (m->be->run_begin != NULL) {
        rc = m->be->run_begin(x->ctx, (int) nb, &replay, &why);
        if (rc != 0) {
            snprintf(err, errlen, "%s backend: %s", m->be->name, why);
            return rc;
        }
    }
    if (prof_on) {
        prof_items += nb;
    }
    for (int k = 0; !replay && k < m->order_n; k++) {
        int      i = m->order[k];
        uint64_t t0 = prof_on ? wtt_now_ns() : 0;

        if (m->g[i].is_const || m->g[i].tmpl.op == WTT_OP_PLACEHOLDER) {
            continue;
        }
        rc = m->be->compute(&x->nodes[i], &why);
        if (rc != 0) {
            snprintf(err, errlen, "node '%s': %s", m->g[i].name, why);
            return rc;
        }
        if (prof_on) {
            prof_ns[x->nodes[i].op] += wtt_now_ns() - t0;
        }
    }
    if (m->be->run_end != NULL) {
        rc = m->be->run_end(x->ctx, (int) nb, &why);
        if (rc != 0) {
            snprintf(err, errlen, "%s backend: %s", m->be->name, why);
            return rc;
        }
    }
    for (int k = 0; k < m->n_outputs; k++) {
        rc = take_output(m, x, k, nb, outputs[k], err, errlen);
        if (rc != 0) {
            return rc;
        }
    }
    rc = m->be->sync(x->ctx, &why);
    if (rc != 0) {
        snprintf(err, errlen, "%s backend: %s", m->be->name, why);
    }
    return rc;
}


void
wtt_model_free(struct wtt_model *m)
{
    if (m == NULL) {
        return;
    }
    for (int i = 0; i < m->nodes_n; i++) {
        if (m->consts != NULL) {
            node_release(m->host, NULL, &m->consts[i]);
        }
        if (m->staged != NULL) {
            tensor_release(m->be, m->execs[0].ctx, &m->staged[i]);
        }
        free(m->g[i].name);
    }
    pool_stop(m);
    for (int t = 0; m->execs != NULL && t < m->nthreads; t++) {
        exec_free(m, &m->execs[t]);
        if (m->execs[t].ctx != NULL) {
            m->be->ctx_free(m->execs[t].ctx);
        }
    }
    free(m->execs);
    free(m->staged);
    free(m->consts);
    free(m->g);
    free(m->order);
    free(m);
}


/* The fed input: a Placeholder whose shape is fixed but for the batch. */
static int
plan_input(struct wtt_model *m, const char *name, char *err, size_t errlen)
{
    gnode_t *g;

    m->input_node = name != NULL ? find_node(m, name) : -1;
    if (m->input_node < 0
        || m->g[m->input_node].tmpl.op != WTT_OP_PLACEHOLDER)
    {
        snprintf(err, errlen, "graph has no Placeholder '%s'",
                 name != NULL ? name : "(none given)");
        return -1;
    }
    g = &m->g[m->input_node];
    m->in_rank = g->shape_rank;
    m->in_size = 1;
    for (int d = 0; d < g->shape_rank; d++) {
        int64_t n = g->shape[d];
        if (d == 0 && n == -1) {
            n = 1;                  /* the batch: items are counted apart */
        }
        if (n <= 0) {
            snprintf(err, errlen, "input '%s': shape is not fixed (dimension "
                     "%d is %lld)", name, d, (long long) g->shape[d]);
            return -1;
        }
        m->in_ne[d] = n;
        if (d > 0) {
            m->in_size *= (size_t) n;
        }
    }
    if (g->shape_rank < 2 || m->in_ne[0] != 1) {
        snprintf(err, errlen, "input '%s' has no batch dimension", name);
        return -1;
    }
    return 0;
}


/* Every node a run computes must be the backend's: mixing backends inside
 * a run would need copies between their memories at every seam. */
static int
plan_backend(struct wtt_model *m, char *err, size_t errlen)
{
    for (int k = 0; k < m->order_n; k++) {
        int i = m->order[k];
        if (m->g[i].is_const || m->g[i].tmpl.op == WTT_OP_PLACEHOLDER) {
            continue;
        }
        if (!m->be->supports_op(&m->g[i].tmpl)) {
            snprintf(err, errlen, "backend '%s' does not support op '%s' "
                     "at node '%s'", m->be->name, m->g[i].tf_op,
                     m->g[i].name);
            return -1;
        }
    }
    return 0;
}


/* Bytes of backend memory one exec holds now (its tensors). */
static size_t
exec_bytes(const struct wtt_model *m, const exec_t *x)
{
    size_t sum = x->input.cap;

    for (int i = 0; i < m->nodes_n; i++) {
        sum += x->nodes[i].out.cap;
    }
    return sum;
}


/* Runs one item of zeros through exec `x` without taking outputs (their
 * sizes are not known yet) and records the outputs' sizes per item. */
static int
measure_outputs(struct wtt_model *m, exec_t *x, char *err, size_t errlen)
{
    const char *why = NULL;
    float      *zeros = wtt_trymalloc(m->in_size * sizeof(float));
    int         rc;

    if (zeros == NULL) {
        snprintf(err, errlen, "out of memory");
        return WTT_ENOMEM;
    }
    memset(zeros, 0, m->in_size * sizeof(float));
    x->nodes[m->input_node].out = x->input;
    x->nodes[m->input_node].out.cap = 0;
    rc = m->be->buffer_set(x->ctx, x->input.data, zeros,
                           sizeof(float) * m->in_size, &why);
    for (int k = 0; rc == 0 && k < m->order_n; k++) {
        int i = m->order[k];
        if (m->g[i].is_const || m->g[i].tmpl.op == WTT_OP_PLACEHOLDER) {
            continue;
        }
        rc = m->be->compute(&x->nodes[i], &why);
        if (rc != 0) {
            snprintf(err, errlen, "node '%s': %s", m->g[i].name, why);
            free(zeros);
            return rc;
        }
    }
    if (rc == 0) {
        rc = m->be->sync(x->ctx, &why);
    }
    free(zeros);
    if (rc != 0) {
        snprintf(err, errlen, "%s backend: %s", m->be->name, why);
        return rc;
    }
    for (int k = 0; k < m->n_outputs; k++) {
        m->out_size[k] = (size_t) wtt_tensor_nelem(
            &x->nodes[m->out_node[k]].out);
    }
    return 0;
}


/* Runs a full batch of zeros through exec `x`: buffers are allocated and
 * filters packed now, so the first file pays no warm-up and a 10 s clip
 * runs at the same speed as an hour. */
static int
warm_up(struct wtt_model *m, exec_t *x, char *err, size_t errlen)
{
    size_t nb = (size_t) x->batch, out_all = 0;
    float *zeros, *outs[WTT_MODEL_MAX_OUTPUTS];
    int    rc;

    for (int k = 0; k < m->n_outputs; k++) {
        out_all += m->out_size[k];
    }
    zeros = m->be->host_alloc(m->in_size * nb * sizeof(float));
    outs[0] = m->be->host_alloc(out_all * nb * sizeof(float));
    if (zeros == NULL || outs[0] == NULL) {
        wtt_model_host_free(m, zeros);
        wtt_model_host_free(m, outs[0]);
        snprintf(err, errlen, "out of memory");
        return WTT_ENOMEM;
    }
    memset(zeros, 0, m->in_size * nb * sizeof(float));
    for (int k = 1; k < m->n_outputs; k++) {
        outs[k] = outs[k - 1] + m->out_size[k - 1] * nb;
    }
    rc = exec_run(m, x, zeros, nb, outs, err, errlen);
    m->be->host_free(outs[0]);
    m->be->host_free(zeros);
    return rc;
}


/* Largest batch worth planning for: beyond it a run is long enough that
 * launches and copies are noise, and a longer one only delays the first
 * progress event. */
#define MAX_BATCH 256

/* Workers (streams) on a device by default. */
#define DEVICE_WORKERS 2

/*
 * Items per worker run. The host backend takes one item per worker thread
 * (its kernels already fill the cores with one window each). A device
 * backend takes as many as its memory budget allows: what one item costs
 * is measured on the warm-up batch of one.
 */
static int
plan_batch(struct wtt_model *m, const struct wtt_model_params *p,
           size_t per_item)
{
    struct wtt_device_info info;
    const char            *why = NULL;
    size_t                 budget = p->mem_budget;
    size_t                 b;

    if (p->batch > 0) {
        return p->batch;
    }
    if (m->be == m->host) {
        return 1;
    }
    if (budget == 0) {
        memset(&info, 0, sizeof(info));
        if (m->be->device_info(m->device, &info, &why) != 0
            || info.mem_free == 0)
        {
            return 1;
        }
        budget = info.mem_free / 2;      /* leave room for other tenants */
    }
    /* The workers share the budget. */
    budget /= (size_t) m->nthreads;
    b = per_item > 0 ? budget / per_item : 1;
    if (b < 1) {
        b = 1;
    }
    return b > MAX_BATCH ? MAX_BATCH : (int) b;
}


/* Workers, their contexts and buffers, and the batch each runs. */
static int
plan_execs(struct wtt_model *m, const struct wtt_model_params *p, char *err,
           size_t errlen)
{
    const char *why = NULL;
    int         rc, batch;

    /* A device gets two workers, each with its own stream: one's copies
     * and launches overlap the other's kernels. */
    m->nthreads = p->threads > 0 ? p->threads
                                 : (m->be == m->host
                                    ? wtt_cpu_count()
                                    : DEVICE_WORKERS);
    if (m->nthreads < 1) {
        m->nthreads = 1;
    }
    if (m->nthreads > MAX_THREADS) {
        m->nthreads = MAX_THREADS;
    }
    m->execs = wtt_calloc((size_t) m->nthreads, sizeof(exec_t));
    for (int t = 0; t < m->nthreads; t++) {
        rc = m->be->ctx_new(m->device, &m->execs[t].ctx, &why);
        if (rc != 0) {
            snprintf(err, errlen, "%s backend: device %d: %s", m->be->name,
                     m->device, why);
            return rc;
        }
    }
    rc = stage_consts(m, err, errlen);
    for (int t = 0; rc == 0 && t < m->nthreads; t++) {
        rc = exec_init(m, &m->execs[t], err, errlen);
    }
    if (rc == 0) {
        rc = measure_outputs(m, &m->execs[0], err, errlen);
    }
    if (rc != 0) {
        return rc;
    }
    batch = plan_batch(m, p, exec_bytes(m, &m->execs[0]));
    for (int t = 0; t < m->nthreads; t++) {
        exec_t *x = &m->execs[t];
        for (;;) {
            rc = exec_input(m, x, batch);
            if (rc == 0) {
                rc = warm_up(m, x, err, errlen);
            }
            if (rc == 0) {
                exec_arena(m, x);
            }
            if (rc != WTT_ENOMEM || batch == 1) {
                break;
            }
            /* The estimate missed (workspace, fragmentation): halve. */
            exec_release_nodes(m, x);
            batch /= 2;
        }
        if (rc != 0) {
            return rc;
        }
    }
    m->batch = batch;
    /* The run threads now, so that the first file does not pay for them
     * (about 15 ms of a 60 s clip's 0.2 s on two threads). */
    if (m->nthreads > 1) {
        m->pool = pool_start(m);
        m->pool_failed = m->pool == NULL;
    }
    return 0;
}


int
wtt_model_load(const struct wtt_model_params *p, struct wtt_model **out,
               char *err, size_t errlen)
{
    struct wtt_model *m = wtt_calloc(1, sizeof(*m));
    char              path[PATH_MAX], *text = NULL, *state = NULL;
    size_t            len;
    cJSON            *root = NULL, *nodes, *jn;
    int               i, rc = WTT_EFAIL;

    *out = NULL;
    m->host = wtt_backend_host();
    m->be = p->backend != NULL ? p->backend : wtt_backend_get(0);
    m->device = p->device;
    m->fault_after = p->fault_after;
    if (p->dir == NULL) {
        snprintf(err, errlen, "no model folder given");
        goto fail;
    }
    if (p->device < 0 || p->device >= m->be->device_count()) {
        snprintf(err, errlen, "%s backend: no device %d (%d usable)",
                 m->be->name, p->device, m->be->device_count());
        rc = WTT_EDEVICE;
        goto fail;
    }
    if (check_sums(m, p->dir, err, errlen) != 0) {
        goto fail;
    }
    snprintf(path, sizeof(path), "%s/model.json", p->dir);
    text = wtt_read_file(path, MAX_JSON_BYTES, &len);
    if (text == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto fail;
    }
    root = cJSON_ParseWithLength(text, len);
    if (root == NULL) {
        snprintf(err, errlen, "%s: not valid JSON", path);
        goto fail;
    }
    nodes = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(root, "modelTopology"), "node");
    if (!cJSON_IsArray(nodes) || cJSON_GetArraySize(nodes) == 0) {
        snprintf(err, errlen, "%s: no modelTopology.node list", path);
        goto fail;
    }
    m->nodes_n = cJSON_GetArraySize(nodes);
    m->g = wtt_calloc((size_t) m->nodes_n, sizeof(gnode_t));
    m->consts = wtt_calloc((size_t) m->nodes_n, sizeof(struct wtt_node));
    m->order = wtt_calloc((size_t) m->nodes_n, sizeof(int));
    i = 0;
    cJSON_ArrayForEach(jn, nodes) {
        cJSON *name = cJSON_GetObjectItemCaseSensitive(jn, "name");
        m->g[i++].name = wtt_strdup(cJSON_IsString(name) ? name->valuestring
                                                         : "");
    }
    i = 0;
    cJSON_ArrayForEach(jn, nodes) {
        if (parse_node(m, i, jn, err, errlen) != 0
            || link_inputs(m, i, jn, err, errlen) != 0)
        {
            goto fail;
        }
        m->consts[i] = m->g[i].tmpl;
        memset(&m->consts[i].out, 0, sizeof(m->consts[i].out));
        m->g[i].is_const = m->g[i].tmpl.op == WTT_OP_CONST;
        i++;
    }
    if (load_weights(m, p->dir,
                     cJSON_GetObjectItemCaseSensitive(root, "weightsManifest"),
                     err, errlen) != 0)
    {
        goto fail;
    }
    if (plan_input(m, p->input, err, errlen) != 0) {
        goto fail;
    }
    if (p->n_outputs < 1 || p->n_outputs > WTT_MODEL_MAX_OUTPUTS) {
        snprintf(err, errlen, "between 1 and %d outputs, not %d",
                 WTT_MODEL_MAX_OUTPUTS, p->n_outputs);
        goto fail;
    }
    m->n_outputs = p->n_outputs;
    state = wtt_calloc((size_t) m->nodes_n, 1);
    for (int k = 0; k < m->n_outputs; k++) {
        m->out_node[k] = p->outputs[k] != NULL
                         ? find_node(m, p->outputs[k]) : -1;
        if (m->out_node[k] < 0) {
            snprintf(err, errlen, "graph has no output '%s'",
                     p->outputs[k] != NULL ? p->outputs[k] : "(null)");
            goto fail;
        }
        if (topo_visit(m, m->out_node[k], state, err, errlen) != 0) {
            goto fail;
        }
    }
    if (fold(m, err, errlen) != 0 || plan_backend(m, err, errlen) != 0) {
        goto fail;
    }
    rc = plan_execs(m, p, err, errlen);
    if (rc != 0) {
        goto fail;
    }
    free(state);
    cJSON_Delete(root);
    free(text);
    *out = m;
    return 0;

fail:
    free(state);
    cJSON_Delete(root);
    free(text);
    wtt_model_free(m);
    return rc != 0 ? rc : WTT_EFAIL;
}


const char *
wtt_model_hash(const struct wtt_model *m)
{
    return m->hash;
}


const char *
wtt_model_backend(const struct wtt_model *m)
{
    return m->be->name;
}


int
wtt_model_device(const struct wtt_model *m)
{
    return m->device;
}


int
wtt_model_threads(const struct wtt_model *m)
{
    return m->nthreads;
}


int
wtt_model_batch(const struct wtt_model *m)
{
    return m->batch;
}


size_t
wtt_model_batch_items(const struct wtt_model *m)
{
    return (size_t) m->nthreads * (size_t) m->batch;
}


size_t
wtt_model_input_size(const struct wtt_model *m)
{
    return m->in_size;
}


size_t
wtt_model_output_size(const struct wtt_model *m, int k)
{
    return k >= 0 && k < m->n_outputs ? m->out_size[k] : 0;
}


void *
wtt_model_host_alloc(const struct wtt_model *m, size_t bytes)
{
    return m->be->host_alloc(bytes);
}


void
wtt_model_host_free(const struct wtt_model *m, void *p)
{
    if (p != NULL) {
        m->be->host_free(p);
    }
}


/* ---------------------------------------------------------------------------
 * Running items on the worker threads
 * ------------------------------------------------------------------------- */

typedef struct {
    struct wtt_model *m;
    const float      *inputs;
    size_t            n;
    float *const     *outputs;
    size_t            chunk;        /* items a worker takes at a time */
    atomic_size_t     next;
    atomic_int        failed;       /* 0, or the first negative kind */
    char             *err;
    size_t            errlen;
    pthread_mutex_t   err_lock;
} run_job;

typedef struct {
    run_job *job;
    int      t;
} run_arg;


/* Runs items [w, w + nb) on exec `x`, halving its batch when the backend
 * runs out of memory at the current one (the buffers for the larger batch
 * are released first, or the smaller one would not fit either). */
static int
run_items(run_job *j, exec_t *x, size_t w, size_t nb, char *err,
          size_t errlen)
{
    struct wtt_model *m = j->m;
    float            *outs[WTT_MODEL_MAX_OUTPUTS];
    int               rc;

    while (nb > 0) {
        size_t now = nb < (size_t) x->batch ? nb : (size_t) x->batch;
        for (int k = 0; k < m->n_outputs; k++) {
            outs[k] = j->outputs[k] + w * m->out_size[k];
        }
        rc = exec_run(m, x, j->inputs + w * m->in_size, now, outs, err,
                      errlen);
        if (rc == WTT_ENOMEM && x->batch > 1) {
            int half = x->batch / 2;
            char was[16], now_s[16];
            snprintf(was, sizeof(was), "%d", x->batch);
            snprintf(now_s, sizeof(now_s), "%d", half);
            wtt_log(WTT_LOG_WARN, "model.batch_halved", "backend",
                    m->be->name, "batch", was, "now", now_s, NULL);
            exec_release_nodes(m, x);
            if (exec_input(m, x, half) != 0) {
                return WTT_ENOMEM;
            }
            continue;
        }
        if (rc != 0) {
            return rc;
        }
        w += now;
        nb -= now;
    }
    return 0;
}


static void *
run_worker(void *p)
{
    run_arg          *a = p;
    run_job          *j = a->job;
    exec_t           *x = &j->m->execs[a->t];
    char              err[256];

    for (;;) {
        size_t w = atomic_fetch_add(&j->next, j->chunk);
        size_t nb;
        int    rc;
        if (w >= j->n || atomic_load(&j->failed)) {
            break;
        }
        nb = j->n - w < j->chunk ? j->n - w : j->chunk;
        rc = run_items(j, x, w, nb, err, sizeof(err));
        if (rc != 0) {
            int none = 0;
            pthread_mutex_lock(&j->err_lock);
            if (atomic_compare_exchange_strong(&j->failed, &none, rc)) {
                snprintf(j->err, j->errlen, "%s", err);
            }
            pthread_mutex_unlock(&j->err_lock);
            break;
        }
    }
    return NULL;
}


/*
 * The run threads: started at the first run that uses more than one and
 * kept until the model is freed. Threads made afresh for every run (each
 * batch of windows) start on the core of the thread that made them, and
 * the scheduler moves one away only after a while: two windows then share
 * one core for part of every run (measured: two threads gave 1.2 times
 * one, while two processes of one thread each gave 2 times). Kept threads
 * stay spread. Worker t runs on exec t; the caller waits.
 */
struct pool {
    pthread_mutex_t lock;
    pthread_cond_t  go, done;
    pthread_t       tids[MAX_THREADS];
    int             n;          /* threads running */
    unsigned long   gen;        /* bumped by every run */
    int             left;       /* threads still on the current run */
    int             stop;
    run_job        *job;
    int             nt;         /* threads the current run uses */
    pid_t           pid;        /* the process that started them */
};

typedef struct {
    struct pool *p;
    int          t;
} pool_arg;


static void *
pool_thread(void *arg)
{
    pool_arg      *a = arg;
    struct pool   *p = a->p;
    int            t = a->t;
    unsigned long  seen = 0;

    free(a);
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->stop && p->gen == seen) {
            pthread_cond_wait(&p->go, &p->lock);
        }
        if (p->stop) {
            break;
        }
        seen = p->gen;
        if (t < p->nt) {
            run_arg r = { p->job, t };
            pthread_mutex_unlock(&p->lock);
            run_worker(&r);
            pthread_mutex_lock(&p->lock);
        }
        if (--p->left == 0) {
            pthread_cond_signal(&p->done);
        }
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}


/* Starts the model's run threads; NULL when they cannot all start (the
 * runs then make their own, as a forked child must too). */
static struct pool *
pool_start(struct wtt_model *m)
{
    struct pool *p = calloc(1, sizeof(*p));

    if (p == NULL) {
        return NULL;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->go, NULL);
    pthread_cond_init(&p->done, NULL);
    p->pid = getpid();
    for (int t = 0; t < m->nthreads; t++) {
        pool_arg *a = malloc(sizeof(*a));
        if (a == NULL) {
            break;
        }
        a->p = p;
        a->t = t;
        if (pthread_create(&p->tids[t], NULL, pool_thread, a) != 0) {
            free(a);
            break;
        }
        p->n++;
    }
    if (p->n < m->nthreads) {
        m->pool = p;
        pool_stop(m);
        return NULL;
    }
    return p;
}


static void
pool_stop(struct wtt_model *m)
{
    struct pool *p = m->pool;

    if (p == NULL) {
        return;
    }
    m->pool = NULL;
    if (p->pid == getpid()) {
        pthread_mutex_lock(&p->lock);
        p->stop = 1;
        pthread_cond_broadcast(&p->go);
        pthread_mutex_unlock(&p->lock);
        for (int t = 0; t < p->n; t++) {
            pthread_join(p->tids[t], NULL);
        }
        pthread_cond_destroy(&p->go);
        pthread_cond_destroy(&p->done);
        pthread_mutex_destroy(&p->lock);
    }
    free(p);        /* a fork's copy: its threads exist only in the parent */
}


/* Runs `job` on `nt` threads: the kept ones, else threads made for it. */
static void
run_threads(struct wtt_model *m, run_job *job, int nt)
{
    run_arg   args[MAX_THREADS];
    pthread_t tids[MAX_THREADS];

    if (m->pool != NULL && m->pool->pid != getpid()) {
        pool_stop(m);
    } else if (m->pool == NULL && nt > 1 && !m->pool_failed) {
        m->pool = pool_start(m);
        m->pool_failed = m->pool == NULL;
    }
    if (m->pool != NULL && nt > 1) {
        struct pool *p = m->pool;
        pthread_mutex_lock(&p->lock);
        p->job = job;
        p->nt = nt;
        p->left = p->n;
        p->gen++;
        pthread_cond_broadcast(&p->go);
        while (p->left > 0) {
            pthread_cond_wait(&p->done, &p->lock);
        }
        pthread_mutex_unlock(&p->lock);
        return;
    }
    for (int t = 0; t < nt; t++) {
        args[t].job = job;
        args[t].t = t;
    }
    /* The calling thread is worker 0. */
    for (int t = 1; t < nt; t++) {
        if (pthread_create(&tids[t], NULL, run_worker, &args[t]) != 0) {
            nt = t;
            break;
        }
    }
    run_worker(&args[0]);
    for (int t = 1; t < nt; t++) {
        pthread_join(tids[t], NULL);
    }
}


int
wtt_model_run(struct wtt_model *m, const float *inputs, size_t n,
              float *const *outputs, char *err, size_t errlen)
{
    run_job   job;
    size_t    chunk = (size_t) m->batch;
    int       nt;

    if (n == 0) {
        return 0;
    }
    if (m->fault_after > 0 && ++m->runs > m->fault_after) {
        snprintf(err, errlen, "device fault (injected for tests)");
        return WTT_EDEVICE;
    }
    /* Spread the items evenly when there are fewer than a full batch per
     * worker, so no worker idles while another runs two batches. */
    if ((n + (size_t) m->nthreads - 1) / (size_t) m->nthreads < chunk) {
        chunk = (n + (size_t) m->nthreads - 1) / (size_t) m->nthreads;
    }
    nt = (int) ((n + chunk - 1) / chunk);
    if (nt > m->nthreads) {
        nt = m->nthreads;
    }
    memset(&job, 0, sizeof(job));
    job.m = m;
    job.inputs = inputs;
    job.n = n;
    job.outputs = outputs;
    job.chunk = chunk;
    job.err = err;
    job.errlen = errlen;
    pthread_mutex_init(&job.err_lock, NULL);
    run_threads(m, &job, nt);
    pthread_mutex_destroy(&job.err_lock);
    return atomic_load(&job.failed);
}
