#!/usr/bin/env bash
# The service's end-to-end and fault specs (spec/09-e2e, spec/10-faults)
# against a real 3-master, 3-replica Redis Cluster on loopback instead of
# one redis-server: WTT_SPEC_REDIS=cluster (spec/support/spec_redis.lua)
# makes every stack of spec/support/real_stack.lua and
# spec/support/faults.lua start a cluster, give every process its
# ?cluster=1 URL and a hash-tagged key prefix; the cases that need the one
# server itself (kill it, TLS on it, a TCP gate in front of its port) say
# "skipped, because ... (WTT_SPEC_REDIS=cluster)". Not part of the test
# command (time): about 20 minutes on two cores.
#
#   bench/cluster_suite.sh [SPEC_FILE_OR_DIR...]   (default: both areas)
#   WTT_BUILD=build-asan bench/cluster_suite.sh    (default build)
#
# Each spec file runs on its own (`wtt spec FILE`); its output is kept in
# a temp dir, printed. One line per file, then
#   RESULT cluster_suite files=<n> passed=<n> pending=<n> failed=<n> seconds=<n>
# Exit status 1 when any case failed or errored, or a file gave no summary.
set -uo pipefail
cd "$(dirname "$0")/.."
build=${WTT_BUILD:-build}
wtt=$build/wtt
if [ ! -x "$wtt" ]; then
    echo "cluster_suite: $wtt not built (cmake --build $build)" >&2
    exit 1
fi
[ $# -gt 0 ] || set -- spec/09-e2e spec/10-faults
files=()
for a in "$@"; do
    if [ -d "$a" ]; then
        while IFS= read -r f; do files+=("$f"); done \
            < <(find "$a" -name '*_spec.lua' | sort)
    else
        files+=("$a")
    fi
done
logs=$(mktemp -d "${TMPDIR:-/tmp}/wtt-cluster-suite-XXXXXX")
echo "cluster_suite: ${#files[@]} files, logs in $logs"
start=$(date +%s)
tp=0 tn=0 tf=0 bad=0
for f in "${files[@]}"; do
    log=$logs/$(basename "$f" .lua).log
    t0=$(date +%s)
    WTT_SPEC_REDIS=cluster "$wtt" spec "$f" >"$log" 2>&1
    rc=$?
    # busted's summary: "3 successes / 0 failures / 1 error / 2 pending : 9.1 seconds"
    sum=$(sed 's/\x1b\[[0-9;]*m//g' "$log" \
          | grep -E '^[0-9]+ success(es)? / [0-9]+ failures? / [0-9]+ errors? / [0-9]+ pending' \
          | tail -1)
    if [ -z "$sum" ]; then
        p=0 n=0 x=1
        note=" (no summary; exit $rc)"
    else
        read -r p n x <<<"$(echo "$sum" | awk -F' / ' '{
            split($1, a, " "); split($2, b, " "); split($3, c, " ");
            split($4, d, " "); print a[1], d[1], b[1] + c[1] }')"
        note=""
        if [ "$rc" -ne 0 ] && [ "$x" -eq 0 ]; then
            x=1 note=" (exit $rc)"
        fi
    fi
    echo "$f passed=$p pending=$n failed=$x seconds=$(( $(date +%s) - t0 ))$note"
    # Why each pending one was skipped.
    sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -o 'skipped, because .*(WTT_SPEC_REDIS=cluster)' \
        | sort -u | sed 's/^/    /'
    if [ "$x" -ne 0 ]; then
        bad=1
        tail -40 "$log" | sed 's/^/    | /'
    fi
    tp=$((tp + p)) tn=$((tn + n)) tf=$((tf + x))
done
echo "RESULT cluster_suite files=${#files[@]} passed=$tp pending=$tn failed=$tf seconds=$(( $(date +%s) - start ))"
exit $bad
