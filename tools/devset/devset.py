#!/usr/bin/env python3
"""The accuracy development set: MIDI parts with exact ground truth (standard library only).

  devset.py plan OUTDIR [--guitarset DIR]
        write OUTDIR/midi/<clip>.mid, OUTDIR/clips/<clip>.truth.json (the true notes),
        OUTDIR/manifest.tsv (one row per clip) and OUTDIR/render.tsv (how make.sh renders each)
  devset.py finish RAW.wav OUT.wav SECONDS NOISE SEED
        RAW: fluidsynth's float render (1 or 2 channels). OUT: mono 16-bit PCM, (L+R)/2, cut or
        zero-padded to SECONDS, normalised to a peak of 0.5, then NOISE added (none, or
        white<SNR> / pink<SNR>: white or pink noise at SNR dB below the clip's RMS), from a
        random generator seeded with the string SEED.

Everything depends only on this file, the GuitarSet CSVs given and the clip names: every clip's
random choices come from random.Random(<clip name>), so a second run writes the same bytes (given
the same fluidsynth and soundfonts; make.sh writes SHA256SUMS to check it).

Truth notes: [{start_s, end_s, pitch_midi, bends?}]. start_s / end_s are the note-on / note-off
times as written in the MIDI file (1 tick = 1/960 s; the renderer starts a note's sound about 5-8 ms
after its note-on, the soundfonts' attack). bends, on the notes the pitch wheel moves, is the
rendered wheel curve: [{t, semitones}], the value at the note's start then one point per wheel
event up to its end (the wheel holds its value between points). A note never overlaps another of
the same pitch on the same channel: each string is its own MIDI channel, and a note ends when the
next note on its string starts, as on a guitar.

Kinds (docs/accuracy.md describes them): riff, power, chords, twovoice, bend, repeat, bass, drop,
arpeggio and, with --guitarset, guitarset (the players' notes of the GuitarSet excerpts, cut into
segments of at most 12 s, each rendered with two programs).
"""
import array
import csv
import importlib.util
import json
import math
import os
import random
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# The SMF writer of the test-clip synthesiser (format 0, 480 ticks per quarter at 120 bpm).
_spec = importlib.util.spec_from_file_location('clips_gen', os.path.join(HERE, '..', 'clips', 'gen.py'))
clips_gen = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(clips_gen)
TICKS_PER_S = clips_gen.TICKS_PER_S      # 960

# General MIDI programs, 0-based (GM number minus one).
PROGRAMS = {
    'nylon': 24, 'steel': 25, 'jazz': 26, 'clean': 27, 'muted': 28, 'overdriven': 29,
    'distortion': 30, 'bass_finger': 33, 'bass_pick': 34,
}
FLUID = '/usr/share/sounds/sf2/FluidR3_GM.sf2'
MUSESCORE = '/usr/share/sounds/sf3/MuseScore_General_Lite.sf3'
SOUNDFONTS = {'fluidr3': FLUID, 'musescore': MUSESCORE}

# fluidsynth reverb settings per level (docs/accuracy.md).
REVERBS = {
    'dry': '',
    'room': 'synth.reverb.room-size=0.35 synth.reverb.damp=0.4 synth.reverb.width=0.8 synth.reverb.level=0.4',
    'large': 'synth.reverb.room-size=0.85 synth.reverb.damp=0.15 synth.reverb.width=1.0 synth.reverb.level=0.7',
}

STANDARD = [40, 45, 50, 55, 59, 64]         # low E to high E (string 6 .. string 1)
LEAD_IN = 0.3                                # seconds of silence before the first note
TAIL = 0.8                                   # seconds after the last note-off


def q(t):
    """A time in seconds on the MIDI tick grid."""
    return round(t * TICKS_PER_S) / TICKS_PER_S


