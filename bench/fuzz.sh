#!/usr/bin/env bash
# Coverage-guided fuzzing of wtt's parsers of outside input (spec/fuzz/,
# docs/reliability.md "Fuzzing"): builds the libFuzzer targets with clang
# (build-fuzz, -DWTT_FUZZ=ON: ASan + UBSan + coverage) if needed and runs
# each for SECONDS (default 60), one after the other, one process each
# (the machine is shared), niced.
#
#   bench/fuzz.sh [SECONDS]
#
# Each target starts from its seed corpus (spec/fuzz/corpus/NAME, never
# written to) plus what earlier runs found (build-fuzz/fuzz-corpus/NAME,
# where new inputs go), with its dictionary (spec/fuzz/NAME.dict) when
# there is one. Per target it prints executions, executions per second,
# new inputs, coverage (libFuzzer's edge count) and crashes. An input
# that crashed, leaked, timed out or ran out of memory is copied into
# spec/fuzz/regress/NAME/ (which the test command replays on every run),
# with a line in spec/fuzz/regress/NAME/.notes saying when and what; fix
# the bug, then commit both.
#
# The last line of output is always, on success:
#   RESULT fuzz seconds=<per target> targets=<n> execs=<total> crashes=<total>
#
# Environment:
#   FUZZ_TARGETS   targets to run (default: all of spec/fuzz/fuzz_*.c)
#   FUZZ_BUILD     build directory (default build-fuzz)
#   FUZZ_RSS_MB    libFuzzer's -rss_limit_mb (default 2048)
#   FUZZ_TIMEOUT   libFuzzer's -timeout per input, seconds (default 10)
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
build=${FUZZ_BUILD:-build-fuzz}
rss=${FUZZ_RSS_MB:-2048}
per_input=${FUZZ_TIMEOUT:-10}

if ! command -v clang >/dev/null; then
    echo "fuzz: clang not found (scripts/bootstrap --only bench)" >&2
    exit 1
fi
if [ -n "${FUZZ_TARGETS:-}" ]; then
    read -r -a targets <<<"$FUZZ_TARGETS"
else
    targets=()
    for f in spec/fuzz/fuzz_*.c; do
        t=${f#spec/fuzz/fuzz_}
        targets+=("${t%.c}")
    done
fi

if [ ! -f "$build/CMakeCache.txt" ]; then
    CC=clang CXX=clang++ cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DWTT_CUDA=OFF -DWTT_FUZZ=ON -DWTT_BUILD_TESTS=OFF >/dev/null
fi
build_targets=()
for t in "${targets[@]}"; do build_targets+=(--target "fuzz_$t"); done
nice cmake --build "$build" -j"$(nproc 2>/dev/null || echo 2)" "${build_targets[@]}" >/dev/null

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/spec/lsan.supp:print_suppressions=0}

# Targets whose Lua states hold C memory through references LeakSanitizer
# cannot follow while the state lives (LuaJIT's tagged values): libFuzzer's
# check after each input would report it as lost. They run with
# -detect_leaks=0 and close their states at exit, where LeakSanitizer's
# final check still reports what was really lost (without naming the
# input: the run then fails with no artifact, see its log).
exit_leak_check=" http routes tab "

total_execs=0
total_crashes=0
printf '%-8s %12s %9s %6s %6s %8s\n' target execs exec/s new cov crashes
for t in "${targets[@]}"; do
    work=$build/fuzz-corpus/$t
    artifacts=$build/fuzz-artifacts/$t
    log=$build/fuzz-logs/$t.log
    mkdir -p "$work" "$artifacts" "$(dirname "$log")"
    dict=()
    if [ -f "spec/fuzz/$t.dict" ]; then
        dict=(-dict="spec/fuzz/$t.dict")
    fi
    leaks=()
    if [[ $exit_leak_check == *" $t "* ]]; then
        leaks=(-detect_leaks=0)
    fi
    before=$(ls "$artifacts" | wc -l)
    rc=0
    nice "$build/fuzz_$t" "$work" "spec/fuzz/corpus/$t" "${dict[@]}" "${leaks[@]}" \
        -max_total_time="$seconds" -timeout="$per_input" -rss_limit_mb="$rss" \
        -print_final_stats=1 -artifact_prefix="$artifacts/" >"$log" 2>&1 || rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    new=$(sed -n 's/^stat::new_units_added: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    crashes=0
    for a in "$artifacts"/*; do
        [ -f "$a" ] || continue
        name=$(basename "$a")
        dest=spec/fuzz/regress/$t/$name
        [ -f "$dest" ] && continue
        mkdir -p "spec/fuzz/regress/$t"
        cp "$a" "$dest"
        {
            printf '%s %s: found by bench/fuzz.sh (%s s); report:\n' \
                "$(date -u +%FT%TZ)" "$name" "$seconds"
            grep -m3 -E 'ERROR: |runtime error|SUMMARY' "$log" | sed 's/^/    /'
        } >>"spec/fuzz/regress/$t/.notes"
        crashes=$((crashes + 1))
    done
    if [ "$rc" -ne 0 ] && [ "$crashes" -eq 0 ] && [ "$(ls "$artifacts" | wc -l)" -eq "$before" ]; then
        echo "fuzz: $t exited $rc without an artifact; see $log" >&2
        crashes=$((crashes + 1))
    fi
    printf '%-8s %12s %9s %6s %6s %8s\n' "$t" "${execs:-?}" "${rate:-?}" \
        "${new:-?}" "${cov:-?}" "$crashes"
    [ "$crashes" -gt 0 ] && echo "         log: $log; inputs: spec/fuzz/regress/$t/"
    total_execs=$((total_execs + ${execs:-0}))
    total_crashes=$((total_crashes + crashes))
done
echo "RESULT fuzz seconds=$seconds targets=${#targets[@]} execs=$total_execs crashes=$total_crashes"
