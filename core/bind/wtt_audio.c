/*
 * wtt_audio.c: audio decoding (libsndfile) and resampling (libsoxr) for the
 * engine, and the `wtt.audio` Lua module (see wtt_audio.h, docs/audio.md).
 *
 * A reader is a small pipeline pulled by wtt_audio_read:
 *
 *   sf_readf_float (block_frames frames, interleaved)
 *     -> non-finite check (error, or replace by 0 and count)
 *     -> downmix: mean of the channels
 *     -> soxr_process (streaming; flushed once the source ends)
 *     -> trim or zero-pad to ceil(frames * target / source), librosa's length
 *
 * Every loop is bounded: each step consumes source frames (capped by
 * max_duration_s), produces output, or moves the state machine forward, and
 * a resampler that does neither a few times in a row is an error.
 *
 * The file is opened by us (O_NONBLOCK, so a FIFO cannot block the open;
 * fstat then refuses anything that is not a regular file) and handed to
 * libsndfile with sf_open_fd; we close the descriptor after sf_close.
 */
#include "wtt_audio.h"
#include "wtt_luax.h"
#include "wtt_nn.h"
#include "wtt_util.h"

#include <lauxlib.h>
#include <sndfile.h>
#include <soxr.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>


#define PCM_MT              "wtt.audio.pcm"
#define READER_MT           "wtt.audio.reader"

#define MIN_BLOCK_FRAMES    256
#define MAX_BLOCK_FRAMES    (1u << 22)
#define MAX_BLOCK_SAMPLES   (1u << 22)    /* frames x channels per block */
#define MIN_OUT_CAP         4096
#define MAX_OUT_CAP         (1u << 22)
#define MAX_STALLS          8             /* soxr calls without progress */
#define MAX_WAV_CHUNKS      4096          /* RIFF chunks walked per header */
#define MAX_READ_SAMPLES    (1u << 28)    /* one Lua reader:read(n) */
#define DEFAULT_READ_SAMPLES 65536


struct wtt_audio_reader {
    SNDFILE                  *sf;
    int                       fd;
    soxr_t                    soxr;         /* NULL: rates are equal */
    struct wtt_audio_params   p;
    struct wtt_audio_info     info;
    int                       major;        /* SF_FORMAT_TYPEMASK part */
    int64_t                   max_frames;   /* source frames allowed */

    float                    *in;           /* block_frames x channels */
    float                    *mono;         /* block_frames (== in, mono) */
    size_t                    mono_len;
    size_t                    mono_pos;     /* next sample to resample */
    float                    *out;          /* resampler output */
    size_t                    out_cap;

    const float              *avail;        /* samples ready to return */
    size_t                    avail_len;
    size_t                    avail_pos;
    int64_t                   produced;     /* samples put in avail */
    int64_t                   expected;     /* output length; -1 until eof */

    unsigned                  eof:1;        /* the source is exhausted */
    unsigned                  flushed:1;    /* soxr has nothing left */
    unsigned                  done:1;       /* every sample was returned */
    unsigned                  failed:1;
    char                      errstr[WTT_AUDIO_ERRLEN];
};


/* ------------------------------------------------------------------------
 * Errors and names
 * ------------------------------------------------------------------------ */


/* printf into `err` (may be NULL or errlen 0); always NUL terminated. */
static void
set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}


/*
 * Copies `s` into `buf` in lowercase, without a leading "Error : " and a
 * trailing period, the shape house style 14 wants for library messages.
 */
static const char *
tidy_msg(const char *s, char *buf, size_t len)
{
    size_t n;

    if (s != NULL && strncmp(s, "Error : ", 8) == 0) {
        s += 8;
    }
    n = strlen(wtt_lowercase(s, buf, len));
    while (n > 0 && (buf[n - 1] == '.' || buf[n - 1] == '\n'
                     || buf[n - 1] == ' '))
    {
        buf[--n] = '\0';
    }
    return buf;
}


static const struct {
    int         major;
    const char *name;
} formats[] = {
    { SF_FORMAT_WAV,   "wav" },
    { SF_FORMAT_WAVEX, "wav" },
    { SF_FORMAT_RF64,  "rf64" },
    { SF_FORMAT_W64,   "w64" },
    { SF_FORMAT_AIFF,  "aiff" },
    { SF_FORMAT_AU,    "au" },
    { SF_FORMAT_CAF,   "caf" },
    { SF_FORMAT_FLAC,  "flac" },
    { SF_FORMAT_OGG,   "ogg" },
    { SF_FORMAT_MPEG,  "mpeg" },
    { 0, NULL },
};


/* Our name of an allowed major format, or NULL when it is not allowed. */
static const char *
format_name(int major)
{
    int i;

    for (i = 0; formats[i].name != NULL; i++) {
        if (formats[i].major == major) {
            return formats[i].name;
        }
    }
    return NULL;
}


static const struct {
    int         sub;
    const char *name;
} subtypes[] = {
    { SF_FORMAT_PCM_S8,         "pcm_s8" },
    { SF_FORMAT_PCM_16,         "pcm_16" },
    { SF_FORMAT_PCM_24,         "pcm_24" },
    { SF_FORMAT_PCM_32,         "pcm_32" },
    { SF_FORMAT_PCM_U8,         "pcm_u8" },
    { SF_FORMAT_FLOAT,          "float" },
    { SF_FORMAT_DOUBLE,         "double" },
    { SF_FORMAT_ULAW,           "ulaw" },
    { SF_FORMAT_ALAW,           "alaw" },
    { SF_FORMAT_IMA_ADPCM,      "ima_adpcm" },
    { SF_FORMAT_MS_ADPCM,       "ms_adpcm" },
    { SF_FORMAT_GSM610,         "gsm610" },
    { SF_FORMAT_VOX_ADPCM,      "vox_adpcm" },
    { SF_FORMAT_NMS_ADPCM_16,   "nms_adpcm_16" },
    { SF_FORMAT_NMS_ADPCM_24,   "nms_adpcm_24" },
    { SF_FORMAT_NMS_ADPCM_32,   "nms_adpcm_32" },
    { SF_FORMAT_G721_32,        "g721_32" },
    { SF_FORMAT_G723_24,        "g723_24" },
    { SF_FORMAT_G723_40,        "g723_40" },
    { SF_FORMAT_DWVW_12,        "dwvw_12" },
    { SF_FORMAT_DWVW_16,        "dwvw_16" },
    { SF_FORMAT_DWVW_24,        "dwvw_24" },
    { SF_FORMAT_DWVW_N,         "dwvw_n" },
    { SF_FORMAT_DPCM_8,         "dpcm_8" },
    { SF_FORMAT_DPCM_16,        "dpcm_16" },
    { SF_FORMAT_VORBIS,         "vorbis" },
    { SF_FORMAT_OPUS,           "opus" },
    { SF_FORMAT_ALAC_16,        "alac_16" },
    { SF_FORMAT_ALAC_20,        "alac_20" },
    { SF_FORMAT_ALAC_24,        "alac_24" },
    { SF_FORMAT_ALAC_32,        "alac_32" },
    { SF_FORMAT_MPEG_LAYER_I,   "mp1" },
    { SF_FORMAT_MPEG_LAYER_II,  "mp2" },
    { SF_FORMAT_MPEG_LAYER_III, "mp3" },
    { 0, NULL },
};


