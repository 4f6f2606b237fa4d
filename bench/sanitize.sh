#!/usr/bin/env bash
# The whole suite under AddressSanitizer + UndefinedBehaviorSanitizer,
# scenario areas included (end-to-end flows, fault scenarios, the
# network-namespace hosts), which the test command's sanitizer pass leaves
# out for time (scripts/test). About 30 minutes on two cores.
#
#   bench/sanitize.sh [BUILD_DIR]     (default build-asan)
#
# Exit status: ctest's; the last line reads
#   RESULT sanitize passed=<0|1> seconds=<n>
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap --only build test >/dev/null
start=$(date +%s)
scripts/suite "${1:-build-asan}" "" -DWTT_SANITIZE=ON -DWTT_CUDA=OFF
rc=$?
echo "RESULT sanitize passed=$([ $rc -eq 0 ] && echo 1 || echo 0) seconds=$(( $(date +%s) - start ))"
exit $rc
