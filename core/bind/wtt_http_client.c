/*
 * wtt_http_client.c: the `wtt.http_client` Lua module (see wtt_http_client.h).
 *
 * One request is one curl_easy_perform. Each lua_State keeps one "default"
 * client (a CURL easy handle in a userdata stored in the registry) that every
 * httpc.request reuses, so its connection cache gives keep-alive across
 * requests; curl_easy_reset between requests clears the options but keeps
 * live connections. httpc.new() makes an independent client.
 *
 * A request runs in three phases, so that a Lua error can never unwind
 * through libcurl and never leaves a handle marked busy:
 *
 *   1. parse: read opts into a request_t userdata (may raise on misuse; the
 *      userdata's __gc then frees whatever was built), open files, build the
 *      header list and the mime body;
 *   2. transfer: set every option, curl_easy_perform, copy the results out of
 *      the handle and reset it. Nothing here raises: the on_data callback runs
 *      under lua_cpcall and a Lua error is kept in a stack slot;
 *   3. result: build the res table (may raise on out-of-memory only), or
 *      return nil, err, or re-raise the error on_data raised.
 */
#include "wtt_http_client.h"
#include "wtt_luax.h"
#include "wtt_util.h"

#include <curl/curl.h>
#include <errno.h>
#include <lauxlib.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define CLIENT_MT          "wtt.http_client.client"
#define REQUEST_MT         "wtt.http_client.request"
#define DEFAULT_CLIENT_KEY "wtt.http_client.default"

#define DEFAULT_TIMEOUT_S          30.0
#define DEFAULT_CONNECT_TIMEOUT_S   5.0
#define MAX_HEADER_BYTES   (256 * 1024)   /* all response header lines */
#define MAX_REDIRECTS      10
#define MIN_BUFFER_BYTES   16384
#define USER_AGENT         "wtt-httpc/1"


typedef struct {
    CURL  *curl;       /* NULL once closed */
    int    busy;       /* a transfer is running on `curl` */
    int    closed;     /* close was called; free `curl` when not busy */
} client_t;


/* Options that go straight to curl_easy_setopt; strings are borrowed from
 * the opts table, which stays on the stack for the whole request. */
typedef struct {
    const char  *url;
    const char  *method;
    const char  *local_address;
    const char  *ca_file;
    const char  *proxy;
    long         timeout_ms;
    long         connect_timeout_ms;
    long         http_version;
    int          follow;
    int          verify;
} opts_t;


typedef struct {
    CURL               *curl;         /* handle in use (client's or tmp) */
    CURL               *tmp;          /* owned handle for a nested request */
    lua_State          *L;            /* running state, set during perform */

    struct curl_slist  *headers;      /* owned */
    curl_mime          *mime;         /* owned */
    const char         *body;         /* borrowed, anchored on the stack */
    size_t              body_len;
    FILE               *body_fp;      /* owned, body_file */
    curl_off_t          body_fp_size;

    char               *out_path;     /* owned copy of opts.output */
    FILE               *out_fp;       /* owned until closed in phase 3 */
    int                 on_data_ref;  /* registry ref or LUA_NOREF */
    int                 err_slot;     /* stack slot for on_data's error */

    curl_off_t          max_size;     /* -1: unlimited */
    curl_off_t          received;
    char               *buf;          /* owned, the body in memory mode */
    size_t              buf_len;
    size_t              buf_cap;
    char               *hdr;          /* owned, raw header lines */
    size_t              hdr_len;
    size_t              hdr_cap;

    long                status;
    long                version;
    double              total_time;
    char               *eff_url;      /* owned copy */

    unsigned            has_body:1;
    unsigned            aborted:1;
    unsigned            too_large:1;
    unsigned            hdr_too_large:1;
    unsigned            oom:1;
    unsigned            lua_err:1;
    int                 write_errno;
    char                errbuf[CURL_ERROR_SIZE];
} request_t;


static pthread_once_t  init_once = PTHREAD_ONCE_INIT;
static CURLcode        init_rc = CURLE_OK;


static void
global_init(void)
{
    init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}


/* ---------------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------------- */

/* RFC 9110 tchar: the characters allowed in a method or header name. */
static int
is_token(const char *s, size_t len)
{
    static const char extra[] = "!#$%&'*+-.^_`|~";

    if (len == 0) {
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9')
              || (c != '\0' && strchr(extra, c) != NULL)))
        {
            return 0;
        }
    }
    return 1;
}


/*
 * Grows `*buf` to hold at least `need` bytes, doubling from MIN_BUFFER_BYTES
 * but never past `limit` (unless `need` itself is larger). The size comes
 * from the peer, so failure is reported instead of aborting (house style 16).
 * Returns 0, or -1 with `*buf` unchanged.
 */
static int
grow(char **buf, size_t *cap, size_t need, size_t limit)
{
    size_t  ncap;
    char   *nbuf;

    if (need <= *cap) {
        return 0;
    }
    ncap = *cap ? *cap : MIN_BUFFER_BYTES;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2) {
            ncap = need;
            break;
        }
        ncap *= 2;
    }
    if (ncap > limit) {
        ncap = limit < need ? need : limit;
    }
    nbuf = realloc(*buf, ncap);
    if (nbuf == NULL) {
        return -1;
    }
    *buf = nbuf;
    *cap = ncap;
    return 0;
}


/* Pushes nil, "request failed: <what>" and returns 2. */
static int
push_fail(lua_State *L, const char *what)
{
    lua_pushnil(L);
    lua_pushfstring(L, "request failed: %s", what);
    return 2;
}