static const char *
subtype_name(int sub)
{
    int i;

    for (i = 0; subtypes[i].name != NULL; i++) {
        if (subtypes[i].sub == sub) {
            return subtypes[i].name;
        }
    }
    return "other";
}


static const char *
quality_names[] = { "hq", "vhq", "mq", "lq", "qq", NULL };


static unsigned long
quality_recipe(int q)
{
    switch (q) {
    case WTT_AUDIO_QUALITY_VHQ: return SOXR_VHQ;
    case WTT_AUDIO_QUALITY_MQ:  return SOXR_MQ;
    case WTT_AUDIO_QUALITY_LQ:  return SOXR_LQ;
    case WTT_AUDIO_QUALITY_QQ:  return SOXR_QQ;
    default:                    return SOXR_HQ;
    }
}


/* ------------------------------------------------------------------------
 * Header checks
 * ------------------------------------------------------------------------ */


/* Reads exactly `len` bytes at `off`. Returns 0, or -1 (short or error). */
static int
pread_all(int fd, void *buf, size_t len, uint64_t off)
{
    size_t  got = 0;
    ssize_t n;

    while (got < len) {
        n = pread(fd, (char *) buf + got, len - got, (off_t) (off + got));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return -1;
        }
        got += (size_t) n;
    }
    return 0;
}


static uint32_t
get_u32(const unsigned char *b, int big)
{
    if (big) {
        return ((uint32_t) b[0] << 24) | ((uint32_t) b[1] << 16)
               | ((uint32_t) b[2] << 8) | (uint32_t) b[3];
    }
    return ((uint32_t) b[3] << 24) | ((uint32_t) b[2] << 16)
           | ((uint32_t) b[1] << 8) | (uint32_t) b[0];
}


static uint64_t
get_u64le(const unsigned char *b)
{
    return (uint64_t) get_u32(b, 0) | ((uint64_t) get_u32(b + 4, 0) << 32);
}


/*
 * Walks the chunks of a RIFF/RIFX/RF64/BW64 WAVE file to its "data" chunk.
 * Returns 1 and stores the data offset and the size the header claims (the
 * ds64 size for RF64), 0 when the file is no such WAVE or has no data chunk
 * within MAX_WAV_CHUNKS chunks, or -1 on a read error. `*claim` is
 * UINT64_MAX for the "size unknown" marker 0xFFFFFFFF of streamed files.
 */
static int
wav_data_claim(int fd, uint64_t fsize, uint64_t *data_off, uint64_t *claim)
{
    unsigned char h[28];
    uint64_t      pos, size, ds64_data = UINT64_MAX;
    int           big, rf64, i;

    if (fsize < 12 || pread_all(fd, h, 12, 0) != 0) {
        return 0;
    }
    if (memcmp(h + 8, "WAVE", 4) != 0) {
        return 0;
    }
    big = memcmp(h, "RIFX", 4) == 0;
    rf64 = memcmp(h, "RF64", 4) == 0 || memcmp(h, "BW64", 4) == 0;
    if (!big && !rf64 && memcmp(h, "RIFF", 4) != 0) {
        return 0;
    }

    pos = 12;
    for (i = 0; i < MAX_WAV_CHUNKS && pos + 8 <= fsize; i++) {
        if (pread_all(fd, h, 8, pos) != 0) {
            return -1;
        }
        size = get_u32(h + 4, big);

        if (rf64 && memcmp(h, "ds64", 4) == 0 && size >= 24
            && pos + 8 + 24 <= fsize)
        {
            if (pread_all(fd, h + 8, 16, pos + 8) != 0) {
                return -1;
            }
            ds64_data = get_u64le(h + 16);
        }

        if (memcmp(h, "data", 4) == 0) {
            *data_off = pos + 8;
            if (rf64 && size == 0xFFFFFFFFu) {
                *claim = ds64_data;
            } else if (size == 0xFFFFFFFFu) {
                *claim = UINT64_MAX;
            } else {
                *claim = size;
            }
            return 1;
        }
        pos += 8 + size + (size & 1);
    }
    return 0;
}


/* Validates parameters. Returns 0, or -1 with a reason in `why`. */
static int
check_params(const struct wtt_audio_params *p, char *why, size_t len)
{
    if (p->target_rate < WTT_AUDIO_MIN_RATE
        || p->target_rate > WTT_AUDIO_MAX_RATE)
    {
        set_err(why, len, "target rate %d out of range %d-%d",
                p->target_rate, WTT_AUDIO_MIN_RATE, WTT_AUDIO_MAX_RATE);
        return -1;
    }
    if (!(p->max_duration_s > 0) || !isfinite(p->max_duration_s)
        || p->max_duration_s > 1e7)
    {
        set_err(why, len, "max duration must be > 0 and <= 1e7 s");
        return -1;
    }
    if (p->nonfinite != WTT_AUDIO_NONFINITE_ERROR
        && p->nonfinite != WTT_AUDIO_NONFINITE_ZERO)
    {
        set_err(why, len, "unknown non-finite policy %d", p->nonfinite);
        return -1;
    }
    if (p->quality < WTT_AUDIO_QUALITY_HQ || p->quality > WTT_AUDIO_QUALITY_QQ)
    {
        set_err(why, len, "unknown resampler quality %d", p->quality);
        return -1;
    }
    if (p->block_frames != 0
        && (p->block_frames < MIN_BLOCK_FRAMES
            || p->block_frames > MAX_BLOCK_FRAMES))
    {
        set_err(why, len, "block of %zu frames out of range %u-%u",
                p->block_frames, MIN_BLOCK_FRAMES, MAX_BLOCK_FRAMES);
        return -1;
    }
    return 0;
}


/*
 * Opens `path`, validates its header against `p` and fills `r` (sf, fd,
 * info, major, max_frames). Returns 0, or -1 with a reason (no operation
 * prefix) in `why`; on failure nothing is left open in `r`.
 */
static int
open_source(const char *path, const struct wtt_audio_params *p,
    struct wtt_audio_reader *r, char *why, size_t len)
{
    struct stat     st;
    SF_INFO         sfi;
    char            msg[128];
    uint64_t        data_off = 0, claim = 0, present;
    int             fd = -1, fl, rc, sub;
    const char     *name;
    SNDFILE        *sf = NULL;
    double          dur;

