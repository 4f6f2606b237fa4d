/*
 * wtt_midi_private.h: what the parts of the `wtt.midi` module share (not a
 * public header: only core/bind/midi/ includes it).
 *
 * The module of wtt_midi.h is split by job:
 *
 *   wtt_midi.c          the module table (luaopen_wtt_midi);
 *   wtt_midi_gm.c       the General MIDI program names and PROGRAMS;
 *   wtt_midi_input.c    midi.encode and midi.write: notes and options read
 *                       from Lua into C arrays;
 *   wtt_midi_writer.c   the file built from those arrays, with no Lua;
 *   wtt_midi_smf.c      the bounds-checked walker over a file's events;
 *   wtt_midi_decode.c   midi.validate and midi.decode.
 */
#ifndef WTT_MIDI_PRIVATE_H
#define WTT_MIDI_PRIVATE_H

#include <lua.h>
#include <lauxlib.h>
#include <stddef.h>
#include <stdint.h>

/* Defaults of the writer's options (wtt_midi_input.c), also the module's
 * DEFAULT_* constants (wtt_midi.c); the writer compares the bend range. */
#define DEFAULT_TEMPO       120.0
#define DEFAULT_DIVISION    220       /* pretty_midi's default resolution */
#define DEFAULT_PROGRAM     25        /* Acoustic Guitar (steel) */
#define DEFAULT_BEND_RANGE  2         /* semitones; GM default */
/* The size of the error buffers of encode, write, validate and decode. */
#define ERRLEN              256


/* ------------------------------------------------------------------------
 * General MIDI programs (wtt_midi_gm.c)
 * ------------------------------------------------------------------------ */

/* The 128 program names: the module's PROGRAM_NAMES, and the track name the
 * writer puts in the file. */
extern const char *const wtt__midi_gm_names[128];

/* Pushes a new PROGRAMS table: snake_case names and short aliases to their
 * program numbers. Stack: before [], after [P]. */
void wtt__midi_push_programs(lua_State *L);


/* ------------------------------------------------------------------------
 * Writer (wtt_midi_input.c fills these, wtt_midi_writer.c reads them)
 * ------------------------------------------------------------------------ */

/* The options of encode and write. */
typedef struct {
    double   tempo;              /* BPM */
    int      division;           /* ticks per quarter note */
    int      program;            /* 0-127 */
    int      multi;              /* one channel per voice */
    double   bend_range;         /* semitones for +-8192 */
    int      bend_per_semitone;  /* 3: bins, 1: semitones */
} wopts_t;


/* One note as the writer sees it: read from Lua, then placed. */
typedef struct {
    double   start, end;         /* seconds */
    int      pitch, vel;
    size_t   bend_off, nbends;   /* into the bend arrays */
    int      bend_times;         /* explicit times given */
    int      ch;
    int      keep_bends;
    int      merged;             /* absorbed by a same-pitch note */
    uint32_t on, off;            /* ticks */
    size_t   idx;                /* position in the input */
} enote_t;


/* The notes and their bends (userdata arrays owned by the caller's stack). */
typedef struct {
    enote_t       *notes;
    size_t         n;
    const double  *bv;           /* bend values */
    const double  *bt;           /* bend times, when given */
} input_t;

/*
 * Builds the file. Returns 0 with a malloc'd buffer in *out (caller frees),
 * or -1 with a reason in `err`. Calls no Lua function.
 */
int wtt__midi_encode(input_t *in, const wopts_t *o, unsigned char **out,
                     size_t *outlen, char *err, size_t errlen);


/* ------------------------------------------------------------------------
 * Reader: the walker (wtt_midi_smf.c, used by wtt_midi_decode.c)
 * ------------------------------------------------------------------------ */

/* One event of a track, as the walker hands it to its callback. */
typedef struct {
    int                   track;     /* 0-based */
    uint64_t              tick;
    int                   kind;      /* K_* */
    int                   status;    /* status byte for channel/sysex/meta */
    int                   d1, d2;
    int                   meta;
    const unsigned char  *data;
    size_t                dlen;
} sev_t;

enum { K_TRACK_START, K_TRACK_END, K_CHANNEL, K_SYSEX, K_META };

typedef int (*sev_fn)(void *ud, const sev_t *ev);


/* A file being read: the buffer, its header fields, the error buffer. */
typedef struct {
    const unsigned char *p;
    size_t               len;
    int                  format;
    int                  ntracks;
    int                  division;   /* raw 16-bit field */
    size_t               first;      /* offset of the first chunk */
    char                *err;
    size_t               errlen;
} smf_t;

/* Parses MThd into `m` (p, len, err and errlen set). Returns 0, or -1
 * with the reason in m->err. */
int wtt__midi_smf_header(smf_t *m);

/*
 * Walks every track chunk, calling `fn` (may be NULL) for each event.
 * Unknown chunk types are skipped; chunks after the declared number of
 * tracks are ignored. Returns 0, or -1 with the reason in m->err (or the
 * callback's -1).
 */
int wtt__midi_smf_walk(smf_t *m, sev_fn fn, void *ud);


/* ------------------------------------------------------------------------
 * The Lua functions of each part; wtt_midi.c makes them closures over a
 * private copy of PROGRAMS. Each list ends with { NULL, NULL }.
 * ------------------------------------------------------------------------ */

extern const luaL_Reg wtt__midi_write_funcs[];    /* encode, write */
extern const luaL_Reg wtt__midi_read_funcs[];     /* decode, validate */

#endif
