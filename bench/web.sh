#!/usr/bin/env bash
# The web app's benchmark (issue 13): SSE fan-out and, when its script is
# there, the page.
#
# SSE fan-out (bench/web/sse.lua): a fresh PostgreSQL, redis-server,
# `wtt serve` (its subscriber thread on) and a real `wtt worker`; N
# concurrent event streams (GET /transcribe/events/{id}/, default 1,000,
# all from 127.0.0.1 as behind one reverse proxy) on one task's progress
# while the worker runs it. Checks that every client receives every event
# in order; reports the delivery latency from the Redis publish (the time
# a plain subscriber of this process reads the message) to each client's
# read (p50, p99, max), and web's RSS and open descriptors before, during
# and after.
#
# Page: bench/web/page.sh (another part of issue 13) when it exists and
# is executable; its line `page_kb=<x> ...` is passed on; else page_kb=na.
#
# The last line of output is always, on success:
#   RESULT web sse_clients=<n> sse_p99_ms=<x> rss_growth_mb=<x> page_kb=<x>
# Exit 1 when a client missed an event, saw one out of order, or the
# descriptors did not come back.
#
# Environment:
#   WTT_BIN             wtt binary (default build/wtt; build it first)
#   WEB_SSE_CLIENTS     concurrent streams (default 1000)
#   WEB_CLIP_S          length of the synthesised recording (default 60 s:
#                       about 30 windows, one progress event each)
#   WEB_THREADS         WTT_THREADS of wtt serve (default 2)
#   WEB_WORKER_THREADS  inference threads of the worker (default 1: one
#                       progress event per window, and a core left to web)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WTT_BIN=${WTT_BIN:-$ROOT/build/wtt}
if [ ! -x "$WTT_BIN" ]; then
    printf 'bench: FAIL: %s is not built (cmake --build build)\n' "$WTT_BIN" >&2
    exit 1
fi
cd "$ROOT"

out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0
"$WTT_BIN" run bench/web/sse.lua | tee "$out" || status=$?
result=$(grep '^SSE ' "$out" | tail -1 || true)
if [ -z "$result" ]; then
    printf 'bench: FAIL: the SSE benchmark gave no figures\n' >&2
    exit 1
fi

page_kb=na
if [ -x bench/web/page.sh ]; then
    page_line=$(bench/web/page.sh | tee /dev/stderr | grep -E '(^| )page_kb=' | tail -1 || true)
    kb=$(printf '%s\n' "$page_line" | sed -n 's/.*page_kb=\([^ ]*\).*/\1/p')
    [ -n "$kb" ] && page_kb=$kb
fi

clients=$(printf '%s\n' "$result" | sed -n 's/.*clients=\([^ ]*\).*/\1/p')
p99=$(printf '%s\n' "$result" | sed -n 's/.*p99_ms=\([^ ]*\).*/\1/p')
growth=$(printf '%s\n' "$result" | sed -n 's/.*rss_growth_mb=\([^ ]*\).*/\1/p')
echo "RESULT web sse_clients=$clients sse_p99_ms=$p99 rss_growth_mb=$growth page_kb=$page_kb"
exit $status
