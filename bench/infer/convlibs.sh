#!/usr/bin/env bash
# Basic Pitch's convolution stack in the engine's own CPU kernel, oneDNN and
# XNNPACK, side by side, against OpenBLAS's sgemm peak, all in one run
# (issue 16: "first, measure the libraries made for this"; docs/engine.md,
# "CPU libraries compared").
#
#   bench/infer/convlibs.sh [REPS]      REPS: runs per median (default 21)
#
# Needs build/wtt (the sgemm peak, bench/infer/peak.lua) and
# build/wtt_convlibs, which CMake builds when the bench group of
# scripts/packages is installed (libdnnl-dev, libxnnpack-dev,
# libpthreadpool-dev): `scripts/bootstrap --only bench`, then rebuild.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
REPS=${1:-21}

for exe in "$BUILD/wtt" "$BUILD/wtt_convlibs"; do
    if [ ! -x "$exe" ]; then
        echo "convlibs: $exe is missing (scripts/bootstrap --only bench, then" \
             "cmake --build $BUILD)" >&2
        exit 1
    fi
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "date     $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "cpu      $(lscpu | sed -n 's/^Model name: *//p') ($(nproc) cores online)"
echo "load     $(uptime | sed 's/.*load average/load average/') (before)"
# What else is using the cores (top's second sample: current, not lifetime).
top -b -n 2 -d 1 -w 200 2>/dev/null | awk '/^top -/ {n++} n == 2 && $1 ~ /^[0-9]+$/ && $9 + 0 >= 5 {
    printf "busy     %5s%% %s (pid %s)\n", $9, $12, $1; b++ }
    END { if (!b) print "busy     no other process above 5% CPU" }' | head -5 || true

# OpenBLAS's sgemm peak, with the machine's OPENBLAS_CORETYPE and without it
# (for that command only). OPENBLAS_VERBOSE=2 makes OpenBLAS name the kernel
# it chose on stderr ("Core: ...").
machine_core=${OPENBLAS_CORETYPE-}
peak() {    # LABEL THREADS ENV...
    local label=$1 t=$2 out
    shift 2
    out=$(env "$@" OPENBLAS_VERBOSE=2 "$BUILD/wtt" run bench/infer/peak.lua \
          "$t" 2>&1)
    local core gf
    core=$(sed -n 's/.*Core: *//p' <<<"$out" | head -1)
    gf=$(sed -n 's/.*gflops=\([0-9.]*\).*/\1/p' <<<"$out")
    echo "peak $label threads=$t core=${core:-?} gflops=${gf:-?}"
}
{
    for t in 1 2; do
        peak "machine(OPENBLAS_CORETYPE=${machine_core:-unset})" "$t"
        peak "true(OPENBLAS_CORETYPE unset)" "$t" -u OPENBLAS_CORETYPE
    done
} | tee "$tmp/peak"

# oneDNN's own account of what it dispatches (ONEDNN_VERBOSE=1): the ISA it
# detected and each convolution's implementation.
ONEDNN_VERBOSE=1 "$BUILD/wtt_convlibs" --reps 1 --only onednn \
    >"$tmp/dnnl" 2>&1 || true
echo "onednn   $(grep -m1 '^onednn_verbose,info,oneDNN' "$tmp/dnnl" \
                   | cut -d, -f3-)"
echo "onednn   $(grep -m1 '^onednn_verbose,info,cpu,isa' "$tmp/dnnl" \
                   | cut -d, -f4-)"
echo "onednn   $(grep -m1 '^onednn_verbose,info,cpu,runtime' "$tmp/dnnl" \
                   | cut -d, -f4-)"
echo "onednn   implementations executed: $(grep '^onednn_verbose,exec,cpu,convolution' "$tmp/dnnl" \
    | cut -d, -f5 | sort | uniq -c | awk '{printf "%s x%s ", $2, $1}')"