    if (check_params(p, why, len) != 0) {
        return -1;
    }

    /* O_NONBLOCK: opening a FIFO without a writer must not hang. */
    fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        set_err(why, len, "%s", tidy_msg(strerror(errno), msg, sizeof(msg)));
        return -1;
    }
    if (fstat(fd, &st) != 0) {
        set_err(why, len, "%s", tidy_msg(strerror(errno), msg, sizeof(msg)));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        set_err(why, len, "not a regular file");
        goto fail;
    }
    if (st.st_size == 0) {
        set_err(why, len, "empty file");
        goto fail;
    }
    fl = fcntl(fd, F_GETFL);
    if (fl >= 0) {
        fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    }

    rc = wav_data_claim(fd, (uint64_t) st.st_size, &data_off, &claim);
    if (rc < 0) {
        set_err(why, len, "cannot read the header");
        goto fail;
    }

    memset(&sfi, 0, sizeof(sfi));
    sf = sf_open_fd(fd, SFM_READ, &sfi, SF_FALSE);
    if (sf == NULL) {
        /* libsndfile blames a pipe when mpg123 gives up on a regular file
         * (checked above): that is garbage, not a pipe. */
        if (sf_error(NULL) == SF_ERR_UNRECOGNISED_FORMAT
            || strstr(sf_strerror(NULL), "not a regular file") != NULL)
        {
            set_err(why, len, "unrecognised format");
        } else {
            set_err(why, len, "unreadable header: %s",
                    tidy_msg(sf_strerror(NULL), msg, sizeof(msg)));
        }
        goto fail;
    }

    name = format_name(sfi.format & SF_FORMAT_TYPEMASK);
    if (name == NULL) {
        SF_FORMAT_INFO fi;

        memset(&fi, 0, sizeof(fi));
        fi.format = sfi.format & SF_FORMAT_TYPEMASK;
        if (sf_command(NULL, SFC_GET_FORMAT_INFO, &fi, sizeof(fi)) != 0
            || fi.name == NULL)
        {
            fi.name = "unknown";
        }
        set_err(why, len, "unsupported format: %s", fi.name);
        goto fail;
    }
    sub = sfi.format & SF_FORMAT_SUBMASK;

    if (sfi.samplerate < WTT_AUDIO_MIN_RATE
        || sfi.samplerate > WTT_AUDIO_MAX_RATE)
    {
        set_err(why, len, "sample rate %d Hz out of range %d-%d",
                sfi.samplerate, WTT_AUDIO_MIN_RATE, WTT_AUDIO_MAX_RATE);
        goto fail;
    }
    if (sfi.channels < 1 || sfi.channels > WTT_AUDIO_MAX_CHANNELS) {
        set_err(why, len, "channel count %d out of range 1-%d",
                sfi.channels, WTT_AUDIO_MAX_CHANNELS);
        goto fail;
    }

    memset(&r->info, 0, sizeof(r->info));
    r->info.format = name;
    r->info.subtype = subtype_name(sub);
    r->info.sample_rate = sfi.samplerate;
    r->info.channels = sfi.channels;
    r->info.target_rate = p->target_rate;

    /* A WAV header that claims more audio than the file holds. libsndfile
     * clamps its frame count to what is present; we report the truncation,
     * and refuse a header whose audio is entirely missing. */
    if (rc == 1 && claim != UINT64_MAX) {
        present = data_off <= (uint64_t) st.st_size
                  ? (uint64_t) st.st_size - data_off : 0;
        if (claim > present) {
            if (sfi.frames <= 0) {
                set_err(why, len, "header claims %llu bytes of audio but "
                        "the file holds none", (unsigned long long) claim);
                goto fail;
            }
            r->info.truncated = 1;
            if (p->reject_truncated) {
                set_err(why, len, "truncated file: header claims %llu bytes "
                        "of audio, the file holds %llu",
                        (unsigned long long) claim,
                        (unsigned long long) present);
                goto fail;
            }
        }
    }

    if (sfi.frames == SF_COUNT_MAX || sfi.frames < 0) {
        /* Unknown length (a FLAC STREAMINFO total of 0, libsndfile #1038):
         * decoded by streaming, under the duration cap. */
        r->info.frames = -1;
        r->info.duration = -1;
    } else if (sfi.frames == 0) {
        set_err(why, len, "no audio frames");
        goto fail;
    } else {
        dur = (double) sfi.frames / sfi.samplerate;
        if (dur > p->max_duration_s) {
            set_err(why, len, "duration %.1f s exceeds the limit of %g s",
                    dur, p->max_duration_s);
            goto fail;
        }
        r->info.frames = sfi.frames;
        r->info.duration = dur;
    }

    r->sf = sf;
    r->fd = fd;
    r->major = sfi.format & SF_FORMAT_TYPEMASK;
    r->max_frames = (int64_t) floor(p->max_duration_s * sfi.samplerate);
    return 0;

fail:
    if (sf != NULL) {
        sf_close(sf);
    }
    close(fd);
    return -1;
}


/* ------------------------------------------------------------------------
 * Reader
 * ------------------------------------------------------------------------ */


/* Returns the defaults listed in wtt_audio.h. Never fails. */
struct wtt_audio_params
wtt_audio_default_params(void)
{
    struct wtt_audio_params p;

    memset(&p, 0, sizeof(p));
    p.target_rate = WTT_AUDIO_DEFAULT_RATE;
    p.max_duration_s = WTT_AUDIO_DEFAULT_MAX_S;
    p.nonfinite = WTT_AUDIO_NONFINITE_ERROR;
    p.quality = WTT_AUDIO_QUALITY_HQ;
    p.reject_truncated = 0;
    p.block_frames = WTT_AUDIO_DEFAULT_BLOCK;
    return p;
}


/*
 * Validates the header of `path`; 0 with `info` filled, or -1 with
 * "probe failed: ..." in `err`. Opens and closes the file; keeps nothing.
 */
int
wtt_audio_probe(const char *path, const struct wtt_audio_params *p,
    struct wtt_audio_info *info, char *err, size_t errlen)
{
    struct wtt_audio_reader  r;
    struct wtt_audio_params  defs = wtt_audio_default_params();
    char                     why[WTT_AUDIO_ERRLEN - 16];

    memset(&r, 0, sizeof(r));
    if (open_source(path, p != NULL ? p : &defs, &r, why, sizeof(why)) != 0)
    {
        set_err(err, errlen, "probe failed: %s", why);
        return -1;
    }
    *info = r.info;
    sf_close(r.sf);
    close(r.fd);
    return 0;
}


/*
 * Opens a reader; 0 with a new reader in *out (the caller frees it with
 * wtt_audio_close), or -1 with "open failed: ..." and *out = NULL. `p` is
 * copied.
 */