class Part:
    """Notes on channels (one per string or voice) plus pitch-wheel curves; renders to MIDI and to
    the truth list."""

    def __init__(self, program, bend_range=2):
        self.program = program
        self.bend_range = bend_range
        self.notes = []          # [start, end, pitch, vel, ch]
        self.wheel = {}          # ch -> [(t, semitones)]

    def note(self, ch, t, dur, pitch, vel=96):
        t = q(t)
        end = q(t + dur)
        if end <= t:
            end = t + 1 / TICKS_PER_S
        self.notes.append([t, end, pitch, max(1, min(127, int(vel))), ch])

    def bend(self, ch, t, semis):
        self.wheel.setdefault(ch, []).append((q(t), semis))

    def _cut_strings(self):
        """A note ends when the next one on its channel starts (a string stops ringing when it is
        struck again)."""
        by_ch = {}
        for n in self.notes:
            by_ch.setdefault(n[4], []).append(n)
        for lst in by_ch.values():
            lst.sort(key=lambda n: (n[0], n[2]))
            for a, b in zip(lst, lst[1:]):
                if a[1] > b[0]:
                    a[1] = b[0]
        self.notes = [n for n in self.notes if n[1] > n[0]]

    def wheel_value(self, semis):
        v = round(8192 + semis / self.bend_range * 8192)
        return max(0, min(16383, v))

    def finish(self):
        self._cut_strings()
        self.notes.sort(key=lambda n: (n[0], n[2], n[4]))
        for ch in self.wheel:
            self.wheel[ch].sort(key=lambda e: e[0])

    def end_s(self):
        return max(n[1] for n in self.notes)

    def midi(self, seconds):
        ev = []
        chans = sorted({n[4] for n in self.notes} | set(self.wheel))
        for ch in chans:
            ev.append((0.0, 0, bytes([0xC0 | ch, self.program])))
            # RPN 0 (pitch-bend sensitivity) = bend_range semitones, then the null RPN
            for cc, v in ((101, 0), (100, 0), (6, self.bend_range), (38, 0), (101, 127), (100, 127)):
                ev.append((0.0, 0, bytes([0xB0 | ch, cc, v])))
            ev.append((0.0, 0, bytes([0xB0 | ch, 91, 64])))      # reverb send (used when reverb is on)
            ev.append((0.0, 0, bytes([0xB0 | ch, 93, 0])))       # no chorus send
            ev.append((0.0, 0, bytes([0xE0 | ch, 0, 64])))       # wheel centred
        for ch, pts in self.wheel.items():
            for t, s in pts:
                v = self.wheel_value(s)
                ev.append((t, 2, bytes([0xE0 | ch, v & 0x7F, v >> 7])))
        for t, end, p, vel, ch in self.notes:
            ev.append((t, 3, bytes([0x90 | ch, p, vel])))
            ev.append((end, 1, bytes([0x80 | ch, p, 64])))
        return clips_gen.smf(ev, seconds + 0.25)

    def truth(self):
        out = []
        for t, end, p, vel, ch in self.notes:
            n = {'start_s': round(t, 6), 'end_s': round(end, 6), 'pitch_midi': p}
            pts = self.wheel.get(ch, [])
            if pts:
                cur = 0.0
                for pt, s in pts:
                    if pt <= t:
                        cur = s
                curve = [(t, cur)] + [(pt, s) for pt, s in pts if t < pt < end]
                # the value the synthesiser plays is the 14-bit wheel value
                curve = [(a, (self.wheel_value(s) - 8192) / 8192 * self.bend_range) for a, s in curve]
                if any(abs(s) > 1e-9 for _, s in curve):
                    n['bends'] = [{'t': round(a, 6), 'semitones': round(s, 4)} for a, s in curve]
            out.append(n)
        return out


# ---------------------------------------------------------------------------------------------
# Musical material

SCALES = {
    'minor_pent': [0, 3, 5, 7, 10],
    'blues': [0, 3, 5, 6, 7, 10],
    'natural_minor': [0, 2, 3, 5, 7, 8, 10],
    'major': [0, 2, 4, 5, 7, 9, 11],
    'dorian': [0, 2, 3, 5, 7, 9, 10],
}

# chord shapes: frets from string 6 (low E) to string 1; None = not played
SHAPES = {
    'E': [0, 2, 2, 1, 0, 0], 'A': [None, 0, 2, 2, 2, 0], 'D': [None, None, 0, 2, 3, 2],
    'G': [3, 2, 0, 0, 0, 3], 'C': [None, 3, 2, 0, 1, 0], 'Am': [None, 0, 2, 2, 1, 0],
    'Em': [0, 2, 2, 0, 0, 0], 'Dm': [None, None, 0, 2, 3, 1], 'F': [1, 3, 3, 2, 1, 1],
    'B7': [None, 2, 1, 2, 0, 2], 'E7': [0, 2, 0, 1, 0, 0], 'A7': [None, 0, 2, 0, 2, 0],
    'Bm': [None, 2, 4, 4, 3, 2], 'Cmaj7': [None, 3, 2, 0, 0, 0], 'Fmaj7': [None, None, 3, 2, 1, 0],
    'G7': [3, 2, 0, 0, 0, 1], 'D7': [None, None, 0, 2, 1, 2],
}
PROGRESSIONS = [
    ['G', 'D', 'Em', 'C'], ['Am', 'F', 'C', 'G'], ['E', 'A', 'B7', 'E'], ['C', 'Am', 'Dm', 'G7'],
    ['D', 'G', 'A7', 'D'], ['Em', 'C', 'G', 'D'], ['Am', 'Dm', 'E7', 'Am'], ['Cmaj7', 'Fmaj7', 'G', 'C'],
]


def chord_pitches(name, tuning=STANDARD):
    """[(string index 0 = low E .. 5, pitch)] of a chord shape."""
    return [(i, tuning[i] + f) for i, f in enumerate(SHAPES[name]) if f is not None]


def scale_notes(root, scale, lo, hi):
    return [p for p in range(lo, hi + 1) if (p - root) % 12 in SCALES[scale]]