static const char *
curl_error_kind(CURLcode code)
{
    switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
        return "timeout";
    case CURLE_COULDNT_CONNECT:
        return "could not connect";
    case CURLE_COULDNT_RESOLVE_HOST:
        return "could not resolve host";
    case CURLE_COULDNT_RESOLVE_PROXY:
        return "could not resolve proxy";
    case CURLE_SEND_ERROR:
        return "send error";
    case CURLE_RECV_ERROR:
        return "receive error";
    case CURLE_GOT_NOTHING:
        return "empty reply";
    case CURLE_PARTIAL_FILE:
        return "incomplete body";
    case CURLE_URL_MALFORMAT:
        return "bad url";
    case CURLE_UNSUPPORTED_PROTOCOL:
        return "unsupported protocol";
    case CURLE_TOO_MANY_REDIRECTS:
        return "too many redirects";
    case CURLE_PEER_FAILED_VERIFICATION:
        return "tls verification failed";
    case CURLE_SSL_CONNECT_ERROR:
        return "tls handshake failed";
    case CURLE_SSL_CACERT_BADFILE:
        return "bad ca file";
    case CURLE_INTERFACE_FAILED:
        return "bad local address";
    case CURLE_READ_ERROR:
    case CURLE_ABORTED_BY_CALLBACK:
        return "body read error";
    case CURLE_WEIRD_SERVER_REPLY:
        return "bad server reply";
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return "http2 error";
    case CURLE_OUT_OF_MEMORY:
        return "out of memory";
    default:
        return NULL;
    }
}


/*
 * Pushes nil, "request failed: <kind>[: <curl detail>]" for a curl failure
 * and returns 2. The kind is a stable lowercase keyword that callers may
 * match ("timeout", "could not connect", ...); the detail is curl's text.
 */
static int
push_curl_fail(lua_State *L, CURLcode code, char *errbuf)
{
    const char *kind = curl_error_kind(code);
    char        generic[128];
    size_t      n;

    if (kind == NULL) {
        snprintf(generic, sizeof(generic), "%s", curl_easy_strerror(code));
        for (char *p = generic; *p; p++) {
            if (*p >= 'A' && *p <= 'Z') {
                *p = (char) (*p - 'A' + 'a');
            }
        }
        kind = generic;
    }

    n = strlen(errbuf);
    while (n > 0 && (errbuf[n - 1] == '\n' || errbuf[n - 1] == '\r')) {
        errbuf[--n] = '\0';
    }
    if (n > 0 && errbuf[0] >= 'A' && errbuf[0] <= 'Z') {
        errbuf[0] = (char) (errbuf[0] - 'A' + 'a');
    }

    lua_pushnil(L);
    if (n > 0 && strncmp(errbuf, kind, strlen(kind)) == 0) {
        /* curl's text already starts with the keyword */
        lua_pushfstring(L, "request failed: %s", errbuf);
    } else if (n > 0) {
        lua_pushfstring(L, "request failed: %s: %s", kind, errbuf);
    } else {
        lua_pushfstring(L, "request failed: %s", kind);
    }
    return 2;
}


static const char *
version_name(long v)
{
    switch (v) {
    case CURL_HTTP_VERSION_1_0:
        return "1.0";
    case CURL_HTTP_VERSION_1_1:
        return "1.1";
    case CURL_HTTP_VERSION_2_0:
        return "2";
#ifdef CURL_HTTP_VERSION_3
    case CURL_HTTP_VERSION_3:
        return "3";
#endif
    default:
        return NULL;
    }
}


/* ---------------------------------------------------------------------------
 * Request state
 * ------------------------------------------------------------------------- */

/*
 * Frees everything a request owns; safe to call twice. Runs at the end of
 * every request and as the request userdata's __gc, which covers a raise in
 * the parse phase. A partial output file still open here belongs to a failed
 * request and is removed.
 */
static void
request_release(lua_State *L, request_t *r)
{
    if (r->on_data_ref != LUA_NOREF) {
        luaL_unref(L, LUA_REGISTRYINDEX, r->on_data_ref);
        r->on_data_ref = LUA_NOREF;
    }
    /* The temporary handle may still refer to the mime and header list. */
    if (r->tmp != NULL) {
        curl_easy_cleanup(r->tmp);
        r->tmp = NULL;
    }
    r->curl = NULL;
    if (r->mime != NULL) {
        curl_mime_free(r->mime);
        r->mime = NULL;
    }
    if (r->headers != NULL) {
        curl_slist_free_all(r->headers);
        r->headers = NULL;
    }
    if (r->body_fp != NULL) {
        fclose(r->body_fp);
        r->body_fp = NULL;
    }
    if (r->out_fp != NULL) {
        fclose(r->out_fp);
        r->out_fp = NULL;
        unlink(r->out_path);
    }
    free(r->out_path);
    r->out_path = NULL;
    free(r->buf);
    r->buf = NULL;
    free(r->hdr);
    r->hdr = NULL;
    free(r->eff_url);
    r->eff_url = NULL;
}


static int
l_request_gc(lua_State *L)
{
    request_t *r = luaL_checkudata(L, 1, REQUEST_MT);

    request_release(L, r);
    return 0;
}


/* ---------------------------------------------------------------------------
 * libcurl callbacks (never raise)
 * ------------------------------------------------------------------------- */

typedef struct {
    request_t   *r;
    const char  *data;
    size_t       len;
    int          stop;
} chunk_call_t;


/* Runs under lua_cpcall: on_data(chunk); a `false` result stops. */
static int
call_on_data(lua_State *L)
{
    chunk_call_t *cc = lua_touserdata(L, 1);

    lua_rawgeti(L, LUA_REGISTRYINDEX, cc->r->on_data_ref);   /* ud f */
    lua_pushlstring(L, cc->data, cc->len);                   /* ud f chunk */
    lua_call(L, 1, 1);                                       /* ud ret */
    cc->stop = lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1);
    return 0;
}