# Activation formats: acdb is NHWC, the engine's; anything else would need
# reorders between layers that the timing leaves out.
echo "onednn   activation formats (src dst): $(grep '^onednn_verbose,exec,cpu,convolution' "$tmp/dnnl" \
    | cut -d, -f7 | awk '{print $1, $NF}' | sed 's/_f32::blocked:/=/g; s/:f0//g' \
    | sort | uniq -c | awk '{printf "%s %s x%s; ", $2, $3, $1}')"

# The measurement itself.
"$BUILD/wtt_convlibs" --reps "$REPS" >"$tmp/run"
echo "load     $(uptime | sed 's/.*load average/load average/') (after)"

# XNNPACK has no verbose mode and Debian strips its kernels' names: the
# program samples where XNNPACK's threads run and the hottest instructions,
# disassembled here, say which vector registers (so which ISA) its
# microkernels use: zmm = AVX-512, ymm = AVX/AVX2, xmm only = SSE.
lib=$(sed -n 's/^xnnpack_samples .* lib=\([^ ]*\).*/\1/p' "$tmp/run" | head -1)
if [ -n "$lib" ] && [ "$lib" != "-" ] && command -v objdump >/dev/null; then
    regs=""
    while read -r off n; do
        ins=$(objdump -d --no-show-raw-insn --start-address="$off" \
              --stop-address=$((off + 8)) "$lib" 2>/dev/null \
              | awk -F'\t' '/^ *[0-9a-f]+:/ {print $2; exit}')
        echo "xnnpack  hot 0x${off#0x} ($n samples): $ins"
        regs="$regs $ins"
    done < <(awk '/^xnnpack_pc/ {
                 for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
                 print f["off"], f["samples"] }' "$tmp/run" | head -4)
    isa="SSE (xmm only)"
    if grep -q zmm <<<"$regs"; then isa="AVX-512 (zmm)";
    elif grep -q ymm <<<"$regs"; then isa="AVX/AVX2 (ymm)"; fi
    echo "xnnpack  ISA of the hottest code: $isa"
fi
grep '^xnnpack_samples' "$tmp/run" | sed 's/^/xnnpack  /'

