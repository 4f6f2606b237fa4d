#!/usr/bin/env python3
"""Test-clip sources for wtt's transcription engine (standard library only).

  gen.py midi DIR            write the short clips' MIDI files (DIR/<clip>.mid) and DIR/clips.tsv
                             (clip name, duration in seconds, description)
  gen.py long FILE.mid       write the 60 s benchmark MIDI (a repeated progression)
  gen.py downmix IN OUT SECONDS
                             IN: the float WAV fluidsynth renders (1 or 2 channels, any float/PCM
                             width); OUT: mono 16-bit PCM WAV at the same rate, (L+R)/2, rounded
                             half away from zero, cut or zero-padded to exactly SECONDS.

MIDI is written by hand (SMF format 0, 480 ticks per quarter, 120 bpm, so 1 tick = 1/960 s), so the
bytes only depend on this file. Program numbers below are the 0-based bytes of the Program Change
message (General MIDI number minus one).
"""
import math
import os
import struct
import sys

TPQ = 480
TEMPO_US = 500000                     # 120 bpm
TICKS_PER_S = TPQ * 1_000_000 / TEMPO_US  # 960

NYLON, STEEL, PIANO, BASS_FINGER = 24, 25, 0, 33   # GM 25, 26, 1, 34


def vlq(n):
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    return bytes(reversed(out))


def smf(events, end_s):
    """events: list of (time_s, order, bytes). Returns SMF format-0 bytes."""
    evs = [(0.0, -2, b'\xff\x51\x03' + TEMPO_US.to_bytes(3, 'big')),
           (0.0, -1, b'\xff\x58\x04\x04\x02\x18\x08')]
    evs += events
    evs.sort(key=lambda e: (round(e[0] * TICKS_PER_S), e[1]))
    track = bytearray()
    last = 0
    for t, _, data in evs:
        tick = round(t * TICKS_PER_S)
        track += vlq(tick - last) + data
        last = tick
    end_tick = max(last, round(end_s * TICKS_PER_S))
    track += vlq(end_tick - last) + b'\xff\x2f\x00'
    return (b'MThd' + struct.pack('>IHHH', 6, 0, 1, TPQ) +
            b'MTrk' + struct.pack('>I', len(track)) + bytes(track))


class Clip:
    def __init__(self, seconds, desc):
        self.seconds = seconds
        self.desc = desc
        self.events = []

    def program(self, ch, prog, t=0.0):
        self.events.append((t, 0, bytes([0xC0 | ch, prog])))

    def note(self, ch, t, dur, pitch, vel=96):
        # note-offs sort before note-ons at the same tick (order 1 < 3) so repeated pitches re-strike
        self.events.append((t, 3, bytes([0x90 | ch, pitch, vel])))
        self.events.append((t + dur, 1, bytes([0x80 | ch, pitch, 64])))

    def bend(self, ch, t, semis, rng=2.0):
        v = max(0, min(16383, round(8192 + semis / rng * 8192)))
        self.events.append((t, 2, bytes([0xE0 | ch, v & 0x7F, v >> 7])))

    def midi(self):
        # the MIDI file ends 0.25 s after the clip so fluidsynth renders the whole clip; the
        # downmix step then cuts to exactly self.seconds
        return smf(self.events, self.seconds + 0.25)