int
wtt_audio_open(const char *path, const struct wtt_audio_params *p,
    struct wtt_audio_reader **out, char *err, size_t errlen)
{
    struct wtt_audio_reader  *r;
    struct wtt_audio_params   defs = wtt_audio_default_params();
    soxr_error_t              serr = NULL;
    soxr_io_spec_t            io;
    soxr_quality_spec_t       q;
    char                      why[WTT_AUDIO_ERRLEN - 16];
    size_t                    block, ch;
    double                    ratio;

    *out = NULL;
    r = wtt_calloc(1, sizeof(*r));
    r->fd = -1;
    r->p = p != NULL ? *p : defs;
    if (r->p.block_frames == 0) {
        r->p.block_frames = WTT_AUDIO_DEFAULT_BLOCK;
    }
    if (open_source(path, &r->p, r, why, sizeof(why)) != 0) {
        set_err(err, errlen, "open failed: %s", why);
        free(r);
        return -1;
    }

    ch = (size_t) r->info.channels;
    block = r->p.block_frames;
    if (block * ch > MAX_BLOCK_SAMPLES) {
        block = MAX_BLOCK_SAMPLES / ch;
    }
    r->p.block_frames = block;

    r->in = wtt_trymalloc(block * ch * sizeof(float));
    if (r->in == NULL) {
        goto oom;
    }
    if (ch == 1) {
        r->mono = r->in;
    } else {
        r->mono = wtt_trymalloc(block * sizeof(float));
        if (r->mono == NULL) {
            goto oom;
        }
    }

    if (r->info.sample_rate != r->p.target_rate) {
        ratio = (double) r->p.target_rate / r->info.sample_rate;
        r->out_cap = (size_t) ceil(block * ratio) + 1024;
        if (r->out_cap < MIN_OUT_CAP) {
            r->out_cap = MIN_OUT_CAP;
        }
        if (r->out_cap > MAX_OUT_CAP) {
            r->out_cap = MAX_OUT_CAP;
        }
        r->out = wtt_trymalloc(r->out_cap * sizeof(float));
        if (r->out == NULL) {
            goto oom;
        }
        io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
        q = soxr_quality_spec(quality_recipe(r->p.quality), 0);
        r->soxr = soxr_create(r->info.sample_rate, r->p.target_rate, 1,
                              &serr, &io, &q, NULL);
        if (r->soxr == NULL || serr != NULL) {
            set_err(err, errlen, "open failed: resampler: %s",
                    serr != NULL ? serr : "cannot create");
            wtt_audio_close(r);
            return -1;
        }
    }

    r->expected = -1;
    *out = r;
    return 0;

oom:
    set_err(err, errlen, "open failed: out of memory");
    wtt_audio_close(r);
    return -1;
}


/* Marks the reader failed with "decode failed: <fmt>". Returns -1. */
static int
reader_fail(struct wtt_audio_reader *r, const char *fmt, ...)
{
    char    why[WTT_AUDIO_ERRLEN - 16];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    snprintf(r->errstr, sizeof(r->errstr), "decode failed: %s", why);
    r->failed = 1;
    return -1;
}


/* Called once the source is exhausted: final length and truncation. */
static int
source_ended(struct wtt_audio_reader *r)
{
    char    msg[128];
    int64_t want = r->info.frames;
    int     err = sf_error(r->sf);

    r->eof = 1;
    if (r->info.frames_read == 0) {
        if (err != SF_ERR_NO_ERROR) {
            return reader_fail(r, "no audio could be decoded (%s)",
                        tidy_msg(sf_strerror(r->sf), msg, sizeof(msg)));
        }
        return reader_fail(r, "no audio could be decoded");
    }

    /* Fewer frames than the header announced: a cut file. mpg123's length
     * is an estimate without a Xing/LAME header, hence 1 % of slack. */
    if (want > 0) {
        if (r->major == SF_FORMAT_MPEG) {
            want -= want / 100;
        }
        if (r->info.frames_read < want) {
            r->info.truncated = 1;
        }
    }

    if (r->soxr == NULL) {
        r->expected = r->info.frames_read;
    } else {
        r->expected = (int64_t) ceil((double) r->info.frames_read
                                     * ((double) r->p.target_rate
                                        / (double) r->info.sample_rate));
    }
    return 0;
}


/* Decodes the next source block into mono (or ends the source). */
static int
decode_block_run(struct wtt_audio_reader *r)
{
    sf_count_t  n;
    size_t      i, k, ch = (size_t) r->info.channels;
    float      *in = r->in, s;

    n = sf_readf_float(r->sf, in, (sf_count_t) r->p.block_frames);
    if (n <= 0) {
        return source_ended(r);
    }
    if (r->info.frames_read + n > r->max_frames) {
        return reader_fail(r, "audio longer than the limit of %g s",
                    r->p.max_duration_s);
    }

    for (i = 0; i < (size_t) n * ch; i++) {
        if (!isfinite(in[i])) {
            if (r->p.nonfinite == WTT_AUDIO_NONFINITE_ERROR) {
                return reader_fail(r, "non-finite sample at %.3f s",
                            (double) (r->info.frames_read
                                      + (int64_t) (i / ch))
                            / r->info.sample_rate);
            }
            in[i] = 0.0f;
            r->info.nonfinite++;
        }
    }

    if (ch > 1) {
        for (i = 0; i < (size_t) n; i++) {
            s = 0.0f;
            for (k = 0; k < ch; k++) {
                s += in[i * ch + k];
            }
            r->mono[i] = s / (float) ch;
        }
    }

    r->info.frames_read += n;
    r->mono_len = (size_t) n;
    r->mono_pos = 0;
    return 0;
}


/* decode_block_run, timed for the development profile (wtt_nn.h). */
static int
decode_block(struct wtt_audio_reader *r)
{
    uint64_t t0 = wtt_prof_on() ? wtt_now_ns() : 0;
    int      rc = decode_block_run(r);

    if (t0 != 0) {
        wtt_prof_stage_add(WTT_STAGE_DECODE, wtt_now_ns() - t0);
    }
    return rc;
}


/* soxr_process, timed for the development profile. */
static soxr_error_t
resample(struct wtt_audio_reader *r, const float *in, size_t ilen,
         size_t *idone, size_t *odone)
{
    uint64_t     t0 = wtt_prof_on() ? wtt_now_ns() : 0;
    soxr_error_t serr = soxr_process(r->soxr, in, ilen, idone, r->out,
                                     r->out_cap, odone);

    if (t0 != 0) {
        wtt_prof_stage_add(WTT_STAGE_RESAMPLE, wtt_now_ns() - t0);
    }
    return serr;
}