static size_t
on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    request_t     *r = ud;
    size_t         n = size * nmemb;
    chunk_call_t   cc;

    if (r->max_size >= 0 && (curl_off_t) n > r->max_size - r->received) {
        r->too_large = 1;
        return 0;
    }
    r->received += (curl_off_t) n;

    if (r->on_data_ref != LUA_NOREF) {
        if (n == 0) {
            return 0;
        }
        cc.r = r;
        cc.data = data;
        cc.len = n;
        cc.stop = 0;
        /* The stack has room reserved by lua_checkstack in phase 1. */
        if (lua_cpcall(r->L, call_on_data, &cc) != 0) {
            lua_replace(r->L, r->err_slot);   /* keep the error object */
            r->lua_err = 1;
            return 0;
        }
        if (cc.stop) {
            r->aborted = 1;
            return 0;
        }
        return n;
    }

    if (r->out_fp != NULL) {
        if (fwrite(data, 1, n, r->out_fp) != n) {
            r->write_errno = errno ? errno : EIO;
            return 0;
        }
        return n;
    }

    if (grow(&r->buf, &r->buf_cap, r->buf_len + n,
             r->max_size >= 0 ? (size_t) r->max_size : SIZE_MAX) != 0)
    {
        r->oom = 1;
        return 0;
    }
    memcpy(r->buf + r->buf_len, data, n);
    r->buf_len += n;
    return n;
}


/* Keeps the header lines of the last response only: a status line starts a
 * new block (after a redirect or a 100 Continue). */
static size_t
on_header(char *data, size_t size, size_t nmemb, void *ud)
{
    request_t  *r = ud;
    size_t      n = size * nmemb;

    if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        r->hdr_len = 0;
        return n;
    }
    if (r->hdr_len + n > MAX_HEADER_BYTES) {
        r->hdr_too_large = 1;
        return 0;
    }
    if (grow(&r->hdr, &r->hdr_cap, r->hdr_len + n, MAX_HEADER_BYTES) != 0) {
        r->oom = 1;
        return 0;
    }
    memcpy(r->hdr + r->hdr_len, data, n);
    r->hdr_len += n;
    return n;
}


static size_t
on_read(char *data, size_t size, size_t nmemb, void *ud)
{
    request_t  *r = ud;
    size_t      got = fread(data, 1, size * nmemb, r->body_fp);

    if (got == 0 && ferror(r->body_fp)) {
        return CURL_READFUNC_ABORT;
    }
    return got;
}


/* Lets curl rewind body_file to resend it after a redirect. */
static int
on_seek(void *ud, curl_off_t offset, int origin)
{
    request_t *r = ud;

    if (fseeko(r->body_fp, (off_t) offset, origin) != 0) {
        return CURL_SEEKFUNC_FAIL;
    }
    return CURL_SEEKFUNC_OK;
}


/* ---------------------------------------------------------------------------
 * Option parsing (phase 1: may raise on misuse)
 * ------------------------------------------------------------------------- */

/* Pushes opts[name] without metamethods; returns its type. */
static int
get_field(lua_State *L, int o, const char *name)
{
    lua_pushstring(L, name);
    lua_rawget(L, o);
    return lua_type(L, -1);
}


static int
bad_opt(lua_State *L, int o, const char *name, const char *what)
{
    return luaL_argerror(L, o, lua_pushfstring(L, "'%s' must be %s",
                                               name, what));
}


/* opts[name] as a string, or `def` when nil. The string stays referenced by
 * the opts table, which phase 1 never modifies. */
static const char *
opt_string(lua_State *L, int o, const char *name, const char *def,
    size_t *len)
{
    const char *s;

    switch (get_field(L, o, name)) {
    case LUA_TNIL:
        lua_pop(L, 1);
        if (len != NULL) {
            *len = def ? strlen(def) : 0;
        }
        return def;
    case LUA_TSTRING:
        s = lua_tolstring(L, -1, len);
        lua_pop(L, 1);
        return s;
    default:
        bad_opt(L, o, name, "a string");
        return NULL;
    }
}


static lua_Number
opt_number(lua_State *L, int o, const char *name, lua_Number def)
{
    lua_Number n;

    switch (get_field(L, o, name)) {
    case LUA_TNIL:
        lua_pop(L, 1);
        return def;
    case LUA_TNUMBER:
        n = lua_tonumber(L, -1);
        lua_pop(L, 1);
        if (!(n >= 0)) {   /* also rejects NaN */
            bad_opt(L, o, name, "a non-negative number");
        }
        return n;
    default:
        bad_opt(L, o, name, "a number");
        return 0;
    }
}


static int
opt_bool(lua_State *L, int o, const char *name, int def)
{
    int b;

    switch (get_field(L, o, name)) {
    case LUA_TNIL:
        lua_pop(L, 1);
        return def;
    case LUA_TBOOLEAN:
        b = lua_toboolean(L, -1);
        lua_pop(L, 1);
        return b;
    default:
        bad_opt(L, o, name, "a boolean");
        return 0;
    }
}


/* Seconds (float) to curl's milliseconds; 0 stays 0 ("no limit"). */
static long
opt_ms(lua_State *L, int o, const char *name, lua_Number def)
{
    lua_Number ms = opt_number(L, o, name, def) * 1000.0;

    if (ms >= (lua_Number) LONG_MAX) {
        return LONG_MAX;
    }
    if (ms > 0 && ms < 1) {
        return 1;
    }
    return (long) ms;
}


/* Appends a copy of `line` to r->headers. Returns 0, or -1 when out of
 * memory (the list is then unchanged). */
static int
append_line(request_t *r, const char *line)
{
    struct curl_slist *list = curl_slist_append(r->headers, line);

    if (list == NULL) {
        return -1;
    }
    r->headers = list;
    return 0;
}


/*
 * Appends "name: value" to the request's header list. An empty value is sent
 * as an empty header ("name;" in curl's syntax). Returns 0, or -1 when out
 * of memory.
 */