def clips():
    c = {}

    # Nylon guitar, single notes across the neck, one at a time, 0.5 s apart.
    k = Clip(4.0, 'nylon guitar (GM 25), single notes E3 G3 B3 D4 E4 A4 C5, 0.45 s each')
    k.program(0, NYLON)
    for i, p in enumerate([52, 55, 59, 62, 64, 69, 72]):
        k.note(0, 0.25 + 0.5 * i, 0.45, p, 90 + 5 * (i % 3))
    c['guitar_nylon_single'] = k

    # Steel guitar, low register single notes including the open low E.
    k = Clip(4.0, 'steel guitar (GM 26), single low notes E2 A2 D3 G3 C3 F#3, 0.55 s each')
    k.program(0, STEEL)
    for i, p in enumerate([40, 45, 50, 55, 48, 54]):
        k.note(0, 0.25 + 0.6 * i, 0.55, p, 100)
    c['guitar_steel_single'] = k

    # Chord strums: G major (6 strings), C major (5), D major (4), strings 18 ms apart.
    k = Clip(4.5, 'steel guitar (GM 26), down-strummed chords G, C, D, G (18 ms per string)')
    k.program(0, STEEL)
    chords = [[43, 47, 50, 55, 59, 67], [48, 52, 55, 60, 64], [50, 57, 62, 66], [43, 47, 50, 55, 59, 67]]
    for i, ch in enumerate(chords):
        t0 = 0.25 + 1.0 * i
        for j, p in enumerate(ch):
            k.note(0, t0 + 0.018 * j, 0.95 - 0.018 * j, p, 84 + 3 * j)
    c['guitar_strum'] = k

    # Fast run: A minor pentatonic up and down in 16ths at 120 bpm (125 ms per note).
    k = Clip(3.5, 'nylon guitar (GM 25), fast run: A minor pentatonic up and down, 16ths at 120 bpm')
    k.program(0, NYLON)
    scale = [45, 48, 50, 52, 55, 57, 60, 62, 64, 67, 69]
    run = scale + scale[-2::-1] + [45]
    for i, p in enumerate(run):
        k.note(0, 0.25 + 0.125 * i, 0.12, p, 88 + (8 if i % 4 == 0 else 0))
    c['guitar_fast_run'] = k

    # Piano block chords: C, F/C, G/B, Am, C.
    k = Clip(4.5, 'acoustic grand piano (GM 1), block chords C, F/C, G/B, Am, C, 0.8 s each')
    k.program(0, PIANO)
    chords = [[48, 60, 64, 67], [48, 60, 65, 69], [47, 59, 62, 67], [45, 57, 60, 64], [48, 60, 64, 67, 72]]
    for i, ch in enumerate(chords):
        for p in ch:
            k.note(0, 0.25 + 0.8 * i, 0.75, p, 80)
    c['piano_chords'] = k

    # Bass line: root notes in 8ths, with A1 and the low E1 (a known octave-error case).
    k = Clip(4.5, 'electric bass, finger (GM 34), 8th-note line A1 A1 C2 D2 E2 G2 E2 D2, E1, A1')
    k.program(0, BASS_FINGER)
    line = [33, 33, 36, 38, 40, 43, 40, 38]
    for i, p in enumerate(line):
        k.note(0, 0.25 + 0.25 * i, 0.23, p, 100)
    k.note(0, 2.35, 0.8, 28, 105)
    k.note(0, 3.3, 0.9, 33, 105)
    c['bass_line'] = k

    # Pitch bend: A3 bent up a whole tone and back, then a half-step bend on E4 (bend range +-2 st).
    k = Clip(4.0, 'steel guitar (GM 26), A3 bent up 2 semitones and released, E4 bent up 1 semitone (pitch wheel)')
    k.program(0, STEEL)
    k.bend(0, 0.0, 0.0)
    k.note(0, 0.25, 1.9, 57, 110)
    for i in range(21):                    # 0.6 -> 1.0 s: 0 -> +2 semitones
        k.bend(0, 0.6 + 0.02 * i, 2.0 * i / 20)
    for i in range(21):                    # 1.5 -> 1.9 s: +2 -> 0
        k.bend(0, 1.5 + 0.02 * i, 2.0 * (20 - i) / 20)
    k.note(0, 2.3, 1.4, 64, 110)
    for i in range(11):                    # 2.7 -> 2.9 s: 0 -> +1 semitone, held
        k.bend(0, 2.7 + 0.02 * i, 1.0 * i / 10)
    k.bend(0, 3.75, 0.0)
    c['guitar_bend'] = k
    return c


def long_clip(seconds=60.0):
    """A 4-bar progression (Am F C G, 2 s per chord) repeated: strummed steel guitar, finger bass,
    and a nylon-guitar melody that changes every repetition."""
    k = Clip(seconds, f'{seconds:g} s benchmark: Am F C G progression, guitar strums + bass + melody')
    k.program(0, STEEL)
    k.program(1, BASS_FINGER)
    k.program(2, NYLON)
    chords = [([45, 52, 57, 60, 64], 33), ([41, 48, 53, 57, 60], 29),
              ([48, 52, 55, 60, 64], 36), ([43, 47, 50, 55, 59], 31)]
    melody = [69, 72, 74, 76, 79, 76, 74, 72]
    t = 0.25
    bar = 0
    while t + 2.0 <= seconds:
        notes, root = chords[bar % 4]
        for beat in range(4):
            tb = t + 0.5 * beat
            for j, p in enumerate(notes if beat % 2 == 0 else reversed(notes)):
                k.note(0, tb + 0.015 * j, 0.45, p, 70 + 2 * j)
            k.note(1, tb, 0.45, root if beat != 3 else root + 7, 100)
        for i in range(4):
            p = melody[(bar * 3 + i * 5) % len(melody)]
            k.note(2, t + 0.25 + 0.5 * i, 0.3, p, 95)
        t += 2.0
        bar += 1
    return k


