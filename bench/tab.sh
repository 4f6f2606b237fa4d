#!/usr/bin/env bash
# Tablature benchmark (docs/tab.md, "Benchmark").
#
#   bench/tab.sh [--guitarset DIR]
#
# 1. Transcribes a 10-minute synthesised clip (tools/clips/make.sh --long)
#    and times the whole tab stage on its notes: fingering, techniques,
#    rhythm, measure grid and all five formats (bench/tab/run.lua): the
#    first run (cold JIT, one `wtt tab` call) and the median warm run, and
#    the growth of peak RSS over the stage.
# 2. Side by side with the naive baseline (every note at its lowest fret):
#    the chords each makes unplayable on that transcription, and the share
#    of notes each puts on the annotated string and fret of the known
#    passages (spec/support/tab_passages.lua) (bench/tab/compare.lua).
# 3. With --guitarset DIR (GuitarSet-style CSVs start_s,end_s,pitch_midi,
#    string,fret and a scorer DIR/score_tab.py taking GT_DIR PRED_DIR), the
#    agreement of both with the players' fingerings, per excerpt.
#
# Targets: under 100 ms and 50 MB for the 10-minute transcription.
# The last line reads:
#   RESULT tab ms_10min=<x> mb_10min=<x> unplayable_naive=<n> unplayable_wtt=<n>
set -euo pipefail
cd "$(dirname "$0")/.."
HERE=bench/tab
WTT=${WTT:-build/wtt}
SECS=${BENCH_TAB_SECONDS:-600}
GS=
while [ $# -gt 0 ]; do
    case "$1" in
        --guitarset) GS=$2; shift 2 ;;
        *) echo "usage: bench/tab.sh [--guitarset DIR]" >&2; exit 2 ;;
    esac
done
log() { echo "bench/tab: $*" >&2; }
[ -x "$WTT" ] || { log "no $WTT: build first (cmake --build build)"; exit 1; }

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

log "making a ${SECS} s clip and transcribing it"
tools/clips/make.sh --long "$TMP/long.wav" "$SECS" >&2
"$WTT" transcribe "$TMP/long.wav" --notes-json -o "$TMP" --quiet >&2
NOTES=$TMP/long.notes.json

log "the tab stage on its notes"
r=$("$WTT" run "$HERE/run.lua" "$NOTES" 15)
echo "$r"
c=$("$WTT" run "$HERE/compare.lua" "$NOTES" spec/support/tab_passages.lua \
    ${GS:+"$TMP/gs" "$GS"})
echo "$c"

field() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<<"$2"; }
if [ -n "$GS" ] && [ -f "$GS/score_tab.py" ]; then
    for kind in wtt naive; do
        echo "GuitarSet agreement, $kind:"
        /usr/bin/python3 "$GS/score_tab.py" "$GS" "$TMP/gs/$kind" | sed 's/^/  /'
    done
fi

echo
printf '%-44s %12s %12s\n' "" "wtt" "naive"
printf '%-44s %12s %12s\n' "unplayable chords, ${SECS} s transcription" \
    "$(field unplayable_wtt "$c")" "$(field unplayable_naive "$c")"
printf '%-44s %12s %12s\n' "agreement with the annotated passages" \
    "$(field agreement_wtt "$c")" "$(field agreement_naive "$c")"
printf '%-44s %12s\n' "tab stage, first run (ms)" "$(field first_ms "$r")"
printf '%-44s %12s\n' "tab stage, warm median (ms)" "$(field warm_ms "$r")"
printf '%-44s %12s\n' "peak RSS growth (MB)" "$(field mb "$r")"
echo "RESULT tab ms_10min=$(field first_ms "$r") mb_10min=$(field mb "$r")" \
     "unplayable_naive=$(field unplayable_naive "$c") unplayable_wtt=$(field unplayable_wtt "$c")"