static int
append_header(lua_State *L, request_t *r, const char *name, int vidx,
    int o)
{
    const char  *v;
    size_t       vlen;
    int          rc;

    if (lua_type(L, vidx) != LUA_TSTRING && lua_type(L, vidx) != LUA_TNUMBER) {
        return bad_opt(L, o, "headers",
                       "a table of name -> string, number, false or array");
    }
    v = lua_tolstring(L, vidx, &vlen);
    for (size_t i = 0; i < vlen; i++) {
        if (v[i] == '\r' || v[i] == '\n' || v[i] == '\0') {
            return bad_opt(L, o, "headers",
                           "free of CR, LF and NUL in values");
        }
    }
    if (vlen == 0) {
        lua_pushfstring(L, "%s;", name);                  /* ... line */
    } else {
        lua_pushfstring(L, "%s: %s", name, v);            /* ... line */
    }
    rc = append_line(r, lua_tostring(L, -1));
    lua_pop(L, 1);                                        /* ... */
    return rc;
}


/*
 * Builds the header list from opts.headers (at stack index `h`). Sets
 * `*has_ctype` / `*has_expect` when the caller gave those headers. Returns 0,
 * or -1 when out of memory.
 */
static int
parse_headers(lua_State *L, request_t *r, int o, int h, int *has_ctype,
    int *has_expect)
{
    const char *name;
    size_t      nlen;
    int         rc;

    lua_pushnil(L);                                       /* ... nil */
    while (lua_next(L, h) != 0) {                         /* ... k v */
        if (lua_type(L, -2) != LUA_TSTRING) {
            return bad_opt(L, o, "headers", "keyed by header names");
        }
        name = lua_tolstring(L, -2, &nlen);
        if (!is_token(name, nlen)) {
            return bad_opt(L, o, "headers", "keyed by valid header names");
        }
        if (strcasecmp(name, "content-type") == 0) {
            *has_ctype = 1;
        } else if (strcasecmp(name, "expect") == 0) {
            *has_expect = 1;
        }

        if (lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1)) {
            /* false: "name:" tells curl to drop its own header */
            lua_pushfstring(L, "%s:", name);              /* ... k v line */
            rc = append_line(r, lua_tostring(L, -1));
            lua_pop(L, 1);                                /* ... k v */
            if (rc != 0) {
                return -1;
            }

        } else if (lua_type(L, -1) == LUA_TTABLE) {
            /* array: the header is sent once per element, in order */
            int n = (int) lua_objlen(L, -1);
            for (int i = 1; i <= n; i++) {
                lua_rawgeti(L, -1, i);                    /* ... k v vi */
                if (append_header(L, r, name, lua_gettop(L), o) != 0) {
                    return -1;
                }
                lua_pop(L, 1);                            /* ... k v */
            }

        } else if (append_header(L, r, name, lua_gettop(L), o) != 0) {
            return -1;
        }
        lua_pop(L, 1);                                    /* ... k */
    }
    return 0;
}


/* Checks that `path` is a readable regular file. Returns 0, or -1 with
 * errno set. */
static int
check_readable(const char *path)
{
    struct stat st;

    if (stat(path, &st) != 0) {
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        errno = EISDIR;
        return -1;
    }
    return access(path, R_OK);
}


/* part[key] as a string or NULL; misuse names the opts argument `o`. */
static const char *
part_string(lua_State *L, int p, int o, const char *key, size_t *len)
{
    const char *s = NULL;
    int         t = get_field(L, p, key);

    if (t == LUA_TSTRING) {
        s = lua_tolstring(L, -1, len);
    } else if (t != LUA_TNIL) {
        bad_opt(L, o, "multipart", lua_pushfstring(L, "parts whose '%s' is "
                                                   "a string", key));
    }
    lua_pop(L, 1);
    return s;
}


/*
 * Builds r->mime from opts.multipart (at stack index `m`). Returns 0; or -1
 * with a runtime error message pushed on the stack (a part file that cannot
 * be read, out of memory). Raises on misuse.
 */
static int
parse_multipart(lua_State *L, request_t *r, int o, int m)
{
    int n = (int) lua_objlen(L, m);

    r->mime = curl_mime_init(r->curl);
    if (r->mime == NULL) {
        lua_pushliteral(L, "out of memory");
        return -1;
    }

    for (int i = 1; i <= n; i++) {
        curl_mimepart  *part;
        const char     *name, *value, *data, *file, *filename, *ctype;
        size_t          vlen = 0, dlen = 0;
        int             p;

        lua_rawgeti(L, m, i);                             /* ... part */
        p = lua_gettop(L);
        if (lua_type(L, p) != LUA_TTABLE) {
            return bad_opt(L, o, "multipart", "an array of part tables");
        }
        name = part_string(L, p, o, "name", NULL);
        value = part_string(L, p, o, "value", &vlen);
        data = part_string(L, p, o, "data", &dlen);
        file = part_string(L, p, o, "file", NULL);
        filename = part_string(L, p, o, "filename", NULL);
        ctype = part_string(L, p, o, "content_type", NULL);
        if (name == NULL) {
            return bad_opt(L, o, "multipart", "parts with a 'name'");
        }
        if ((value != NULL) + (data != NULL) + (file != NULL) != 1) {
            return bad_opt(L, o, "multipart",
                           "parts with exactly one of value, data, file");
        }

        part = curl_mime_addpart(r->mime);
        if (part == NULL || curl_mime_name(part, name) != CURLE_OK) {
            lua_pushliteral(L, "out of memory");
            return -1;
        }
        if (file != NULL) {
            if (check_readable(file) != 0) {
                lua_pushfstring(L, "cannot read multipart file %s: %s",
                                file, strerror(errno));
                return -1;
            }
            if (curl_mime_filedata(part, file) != CURLE_OK) {
                lua_pushfstring(L, "cannot read multipart file %s", file);
                return -1;
            }
        } else if (curl_mime_data(part, value ? value : data,
                                  value ? vlen : dlen) != CURLE_OK)
        {
            lua_pushliteral(L, "out of memory");
            return -1;
        }
        if ((filename != NULL && curl_mime_filename(part, filename) != CURLE_OK)
            || (ctype != NULL && curl_mime_type(part, ctype) != CURLE_OK))
        {
            lua_pushliteral(L, "out of memory");
            return -1;
        }
        lua_pop(L, 1);                                    /* ... */
    }
    return 0;
}


