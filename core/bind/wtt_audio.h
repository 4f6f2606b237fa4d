/*
 * wtt_audio.h: audio decoding for the inference engine, and the Lua module
 * `wtt.audio` (docs/audio.md).
 *
 * A reader decodes one file with libsndfile, block by block, mixes every
 * block down to mono (the mean of the channels) and resamples it to the
 * target rate with libsoxr, streaming. A file of any length is never held
 * whole in memory: a reader keeps one block of input (`block_frames` frames)
 * and the resampler's state.
 *
 *     struct wtt_audio_params  p = wtt_audio_default_params();
 *     struct wtt_audio_reader *r;
 *     float                    buf[8192];
 *     size_t                   got;
 *     char                     err[WTT_AUDIO_ERRLEN];
 *
 *     if (wtt_audio_open(path, &p, &r, err, sizeof(err)) != 0) {
 *         ... err says why: "open failed: ..." ...
 *     }
 *     for ( ;; ) {
 *         if (wtt_audio_read(r, buf, 8192, &got, err, sizeof(err)) != 0) {
 *             ... "decode failed: ..." ...
 *         }
 *         if (got == 0) {
 *             break;                                   (end of audio)
 *         }
 *         ... use got samples at p.target_rate ...
 *     }
 *     wtt_audio_close(r);
 *
 * Validation happens in wtt_audio_open, before any audio is decoded: empty
 * files, formats outside the allow-list, sample rates outside [1000, 768000],
 * channel counts outside [1, 32], a known duration over max_duration_s, and
 * WAV headers that claim audio the file does not hold. Limits that can only
 * be seen while decoding (a FLAC file of unknown length running over
 * max_duration_s, a NaN sample) fail the wtt_audio_read that meets them; a
 * failed reader stays failed and returns the same error again.
 *
 * Thread-safety: a reader belongs to one thread at a time. Different readers
 * may run on different threads at once. (libsndfile keeps the reason for a
 * failed open in one global, so two opens failing at the same instant on
 * two threads may swap their library messages; our own checks are not
 * affected.)
 *
 * Output length: when the source rate differs from the target rate, a reader
 * returns exactly ceil(source_frames * target_rate / source_rate) samples
 * (computed in double precision), the length librosa.load(sr=...) gives with
 * its soxr_hq resampler; at equal rates it returns the decoded samples as
 * they are.
 */
#ifndef WTT_AUDIO_H
#define WTT_AUDIO_H

#include <lua.h>

#include <stddef.h>
#include <stdint.h>

#define WTT_AUDIO_ERRLEN          256     /* enough for any error message */
#define WTT_AUDIO_DEFAULT_RATE    22050
#define WTT_AUDIO_MIN_RATE        1000    /* source and target rates */
#define WTT_AUDIO_MAX_RATE        768000
#define WTT_AUDIO_MAX_CHANNELS    32
#define WTT_AUDIO_DEFAULT_MAX_S   (3600.0 * 4)
#define WTT_AUDIO_DEFAULT_BLOCK   65536   /* source frames per decode step */


/* What to do with NaN and +-Inf samples in the decoded source. */
enum wtt_audio_nonfinite {
    WTT_AUDIO_NONFINITE_ERROR = 0,   /* fail: "non-finite sample at 12.300 s" */
    WTT_AUDIO_NONFINITE_ZERO  = 1    /* replace by 0 and count them */
};


/* libsoxr quality recipes; HQ is librosa's default "soxr_hq". */
enum wtt_audio_quality {
    WTT_AUDIO_QUALITY_HQ  = 0,
    WTT_AUDIO_QUALITY_VHQ = 1,
    WTT_AUDIO_QUALITY_MQ  = 2,
    WTT_AUDIO_QUALITY_LQ  = 3,
    WTT_AUDIO_QUALITY_QQ  = 4
};


struct wtt_audio_params {
    int     target_rate;        /* output rate in Hz (22050) */
    double  max_duration_s;     /* longest accepted source (4 h) */
    int     nonfinite;          /* enum wtt_audio_nonfinite (ERROR) */
    int     quality;            /* enum wtt_audio_quality (HQ) */
    int     reject_truncated;   /* 1: a truncated file fails to open (0) */
    size_t  block_frames;       /* source frames decoded per step (65536) */
};


/* What the header says, plus what decoding has found so far. */
struct wtt_audio_info {
    const char *format;         /* "wav", "flac", "ogg", "mp3", ... static */
    const char *subtype;        /* "pcm_16", "float", "vorbis", ... static */
    int         sample_rate;    /* source rate in Hz */
    int         channels;       /* source channels */
    int64_t     frames;         /* source frames; -1 when unknown */
    double      duration;       /* frames / sample_rate; -1 when unknown */
    int         target_rate;    /* output rate in Hz */
    int         truncated;      /* the file holds less than its header says */
    int64_t     frames_read;    /* source frames decoded so far */
    int64_t     samples_out;    /* output samples returned so far */
    int64_t     nonfinite;      /* samples replaced by 0 (policy ZERO) */
};


