#!/usr/bin/env bash
# The web page's first view (docs/web.md, "Benchmark").
#
#   bench/web/page.sh [RUNS]
#
# Starts `wtt serve` with the repository's routes (the first view needs no
# database), then opens / in headless Debian chromium RUNS times (default
# 5), each with an empty cache (tools/browser/page_bench.js): the bytes
# transferred until the network is quiet after alphaTab's module has loaded
# (the page loads it once it is usable), the soundfont excluded; the time
# to first contentful paint; the time until the page is interactive (its
# "wtt:interactive" mark: the configuration read, every control wired).
# Medians. A tab's first drawing adds the music font (Bravura.woff2, printed
# below; it is already compressed).
#
# Target: page_kb under 1536 (1.5 MB) including alphaTab.
# The last line reads:
#   page_kb=<x> first_render_ms=<x> interactive_ms=<x>
set -euo pipefail
cd "$(dirname "$0")/../.."
WTT=${WTT:-build/wtt}
RUNS=${1:-5}
log() { echo "bench/web/page: $*" >&2; }
[ -x "$WTT" ] || { log "no $WTT: build first (cmake --build build)"; exit 1; }
command -v "${CHROMIUM:-/usr/bin/chromium}" >/dev/null || { log "no chromium (scripts/bootstrap installs it)"; exit 1; }
if [ ! -f tools/alphatab/node_modules/@coderline/alphatab/package.json ]; then
    (cd tools/alphatab && npm ci --no-audit --no-fund >&2)
fi

TMP=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
WTT_LISTEN=127.0.0.1:$PORT WTT_ACCESS_LOG=off WTT_ROUTES_DIR=$PWD/routes \
    "$WTT" serve >"$TMP/serve.log" 2>&1 &
SERVE=$!
trap 'kill $SERVE 2>/dev/null; wait $SERVE 2>/dev/null; rm -rf "$TMP"' EXIT
for _ in $(seq 100); do
    curl -fsS "http://127.0.0.1:$PORT/livez" >/dev/null 2>&1 && break
    sleep 0.1
done

tools/browser/run.sh page_bench.js "http://127.0.0.1:$PORT/" "$RUNS" >"$TMP/out.json"
python3 - "$TMP/out.json" tools/alphatab/node_modules/@coderline/alphatab/dist/font/Bravura.woff2 <<'PY'
import json, os, sys
d = json.load(open(sys.argv[1]))
r = d["runs"][0]
for path, n in sorted(r["files"].items(), key=lambda x: -x[1]):
    print(f"bench/web/page: {n/1024:8.1f} KB  {path}", file=sys.stderr)
print(f"bench/web/page: runs={len(d['runs'])} alphatab_loaded_ms={d['alphatab_ms']:.0f} "
      f"soundfont_excluded_kb={r['soundfont_bytes']/1024:.1f} "
      f"font_on_first_tab_kb={os.path.getsize(sys.argv[2])/1024:.1f}", file=sys.stderr)
print(f"page_kb={d['page_kb']:.1f} first_render_ms={d['first_render_ms']:.0f} "
      f"interactive_ms={d['interactive_ms']:.0f}")
PY