/*
 * Parses every option of `opts` (stack index `o`) into `op` and `r`. The
 * body string, when given, is left pushed on the stack to anchor it for the
 * transfer. Returns 0; or -1 with a runtime error message pushed (it then
 * sits above the anchored body). Raises on misuse.
 */
static int
parse_opts(lua_State *L, request_t *r, opts_t *op, int o)
{
    const char         *s, *body_file, *output;
    const char         *expect_line;
    lua_Number          n;
    int                 nbodies, has_ctype = 0, has_expect = 0, expect;
    int                 base;

    op->url = opt_string(L, o, "url", NULL, NULL);
    if (op->url == NULL) {
        return bad_opt(L, o, "url", "a string");
    }

    op->timeout_ms = opt_ms(L, o, "timeout", DEFAULT_TIMEOUT_S);
    op->connect_timeout_ms = opt_ms(L, o, "connect_timeout",
                                    DEFAULT_CONNECT_TIMEOUT_S);
    op->local_address = opt_string(L, o, "local_address", NULL, NULL);
    op->ca_file = opt_string(L, o, "ca_file", NULL, NULL);
    op->proxy = opt_string(L, o, "proxy", NULL, NULL);
    op->follow = opt_bool(L, o, "follow", 0);
    op->verify = opt_bool(L, o, "verify", 1);

    s = opt_string(L, o, "http_version", NULL, NULL);
    if (s == NULL) {
        op->http_version = CURL_HTTP_VERSION_NONE;
    } else if (strcmp(s, "1.0") == 0) {
        op->http_version = CURL_HTTP_VERSION_1_0;
    } else if (strcmp(s, "1.1") == 0) {
        op->http_version = CURL_HTTP_VERSION_1_1;
    } else if (strcmp(s, "2") == 0) {
        op->http_version = CURL_HTTP_VERSION_2_0;
    } else {
        return bad_opt(L, o, "http_version", "\"1.0\", \"1.1\" or \"2\"");
    }

    n = opt_number(L, o, "max_size", -1);
    r->max_size = n >= 9.0e18 ? (curl_off_t) INT64_MAX : (curl_off_t) n;

    /* Where the response body goes: memory, a file or a callback. */
    output = opt_string(L, o, "output", NULL, NULL);
    switch (get_field(L, o, "on_data")) {
    case LUA_TNIL:
        lua_pop(L, 1);
        break;
    case LUA_TFUNCTION:
        if (output != NULL) {
            return bad_opt(L, o, "on_data", "nil when 'output' is given");
        }
        r->on_data_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        break;
    default:
        return bad_opt(L, o, "on_data", "a function");
    }

    /* What the request sends: at most one body source. */
    switch (get_field(L, o, "body")) {                    /* ... body */
    case LUA_TNIL:
        lua_pop(L, 1);
        break;
    case LUA_TSTRING:
        r->body = lua_tolstring(L, -1, &r->body_len);     /* stays pushed */
        break;
    default:
        return bad_opt(L, o, "body", "a string");
    }
    body_file = opt_string(L, o, "body_file", NULL, NULL);
    if (get_field(L, o, "multipart") != LUA_TNIL
        && lua_type(L, -1) != LUA_TTABLE)
    {
        return bad_opt(L, o, "multipart", "an array of part tables");
    }
    nbodies = (r->body != NULL) + (body_file != NULL)
              + (lua_type(L, -1) == LUA_TTABLE);
    if (nbodies > 1) {
        return bad_opt(L, o, "body", "alone (one of body, body_file, "
                       "multipart)");
    }
    r->has_body = nbodies == 1;

    op->method = opt_string(L, o, "method", r->has_body ? "POST" : "GET",
                            NULL);
    if (!is_token(op->method, strlen(op->method))) {
        return bad_opt(L, o, "method", "an HTTP token");
    }
    if (r->has_body && strcmp(op->method, "HEAD") == 0) {
        return bad_opt(L, o, "method", "other than HEAD with a body");
    }
    expect = opt_bool(L, o, "expect_continue", -1);

    /* From here on errors reset the stack to `base` - 1: [body] mp */
    base = lua_gettop(L);
    if (get_field(L, o, "headers") != LUA_TNIL) {         /* ... mp h */
        if (lua_type(L, -1) != LUA_TTABLE) {
            return bad_opt(L, o, "headers", "a table");
        }
        if (parse_headers(L, r, o, lua_gettop(L), &has_ctype, &has_expect)
            != 0)
        {
            lua_settop(L, base - 1);                      /* ... */
            lua_pushliteral(L, "out of memory");          /* ... err */
            return -1;
        }
    }
    lua_pop(L, 1);                                        /* ... mp */

    if (lua_type(L, -1) == LUA_TTABLE) {
        if (parse_multipart(L, r, o, base) != 0) {        /* ... mp ... err */
            lua_replace(L, base);                         /* ... err ... */
            lua_settop(L, base);                          /* ... err */
            return -1;
        }
    }
    lua_settop(L, base - 1);                              /* ... */

    /* curl would label a plain body application/x-www-form-urlencoded;
     * send no Content-Type unless the caller gave one. */
    if (r->mime == NULL && !has_ctype && append_line(r, "Content-Type:") != 0)
    {
        lua_pushliteral(L, "out of memory");
        return -1;
    }
    if (!has_expect && expect >= 0) {
        expect_line = expect ? "Expect: 100-continue" : "Expect:";
        if (append_line(r, expect_line) != 0) {
            lua_pushliteral(L, "out of memory");
            return -1;
        }
    }

    if (body_file != NULL) {
        struct stat st;
        r->body_fp = fopen(body_file, "rb");
        if (r->body_fp == NULL || fstat(fileno(r->body_fp), &st) != 0) {
            lua_pushfstring(L, "cannot open body_file %s: %s", body_file,
                            strerror(errno));
            return -1;
        }
        r->body_fp_size = (curl_off_t) st.st_size;
    }

    if (output != NULL) {
        r->out_path = wtt_strdup(output);
        r->out_fp = fopen(output, "wb");
        if (r->out_fp == NULL) {
            lua_pushfstring(L, "cannot open output %s: %s", output,
                            strerror(errno));
            return -1;
        }
    }
    return 0;
}


