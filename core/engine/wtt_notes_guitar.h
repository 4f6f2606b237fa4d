/*
 * wtt_notes_guitar.h: a decoding mode for plucked strings (guitar, bass).
 *
 * It reads the same posteriorgrams as the official post-processing
 * (wtt_notes.h), starts from the official notes (with a shorter minimum
 * length) and applies rules that know how a plucked string behaves, each
 * one switchable (WTT_RULE_*):
 *
 *   ghost      a note whose activation is weak beside a note an octave or a
 *              harmonic below it (12, 19, 24 or 28 semitones), attacked with
 *              it, is that note's overtone: dropped;
 *   weak       a note whose activation stays weak and whose start shows no
 *              rise is a resonance, not a pluck: dropped (low strings, whose
 *              activation reads weaker, with a lower bar);
 *   retrigger  a note that starts where the one before it on its pitch ends,
 *              with no attack of its own (weak onset, no rise, no sharp
 *              onset peak), is that note ringing on, and one that starts
 *              just after that note's pluck with a weaker onset is the
 *              pluck's second onset peak: joined to it;
 *   split      a note whose own pitch is attacked again inside it is two
 *              plucks: cut there;
 *   bend       a note whose activation moves to a neighbouring pitch (a
 *              semitone a frame, two at most, and back) with no new attack
 *              is bent: it is followed to its end and keeps its pitch, with
 *              pitch bends from the contours, and the pieces at the
 *              neighbouring pitches (where its own pitch fell silent) are
 *              dropped;
 *   range      notes above the instrument's highest note are dropped;
 *   register   a note needs a stronger onset in the high register, where
 *              overtones live, unless it is part of a strum;
 *   strum      the strings of a strum (many pitches attacked together) are
 *              spared: an octave above another string is a doubled string,
 *              not a ghost; a weak string with a strong onset is struck; a
 *              ringing string with an onset is struck again, not a retrigger;
 *              a long note among other attacks is neither resonance nor a
 *              bend's piece;
 *   chord      the strings of a chord are spared: a long note attacked with
 *              several pitches that are no overtones of one another is a
 *              string, not an overtone; a bend is not followed into a
 *              pitch struck in a strum.
 *
 * docs/engine.md ("Guitar mode") gives each rule's measured effect on the
 * development set (docs/accuracy.md).
 */
#ifndef WTT_NOTES_GUITAR_H
#define WTT_NOTES_GUITAR_H

#include <stddef.h>

#include "wtt_notes.h"

#define WTT_RULE_GHOST     (1u << 0)
#define WTT_RULE_WEAK      (1u << 1)
#define WTT_RULE_RETRIGGER (1u << 2)
#define WTT_RULE_SPLIT     (1u << 3)
#define WTT_RULE_BEND      (1u << 4)
#define WTT_RULE_RANGE     (1u << 5)
#define WTT_RULE_REGISTER  (1u << 6)
#define WTT_RULE_STRUM     (1u << 7)
#define WTT_RULE_CHORD     (1u << 8)
#define WTT_RULES_ALL      ((1u << 9) - 1)

/* The rules guitar and bass apply when none are named. */
#define WTT_RULES_DEFAULT  WTT_RULES_ALL

/* The name of each rule bit, in bit order, NULL-terminated. */
extern const char *const wtt_notes_rule_names[];

/* The rules' settings. wtt_notes_guitar_defaults gives the ones chosen on
 * the development set's tuning half; tests pass their own through
 * wtt_notes_params.tuning. Frames are model frames (86 a second). */
struct wtt_guitar_tuning {
    /* An attack at (frame r, pitch): the onset posterior (the highest
     * within a frame of r) reaches attack_onset, or it reaches
     * attack_onset_min and the frame activation rises by attack_rise (the
     * highest of frames r..r+3 minus the lowest of r-3..r-1). */
    double attack_onset;
    double attack_onset_min;
    double attack_rise;

    /* ghost: over a note's first ghost_frames frames, its mean frame
     * activation under ghost_ratio[i] times that of the pitch
     * ghost_interval[i] semitones below (which must reach ghost_root_min)
     * makes it a ghost, when that pitch's strongest onset within 6 frames
     * is under 0.3 (it was ringing) or within ghost_sync frames of the
     * note's start (attacked with it). An interval of 0 ends the list.
     * With the strum rule, an octave (12) whose own activation is at least
     * strum_ghost_ratio times the root's, in a strum of strum_ghost other
     * pitches (strum_at), is a doubled string and stays. */
    int    ghost_frames;
    double ghost_root_min;
    int    ghost_sync;
    int    ghost_interval[4];
    double ghost_ratio[4];

    /* weak: a mean frame activation over the note under weak_amp (times
     * weak_low_scale below MIDI weak_low_pitch) and a rise at its start
     * under weak_rise. With the strum rule, a note with an onset of
     * strum_weak_onset in a strum of strum_weak other pitches stays. */
    double weak_amp;
    double weak_rise;
    int    weak_low_pitch;
    double weak_low_scale;