# Tables: per layer (GFLOP/s, median), then the stack against the peak.
awk -v peakf="$tmp/peak" '
function kv(line,   i, p) {
    delete f
    n = split(line, p, " ")
    for (i = 2; i <= n; i++) { split(p[i], q, "="); f[q[1]] = q[2] }
}
BEGIN {
    while ((getline line < peakf) > 0) {
        kv(line)
        if (line ~ /true/ && f["threads"] == 1) peak1 = f["gflops"]
        if (line ~ /true/ && f["threads"] == 2) peak2 = f["gflops"]
        if (line ~ /machine/ && f["threads"] == 1) mpeak1 = f["gflops"]
    }
    ncol = split("engine/1t xnnpack/1t onednn/1t engine/2win xnnpack/2t-intra xnnpack/2win onednn/2t-intra onednn/2win", cols, " ")
}
/^shape / { kv($0); order[++nl] = f["name"]; gflop[f["name"]] = f["gflop"] }
/^stack / { kv($0); total_gf = f["gflop_per_window"] }
/^layer / { kv($0); g[f["impl"] "/" f["mode"], f["name"]] = f["gflops"]; ms[f["impl"] "/" f["mode"], f["name"]] = f["ms"] }
/^total / { kv($0); tot[f["impl"] "/" f["mode"]] = f["gflops"]; thr[f["impl"] "/" f["mode"]] = f["threads"]; st[f["impl"] "/" f["mode"]] = f["status"] }
/^diff_stack / { kv($0); dmax[f["impl"] "/" f["mode"]] = f["max_abs"] }
/^diff / { kv($0); d[f["impl"], f["name"]] = f["max_abs"] }
END {
    printf "\nper layer, GFLOP/s (median of runs; 2win: two windows in parallel, one thread each; 2t-intra: two threads inside each conv)\n"
    short["engine"] = "eng"; short["xnnpack"] = "xnn"; short["onednn"] = "dnn"
    printf "%-14s %6s %7s", "layer", "GFLOP", "eng 1t"
    for (c = 1; c <= ncol; c++) { split(cols[c], cc, "/"); printf " %8s", short[cc[1]] }
    printf " %9s %9s\n", "xnn diff", "dnn diff"
    printf "%-14s %6s %7s", "", "", "ms"
    for (c = 1; c <= ncol; c++) { split(cols[c], cc, "/"); printf " %8s", cc[2] }
    printf "\n"
    for (i = 1; i <= nl; i++) {
        l = order[i]
        printf "%-14s %6.4f %7.3f", l, gflop[l], ms["engine/1t", l]
        for (c = 1; c <= ncol; c++) printf " %8s", g[cols[c], l]
        printf " %9s %9s\n", d["xnnpack", l], d["onednn", l]
        # the fastest one-thread implementation of this layer
        best = ""; bt = 0
        split("engine/1t xnnpack/1t onednn/1t", one, " ")
        for (k = 1; k <= 3; k++) if (ms[one[k], l] != "" && (best == "" || ms[one[k], l] + 0 < bt)) { best = one[k]; bt = ms[one[k], l] }
        bestms += bt; winner[best]++; wlist = wlist sprintf("%s:%s ", l, substr(best, 1, index(best, "/") - 1))
    }
    printf "\nconv stack, one window (%.4f GFLOP), against OpenBLAS sgemm: true peak %s GFLOP/s on 1 thread, %s on 2 (machine CORETYPE: %s on 1)\n", total_gf, peak1, peak2, mpeak1
    printf "%-9s %-9s %7s %8s %11s %13s %12s\n", "impl", "mode", "threads", "GFLOP/s", "%true_peak1", "%true_peak(N)", "max_abs_diff"
    for (c = 1; c <= ncol; c++) {
        k = cols[c]; split(k, kk, "/")
        if (tot[k] == "") { printf "%-9s %-9s %7s %8s\n", kk[1], kk[2], "-", (st[k] != "" ? st[k] : "not run"); continue }
        pk = thr[k] == 2 ? peak2 : peak1
        printf "%-9s %-9s %7d %8.1f %10.1f%% %12.1f%% %12s\n", kk[1], kk[2], thr[k], tot[k], 100 * tot[k] / peak1, 100 * tot[k] / pk, dmax[k]
    }
    if (bestms > 0)
        printf "%-9s %-9s %7d %8.1f %10.1f%%  (each layer in its fastest one-thread implementation)\n", "best-of", "1t", 1, total_gf / bestms * 1e3, 100 * total_gf / bestms * 1e3 / peak1
    printf "fastest per layer (1t): %s\n", wlist
    w1 = "engine"; for (k in tot) if (k ~ /\/1t$/ && tot[k] + 0 > tot[w1 "/1t"] + 0) { split(k, kk, "/"); w1 = kk[1] }
    w2 = ""; w2g = 0
    for (k in tot) if (thr[k] == 2 && tot[k] + 0 > w2g) { w2 = k; w2g = tot[k] + 0 }
    printf "RESULT convlibs engine_1t=%s onednn_1t=%s xnnpack_1t=%s engine_2t=%s onednn_2t=%s xnnpack_2t=%s best_of_1t=%.1f peak_true_1t=%s peak_true_2t=%s peak_machine_1t=%s pct_true_peak=%.1f winner_1t=%s winner_2t=%s\n", \
        tot["engine/1t"], tot["onednn/1t"], tot["xnnpack/1t"], tot["engine/2win"], \
        (tot["onednn/2win"] + 0 > tot["onednn/2t-intra"] + 0 ? tot["onednn/2win"] : tot["onednn/2t-intra"]), \
        (tot["xnnpack/2win"] + 0 > tot["xnnpack/2t-intra"] + 0 ? tot["xnnpack/2win"] : tot["xnnpack/2t-intra"]), \
        (bestms > 0 ? total_gf / bestms * 1e3 : 0), peak1, peak2, mpeak1, 100 * tot["engine/1t"] / peak1, w1, w2
}' "$tmp/run"