/* ---------------------------------------------------------------------------
 * Transfer (phase 2: never raises)
 * ------------------------------------------------------------------------- */

static void
setup_handle(CURL *c, request_t *r, const opts_t *op)
{
    const char *m = op->method;

    curl_easy_setopt(c, CURLOPT_URL, op->url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(c, CURLOPT_USERAGENT, USER_AGENT);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(c, CURLOPT_PROTOCOLS,
                     (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS));
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS,
                     (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, op->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, op->connect_timeout_ms);
    curl_easy_setopt(c, CURLOPT_HTTP_VERSION, op->http_version);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, (long) op->follow);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, (long) MAX_REDIRECTS);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, (long) op->verify);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, op->verify ? 2L : 0L);
    if (op->ca_file != NULL) {
        curl_easy_setopt(c, CURLOPT_CAINFO, op->ca_file);
    }
    if (op->local_address != NULL) {
        curl_easy_setopt(c, CURLOPT_INTERFACE, op->local_address);
    }
    if (op->proxy != NULL) {
        curl_easy_setopt(c, CURLOPT_PROXY, op->proxy);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, r->headers);

    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);

    if (strcmp(m, "HEAD") == 0) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
        return;
    }
    /* Refuse an announced oversize body before reading any of it; on_body
     * enforces the limit for bodies without a Content-Length. */
    if (r->max_size >= 0) {
        curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, r->max_size);
    }

    if (r->mime != NULL) {
        curl_easy_setopt(c, CURLOPT_MIMEPOST, r->mime);
    } else if (r->body_fp != NULL) {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(c, CURLOPT_READDATA, r);
        curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, on_seek);
        curl_easy_setopt(c, CURLOPT_SEEKDATA, r);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, r->body_fp_size);
    } else if (r->body != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t) r->body_len);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, r->body);
    } else if (strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0
               || strcmp(m, "PATCH") == 0)
    {
        /* An empty body still gets "Content-Length: 0". */
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) 0);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
    }

    if (strcmp(m, "POST") != 0 && (strcmp(m, "GET") != 0 || r->has_body)) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, m);
    }
}


/* Runs the transfer and copies what phase 3 needs out of the handle, which
 * is reset afterwards so that it holds no pointer into `r`. */
static CURLcode
perform(lua_State *L, client_t *client, request_t *r, const opts_t *op)
{
    CURLcode    rc;
    long        status = 0, version = 0;
    double      total = 0;
    char       *url = NULL;

    setup_handle(r->curl, r, op);
    r->L = L;
    if (r->tmp == NULL) {
        client->busy = 1;
    }

    rc = curl_easy_perform(r->curl);

    curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(r->curl, CURLINFO_HTTP_VERSION, &version);
    curl_easy_getinfo(r->curl, CURLINFO_TOTAL_TIME, &total);
    curl_easy_getinfo(r->curl, CURLINFO_EFFECTIVE_URL, &url);
    r->status = status;
    r->version = version;
    r->total_time = total;
    r->eff_url = url != NULL ? wtt_strdup(url) : NULL;

    curl_easy_reset(r->curl);
    r->L = NULL;
    if (r->tmp == NULL) {
        client->busy = 0;
        r->curl = NULL;
        if (client->closed && client->curl != NULL) {
            /* close was called from inside on_data */
            curl_easy_cleanup(client->curl);
            client->curl = NULL;
        }
    }
    return rc;
}


/* ---------------------------------------------------------------------------
 * Result (phase 3)
 * ------------------------------------------------------------------------- */

static void
trim(const char **s, const char **e)
{
    while (*s < *e && (**s == ' ' || **s == '\t')) {
        (*s)++;
    }
    while (*e > *s && ((*e)[-1] == ' ' || (*e)[-1] == '\t'
                       || (*e)[-1] == '\r' || (*e)[-1] == '\n'))
    {
        (*e)--;
    }
}


/*
 * Pushes a table of lowercased header name -> value from the raw header
 * lines in `buf` (lowercased in place). Repeated headers are joined with
 * ", "; obsolete folded lines are appended to the previous header.
 */
static void
push_headers(lua_State *L, char *buf, size_t len)
{
    char       *p = buf, *end = buf + len;
    const char *last = NULL;
    size_t      last_len = 0;

    lua_newtable(L);                                      /* h */
    while (p < end) {
        char       *eol = memchr(p, '\n', (size_t) (end - p));
        char       *next = eol ? eol + 1 : end;
        char       *colon;
        const char *vs, *ve;

        if (eol == NULL) {
            eol = end;
        }
        if ((*p == ' ' || *p == '\t') && last != NULL) {
            vs = p;
            ve = eol;
            trim(&vs, &ve);
            lua_pushlstring(L, last, last_len);           /* h name */
            lua_pushlstring(L, last, last_len);           /* h name name */
            lua_rawget(L, -3);                            /* h name old */
            lua_pushliteral(L, " ");                      /* h name old sp */
            lua_pushlstring(L, vs, (size_t) (ve - vs));   /* h name old sp v */
            lua_concat(L, 3);                             /* h name new */
            lua_rawset(L, -3);                            /* h */
            p = next;
            continue;
        }
        colon = memchr(p, ':', (size_t) (eol - p));
        if (colon == NULL || colon == p) {
            p = next;          /* blank line or garbage */
            last = NULL;
            continue;
        }
        for (char *q = p; q < colon; q++) {
            if (*q >= 'A' && *q <= 'Z') {
                *q = (char) (*q - 'A' + 'a');
            }
        }
        vs = colon + 1;
        ve = eol;
        trim(&vs, &ve);
        last = p;
        last_len = (size_t) (colon - p);

        lua_pushlstring(L, p, last_len);                  /* h name */
        lua_pushvalue(L, -1);                             /* h name name */
        lua_rawget(L, -3);                                /* h name old */
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);                                /* h name */
            lua_pushlstring(L, vs, (size_t) (ve - vs));   /* h name v */
        } else {
            lua_pushliteral(L, ", ");                     /* h name old , */
            lua_pushlstring(L, vs, (size_t) (ve - vs));   /* h name old , v */
            lua_concat(L, 3);                             /* h name new */
        }
        lua_rawset(L, -3);                                /* h */
        p = next;
    }
}