/* Offers `n` samples at `p` as the next output, trimmed to `expected`. */
static void
make_avail(struct wtt_audio_reader *r, const float *p, size_t n)
{
    if (r->expected >= 0 && r->produced + (int64_t) n > r->expected) {
        n = r->produced >= r->expected
            ? 0 : (size_t) (r->expected - r->produced);
    }
    r->avail = p;
    r->avail_len = n;
    r->avail_pos = 0;
    r->produced += (int64_t) n;
}


/*
 * Makes the next output samples available (avail_len > 0), or sets `done`.
 * Returns 0, or -1 when the reader failed.
 */
static int
refill(struct wtt_audio_reader *r)
{
    size_t       idone, odone, n;
    soxr_error_t serr;
    int          stalls = 0;

    for ( ;; ) {
        if (r->avail_pos < r->avail_len) {
            return 0;
        }

        if (r->mono_pos < r->mono_len) {
            if (r->soxr == NULL) {
                make_avail(r, r->mono + r->mono_pos,
                           r->mono_len - r->mono_pos);
                r->mono_pos = r->mono_len;
                continue;
            }
            idone = odone = 0;
            serr = resample(r, r->mono + r->mono_pos,
                            r->mono_len - r->mono_pos, &idone, &odone);
            if (serr != NULL) {
                return reader_fail(r, "resampler: %s", serr);
            }
            r->mono_pos += idone;
            if (idone == 0 && odone == 0 && ++stalls > MAX_STALLS) {
                return reader_fail(r, "resampler made no progress");
            }
            make_avail(r, r->out, odone);
            continue;
        }

        if (!r->eof) {
            if (decode_block(r) != 0) {
                return -1;
            }
            continue;
        }

        if (r->soxr != NULL && !r->flushed) {
            odone = 0;
            serr = resample(r, NULL, 0, NULL, &odone);
            if (serr != NULL) {
                return reader_fail(r, "resampler: %s", serr);
            }
            if (odone == 0) {
                r->flushed = 1;
            }
            make_avail(r, r->out, odone);
            if (r->produced >= r->expected) {
                r->flushed = 1;
            }
            continue;
        }

        /* The resampler gave less than librosa's length: zero-pad. */
        if (r->produced < r->expected) {
            float *z = r->out != NULL ? r->out : r->mono;
            size_t cap = r->out != NULL ? r->out_cap : r->p.block_frames;

            n = (size_t) (r->expected - r->produced);
            if (n > cap) {
                n = cap;
            }
            memset(z, 0, n * sizeof(float));
            make_avail(r, z, n);
            continue;
        }

        r->done = 1;
        return 0;
    }
}


/*
 * Copies up to `want` output samples into `out` (caller's memory); 0 with
 * *got set (0 only at the end), or -1 with the reader's sticky
 * "decode failed: ..." error and *got = 0.
 */
int
wtt_audio_read(struct wtt_audio_reader *r, float *out, size_t want,
    size_t *got, char *err, size_t errlen)
{
    size_t n, total = 0;

    *got = 0;
    if (r->failed) {
        set_err(err, errlen, "%s", r->errstr);
        return -1;
    }
    while (total < want && !r->done) {
        if (r->avail_pos >= r->avail_len) {
            if (refill(r) != 0) {
                set_err(err, errlen, "%s", r->errstr);
                return -1;
            }
            continue;
        }
        n = r->avail_len - r->avail_pos;
        if (n > want - total) {
            n = want - total;
        }
        memcpy(out + total, r->avail + r->avail_pos, n * sizeof(float));
        r->avail_pos += n;
        total += n;
    }
    r->info.samples_out += (int64_t) total;
    *got = total;
    return 0;
}


/* Returns the reader's info, owned by the reader. */
const struct wtt_audio_info *
wtt_audio_get_info(const struct wtt_audio_reader *r)
{
    return &r->info;
}


/* Releases everything the reader owns (sf, fd, soxr, buffers). NULL ok. */
void
wtt_audio_close(struct wtt_audio_reader *r)
{
    if (r == NULL) {
        return;
    }
    if (r->soxr != NULL) {
        soxr_delete(r->soxr);
    }
    if (r->sf != NULL) {
        sf_close(r->sf);
    }
    if (r->fd >= 0) {
        close(r->fd);
    }
    if (r->mono != r->in) {
        free(r->mono);
    }
    free(r->in);
    free(r->out);
    free(r);
}


/*
 * Decodes a whole file into a new malloc'd buffer owned by the caller
 * (freed with wtt_pcm_release); 0, or -1 with an error and `pcm` zeroed.
 */
int
wtt_audio_load(const char *path, const struct wtt_audio_params *p,
    struct wtt_pcm *pcm, struct wtt_audio_info *info, char *err,
    size_t errlen)
{
    struct wtt_audio_reader *r;
    const struct wtt_audio_info *ri;
    float                   *buf = NULL, *nb;
    size_t                   cap, n = 0, got;
    double                   max;

    memset(pcm, 0, sizeof(*pcm));
    if (wtt_audio_open(path, p, &r, err, errlen) != 0) {
        return -1;
    }
    ri = wtt_audio_get_info(r);

    /* The exact output length when the header knows the frame count (a few
     * more for mpg123's estimate), else start at 2^20 and double. */
    max = ceil(r->p.max_duration_s * r->p.target_rate) + 1024;
    if (ri->frames > 0) {
        cap = (size_t) ceil((double) ri->frames
                            * ((double) r->p.target_rate / ri->sample_rate))
              + 1024;
    } else {
        cap = 1u << 20;
    }
    if (cap > max) {
        cap = (size_t) max;
    }

    buf = wtt_trymalloc(cap * sizeof(float));
    if (buf == NULL) {
        goto oom;
    }
    for ( ;; ) {
        if (n == cap) {
            cap = cap * 2 > max ? (size_t) max : cap * 2;
            if (cap <= n) {
                cap = n + 4096;   /* the cap in decode_block ends this */
            }
            nb = realloc(buf, cap * sizeof(float));
            if (nb == NULL) {
                goto oom;
            }
            buf = nb;
        }
        if (wtt_audio_read(r, buf + n, cap - n, &got, err, errlen) != 0) {
            goto fail;
        }
        if (got == 0) {
            break;
        }
        n += got;
    }

    if (n < cap) {
        nb = realloc(buf, (n ? n : 1) * sizeof(float));
        if (nb != NULL) {
            buf = nb;
        }
    }
    pcm->data = buf;
    pcm->n = n;
    pcm->rate = r->p.target_rate;
    if (info != NULL) {
        *info = *ri;
    }
    wtt_audio_close(r);
    return 0;

oom:
    set_err(err, errlen, "decode failed: out of memory");
fail:
    free(buf);
    wtt_audio_close(r);
    return -1;
}


