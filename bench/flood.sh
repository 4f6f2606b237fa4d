#!/usr/bin/env bash
# Enqueue flood at the size of docs/reliability.md Q6: 10,000 POSTs to
# /transcribe/generate/ on 100 concurrent keep-alive connections against a
# fresh PostgreSQL + redis-server + `wtt serve` (no worker: every task stays
# pending), one POST in ten a repeat with the same Idempotency-Key. Checks
# that each got 202 (or 429/503), that PostgreSQL's tasks equal the queue's
# entries one to one and that the invariants hold; reports latency and
# web's RSS before and after. The work is bench/flood/flood.lua; the
# client is spec/support/flood_client.lua (the Q6 spec runs a smaller
# count with the same client).
#
# The last line of output is always, on success:
#   RESULT flood posts=N ok=N rejected=N pg_equals_redis=yes|no rss_mb_before=X rss_mb_after=Y
# Exit 1 on any unexpected answer, a PostgreSQL/Redis mismatch or a broken
# invariant.
#
# Environment:
#   WTT_BIN            wtt binary (default build/wtt; build it first)
#   FLOOD_POSTS        POSTs in all (default 10000)
#   FLOOD_CONC         concurrent connections (default 100)
#   FLOOD_PROCS        client processes sharing them (default 4)
#   FLOOD_WEB_THREADS  WTT_THREADS of wtt serve (default 4)
#   WTT_FAULTS_KEEP=1  keep the temp dir (logs, lists, answers)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WTT_BIN=${WTT_BIN:-$ROOT/build/wtt}
if [ ! -x "$WTT_BIN" ]; then
    printf 'bench: FAIL: %s is not built (cmake --build build)\n' "$WTT_BIN" >&2
    exit 1
fi
cd "$ROOT"
exec "$WTT_BIN" run bench/flood/flood.lua