static void
push_result(lua_State *L, request_t *r, int memory)
{
    const char *v;

    lua_createtable(L, 0, 8);                             /* res */
    lua_pushinteger(L, (lua_Integer) r->status);          /* res status */
    lua_setfield(L, -2, "status");                        /* res */
    push_headers(L, r->hdr, r->hdr_len);                  /* res h */
    lua_setfield(L, -2, "headers");                       /* res */
    if (memory) {
        lua_pushlstring(L, r->buf ? r->buf : "", r->buf_len);
        lua_setfield(L, -2, "body");
    }
    lua_pushnumber(L, (lua_Number) r->received);
    lua_setfield(L, -2, "size");
    lua_pushnumber(L, r->total_time);
    lua_setfield(L, -2, "time");
    v = version_name(r->version);
    if (v != NULL) {
        lua_pushstring(L, v);
        lua_setfield(L, -2, "http_version");
    }
    if (r->eff_url != NULL) {
        lua_pushstring(L, r->eff_url);
        lua_setfield(L, -2, "url");
    }
    if (r->aborted) {
        lua_pushboolean(L, 1);
        lua_setfield(L, -2, "aborted");
    }
}


/*
 * The whole request on `client` with opts at stack index `o`. Returns the
 * number of results: 1 (res) or 2 (nil, err); raises on misuse and re-raises
 * an error thrown by on_data once everything is released.
 */
static int
do_request(lua_State *L, client_t *client, int o)
{
    request_t  *r;
    opts_t      op;
    CURLcode    rc;
    int         fail, memory;
    char        num[32];

    luaL_checktype(L, o, LUA_TTABLE);
    if (client->curl == NULL) {
        lua_pushnil(L);
        lua_pushliteral(L, "closed");
        return 2;
    }

    r = lua_newuserdata(L, sizeof(request_t));            /* ... r */
    memset(r, 0, sizeof(request_t));
    r->on_data_ref = LUA_NOREF;
    luaL_getmetatable(L, REQUEST_MT);
    lua_setmetatable(L, -2);
    lua_pushnil(L);                                       /* ... r errslot */
    r->err_slot = lua_gettop(L);

    /* A request made from inside on_data finds the handle busy: it runs on
     * a handle of its own instead of disturbing the outer transfer. */
    if (client->busy) {
        r->tmp = curl_easy_init();
        if (r->tmp == NULL) {
            request_release(L, r);
            return push_fail(L, "out of memory");
        }
        r->curl = r->tmp;
    } else {
        r->curl = client->curl;
        curl_easy_reset(r->curl);
    }

    memset(&op, 0, sizeof(op));
    if (parse_opts(L, r, &op, o) != 0) {                  /* ... [body] why */
        request_release(L, r);
        return push_fail(L, lua_tostring(L, -1));         /* ... nil err */
    }
    /* Room for on_data's call and its error without growing the stack
     * inside a libcurl callback. */
    luaL_checkstack(L, 8, "request");
    memory = r->out_fp == NULL && r->on_data_ref == LUA_NOREF;

    rc = perform(L, client, r, &op);

    fail = 0;
    if (r->out_fp != NULL) {
        int failed_close = fclose(r->out_fp) != 0;
        r->out_fp = NULL;
        if (failed_close && r->write_errno == 0 && rc == CURLE_OK) {
            r->write_errno = errno ? errno : EIO;
        }
        fail = rc != CURLE_OK || r->write_errno != 0;
        if (fail) {
            unlink(r->out_path);
        }
    }

    if (r->lua_err) {
        request_release(L, r);
        lua_pushvalue(L, r->err_slot);
        return lua_error(L);
    }
    if (r->too_large || rc == CURLE_FILESIZE_EXCEEDED) {
        snprintf(num, sizeof(num), "%lld", (long long) r->max_size);
        request_release(L, r);
        lua_pushnil(L);
        lua_pushfstring(L, "request failed: response larger than %s bytes",
                        num);
        return 2;
    }
    if (r->hdr_too_large) {
        request_release(L, r);
        return push_fail(L, "response headers too large");
    }
    if (r->write_errno != 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "request failed: cannot write output %s: %s",
                        r->out_path, strerror(r->write_errno));
        request_release(L, r);
        return 2;
    }
    if (r->oom) {
        request_release(L, r);
        return push_fail(L, "out of memory");
    }
    if (rc != CURLE_OK && !r->aborted) {
        push_curl_fail(L, rc, r->errbuf);
        request_release(L, r);
        return 2;
    }

    push_result(L, r, memory);                            /* ... res */
    request_release(L, r);
    return 1;
}


/* ---------------------------------------------------------------------------
 * Clients
 * ------------------------------------------------------------------------- */

/* Pushes a new client userdata with its own easy handle. */
static client_t *
push_client(lua_State *L)
{
    client_t *c = lua_newuserdata(L, sizeof(client_t));  /* c */

    memset(c, 0, sizeof(client_t));
    luaL_getmetatable(L, CLIENT_MT);                      /* c mt */
    lua_setmetatable(L, -2);                              /* c */
    c->curl = curl_easy_init();
    if (c->curl == NULL) {
        luaL_error(L, "httpc: curl_easy_init failed");
    }
    return c;
}


