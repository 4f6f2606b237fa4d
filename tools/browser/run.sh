#!/bin/sh
# Runs a script of this folder (page_check.js, page_bench.js) under Node
# after installing node_modules/ from package-lock.json when it is missing
# (puppeteer-core only: it never downloads a browser; Debian's chromium is
# installed by scripts/bootstrap).
#
#   tools/browser/run.sh page_check.js URL CLIP OUT_DIR
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)

die() { echo "run.sh: $*" >&2; exit 2; }
command -v node >/dev/null 2>&1 || die "node not found (scripts/bootstrap installs nodejs)"
if [ ! -f "$HERE/node_modules/puppeteer-core/package.json" ]; then
    command -v npm >/dev/null 2>&1 || die "npm not found (scripts/bootstrap installs npm)"
    (cd "$HERE" && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund >&2) \
        || die "npm ci failed in $HERE"
fi
script=$1; shift
exec node "$HERE/$script" "$@"
