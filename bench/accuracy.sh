#!/usr/bin/env bash
# Transcription accuracy on the development set (docs/accuracy.md).
#
#   bench/accuracy.sh [--guitarset DIR]
#
# 1. Makes the development set (tools/devset/make.sh) in $WTT_DEVSET (default build/devset), or
#    reuses it when its STAMP (the generator's sources, the GuitarSet CSVs, the fluidsynth version
#    and soundfonts) is unchanged. --guitarset DIR adds the GuitarSet excerpts (CSV files
#    start_s,end_s,pitch_midi,string,fret).
# 2. For each mode of $MODES (default "official guitar"): transcribes every clip with one
#    `wtt transcribe` call (official: the default decoding; any other mode NAME: `--mode NAME`; a
#    mode this binary does not offer is reported and skipped), timing it, and scores the notes
#    (tools/score_notes.lua) into $ACCURACY_OUT/<mode>.{json,tsv} (default build/accuracy).
# 3. Prints, for the test half and then the tuning half, each clip's onset F1 per mode and the
#    delta of each mode against official, the means per kind, onset-offset F1 and bend accuracy,
#    and the error kinds of each mode (bench/accuracy/compare.lua).
#
# The last line reads
#   RESULT accuracy official_f1=<x> guitar_f1=<x> worst_clip_delta=<x> cost_pct=<x>
# official_f1 / guitar_f1: mean onset F1 over the test half's clips; worst_clip_delta: the lowest
# (guitar - official) onset F1 of a test clip; cost_pct: what the guitar mode's decoding costs
# beyond official's (bench/accuracy/decode_cost.lua: both decode the same saved posteriorgrams,
# best of 5), in percent of official's transcription CPU time (user + system, all clips) in this
# run. A mode that did not run prints na.
set -euo pipefail
cd "$(dirname "$0")/.."
WTT=${WTT:-build/wtt}
MODES=${MODES:-official guitar}
DEVSET=${WTT_DEVSET:-build/devset}
OUT=${ACCURACY_OUT:-build/accuracy}
GS=
while [ $# -gt 0 ]; do
    case "$1" in
        --guitarset) [ $# -ge 2 ] || { echo "usage: bench/accuracy.sh [--guitarset DIR]" >&2; exit 2; }
                     GS=$2; shift 2 ;;
        *) echo "usage: bench/accuracy.sh [--guitarset DIR]" >&2; exit 2 ;;
    esac
done
log() { echo "bench/accuracy: $*" >&2; }
[ -x "$WTT" ] || { log "no $WTT: build first (cmake --build build)"; exit 1; }

# 1. the set, cached
stamp() {
    {
        sha256sum tools/devset/devset.py tools/devset/make.sh tools/clips/gen.py
        if [ -n "$GS" ]; then (cd "$GS" && sha256sum ./*.csv); else echo "no guitarset"; fi
        fluidsynth --version 2>/dev/null | head -n1
        ls -lL /usr/share/sounds/sf2/FluidR3_GM.sf2 /usr/share/sounds/sf3/MuseScore_General_Lite.sf3 2>&1 |
            awk '{print $5, $NF}'
    } | sha256sum | cut -d' ' -f1
}
want=$(stamp)
if [ -f "$DEVSET/STAMP" ] && [ "$(cat "$DEVSET/STAMP")" = "$want" ] && [ -f "$DEVSET/manifest.tsv" ]; then
    log "reusing the set in $DEVSET"
else
    log "making the set in $DEVSET (a few minutes, once)"
    rm -f "$DEVSET/STAMP"
    nice -n 10 tools/devset/make.sh "$DEVSET" ${GS:+--guitarset "$GS"} --jobs 2 >&2
    echo "$want" >"$DEVSET/STAMP"
fi
nclips=$(($(wc -l <"$DEVSET/manifest.tsv") - 1))
secs=$(awk -F'\t' 'NR > 1 { s += $10 } END { printf "%.0f", s }' "$DEVSET/manifest.tsv")

# 2. each mode
mkdir -p "$OUT"
has_mode_flag=0
"$WTT" transcribe --help 2>&1 | grep -qE -- '--mode\b' && has_mode_flag=1
ran=()
for mode in $MODES; do
    rm -f "$OUT/$mode.json" "$OUT/$mode.tsv" "$OUT/$mode.time"
    if [ "$mode" = official ]; then
        flags=()
    elif [ "$has_mode_flag" = 1 ]; then
        flags=(--mode "$mode")
    else
        log "mode $mode: this wtt has no --mode, skipped"
        continue
    fi
    pred="$OUT/pred/$mode"
    rm -rf "$pred"
    mkdir -p "$pred"
    log "mode $mode: transcribing $nclips clips (${secs} s of audio)"
    TIMEFORMAT='%R %U %S'
    { time "$WTT" transcribe "$DEVSET"/clips/*.wav --notes-json -o "$pred" --quiet "${flags[@]}" \
        2>"$OUT/$mode.log" ; } 2>"$OUT/$mode.time" || { cat "$OUT/$mode.log" >&2; log "mode $mode failed"; exit 1; }
    "$WTT" run tools/score_notes.lua --set "$DEVSET" "$pred" --json "$OUT/$mode.json" \
        --tsv "$OUT/$mode.tsv" --quiet
    ran+=("$mode")
done

# 2b. the decoding's own cost: the posteriorgrams once, then each mode decodes them all
rm -f "$OUT/decode_cost.txt"
if [ "${#ran[@]}" -gt 1 ]; then
    rm -rf "$OUT/post"
    mkdir -p "$OUT/post"
    "$WTT" transcribe "$DEVSET"/clips/*.wav --save-posteriors -o "$OUT/post" --quiet >/dev/null
    "$WTT" run bench/accuracy/decode_cost.lua "$OUT/post" "$OUT/decode_cost.txt" "${ran[@]}" >&2
fi

# 3. the report
"$WTT" run bench/accuracy/compare.lua "$DEVSET" "$OUT" $MODES