    /* retrigger: a note starting at most retrigger_gap frames after the
     * end of the one before it on its pitch, not attacked and with an onset
     * peak that stands less than retrigger_peak above the onsets around it
     * (the higher of the lowest within 6 frames before and after). With the
     * strum rule, a note with an onset of strum_retrigger_onset in a strum
     * of strum_retrigger other pitches is struck again and stays. A note
     * that starts under retrigger_ioi frames after the start of the one
     * before it, with an onset no stronger than that one's, is joined
     * whatever its attack: the second onset peak of one pluck (0: off). */
    int    retrigger_gap;
    double retrigger_peak;
    int    retrigger_ioi;

    /* split: an onset peak at least split_margin frames from either end. */
    int    split_margin;

    /* bend: the activation followed from frame to frame must stay at
     * bend_level or more, within bend_max semitones; an onset peak of
     * bend_onset there is a new attack and ends the note. A note of
     * another pitch that starts inside the bent note is one of its pieces
     * only when the bent note's own pitch falls under bend_level within
     * bend_fall frames of its start (the pitch moved; 0: no such test). */
    int    bend_max;
    double bend_level;
    double bend_onset;
    int    bend_fall;

    /* range: MIDI pitches kept. */
    int    lowest, highest;

    /* register: the onset posterior a note needs, onset_low up to
     * register_pitch (MIDI), onset_high above it unless strum_min other
     * pitches or more have an onset of 0.5 within 3 frames of its start (a
     * strum, whose high strings an up-stroke hits lightly). */
    int    register_pitch;
    double onset_low, onset_high;
    int    strum_min;

    /* strum: see ghost, weak and retrigger. */
    int    strum_ghost;
    double strum_ghost_ratio;
    int    strum_weak;
    double strum_weak_onset;
    int    strum_retrigger;
    double strum_retrigger_onset;

    /* strum, too: weak and bend never remove a note of keep_frames frames
     * or more (0: off) that starts with keep_strum other pitches attacked
     * (strum_at). Inside strummed chords the notes these rules take for
     * resonance or a bend's pieces were real strings about as often as
     * not, and a long note is one the official decoding keeps. */
    int    keep_frames;
    int    keep_strum;

    /* chord: ghost never removes a note of chord_frames frames or more (0:
     * off) that starts with chord_pitches other pitches attacked (an onset
     * of 0.5 within 3 frames) that are no overtone of another attacked
     * pitch (12, 19, 24 or 28 semitones above it), not counting the note's
     * own octave below. bend stops following at a frame where the pitch it
     * would move to is attacked with chord_strum other pitches (strum_at;
     * 0: never). And ghost keeps a note when another note of its pitch,
     * starting within chord_memory frames of it, was a ghost to the ratios
     * but spared as a string (by this rule or by strum's octave test; 0:
     * off): a re-strummed chord repeats its voicing, and a string heard in
     * one strum of it is a string in the next, however weak the strum. */
    int    chord_frames;
    int    chord_pitches;
    int    chord_strum;
    int    chord_memory;
};

/* The default settings of WTT_NOTES_GUITAR or WTT_NOTES_BASS (their range
 * differs). */
struct wtt_guitar_tuning wtt_notes_guitar_defaults(int mode);

/* The default note parameters of a mode: wtt_notes_default_params() for
 * official; for guitar and bass the same with the minimum note length of 4
 * frames and WTT_RULES_DEFAULT. */
struct wtt_notes_params wtt_notes_mode_params(int mode);

/* "official", "guitar", "bass" to enum wtt_notes_mode; -1 when unknown. */
int wtt_notes_mode_parse(const char *name);

/* The name of a mode; NULL when unknown. */
const char *wtt_notes_mode_name(int mode);

/*
 * Parses a comma-separated list of rule names ("ghost,retrigger"; "all",
 * "none" or "" also) into WTT_RULE_* bits. Returns 0, or -1 with `err`
 * naming the unknown rule.
 */
int wtt_notes_rules_parse(const char *list, unsigned *rules, char *err,
                          size_t errlen);

/* Writes the names of the bits of `rules`, comma-separated ("" for none),
 * into buf (truncated to len). */
void wtt_notes_rules_format(unsigned rules, char *buf, size_t len);

/*
 * Notes of mode p->mode (guitar or bass) with the rules p->rules, in the
 * form wtt_notes_extract returns them, sorted by start, then pitch.
 * Returns 0, or -1 with `err` (an unknown mode or rule bit, the official
 * decoding's errors).
 */
int wtt_notes_guitar_extract(struct wtt_posteriors *post,
                             const struct wtt_notes_params *p,
                             struct wtt_note **out, size_t *n,
                             char *err, size_t errlen);

#endif