def reflect(i, n):
    """An index walked past either end of a list of n comes back in (no sticking at the edges)."""
    while i < 0 or i >= n:
        i = -i if i < 0 else 2 * (n - 1) - i
    return i


def human(rng, t, ms=6.0):
    return t + rng.uniform(-ms, ms) / 1000.0


def vel(rng, base=92, spread=14):
    return base + rng.randint(-spread, spread)


def mono_line(part, rng, pitches, starts, step, legato, ch=0, accent_every=4):
    for i, (p, t) in enumerate(zip(pitches, starts)):
        if p is None:
            continue
        v = vel(rng, 100 if i % accent_every == 0 else 88, 8)
        part.note(ch, t, step * legato, p, v)


def make_riff(rng, program, tempo):
    """Fast single-note riffs: 16ths, a random walk on a scale with jumps, pedal tones, rests."""
    part = Part(program)
    root = rng.choice([40, 45, 43, 50, 52])
    scale = rng.choice(['minor_pent', 'blues', 'natural_minor', 'dorian'])
    pool = scale_notes(root, scale, max(40, root - 2), root + 26)
    step = 60.0 / tempo / 4
    legato = rng.choice([0.55, 0.8, 0.95])
    n = int((rng.uniform(7.5, 11.0) - LEAD_IN) / step)
    pedal = rng.random() < 0.4
    idx = rng.randrange(len(pool) // 3, len(pool) // 2 + 1)
    pitches = []
    for i in range(n):
        if pedal and i % 2 == 0:
            pitches.append(pool[0])
            continue
        r = rng.random()
        if r < 0.08 and i % 4 == 3:
            pitches.append(None)                    # a rest
            continue
        if r < 0.2:
            idx += rng.choice([-4, -3, 3, 4])       # string skip
        else:
            idx += rng.choice([-2, -1, -1, 1, 1, 2])
        idx = reflect(idx, len(pool))
        pitches.append(pool[idx])
    starts = [human(rng, LEAD_IN + i * step, 4) for i in range(n)]
    mono_line(part, rng, pitches, starts, step, legato)
    return part, f'{scale} riff on {root}, 16ths, legato {legato}'


def power_chord(part, rng, t, root, dur, v, spacing, ch0=0, octave=True):
    notes = [root, root + 7] + ([root + 12] if octave else [])
    for j, p in enumerate(notes):
        part.note(ch0 + j, t + j * spacing, dur - j * spacing, p, v - 3 * j)


def make_power(rng, program, tempo, tuning_low=40, desc='power chords'):
    """Power chords (root, fifth, octave) in 8ths with palm-muted chugs on the low root."""
    part = Part(program)
    step = 60.0 / tempo / 2
    spacing = rng.uniform(0.004, 0.012)
    roots = [tuning_low + f for f in (0, 3, 5, 7, 8, 10, 12)]
    t = LEAD_IN
    end = rng.uniform(8.0, 11.0)
    bar = 0
    while t + 8 * step < end:
        r1, r2 = rng.choice(roots), rng.choice(roots)
        pattern = rng.choice(['CCcCCCcC', 'CcccCcCc', 'CC..CCcc', 'ccCcccCc'])
        for i, c in enumerate(pattern):
            tt = human(rng, t + i * step, 3)
            root = r1 if i < 4 else r2
            if c == 'C':
                power_chord(part, rng, tt, root, step * 0.95, vel(rng, 100, 8), spacing)
            elif c == 'c':                                  # chug: short low root (palm mute)
                part.note(0, tt, step * rng.uniform(0.35, 0.6), tuning_low if bar % 2 else root, vel(rng, 90, 8))
        t += 8 * step
        bar += 1
    return part, f'{desc}, 8ths, strings {spacing * 1000:.0f} ms apart'


def strum(part, rng, t, pitches, down, spacing, v, dur_to):
    order = pitches if down else list(reversed(pitches))
    if not down:
        order = order[:rng.choice([3, 4, len(order)])]
    for j, (s, p) in enumerate(order):
        tt = t + j * spacing
        part.note(s, tt, dur_to - tt, p, v - (2 * j if down else 0))


def make_chords(rng, program, tempo):
    """Open chords strummed (down and up), strings a few ms apart, each string ringing until it is
    struck again."""
    part = Part(program)
    prog = rng.choice(PROGRESSIONS)
    beat = 60.0 / tempo
    spacing = rng.uniform(0.008, 0.025)
    pattern = rng.choice(['D.D.D.D.', 'D.DUD.DU', 'D..UDUDU', 'D.D..UDU'])
    t = LEAD_IN
    end = rng.uniform(9.0, 13.0)
    k = 0
    hits = []
    while t + 4 * beat < end:
        name = prog[k % len(prog)]
        for i, c in enumerate(pattern):
            if c in 'DU':
                hits.append((human(rng, t + i * beat / 2, 5), name, c == 'D'))
        t += 4 * beat
        k += 1
    for i, (tt, name, down) in enumerate(hits):
        stop = hits[i + 1][0] + 0.3 if i + 1 < len(hits) else tt + 1.6
        strum(part, rng, tt, chord_pitches(name), down, spacing, vel(rng, 92 if down else 80, 8), stop)
    return part, f'strummed {"-".join(prog)}, {pattern}, strings {spacing * 1000:.0f} ms apart'


def make_twovoice(rng, program, tempo):
    """Fingerstyle: a bass voice in quarters (strings 6-4) under a melody in 8ths (strings 1-3)."""
    part = Part(program)
    prog = rng.choice(PROGRESSIONS)
    beat = 60.0 / tempo
    t = LEAD_IN
    end = rng.uniform(8.5, 12.0)
    k = 0
    mel = 71
    while t + 4 * beat < end:
        ch = chord_pitches(prog[k % len(prog)])
        bass = [p for s, p in ch if s <= 2]
        top = sorted({p for s, p in ch if s >= 3} | {p + 12 for s, p in ch if s >= 3})
        for b in range(4):
            bp = bass[0] if b % 2 == 0 else bass[-1]
            part.note(0 if b % 2 == 0 else 1, human(rng, t + b * beat, 4), beat * 0.98, bp, vel(rng, 88, 6))
        for e in range(8):
            if rng.random() < 0.15:
                continue
            cands = [p for p in top if abs(p - mel) <= 5] or top
            mel = rng.choice(cands)
            part.note(3 + e % 3, human(rng, t + e * beat / 2, 5), beat / 2 * rng.choice([0.9, 1.0, 1.8]), mel,
                      vel(rng, 96, 8))
        t += 4 * beat
        k += 1
    return part, f'two voices over {"-".join(prog)}: bass quarters, melody 8ths'


def make_bend(rng, program, tempo, bend_range):
    """A lead line in 8ths and quarters with bends: half and whole steps (1.5 with a range of 4),
    held or released, fast or slow; bent notes alternate between channels 1 and 2 so that each
    wheel returns to 0 after its note has died away."""
    part = Part(program, bend_range)
    root = rng.choice([45, 52, 57, 50])
    pool = scale_notes(root, 'minor_pent', 52, 81)
    beat = 60.0 / tempo
    t = LEAD_IN
    end = rng.uniform(9.0, 13.0)
    bch = 1
    last_free = {1: 0.0, 2: 0.0}
    idx = len(pool) // 2
    nb = 0
    amounts = [1.0, 2.0] + ([1.5] if bend_range >= 4 else [])
    while t < end - 1.0:
        idx = reflect(idx + rng.choice([-2, -1, 1, 2]), len(pool))
        p = pool[idx]
        if rng.random() < 0.4 and t >= last_free[bch]:
            dur = beat * rng.choice([1.0, 1.5, 2.0])
            amt = rng.choice(amounts) * (1 if rng.random() < 0.92 else -0.5)
            t0 = human(rng, t, 4)
            part.note(bch, t0, dur, p, vel(rng, 104, 8))
            bs = t0 + rng.uniform(0.06, 0.2)               # bend starts
            rise = rng.uniform(0.06, 0.22)
            steps = max(3, int(rise / 0.01))
            for i in range(1, steps + 1):
                part.bend(bch, bs + rise * i / steps, amt * i / steps)
            top_end = bs + rise
            if rng.random() < 0.5 and dur - (top_end - t0) > 0.3:   # release back down
                hold = rng.uniform(0.1, 0.25)
                rs = top_end + hold
                for i in range(1, steps + 1):
                    part.bend(bch, rs + rise * i / steps, amt * (1 - i / steps))
            part.bend(bch, t0 + dur + 0.45, 0.0)           # wheel back to 0 once the note has died away
            last_free[bch] = t0 + dur + 0.46
            bch = 3 - bch
            t += dur
            nb += 1
        else:
            d = beat * rng.choice([0.5, 0.5, 1.0])
            part.note(0, human(rng, t, 4), d * 0.95, p, vel(rng, 92, 8))
            t += d
    return part, f'lead line in minor pentatonic on {root} with {nb} bends (range {bend_range})'


def make_repeat(rng, program, tempo):
    """Repeated notes: one pitch re-plucked 3-8 times (8ths, triplets or 16ths), then another."""
    part = Part(program)
    sub = rng.choice([2, 3, 4])
    step = 60.0 / tempo / sub
    gap = rng.choice([0.0, 0.01, 0.03])                    # 0: the next pluck cuts the note (legato)
    lo, hi = 45, 76
    t = LEAD_IN
    end = rng.uniform(8.0, 11.0)
    p = rng.randint(lo + 5, hi - 5)
    while t < end - 1.0:
        k = rng.randint(3, 8)
        for i in range(k):
            part.note(0, human(rng, t + i * step, 3), step - gap, p, vel(rng, 96 if i == 0 else 86, 6))
        t += k * step + rng.choice([0, step])
        p = max(lo, min(hi, p + rng.choice([-7, -5, -3, -2, 2, 3, 5, 7])))
    return part, f'repeated notes, {sub} per beat, gap {gap * 1000:.0f} ms'


def make_bass(rng, program, tempo):
    """Bass lines down to E1: roots and fifths, octaves, walking lines, in 8ths and quarters."""
    part = Part(program)
    style = rng.choice(['root8', 'octaves', 'walking', 'riff'])
    beat = 60.0 / tempo
    root = rng.choice([28, 29, 31, 33, 28])
    t = LEAD_IN
    end = rng.uniform(8.5, 12.0)
    cur = root
    while t + 4 * beat < end:
        r = rng.choice([root, root + 5, root + 7, root + 3])
        if style == 'root8':
            seq = [(r, 0.5)] * 6 + [(r + 7, 0.5), (r + 5, 0.5)]
        elif style == 'octaves':
            seq = [(r, 0.5), (r + 12, 0.5)] * 4
        elif style == 'walking':
            seq = []
            for _ in range(4):
                cur = max(28, min(52, cur + rng.choice([-2, -1, 1, 2, 3, -3])))
                seq.append((cur, 1.0))
        else:
            seq = [(r, 0.75), (r, 0.25), (r + 12, 0.5), (r + 10, 0.5), (r + 7, 0.5), (r, 0.5), (r + 3, 1.0)]
        tt = t
        for p, d in seq:
            part.note(0, human(rng, tt, 5), d * beat * rng.uniform(0.8, 0.97), p, vel(rng, 98, 8))
            tt += d * beat
        t += 4 * beat
    return part, f'bass line ({style}) on {root}'


def make_drop(rng, program, tempo):
    """Drop tunings (D2, C2 or B1 on the low string): chugs on the open low string and power chords
    on it."""
    low = rng.choice([38, 36, 35])
    part, desc = make_power(rng, program, tempo, tuning_low=low, desc=f'drop tuning, low string {low}')
    return part, desc


def make_arpeggio(rng, program, tempo):
    """Arpeggios with let-ring: each string rings until it is played again or the chord changes
    (plus half a second)."""
    part = Part(program)
    prog = rng.choice(PROGRESSIONS)
    beat = 60.0 / tempo
    sub = rng.choice([2, 3, 4])
    step = beat / sub
    t = LEAD_IN
    end = rng.uniform(9.0, 13.0)
    k = 0
    while t + 4 * beat < end:
        ch = chord_pitches(prog[k % len(prog)])
        order = ch + list(reversed(ch[1:-1]))
        n = 4 * sub
        for i in range(n):
            s, p = order[i % len(order)]
            tt = human(rng, t + i * step, 4)
            part.note(s, tt, (t + 4 * beat + 0.5) - tt, p, vel(rng, 86, 8))
        t += 4 * beat
        k += 1
    return part, f'arpeggio over {"-".join(prog)}, {sub} per beat, let ring'


def barre_shape(shape, fret):
    """Frets (string 6 .. 1) of a movable barre chord: the E, Em, A or Am shape at `fret`."""
    f = fret
    return {
        'E': [f, f + 2, f + 2, f + 1, f, f], 'Em': [f, f + 2, f + 2, f, f, f],
        'A': [None, f, f + 2, f + 2, f + 2, f], 'Am': [None, f, f + 2, f + 2, f + 1, f],
    }[shape]


def make_restrum(rng, program, tempo):
    """One chord re-strummed many times (8ths or 16ths) before the next, open and barre chords:
    down-strums that sometimes skip the lowest strings, light up-strums on the top 2-5 strings,
    strings 5-20 ms apart. A string rings until it is struck again or the chord changes."""
    part = Part(program)
    beat = 60.0 / tempo
    sixteenths = tempo <= 100 and rng.random() < 0.6
    sub = 4 if sixteenths else 2
    pattern = rng.choice(['D.DUD.DUD.DUD.DU', 'D.DU.UDUD.DU.UDU', 'DUDUDUDUDUDUDUDU', 'D..UD.DUD..UD.DU']
                         if sixteenths else ['DDDDDDDD', 'D.DUD.DU', 'DUDUDUDU', 'D.DU.UDU'])
    spacing = rng.uniform(0.005, 0.012 if sixteenths else 0.020)
    chords = []
    for _ in range(4):
        if rng.random() < 0.5:
            name = rng.choice(sorted(SHAPES))
            chords.append((name, [(i, STANDARD[i] + f) for i, f in enumerate(SHAPES[name]) if f is not None]))
        else:
            shape, fret = rng.choice(['E', 'Em', 'A', 'Am']), rng.randint(1, 7)
            chords.append((f'{shape}@{fret}', [(i, STANDARD[i] + f) for i, f in enumerate(barre_shape(shape, fret))
                                               if f is not None]))
    t = LEAD_IN
    end = rng.uniform(9.0, 13.0)
    k = 0
    names = []
    while t + 4 * beat < end:
        name, pitches = chords[k % len(chords)]
        names.append(name)
        bars = rng.choice([1, 1, 2])
        chord_end = t + 4 * beat * bars
        steps = 4 * sub * bars
        for i in range(steps):
            c = pattern[i % len(pattern)]
            if c == '.':
                continue
            tt = human(rng, t + i * beat / sub, 4)
            if c == 'D':
                skip = rng.choice([0, 0, 0, 1, 2]) if len(pitches) > 4 else 0
                order = pitches[skip:]
                v = vel(rng, 96 if i % sub == 0 else 86, 8)
            else:
                order = list(reversed(pitches))[:rng.choice([2, 3, 3, 4, 5])]
                v = vel(rng, 72, 10)
            for j, (s, p) in enumerate(order):
                part.note(s, tt + j * spacing, chord_end + 0.05 - (tt + j * spacing), p, v - 2 * j)
        t = chord_end
        k += 1
    return part, f're-strummed {"-".join(names)}, {pattern} in {"16ths" if sixteenths else "8ths"}, ' \
                 f'strings {spacing * 1000:.0f} ms apart'


def make_dropriff(rng, program, tempo):
    """Drop-tuned riffs (D2, C2 or B1 on the low string) in 16ths: palm-muted chugs on the open low
    string (30-55% of a 16th), gallops, single notes on the two low strings and one-finger power
    chords (root, fifth, octave on strings 6-4)."""
    part = Part(program)
    low = rng.choice([38, 36, 35])
    step = 60.0 / tempo / 4
    pm = rng.uniform(0.3, 0.55)
    cells = ['cccc', 'c.cc', 'cc.c', 'P...', 'P.cc', 'ccN.', 'N.N.', 'cNcN', 'c.P.', 'PPcc']
    riff = [rng.choice(cells) for _ in range(4)]
    frets = [rng.choice([1, 2, 3, 5, 6, 7, 8]) for _ in range(8)]
    t = LEAD_IN
    end = rng.uniform(8.0, 11.0)
    bar = 0
    while t + 16 * step < end:
        for b, cell in enumerate(riff):
            for i, c in enumerate(cell):
                tt = human(rng, t + (4 * b + i) * step, 3)
                if c == 'c':
                    part.note(0, tt, step * pm * rng.uniform(0.85, 1.15), low, vel(rng, 84, 8))
                elif c == 'N':
                    f = frets[(4 * b + i + bar) % len(frets)]
                    pitch = low + f if f <= 5 else low + 7 + f - 5      # string 6, or string 5 above fret 5
                    part.note(0 if f <= 5 else 1, tt, step * rng.uniform(0.7, 0.95), pitch, vel(rng, 94, 6))
                elif c == 'P':
                    f = frets[(b + bar + i) % len(frets)]
                    rest = 1                                 # held until the cell's next event
                    while i + rest < len(cell) and cell[i + rest] == '.':
                        rest += 1
                    power_chord(part, rng, tt, low + f, step * rest * 0.95, vel(rng, 100, 6), 0.004)
        t += 16 * step
        bar += 1
    return part, f'drop tuning riff, low string {low}, 16ths, palm mutes {pm * 100:.0f}% of a 16th, cells ' \
                 f'{" ".join(riff)}'


# ---------------------------------------------------------------------------------------------
# GuitarSet excerpts

def read_guitarset(path):
    with open(path, newline='') as f:
        rows = list(csv.DictReader(f))
    return [(float(r['start_s']), float(r['end_s']), int(r['pitch_midi']), int(r['string'])) for r in rows]


def guitarset_segments(notes, max_len=12.0):
    """Cut an excerpt's notes into segments of at most max_len seconds, each cut just before the
    onset with the widest gap before it near the nominal cut."""
    notes = sorted(notes)
    total = max(n[1] for n in notes)
    nseg = max(1, math.ceil(total / max_len))
    onsets = sorted({round(n[0], 6) for n in notes})
    cuts = [0.0]
    for k in range(1, nseg):
        nominal = total * k / nseg
        best = None
        for i in range(1, len(onsets)):
            if abs(onsets[i] - nominal) <= 1.5:
                gap = onsets[i] - onsets[i - 1]
                if best is None or gap > best[0]:
                    best = (gap, onsets[i])
        cuts.append(best[1] - 0.01 if best else nominal)
    cuts.append(float('inf'))
    return [[n for n in notes if a <= n[0] < b] for a, b in zip(cuts, cuts[1:])]


def make_guitarset(seg, program):
    part = Part(program)
    t0 = min(n[0] for n in seg)
    for s, e, p, string in seg:
        # GuitarSet string 1 = high E; MIDI channel 6 - string (0 = low E)
        part.note(6 - string, s - t0 + LEAD_IN, e - s, p, 90)
    return part


# ---------------------------------------------------------------------------------------------
# The plan

# kind -> (number of clips in the test half, programs cycled through, tempo range, generator); the
# tuning half has four times as many (split_of)
KINDS = [
    ('riff', 10, ['clean', 'overdriven', 'steel', 'distortion', 'nylon'], (100, 160), make_riff),
    ('power', 6, ['overdriven', 'distortion', 'clean'], (90, 150), make_power),
    ('chords', 8, ['steel', 'nylon', 'clean', 'jazz'], (70, 120), make_chords),
    ('twovoice', 6, ['nylon', 'steel', 'clean'], (70, 110), make_twovoice),
    ('bend', 10, ['overdriven', 'distortion', 'clean', 'steel', 'jazz'], (70, 110), make_bend),
    ('repeat', 6, ['clean', 'nylon', 'overdriven'], (90, 150), make_repeat),
    ('bass', 8, ['bass_finger', 'bass_pick'], (80, 140), make_bass),
    ('drop', 6, ['distortion', 'overdriven', 'clean'], (100, 140), make_drop),
    ('arpeggio', 6, ['nylon', 'steel', 'clean'], (60, 110), make_arpeggio),
    ('restrum', 10, ['steel', 'nylon', 'clean', 'jazz', 'overdriven'], (70, 130), make_restrum),
    ('dropriff', 8, ['distortion', 'overdriven', 'clean', 'muted'], (90, 150), make_dropriff),
]
GUITARSET_PROGRAMS = ['nylon', 'steel', 'clean', 'jazz']
NOISES = ['none', 'none', 'none', 'white30', 'white20', 'pink25', 'pink15']


def split_of(i, count):
    """Tuning or test for the i-th of the 5 * count clips of a kind. Clips 4*count..5*count-1 are
    the test half, generated for the set's fifth version and used only to report. The others tune:
    the first `count` are version 2's, count..2*count-1 were version 3's and 4's test half (its
    worst clips were then looked at rule by rule, so it tunes now), and 2*count..4*count-1 were
    added in version 4, so that the settings are chosen on more strums than a test half holds
    (docs/accuracy.md, "Split")."""
    return 'test' if 4 * count <= i < 5 * count else 'tuning'


def plan(out, gs_dir=None):
    os.makedirs(os.path.join(out, 'midi'), exist_ok=True)
    os.makedirs(os.path.join(out, 'clips'), exist_ok=True)
    rows = []

    def emit(name, kind, prog_name, tempo, split, part, desc, rng, reverb=None):
        part.finish()
        seconds = round(min(21.0, part.end_s() + TAIL), 2)
        reverb = reverb or rng.choice(['dry', 'dry', 'room', 'large'])
        noise = rng.choice(NOISES)
        sf = 'musescore' if rng.random() < 0.3 and prog_name in ('nylon', 'steel', 'overdriven', 'distortion') \
            else 'fluidr3'
        with open(os.path.join(out, 'midi', name + '.mid'), 'wb') as f:
            f.write(part.midi(seconds))
        truth = part.truth()
        with open(os.path.join(out, 'clips', name + '.truth.json'), 'w') as f:
            f.write('[\n' + ',\n'.join(json.dumps(n, sort_keys=True) for n in truth) + '\n]\n')
        rows.append(dict(clip=name, program=str(part.program), program_name=prog_name, kind=kind,
                         tempo=str(tempo), reverb=reverb, noise=noise, split=split, soundfont=sf,
                         seconds=f'{seconds:g}', notes=str(len(truth)),
                         bent=str(sum(1 for n in truth if 'bends' in n)), desc=desc))

    for kind, count, progs, (tlo, thi), gen in KINDS:
        for i in range(5 * count):
            name = f'{kind}_{i:02d}'
            rng = random.Random(name)
            prog_name = progs[i % len(progs)]
            tempo = rng.randint(tlo, thi)
            program = PROGRAMS[prog_name]
            if kind == 'bend':
                part, desc = gen(rng, program, tempo, 4 if i % 5 == 4 else 2)
            else:
                part, desc = gen(rng, program, tempo)
            reverb = 'large' if kind == 'arpeggio' and i % 2 == 0 else ('room' if kind == 'arpeggio' else None)
            emit(name, kind, prog_name, tempo, split_of(i, count), part, desc, rng, reverb)

    if gs_dir:
        segs = []
        for fn in sorted(os.listdir(gs_dir)):
            if fn.endswith('.csv'):
                notes = read_guitarset(os.path.join(gs_dir, fn))
                for j, seg in enumerate(guitarset_segments(notes)):
                    segs.append((fn[:-4], j, seg))
        for i, (excerpt, j, seg) in enumerate(segs):
            split = 'test' if i % 2 == 1 else 'tuning'
            tempo = int(excerpt.split('-')[1])
            for k in range(2):
                prog_name = GUITARSET_PROGRAMS[(i + k) % len(GUITARSET_PROGRAMS)]
                name = f'gs_{excerpt.split("_")[0]}_{excerpt.split("_")[1].split("-")[0]}_{tempo}_' \
                       f'{excerpt.rsplit("_", 1)[1]}_s{j}_{prog_name}'
                rng = random.Random(name)
                part = make_guitarset(seg, PROGRAMS[prog_name])
                emit(name, 'guitarset', prog_name, tempo, split, part, f'GuitarSet {excerpt}, segment {j}', rng)

    cols = ['clip', 'program', 'program_name', 'kind', 'tempo', 'reverb', 'noise', 'split', 'soundfont',
            'seconds', 'notes', 'bent', 'desc']
    with open(os.path.join(out, 'manifest.tsv'), 'w') as f:
        f.write('\t'.join(cols) + '\n')
        for r in rows:
            f.write('\t'.join(r[c] for c in cols) + '\n')
    with open(os.path.join(out, 'render.tsv'), 'w') as f:
        for r in rows:
            f.write('\t'.join([r['clip'], SOUNDFONTS[r['soundfont']], r['reverb'],
                               REVERBS[r['reverb']] or '-', r['seconds'], r['noise']]) + '\n')
    print(f'{len(rows)} clips, {sum(float(r["seconds"]) for r in rows):.0f} s of audio, '
          f'{sum(int(r["notes"]) for r in rows)} notes')


# ---------------------------------------------------------------------------------------------
# Rendering: downmix, normalise, noise

def read_float_wav(path):
    with open(path, 'rb') as f:
        b = f.read()
    if b[:4] != b'RIFF' or b[8:12] != b'WAVE':
        raise SystemExit(f'{path}: not a RIFF/WAVE file')
    off, fmt, data = 12, None, None
    while off + 8 <= len(b):
        cid, size = b[off:off + 4], struct.unpack_from('<I', b, off + 4)[0]
        if cid == b'fmt ':
            tag, ch, rate, _, _, bits = struct.unpack_from('<HHIIHH', b, off + 8)
            if tag == 0xFFFE:
                tag = struct.unpack_from('<H', b, off + 8 + 24)[0]
            fmt = (tag, ch, rate, bits)
        elif cid == b'data':
            data = b[off + 8:off + 8 + size]
        off += 8 + size + (size & 1)
    if fmt is None or data is None or fmt[0] != 3 or fmt[3] != 32:
        raise SystemExit(f'{path}: expected a 32-bit float WAV (fluidsynth -O float)')
    tag, ch, rate, bits = fmt
    a = array.array('f')
    a.frombytes(data[:len(data) // 4 * 4])
    if sys.byteorder != 'little':
        a.byteswap()
    if ch == 1:
        return rate, list(a)
    return rate, [sum(a[i:i + ch]) / ch for i in range(0, len(a) - ch + 1, ch)] if ch > 2 else \
        [(x + y) * 0.5 for x, y in zip(a[0::2], a[1::2])]


def noise_samples(kind, n, rng):
    """n samples of white noise (uniform in [-1, 1)) or pink noise (Voss-McCartney: 16 uniform
    generators, generator k redrawn every 2^k samples, plus a white one)."""
    r = rng.random
    if kind == 'white':
        return [2.0 * r() - 1.0 for _ in range(n)]
    rows = [2.0 * r() - 1.0 for _ in range(16)]
    total = sum(rows)
    out = []
    for i in range(n):
        if i:
            k = (i & -i).bit_length() - 1
            if k < 16:
                v = 2.0 * r() - 1.0
                total += v - rows[k]
                rows[k] = v
        out.append(total + 2.0 * r() - 1.0)
    return out


def finish(raw, out, seconds, noise, seed):
    rate, x = read_float_wav(raw)
    n = round(float(seconds) * rate)
    x = (x + [0.0] * n)[:n]
    peak = max(abs(v) for v in x) or 1.0
    g = 0.5 / peak
    x = [v * g for v in x]
    if noise != 'none':
        kind = noise.rstrip('0123456789.')
        if kind not in ('white', 'pink') or kind == noise:
            raise SystemExit(f'unknown noise {noise}')
        snr = float(noise[len(kind):])
        rms = math.sqrt(sum(v * v for v in x) / len(x))
        w = noise_samples(kind, len(x), random.Random(seed))
        wr = math.sqrt(sum(v * v for v in w) / len(w))
        k = rms / wr * 10 ** (-snr / 20)
        x = [v + k * e for v, e in zip(x, w)]
        peak = max(abs(v) for v in x)
        if peak > 0.98:
            x = [v * 0.98 / peak for v in x]
    clips_gen.write_wav16(out, rate, x)


def main(argv):
    if len(argv) >= 2 and argv[0] == 'plan':
        gs = None
        if len(argv) == 4 and argv[2] == '--guitarset':
            gs = argv[3]
        elif len(argv) != 2:
            raise SystemExit(__doc__)
        plan(argv[1], gs)
    elif len(argv) == 6 and argv[0] == 'finish':
        finish(*argv[1:])
    else:
        raise SystemExit(__doc__)


if __name__ == '__main__':
    main(sys.argv[1:])
