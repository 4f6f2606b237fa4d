#!/bin/sh
# The accuracy development set (docs/accuracy.md): synthesised guitar and bass clips with exact
# ground truth.
#
#   tools/devset/make.sh OUTDIR [--guitarset DIR] [--jobs N]
#
# writes
#   OUTDIR/clips/<clip>.wav          22050 Hz mono 16-bit PCM
#   OUTDIR/clips/<clip>.truth.json   the true notes: [{start_s, end_s, pitch_midi, bends?}]
#   OUTDIR/manifest.tsv              clip, program, program_name, kind, tempo, reverb, noise, split,
#                                    soundfont, seconds, notes, bent, desc
#   OUTDIR/midi/<clip>.mid           what was rendered
#   OUTDIR/SHA256SUMS                of the WAVs and truths, to check that a second run is identical
#
# --guitarset DIR adds the GuitarSet excerpts (CSV files start_s,end_s,pitch_midi,string,fret in
# DIR). --jobs N renders N clips at once (default 1).
#
# Needs fluidsynth (Debian 2.3.1 was used), fluid-soundfont-gm (FluidR3_GM.sf2),
# musescore-general-soundfont-small (MuseScore_General_Lite.sf3) and python3 (standard library).
# fluidsynth renders 32-bit float stereo at 22050 Hz, gain 0.5, chorus off, reverb off or on with
# the clip's settings; tools/devset/devset.py downmixes, normalises, adds the noise and writes
# 16-bit PCM itself, so the output depends only on fluidsynth, the soundfonts and the sources.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
RATE=22050

die() { echo "devset/make.sh: $*" >&2; exit 1; }
usage() { die "usage: make.sh OUTDIR [--guitarset DIR] [--jobs N]"; }

[ $# -ge 1 ] || usage
OUT=$1; shift
GS=
JOBS=1
while [ $# -gt 0 ]; do
    case "$1" in
        --guitarset) [ $# -ge 2 ] || usage; GS=$2; shift 2 ;;
        --jobs) [ $# -ge 2 ] || usage; JOBS=$2; shift 2 ;;
        *) usage ;;
    esac
done
command -v fluidsynth >/dev/null 2>&1 || die "fluidsynth not found (apt-get install fluidsynth)"
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
[ -z "$GS" ] || [ -d "$GS" ] || die "no GuitarSet directory $GS"

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
rm -rf "$OUT/clips" "$OUT/midi"
if [ -n "$GS" ]; then
    $PY "$HERE/devset.py" plan "$OUT" --guitarset "$GS"
else
    $PY "$HERE/devset.py" plan "$OUT"
fi

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT INT TERM

# render CLIP SF2 REVERB SETTINGS SECONDS NOISE
render() {
    clip=$1; sf=$2; reverb=$3; settings=$4; secs=$5; noise=$6
    set -- -ni -q -F "$TMP/$clip.raw.wav" -r "$RATE" -g 0.5 -T wav -O float -C 0
    if [ "$reverb" = dry ]; then
        set -- "$@" -R 0
    else
        set -- "$@" -R 1
        for s in $settings; do set -- "$@" -o "$s"; done
    fi
    fluidsynth "$@" "$sf" "$OUT/midi/$clip.mid" >"$TMP/$clip.log" 2>&1 ||
        { cat "$TMP/$clip.log" >&2; die "fluidsynth failed on $clip"; }
    [ -s "$TMP/$clip.raw.wav" ] || { cat "$TMP/$clip.log" >&2; die "fluidsynth wrote nothing for $clip"; }
    $PY "$HERE/devset.py" finish "$TMP/$clip.raw.wav" "$OUT/clips/$clip.wav" "$secs" "$noise" "$clip"
    rm -f "$TMP/$clip.raw.wav" "$TMP/$clip.log"
}

n=0
while IFS='	' read -r clip sf reverb settings secs noise; do
    render "$clip" "$sf" "$reverb" "$settings" "$secs" "$noise" &
    n=$((n + 1))
    if [ "$n" -ge "$JOBS" ]; then
        wait
        n=0
    fi
done <"$OUT/render.tsv"
wait
missing=0
while IFS='	' read -r clip rest; do
    [ -s "$OUT/clips/$clip.wav" ] || { echo "devset/make.sh: $clip was not rendered" >&2; missing=1; }
done <"$OUT/render.tsv"
[ "$missing" -eq 0 ] || die "some clips failed"

(cd "$OUT/clips" && sha256sum *.wav *.truth.json) >"$OUT/SHA256SUMS"
echo "devset: $(($(wc -l <"$OUT/manifest.tsv") - 1)) clips in $OUT ($(fluidsynth --version 2>/dev/null | head -n1))"