/* Frees pcm->data and zeroes `pcm`; safe twice. */
void
wtt_pcm_release(struct wtt_pcm *pcm)
{
    free(pcm->data);
    memset(pcm, 0, sizeof(*pcm));
}


/* ------------------------------------------------------------------------
 * Lua: pcm buffers
 * ------------------------------------------------------------------------ */


/*
 * The collector does not see malloc'd sample buffers, so a loop of
 * reader:read() would let garbage pile up far beyond what Lua thinks it
 * holds. Each new buffer advances the collector by its size.
 */
static void
gc_account(lua_State *L, size_t bytes)
{
    size_t kb = bytes >> 10;

    if (kb == 0) {
        return;
    }
    lua_gc(L, LUA_GCSTEP, kb > (1u << 20) ? (int) (1u << 20) : (int) kb);
}


/*
 * Returns the "wtt.audio.pcm" at `idx` (raises otherwise). The buffer
 * belongs to the userdata.
 */
struct wtt_pcm *
wtt_pcm_check(lua_State *L, int idx)
{
    return luaL_checkudata(L, idx, PCM_MT);
}


/* Pushes an empty pcm userdata (data NULL). Stack: [] -> [pcm]. */
static struct wtt_pcm *
push_empty_pcm(lua_State *L, int rate)
{
    struct wtt_pcm *pcm = lua_newuserdata(L, sizeof(*pcm));   /* pcm */

    memset(pcm, 0, sizeof(*pcm));
    pcm->rate = rate;
    luaL_getmetatable(L, PCM_MT);                             /* pcm mt */
    lua_setmetatable(L, -2);                                  /* pcm */
    return pcm;
}


/*
 * Pushes a new zeroed pcm of `n` samples and returns it, owned by the
 * userdata; NULL with nothing pushed when the samples cannot be allocated.
 */
struct wtt_pcm *
wtt_pcm_push(lua_State *L, size_t n, int rate)
{
    struct wtt_pcm *pcm;
    float          *data;

    if (n > SIZE_MAX / sizeof(float)) {
        return NULL;
    }
    pcm = push_empty_pcm(L, rate);                            /* pcm */
    data = calloc(n ? n : 1, sizeof(float));
    if (data == NULL) {
        lua_pop(L, 1);                                        /* */
        return NULL;
    }
    pcm->data = data;
    pcm->n = n;
    gc_account(L, n * sizeof(float));
    return pcm;
}


/* __gc: frees the samples; safe to run twice. */
static int
l_pcm_gc(lua_State *L)
{
    struct wtt_pcm *pcm = wtt_pcm_check(L, 1);

    wtt_pcm_release(pcm);
    return 0;
}


/* #pcm -> number of samples. */
static int
l_pcm_len(lua_State *L)
{
    lua_pushnumber(L, (lua_Number) wtt_pcm_check(L, 1)->n);
    return 1;
}


/* pcm:rate() -> sample rate in Hz. */
static int
l_pcm_rate(lua_State *L)
{
    lua_pushinteger(L, wtt_pcm_check(L, 1)->rate);
    return 1;
}


/* pcm:get(i) -> sample i (1-based); raises when i is out of range. */
static int
l_pcm_get(lua_State *L)
{
    struct wtt_pcm *pcm = wtt_pcm_check(L, 1);
    lua_Number      i = luaL_checknumber(L, 2);

    if (!(i >= 1 && i <= (lua_Number) pcm->n) || i != floor(i)) {
        return luaL_argerror(L, 2, "index out of range");
    }
    lua_pushnumber(L, pcm->data[(size_t) i - 1]);
    return 1;
}


/*
 * pcm:sub(i [, j]) -> new pcm with samples i..j, with string.sub's rules:
 * negative indices count from the end, the range is clamped, and an empty
 * range gives an empty pcm. nil, err when it cannot be allocated.
 */
static int
l_pcm_sub(lua_State *L)
{
    struct wtt_pcm *pcm = wtt_pcm_check(L, 1);
    struct wtt_pcm *res;
    double          n = (double) pcm->n;
    double          i = luaL_checknumber(L, 2);
    double          j = luaL_optnumber(L, 3, -1);
    size_t          len;

    i = floor(i);
    j = floor(j);
    if (i < 0) {
        i = n + i + 1;
    }
    if (j < 0) {
        j = n + j + 1;
    }
    if (i < 1) {
        i = 1;
    }
    if (j > n) {
        j = n;
    }
    len = i <= j ? (size_t) (j - i + 1) : 0;

    res = wtt_pcm_push(L, len, pcm->rate);                    /* sub */
    if (res == NULL) {
        lua_pushnil(L);
        lua_pushliteral(L, "sub failed: out of memory");
        return 2;
    }
    if (len > 0) {
        memcpy(res->data, pcm->data + (size_t) i - 1, len * sizeof(float));
    }
    return 1;
}


/* pcm:to_string() -> the samples as float32 little-endian bytes. */
static int
l_pcm_to_string(lua_State *L)
{
    struct wtt_pcm *pcm = wtt_pcm_check(L, 1);

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    luaL_Buffer b;
    size_t      i;
    uint32_t    u;
    char        c[4];

    luaL_buffinit(L, &b);
    for (i = 0; i < pcm->n; i++) {
        memcpy(&u, &pcm->data[i], 4);
        c[0] = (char) u; c[1] = (char) (u >> 8);
        c[2] = (char) (u >> 16); c[3] = (char) (u >> 24);
        luaL_addlstring(&b, c, 4);
    }
    luaL_pushresult(&b);
#else
    lua_pushlstring(L, (const char *) pcm->data, pcm->n * sizeof(float));
#endif
    return 1;
}


/* pcm:peak() -> largest absolute sample (0 when empty). */
static int
l_pcm_peak(lua_State *L)
{
    struct wtt_pcm *pcm = wtt_pcm_check(L, 1);
    float           m = 0.0f, a;
    size_t          i;

    for (i = 0; i < pcm->n; i++) {
        a = fabsf(pcm->data[i]);
        if (a > m || a != a) {
            m = a;
        }
    }
    lua_pushnumber(L, m);
    return 1;
}


/* pcm:rms() -> root mean square, summed in double (0 when empty). */
static int
l_pcm_rms(lua_State *L)
{
    struct wtt_pcm *pcm = wtt_pcm_check(L, 1);
    double          s = 0.0;
    size_t          i;

    for (i = 0; i < pcm->n; i++) {
        s += (double) pcm->data[i] * pcm->data[i];
    }
    lua_pushnumber(L, pcm->n > 0 ? sqrt(s / (double) pcm->n) : 0.0);
    return 1;
}


static int
l_pcm_tostring(lua_State *L)
{
    struct wtt_pcm *pcm = wtt_pcm_check(L, 1);

    lua_pushfstring(L, PCM_MT " (%d samples at %d Hz)", (int) pcm->n,
                    pcm->rate);
    return 1;
}


