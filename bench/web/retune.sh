#!/usr/bin/env bash
# Re-tuning without re-inference, timed in the page (docs/web.md,
# "Benchmark").
#
#   bench/web/retune.sh [SECONDS] [MOVES]
#
# A real stack (bench/web/retune.lua) transcribes a SECONDS-long recording
# (default 180) asked for by the page in headless chromium, with the
# posteriorgram kept; then the note-start slider is moved MOVES times
# (default 10) and the tuning changed MOVES times
# (tools/browser/retune_bench.js). Timings are the page's own, from the
# request to the answer on screen: the piano roll repainted with the
# re-tuned notes, the tab redrawn from them, the tab redrawn for another
# tuning. Target: each under 300 ms.
# The last line reads:
#   retune_roll_ms=<median> retune_roll_max_ms=<x> retune_tab_ms=<median> tuning_tab_ms=<median> tuning_tab_max_ms=<x> notes=<n>
set -euo pipefail
cd "$(dirname "$0")/../.."
WTT=${WTT:-build/wtt}
[ -x "$WTT" ] || { echo "bench/web/retune: build first" >&2; exit 1; }
out=$("$WTT" run bench/web/retune.lua "${1:-180}" "${2:-10}")
python3 - "$out" <<'PY'
import json, sys
d = json.loads(sys.argv[1])
for k in ("retune_roll_ms", "retune_tab_ms", "tuning_tab_ms", "retune_tab_fetch_ms", "tuning_tab_fetch_ms"):
    print(f"bench/web/retune: {k}: {d[k]['all']}", file=sys.stderr)
if d["errors"]:
    print(f"bench/web/retune: page errors: {d['errors']}", file=sys.stderr)
print(f"retune_roll_ms={d['retune_roll_ms']['median']} retune_roll_max_ms={d['retune_roll_ms']['max']} "
      f"retune_tab_ms={d['retune_tab_ms']['median']} tuning_tab_ms={d['tuning_tab_ms']['median']} "
      f"tuning_tab_max_ms={d['tuning_tab_ms']['max']} notes={d['notes']}")
PY
