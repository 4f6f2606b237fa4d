/*
 * wtt_notes.h: posteriorgrams to note events, as the official Basic Pitch
 * post-processing computes them (toMidi.ts of @spotify/basic-pitch 1.0.1:
 * outputToNotesPoly, addPitchBendsToNoteEvents, noteFramesToTime), with the
 * same results and a linear-time melodia step.
 *
 * Arithmetic is done in double from the float32 posteriors, like the JS
 * code's numbers, and ties break as JS does (argMax takes the last index),
 * unless `numpy_ties` asks for numpy's first index.
 */
#ifndef WTT_NOTES_H
#define WTT_NOTES_H

#include <stddef.h>

#include "wtt_pipeline.h"

struct wtt_note {
    int     start_frame;
    int     n_frames;
    int     pitch;          /* MIDI note number */
    double  amplitude;      /* mean frame posterior over the note, 0..1 */
    double  onset;          /* onset posterior at the start (+-1 frame) */
    double  start_s;
    double  end_s;
    int    *bends;          /* per frame, in 1/3-semitone contour bins */
    int     n_bends;
};

/* Decoding modes: the official post-processing, or one for plucked strings
 * (wtt_notes_guitar.h) with its rules and the instrument's range. */
enum wtt_notes_mode {
    WTT_NOTES_OFFICIAL = 0,
    WTT_NOTES_GUITAR = 1,
    WTT_NOTES_BASS = 2
};

struct wtt_guitar_tuning;

struct wtt_notes_params {
    double onset_threshold;   /* 0.5 */
    double frame_threshold;   /* 0.3 */
    int    min_note_frames;   /* 11 (Python CLI: 127.70 ms); JS uses 5 */
    int    infer_onsets;      /* 1 */
    double min_freq_hz;       /* 0: none */
    double max_freq_hz;       /* 0: none */
    int    melodia;           /* 1 */
    int    energy_tolerance;  /* 11 */
    int    pitch_bends;       /* 1: compute bends from the contours */
    int    numpy_ties;        /* 0: JS argMax (last index among ties) */
    int    mode;              /* enum wtt_notes_mode; 0: official */
    unsigned rules;           /* guitar and bass: WTT_RULE_* bits */
    /* guitar and bass: the rules' settings; NULL: the mode's defaults
     * (wtt_notes_guitar_defaults) */
    const struct wtt_guitar_tuning *tuning;
};

struct wtt_notes_params wtt_notes_default_params(void);

/* Minimum note length in frames for a length in milliseconds, as the
 * Python CLI rounds it: round(ms / 1000 * 22050 / 256). */
int wtt_notes_ms_to_frames(double ms);

/* The official frame-to-time conversion (modelFrameToTime). */
double wtt_notes_frame_time(int frame);

/*
 * Extracts notes from `post` (not const: reading it moves its row cache).
 * On success *out is an array of *n notes the caller frees with
 * wtt_notes_free. Returns 0, or -1 with `err` (out of memory, thresholds
 * out of range, an unknown mode, or an I/O error on the posteriorgram
 * files). A mode other than official goes to wtt_notes_guitar_extract.
 */
int wtt_notes_extract(struct wtt_posteriors *post,
                      const struct wtt_notes_params *p,
                      struct wtt_note **out, size_t *n,
                      char *err, size_t errlen);

void wtt_notes_free(struct wtt_note *notes, size_t n);

/* Fills note->bends (malloc'd, note->n_frames values) from the contours:
 * per frame, the contour bin nearest the note's pitch (Gaussian weighted,
 * 25 bins each side) relative to the pitch's own bin, as the official
 * addPitchBendsToNoteEvents. */
void wtt_notes_bends(struct wtt_posteriors *post, struct wtt_note *note,
                     int numpy_ties);

#endif