/* Pushes this state's default client, creating it on first use. */
static client_t *
push_default_client(lua_State *L)
{
    client_t *c;

    lua_getfield(L, LUA_REGISTRYINDEX, DEFAULT_CLIENT_KEY);   /* c|nil */
    if (!lua_isnil(L, -1)) {
        return luaL_checkudata(L, -1, CLIENT_MT);
    }
    lua_pop(L, 1);                                            /* */
    c = push_client(L);                                       /* c */
    lua_pushvalue(L, -1);                                     /* c c */
    lua_setfield(L, LUA_REGISTRYINDEX, DEFAULT_CLIENT_KEY);   /* c */
    return c;
}


/* ---------------------------------------------------------------------------
 * Lua bindings
 * ------------------------------------------------------------------------- */

/*
 * httpc.request(opts) -> res | nil, err
 *
 * opts (only url is required):
 *   url              string
 *   method           any HTTP token; default "GET", or "POST" when a body
 *                    (body, body_file, multipart) is given
 *   headers          { name = string | number | false | { string, ... } };
 *                    "" sends an empty header, false removes one curl would
 *                    add (User-Agent, Accept, ...), an array repeats it.
 *                    No Content-Type is sent for body/body_file unless given
 *   body             string (binary-safe)
 *   body_file        path, streamed with a Content-Length
 *   multipart        { {name=, value=} | {name=, data=, filename=,
 *                    content_type=} | {name=, file=, filename=,
 *                    content_type=}, ... }
 *   timeout          total seconds (float), default 30; 0: none
 *   connect_timeout  seconds, default 5
 *   max_size         max response body bytes
 *   output           path: the body goes to this file (removed on failure)
 *   on_data          function(chunk) per received piece of body; returning
 *                    false stops the transfer: res.aborted = true. An error
 *                    it raises is re-raised by request
 *   http_version     "1.0" | "1.1" | "2"
 *   expect_continue  boolean; nil: curl's choice
 *   local_address    CURLOPT_INTERFACE syntax: "host!127.0.0.2", "if!eth0"
 *   follow           follow redirects (up to 10), default false
 *   verify           verify TLS peer and host, default true
 *   ca_file          CA bundle path
 *   proxy            proxy URL; "" disables proxies from the environment
 *
 * res: status, headers (lowercased names), body (memory mode only), size,
 * time (seconds), http_version, url (after redirects), aborted (true only).
 */
static int
l_request(lua_State *L)
{
    client_t *c;

    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);                                     /* opts */
    c = push_default_client(L);                           /* opts c */
    return do_request(L, c, 1);
}


/* client:request(opts) -> res | nil, err; nil, "closed" after close. */
static int
l_client_request(lua_State *L)
{
    client_t *c = luaL_checkudata(L, 1, CLIENT_MT);

    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);                                     /* c opts */
    return do_request(L, c, 2);
}


/* client:close(): frees the handle and its connections; safe twice. Also
 * the __gc. Inside the client's own on_data it takes effect when the
 * transfer ends. */
static int
l_client_close(lua_State *L)
{
    client_t *c = luaL_checkudata(L, 1, CLIENT_MT);

    c->closed = 1;
    if (c->curl != NULL && !c->busy) {
        curl_easy_cleanup(c->curl);
        c->curl = NULL;
    }
    return 0;
}


/* httpc.new() -> client */
static int
l_new(lua_State *L)
{
    push_client(L);                                       /* c */
    return 1;
}


/* httpc.escape(s) -> s with every byte but A-Z a-z 0-9 - . _ ~ as %XX */
static int
l_escape(lua_State *L)
{
    static const char  hex[] = "0123456789ABCDEF";
    size_t             len;
    const char        *s = luaL_checklstring(L, 1, &len);
    luaL_Buffer        b;

    luaL_buffinit(L, &b);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) s[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
            || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'
            || c == '~')
        {
            luaL_addchar(&b, (char) c);
        } else {
            luaL_addchar(&b, '%');
            luaL_addchar(&b, hex[c >> 4]);
            luaL_addchar(&b, hex[c & 15]);
        }
    }
    luaL_pushresult(&b);
    return 1;
}


static int
hex_value(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}


/* httpc.unescape(s) -> s with %XX decoded; '+' and malformed '%' stay. */
static int
l_unescape(lua_State *L)
{
    size_t       len;
    const char  *s = luaL_checklstring(L, 1, &len);
    luaL_Buffer  b;

    luaL_buffinit(L, &b);
    for (size_t i = 0; i < len; i++) {
        int hi, lo;
        if (s[i] == '%' && i + 2 < len) {
            hi = hex_value(s[i + 1]);
            lo = hex_value(s[i + 2]);
            if (hi >= 0 && lo >= 0) {
                luaL_addchar(&b, (char) (hi << 4 | lo));
                i += 2;
                continue;
            }
        }
        luaL_addchar(&b, s[i]);
    }
    luaL_pushresult(&b);
    return 1;
}


static const luaL_Reg client_methods[] = {
    { "request", l_client_request },
    { "close",   l_client_close },
    { NULL, NULL },
};


static const luaL_Reg httpc_funcs[] = {
    { "request",  l_request },
    { "new",      l_new },
    { "escape",   l_escape },
    { "unescape", l_unescape },
    { NULL, NULL },
};


int
luaopen_wtt_http_client(lua_State *L)
{
    pthread_once(&init_once, global_init);
    if (init_rc != CURLE_OK) {
        return luaL_error(L, "httpc: curl_global_init failed: %s",
                          curl_easy_strerror(init_rc));
    }

    static const luaL_Reg client_meta[] = {
        { "__gc", l_client_close }, { NULL, NULL },
    };
    static const luaL_Reg request_meta[] = {
        { "__gc", l_request_gc }, { NULL, NULL },
    };

    wtt_lua_class(L, CLIENT_MT, client_meta, client_methods);
    wtt_lua_class(L, REQUEST_MT, request_meta, NULL);

    lua_newtable(L);                                      /* httpc */
    luaL_register(L, NULL, httpc_funcs);
    return 1;
}