def read_wav(path):
    with open(path, 'rb') as f:
        b = f.read()
    if b[:4] != b'RIFF' or b[8:12] != b'WAVE':
        raise SystemExit(f'{path}: not a RIFF/WAVE file')
    off, fmt, data = 12, None, None
    while off + 8 <= len(b):
        cid, size = b[off:off + 4], struct.unpack_from('<I', b, off + 4)[0]
        body = b[off + 8:off + 8 + size]
        if cid == b'fmt ':
            tag, ch, rate, _, _, bits = struct.unpack_from('<HHIIHH', body)
            if tag == 0xFFFE:
                tag = struct.unpack_from('<H', body, 24)[0]
            fmt = (tag, ch, rate, bits)
        elif cid == b'data':
            data = body
        off += 8 + size + (size & 1)
    if fmt is None or data is None:
        raise SystemExit(f'{path}: missing fmt or data chunk')
    tag, ch, rate, bits = fmt
    codes = {(3, 32): 'f', (3, 64): 'd', (1, 16): 'h', (1, 32): 'i'}
    if (tag, bits) not in codes:
        raise SystemExit(f'{path}: unsupported format tag {tag} / {bits} bits')
    code = codes[(tag, bits)]
    n = len(data) // (bits // 8)
    vals = struct.unpack(f'<{n}{code}', data[:n * bits // 8])
    scale = {'f': 1.0, 'd': 1.0, 'h': 32768.0, 'i': 2147483648.0}[code]
    frames = n // ch
    mono = [sum(vals[i * ch + c] for c in range(ch)) / ch / scale for i in range(frames)]
    return rate, mono


def write_wav16(path, rate, samples):
    clipped = 0
    ints = []
    for x in samples:
        v = x * 32767.0
        v = math.floor(v + 0.5) if v >= 0 else -math.floor(-v + 0.5)
        if v > 32767 or v < -32768:
            clipped += 1
            v = max(-32768, min(32767, v))
        ints.append(int(v))
    data = struct.pack(f'<{len(ints)}h', *ints)
    hdr = (b'RIFF' + struct.pack('<I', 36 + len(data)) + b'WAVE' +
           b'fmt ' + struct.pack('<IHHIIHH', 16, 1, 1, rate, rate * 2, 2, 16) +
           b'data' + struct.pack('<I', len(data)))
    with open(path, 'wb') as f:
        f.write(hdr + data)
    peak = max((abs(x) for x in samples), default=0.0)
    return peak, clipped


def main(argv):
    if len(argv) >= 2 and argv[0] == 'midi':
        out = argv[1]
        os.makedirs(out, exist_ok=True)
        rows = []
        for name, k in clips().items():
            with open(os.path.join(out, name + '.mid'), 'wb') as f:
                f.write(k.midi())
            rows.append(f'{name}\t{k.seconds:g}\t{k.desc}\n')
        with open(os.path.join(out, 'clips.tsv'), 'w') as f:
            f.write(''.join(rows))
    elif len(argv) >= 2 and argv[0] == 'long':
        seconds = float(argv[2]) if len(argv) > 2 else 60.0
        with open(argv[1], 'wb') as f:
            f.write(long_clip(seconds).midi())
    elif len(argv) == 4 and argv[0] == 'downmix':
        rate, mono = read_wav(argv[1])
        n = round(float(argv[3]) * rate)
        mono = (mono + [0.0] * n)[:n]
        peak, clipped = write_wav16(argv[2], rate, mono)
        if clipped:
            raise SystemExit(f'{argv[2]}: {clipped} samples clipped (peak {peak:.3f}); lower the gain')
        print(f'{os.path.basename(argv[2])}: {n} samples, {n / rate:g} s, peak {peak:.3f}')
    else:
        raise SystemExit(__doc__)


if __name__ == '__main__':
    main(sys.argv[1:])
