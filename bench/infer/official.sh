#!/bin/sh
# Time the OFFICIAL Basic Pitch JS implementation (tools/reference/run.js) on one clip.
#
#   bench/infer/official.sh BACKEND CLIP.wav [--no-notes]
#
# BACKEND: wasm | cpu (tfjs 3.21 backends). CLIP: mono 22050 Hz WAV (16-bit PCM or float).
# Prints one line:
#   official backend=<b> audio_s=<x> wall_s=<y> eval_s=<z> rtf=<audio/wall> post_s=<p> notes=<python|none>
# wall_s is the whole node process (startup, backend init, model load, evaluateModel, writing the
# posteriorgrams, and, by default, the official note post-processing with the python preset — the
# same work `wtt transcribe` does); eval_s is evaluateModel alone; rtf = audio_s / wall_s.
# --no-notes skips the post-processing (notes=none).
# Installs tools/reference/node_modules with `npm ci` if it is missing (messages go to stderr).
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
REF="$ROOT/tools/reference"

die() { echo "official.sh: $*" >&2; exit 1; }
[ $# -ge 2 ] && [ $# -le 3 ] || die "usage: official.sh wasm|cpu CLIP.wav [--no-notes]"
backend=$1
clip=$2
case "$backend" in wasm|cpu) ;; *) die "backend must be wasm or cpu, not '$backend'" ;; esac
[ -r "$clip" ] || die "cannot read $clip"
opt=${3:-}
notes=python
case "$opt" in
    "") set -- --preset python ;;
    --no-notes) notes=none; set -- --no-notes ;;
    *) die "unknown option '$opt'" ;;
esac

command -v node >/dev/null 2>&1 || die "node not found"
if [ ! -d "$REF/node_modules/@spotify/basic-pitch" ] || [ ! -d "$REF/node_modules/@tensorflow/tfjs-backend-wasm" ]; then
    command -v npm >/dev/null 2>&1 || die "npm not found"
    (cd "$REF" && npm ci --no-audit --no-fund >&2) || die "npm ci failed in $REF"
fi

OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT INT TERM
t0=$(date +%s.%N)
node "$REF/run.js" --backend "$backend" --in "$clip" --out "$OUT" "$@" >&2 || die "run.js failed"
t1=$(date +%s.%N)
node -e '
    const t = require(process.argv[1]);
    const wall = Number(process.argv[2]) - Number(process.argv[3]);
    console.log(`official backend=${t.backend} audio_s=${t.audio_s.toFixed(3)} wall_s=${wall.toFixed(3)} ` +
                `eval_s=${t.eval_s.toFixed(3)} rtf=${(t.audio_s / wall).toFixed(3)} ` +
                `post_s=${t.post_s.toFixed(3)} notes=${process.argv[4]}`);
' "$OUT/timing.json" "$t1" "$t0" "$notes"