/* A mono float buffer. `data` is malloc'd and owned by whoever holds it. */
struct wtt_pcm {
    float  *data;
    size_t  n;                  /* samples */
    int     rate;               /* Hz */
};


struct wtt_audio_reader;


/*
 * Returns the default parameters: target_rate 22050, max_duration_s 14400,
 * nonfinite ERROR, quality HQ, reject_truncated 0, block_frames 65536.
 */
struct wtt_audio_params wtt_audio_default_params(void);


/*
 * Probes the header of the file at `path` and validates it against `p`
 * (NULL: defaults) without decoding any audio. Returns 0 and fills `info`,
 * or -1 with "probe failed: <reason>" in `err` (always NUL terminated when
 * errlen > 0). Nothing is kept open.
 */
int wtt_audio_probe(const char *path, const struct wtt_audio_params *p,
    struct wtt_audio_info *info, char *err, size_t errlen);


/*
 * Opens and validates the file at `path` for streaming decoding with the
 * parameters `p` (NULL: defaults; copied, the caller keeps ownership).
 * Returns 0 and stores a new reader in `*out`, which the caller owns and
 * releases with wtt_audio_close; or -1 with "open failed: <reason>" in `err`
 * and `*out` set to NULL. Misuse (a bad parameter) is an error too:
 * "open failed: target rate 10 out of range 1000-768000".
 */
int wtt_audio_open(const char *path, const struct wtt_audio_params *p,
    struct wtt_audio_reader **out, char *err, size_t errlen);


/*
 * Decodes up to `want` mono samples at the target rate into `out` (room for
 * `want` floats, owned by the caller) and stores their number in `*got`.
 * `*got` is less than `want` only at the end of the audio, and 0 once the
 * end has been reached (`want` must be at least 1). Returns 0, or -1 with
 * "decode failed: <reason>" in `err` and `*got` set to 0 (what `out` holds
 * is then unspecified); after an error every later call fails the same
 * way.
 */
int wtt_audio_read(struct wtt_audio_reader *r, float *out, size_t want,
    size_t *got, char *err, size_t errlen);


/*
 * Returns the reader's info: header fields and the decoding counters
 * (truncated is final once wtt_audio_read has returned got == 0). The
 * pointer belongs to the reader and stays valid until wtt_audio_close.
 */
const struct wtt_audio_info *wtt_audio_get_info(
    const struct wtt_audio_reader *r);


/* Closes the file and frees the reader. NULL is a no-op. */
void wtt_audio_close(struct wtt_audio_reader *r);


/*
 * Decodes the whole file at `path` into `pcm` (its fields are overwritten;
 * on success pcm->data is a new malloc'd buffer the caller frees with
 * wtt_pcm_release). Fills `info` when it is not NULL. Returns 0, or -1 with
 * "open failed: ..." or "decode failed: ..." in `err` and `pcm` zeroed;
 * a buffer that cannot be allocated is "decode failed: out of memory".
 */
int wtt_audio_load(const char *path, const struct wtt_audio_params *p,
    struct wtt_pcm *pcm, struct wtt_audio_info *info, char *err,
    size_t errlen);


/* Frees pcm->data and zeroes `pcm`. Safe on a zeroed pcm and twice. */
void wtt_pcm_release(struct wtt_pcm *pcm);


/*
 * Returns the buffer of the "wtt.audio.pcm" userdata at stack index `idx`;
 * raises a Lua argument error when the value is something else. The pointer
 * and its data belong to the userdata: they stay valid while the Lua value
 * is reachable and must not be freed or resized by the caller (writing
 * samples in place is allowed). Stack unchanged.
 */
struct wtt_pcm *wtt_pcm_check(lua_State *L, int idx);


/*
 * Pushes a new "wtt.audio.pcm" userdata with room for `n` samples at `rate`
 * (contents zeroed) and returns its buffer, owned by the userdata. Returns
 * NULL and pushes nothing when `n` samples cannot be allocated. Stack:
 * before [], after [pcm] (or [] on NULL).
 */
struct wtt_pcm *wtt_pcm_push(lua_State *L, size_t n, int rate);


/*
 * Opens the module: registers the metatables "wtt.audio.pcm" and
 * "wtt.audio.reader" and pushes the function table. Stack: before [],
 * after [audio]. Returns 1.
 */
int luaopen_wtt_audio(lua_State *L);

#endif