/*
 * audio.pcm_from_string(bytes, rate) -> pcm from float32 little-endian
 * bytes. Raises when the length is not a multiple of 4 or the rate is out of
 * range; nil, err when it cannot be allocated.
 */
static int
l_pcm_from_string(lua_State *L)
{
    size_t          len, i;
    const char     *s = luaL_checklstring(L, 1, &len);
    lua_Integer     rate = luaL_checkinteger(L, 2);
    struct wtt_pcm *pcm;

    if (len % 4 != 0) {
        return luaL_argerror(L, 1, "length must be a multiple of 4");
    }
    if (rate < 1 || rate > WTT_AUDIO_MAX_RATE) {
        return luaL_argerror(L, 2, "rate out of range");
    }
    pcm = wtt_pcm_push(L, len / 4, (int) rate);               /* pcm */
    if (pcm == NULL) {
        lua_pushnil(L);
        lua_pushliteral(L, "pcm failed: out of memory");
        return 2;
    }
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    for (i = 0; i < len / 4; i++) {
        const unsigned char *b = (const unsigned char *) s + 4 * i;
        uint32_t u = (uint32_t) b[0] | ((uint32_t) b[1] << 8)
                     | ((uint32_t) b[2] << 16) | ((uint32_t) b[3] << 24);
        memcpy(&pcm->data[i], &u, 4);
    }
#else
    (void) i;
    memcpy(pcm->data, s, len);
#endif
    return 1;
}


/* ------------------------------------------------------------------------
 * Lua: options, probe, load
 * ------------------------------------------------------------------------ */


static const char *const known_opts[] = {
    "rate", "max_duration", "nonfinite", "quality", "truncated", "block",
    NULL
};


/* Index of the string `s` in `names` (NULL terminated), or -1. */
static int
name_index(const char *const *names, const char *s)
{
    int i;

    for (i = 0; names[i] != NULL; i++) {
        if (strcmp(names[i], s) == 0) {
            return i;
        }
    }
    return -1;
}


/*
 * Reads the optional options table at `idx` into `p`; raises on unknown
 * keys and on values of the wrong type or out of range (house style 13).
 * Stack unchanged.
 */
static void
check_opts(lua_State *L, int idx, struct wtt_audio_params *p)
{
    static const char *const nonfinite_names[] = { "error", "zero", NULL };
    static const char *const truncated_names[] = { "allow", "error", NULL };
    const char *s;
    lua_Number  v;
    int         k;

    *p = wtt_audio_default_params();
    if (lua_isnoneornil(L, idx)) {
        return;
    }
    luaL_checktype(L, idx, LUA_TTABLE);

    lua_pushnil(L);                                           /* nil */
    while (lua_next(L, idx) != 0) {                           /* k v */
        if (lua_type(L, -2) != LUA_TSTRING) {
            luaL_argerror(L, idx, "option names must be strings");
        }
        if (name_index(known_opts, lua_tostring(L, -2)) < 0) {
            luaL_argerror(L, idx, lua_pushfstring(L, "unknown option '%s'",
                                                  lua_tostring(L, -2)));
        }
        lua_pop(L, 1);                                        /* k */
    }

    lua_getfield(L, idx, "rate");                             /* v */
    if (!lua_isnil(L, -1)) {
        v = lua_tonumber(L, -1);
        if (lua_type(L, -1) != LUA_TNUMBER || v != floor(v)
            || v < WTT_AUDIO_MIN_RATE || v > WTT_AUDIO_MAX_RATE)
        {
            luaL_argerror(L, idx, "'rate' must be an integer in 1000-768000");
        }
        p->target_rate = (int) v;
    }
    lua_pop(L, 1);                                            /* */

    lua_getfield(L, idx, "max_duration");                     /* v */
    if (!lua_isnil(L, -1)) {
        v = lua_tonumber(L, -1);
        if (lua_type(L, -1) != LUA_TNUMBER || !(v > 0) || v > 1e7) {
            luaL_argerror(L, idx, "'max_duration' must be a number in "
                          "(0, 1e7] seconds");
        }
        p->max_duration_s = v;
    }
    lua_pop(L, 1);

    lua_getfield(L, idx, "nonfinite");                        /* v */
    if (!lua_isnil(L, -1)) {
        s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "";
        k = name_index(nonfinite_names, s);
        if (k < 0) {
            luaL_argerror(L, idx, "'nonfinite' must be \"error\" or \"zero\"");
        }
        p->nonfinite = k;
    }
    lua_pop(L, 1);

    lua_getfield(L, idx, "quality");                          /* v */
    if (!lua_isnil(L, -1)) {
        s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "";
        k = name_index(quality_names, s);
        if (k < 0) {
            luaL_argerror(L, idx, "'quality' must be one of hq, vhq, mq, "
                          "lq, qq");
        }
        p->quality = k;
    }
    lua_pop(L, 1);

    lua_getfield(L, idx, "truncated");                        /* v */
    if (!lua_isnil(L, -1)) {
        s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "";
        k = name_index(truncated_names, s);
        if (k < 0) {
            luaL_argerror(L, idx, "'truncated' must be \"allow\" or "
                          "\"error\"");
        }
        p->reject_truncated = k;
    }
    lua_pop(L, 1);

    lua_getfield(L, idx, "block");                            /* v */
    if (!lua_isnil(L, -1)) {
        v = lua_tonumber(L, -1);
        if (lua_type(L, -1) != LUA_TNUMBER || v != floor(v)
            || v < MIN_BLOCK_FRAMES || v > MAX_BLOCK_FRAMES)
        {
            luaL_argerror(L, idx, "'block' must be an integer in "
                          "256-4194304");
        }
        p->block_frames = (size_t) v;
    }
    lua_pop(L, 1);                                            /* */
}


/* Pushes the info table. Stack: [] -> [info]. */
static void
push_info(lua_State *L, const struct wtt_audio_info *info, int full)
{
    lua_createtable(L, 0, 12);                                /* t */
    lua_pushstring(L, info->format);
    lua_setfield(L, -2, "format");
    lua_pushstring(L, info->subtype);
    lua_setfield(L, -2, "subtype");
    lua_pushinteger(L, info->sample_rate);
    lua_setfield(L, -2, "sample_rate");
    lua_pushinteger(L, info->channels);
    lua_setfield(L, -2, "channels");
    if (info->frames >= 0) {
        lua_pushnumber(L, (lua_Number) info->frames);
        lua_setfield(L, -2, "frames");
        lua_pushnumber(L, info->duration);
        lua_setfield(L, -2, "duration");
    }
    lua_pushboolean(L, info->truncated);
    lua_setfield(L, -2, "truncated");
    if (full) {
        lua_pushinteger(L, info->target_rate);
        lua_setfield(L, -2, "rate");
        lua_pushnumber(L, (lua_Number) info->frames_read);
        lua_setfield(L, -2, "frames_read");
        lua_pushnumber(L, (lua_Number) info->samples_out);
        lua_setfield(L, -2, "samples_out");
        lua_pushnumber(L, (lua_Number) info->nonfinite);
        lua_setfield(L, -2, "nonfinite");
    }                                                         /* t */
}


