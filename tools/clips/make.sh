#!/bin/sh
# Synthesise the test clips for wtt's transcription engine.
#
#   tools/clips/make.sh                 regenerate tools/clips/midi/*.mid and render them to
#                                       spec/fixtures/clips/<clip>.wav (22050 Hz, mono, 16-bit PCM)
#   tools/clips/make.sh --long OUT.wav [SECONDS]
#                                       render the benchmark clip (default 60 s; not committed)
#
# Needs: fluidsynth (Debian 2.3.1-2 was used), fluid-soundfont-gm (FluidR3_GM.sf2, 3.1-5.3), python3
# (standard library only). fluidsynth renders 32-bit float stereo at 22050 Hz with gain 0.8
# (default reverb and chorus); gen.py downmixes (L+R)/2 and quantises to 16 bits itself, so no
# fluidsynth dither is involved and the output is byte-for-byte reproducible with the same fluidsynth
# and soundfont. SHA256SUMS in spec/fixtures/clips/ lets you check that.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SF2=${SF2:-/usr/share/sounds/sf2/FluidR3_GM.sf2}
RATE=22050

die() { echo "make.sh: $*" >&2; exit 1; }
command -v fluidsynth >/dev/null 2>&1 || die "fluidsynth not found (apt-get install fluidsynth)"
command -v python3 >/dev/null 2>&1 || die "python3 not found"
[ -r "$SF2" ] || die "soundfont $SF2 not found (apt-get install fluid-soundfont-gm, or set SF2=)"

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT INT TERM

# render MID OUT.wav SECONDS
render() {
    fluidsynth -ni -q -F "$TMP/render.wav" -r "$RATE" -g 0.8 -T wav -O float "$SF2" "$1" \
        >"$TMP/fluidsynth.log" 2>&1 || { cat "$TMP/fluidsynth.log" >&2; die "fluidsynth failed on $1"; }
    python3 "$HERE/gen.py" downmix "$TMP/render.wav" "$2" "$3"
}

if [ "${1:-}" = "--long" ]; then
    [ $# -ge 2 ] || die "usage: make.sh --long OUT.wav [SECONDS]"
    out=$2
    secs=${3:-60}
    python3 "$HERE/gen.py" long "$TMP/long.mid" "$secs"
    render "$TMP/long.mid" "$out" "$secs"
    exit 0
fi
[ $# -eq 0 ] || die "usage: make.sh [--long OUT.wav [SECONDS]]"

MIDI="$HERE/midi"
CLIPS="$ROOT/spec/fixtures/clips"
mkdir -p "$MIDI" "$CLIPS"
python3 "$HERE/gen.py" midi "$MIDI"
while IFS='	' read -r name secs desc; do
    render "$MIDI/$name.mid" "$CLIPS/$name.wav" "$secs"
done <"$MIDI/clips.tsv"
cp "$MIDI/clips.tsv" "$CLIPS/clips.tsv"
(cd "$CLIPS" && sha256sum *.wav >SHA256SUMS)
echo "fluidsynth: $(fluidsynth --version 2>/dev/null | head -n1)"
cat "$CLIPS/SHA256SUMS"
