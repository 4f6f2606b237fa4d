#!/usr/bin/env bash
# The soak of docs/reliability.md §10: MINUTES (default 30) of mixed load on
# a fresh PostgreSQL + redis-server + `wtt serve` + two workers, with a
# worker killed every few minutes, a route and plugin reload every minute
# and one Redis restart on its AOF, then a full audit (every task once in
# Redis and PostgreSQL, no file lost or orphaned, no 5xx but the injected,
# RSS and descriptors of each service flat). The work is
# bench/soak/soak.lua; the test command runs the 3-minute form.
#
# The last line of output is always:
#   RESULT soak minutes=M tasks=N requests=N kills=N reloads=N ... ok=yes|no
# Exit 1 when ok=no.
#
# Environment:
#   WTT_BIN              wtt binary (default build/wtt; build it first)
#   SOAK_CLIENTS         load threads (default 4: half poll, half SSE)
#   SOAK_UPLOAD_EVERY_S  seconds between one thread's uploads (default 3)
#   WTT_FAULTS_KEEP=1    keep the temp dir (logs, load answers)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WTT_BIN=${WTT_BIN:-$ROOT/build/wtt}
MINUTES=${1:-30}
if [ ! -x "$WTT_BIN" ]; then
    printf 'bench: FAIL: %s is not built (cmake --build build)\n' "$WTT_BIN" >&2
    exit 1
fi
cd "$ROOT"
exec "$WTT_BIN" run bench/soak/soak.lua "$MINUTES"