/* audio.probe(path [, opts]) -> info | nil, err */
static int
l_probe(lua_State *L)
{
    const char             *path = luaL_checkstring(L, 1);
    struct wtt_audio_params p;
    struct wtt_audio_info   info;
    char                    err[WTT_AUDIO_ERRLEN];

    check_opts(L, 2, &p);
    if (wtt_audio_probe(path, &p, &info, err, sizeof(err)) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    push_info(L, &info, 0);
    return 1;
}


/* audio.load(path [, opts]) -> pcm, info | nil, err */
static int
l_load(lua_State *L)
{
    const char             *path = luaL_checkstring(L, 1);
    struct wtt_audio_params p;
    struct wtt_audio_info   info;
    struct wtt_pcm         *pcm;
    char                    err[WTT_AUDIO_ERRLEN];

    check_opts(L, 2, &p);
    pcm = push_empty_pcm(L, p.target_rate);                   /* pcm */
    if (wtt_audio_load(path, &p, pcm, &info, err, sizeof(err)) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    gc_account(L, pcm->n * sizeof(float));
    push_info(L, &info, 1);                                   /* pcm info */
    return 2;
}


/* ------------------------------------------------------------------------
 * Lua: readers
 * ------------------------------------------------------------------------ */


typedef struct {
    struct wtt_audio_reader *r;     /* NULL once closed */
} lreader_t;


static lreader_t *
check_reader(lua_State *L)
{
    return luaL_checkudata(L, 1, READER_MT);
}


/* audio.open(path [, opts]) -> reader | nil, err */
static int
l_open(lua_State *L)
{
    const char             *path = luaL_checkstring(L, 1);
    struct wtt_audio_params p;
    lreader_t              *lr;
    char                    err[WTT_AUDIO_ERRLEN];

    check_opts(L, 2, &p);
    lr = lua_newuserdata(L, sizeof(*lr));                     /* rd */
    lr->r = NULL;
    luaL_getmetatable(L, READER_MT);                          /* rd mt */
    lua_setmetatable(L, -2);                                  /* rd */
    if (wtt_audio_open(path, &p, &lr->r, err, sizeof(err)) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    return 1;
}


/*
 * reader:read([n]) -> pcm of up to n samples (default 65536; fewer only at
 * the end) | nil at the end | nil, err. nil, "closed" after close.
 */
static int
l_reader_read(lua_State *L)
{
    lreader_t      *lr = check_reader(L);
    lua_Number      want = luaL_optnumber(L, 2, DEFAULT_READ_SAMPLES);
    struct wtt_pcm *pcm;
    size_t          got;
    float          *shrunk;
    char            err[WTT_AUDIO_ERRLEN];

    if (!(want >= 1 && want <= MAX_READ_SAMPLES) || want != floor(want)) {
        return luaL_argerror(L, 2, "n must be an integer in 1-268435456");
    }
    if (lr->r == NULL) {
        lua_pushnil(L);
        lua_pushliteral(L, "closed");
        return 2;
    }

    pcm = wtt_pcm_push(L, (size_t) want, lr->r->p.target_rate);   /* pcm */
    if (pcm == NULL) {
        lua_pushnil(L);
        lua_pushliteral(L, "decode failed: out of memory");
        return 2;
    }
    if (wtt_audio_read(lr->r, pcm->data, pcm->n, &got, err, sizeof(err))
        != 0)
    {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    if (got == 0) {
        lua_pushnil(L);
        return 1;
    }
    if (got < pcm->n) {
        shrunk = realloc(pcm->data, got * sizeof(float));
        if (shrunk != NULL) {
            pcm->data = shrunk;
        }
        pcm->n = got;
    }
    return 1;
}


/* reader:info() -> info table | nil, "closed" */
static int
l_reader_info(lua_State *L)
{
    lreader_t *lr = check_reader(L);

    if (lr->r == NULL) {
        lua_pushnil(L);
        lua_pushliteral(L, "closed");
        return 2;
    }
    push_info(L, wtt_audio_get_info(lr->r), 1);
    return 1;
}


/* reader:close() -> true; also __gc. Safe any number of times. */
static int
l_reader_close(lua_State *L)
{
    lreader_t *lr = check_reader(L);

    wtt_audio_close(lr->r);
    lr->r = NULL;
    lua_pushboolean(L, 1);
    return 1;
}


static int
l_reader_tostring(lua_State *L)
{
    lreader_t *lr = check_reader(L);

    lua_pushfstring(L, READER_MT " (%s)", lr->r == NULL ? "closed" : "open");
    return 1;
}


/* ------------------------------------------------------------------------
 * Module
 * ------------------------------------------------------------------------ */


static const luaL_Reg pcm_methods[] = {
    { "rate",       l_pcm_rate },
    { "get",        l_pcm_get },
    { "sub",        l_pcm_sub },
    { "to_string",  l_pcm_to_string },
    { "peak",       l_pcm_peak },
    { "rms",        l_pcm_rms },
    { "__len",      l_pcm_len },
    { "__gc",       l_pcm_gc },
    { "__tostring", l_pcm_tostring },
    { NULL, NULL },
};


static const luaL_Reg reader_methods[] = {
    { "read",       l_reader_read },
    { "info",       l_reader_info },
    { "close",      l_reader_close },
    { "__gc",       l_reader_close },
    { "__tostring", l_reader_tostring },
    { NULL, NULL },
};


static const luaL_Reg audio_funcs[] = {
    { "probe",           l_probe },
    { "open",            l_open },
    { "load",            l_load },
    { "pcm_from_string", l_pcm_from_string },
    { NULL, NULL },
};


/*
 * Opens `wtt.audio`. Stack: before [], after [audio]. Registers the
 * metatables "wtt.audio.pcm" and "wtt.audio.reader". Returns 1.
 */
int
luaopen_wtt_audio(lua_State *L)
{
    /* The metamethods share the lists (p:__len() works as before). */
    wtt_lua_class(L, PCM_MT, pcm_methods, pcm_methods);
    wtt_lua_class(L, READER_MT, reader_methods, reader_methods);

    lua_newtable(L);                                          /* audio */
    luaL_register(L, NULL, audio_funcs);                      /* audio */
    lua_pushinteger(L, WTT_AUDIO_DEFAULT_RATE);
    lua_setfield(L, -2, "DEFAULT_RATE");                      /* audio */
    return 1;
}
