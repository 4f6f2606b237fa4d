#!/bin/sh
# Golden files for wtt's engine tests, from the official Basic Pitch JS implementation.
#
#   tools/reference/make-goldens.sh             run run.js (tfjs CPU backend: the reference) on every
#                                               spec/fixtures/clips/*.wav and write
#                                               spec/fixtures/golden/<clip>/{frames,onsets,contours}.npy,
#                                               notes-python.json, notes-js.json
#   tools/reference/make-goldens.sh --compare-wasm
#                                               run the WASM backend on every clip into a temporary
#                                               directory and compare it with the committed goldens
#                                               (compare.js); writes nothing in the tree
#
# Installs tools/reference/node_modules (npm ci, from package-lock.json) if it is missing.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CLIPS="$ROOT/spec/fixtures/clips"
GOLDEN="$ROOT/spec/fixtures/golden"

die() { echo "make-goldens.sh: $*" >&2; exit 1; }
command -v node >/dev/null 2>&1 || die "node not found"
if [ ! -d "$HERE/node_modules/@spotify/basic-pitch" ] || [ ! -d "$HERE/node_modules/@tensorflow/tfjs-backend-wasm" ]; then
    (cd "$HERE" && npm ci --no-audit --no-fund >&2) || die "npm ci failed in $HERE"
fi
(cd "$ROOT/models/basic-pitch" && sha256sum -c --quiet SHA256SUMS) || die "models/basic-pitch does not match its SHA256SUMS"

mode=${1:-}
case "$mode" in
    "") ;;
    --compare-wasm) ;;
    *) die "usage: make-goldens.sh [--compare-wasm]" ;;
esac

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT INT TERM
status=0
for wav in "$CLIPS"/*.wav; do
    name=$(basename "$wav" .wav)
    if [ "$mode" = "--compare-wasm" ]; then
        node "$HERE/run.js" --backend wasm --in "$wav" --out "$TMP/$name" --preset both >/dev/null
        printf '%s: ' "$name"
        node "$HERE/compare.js" "$GOLDEN/$name" "$TMP/$name" --tol 1e-4 | tail -n 1 || status=1
    else
        out="$GOLDEN/$name"
        rm -rf "$out"
        node "$HERE/run.js" --backend cpu --in "$wav" --out "$out" --preset both >/dev/null
        node -e '
            const t = require(process.argv[1]);
            const n = (p) => JSON.parse(require("fs").readFileSync(process.argv[2] + "/notes-" + p + ".json")).n_notes;
            console.log(`${process.argv[3]}: audio ${t.audio_s.toFixed(2)} s, ${t.n_frames} frames, ` +
                        `eval ${t.eval_s.toFixed(2)} s, notes python=${n("python")} js=${n("js")}`);
        ' "$out/timing.json" "$out" "$name"
        rm -f "$out/timing.json"   # machine-dependent; not part of the goldens
    fi
done
exit $status
