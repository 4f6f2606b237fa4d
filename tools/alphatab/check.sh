#!/bin/sh
# Runs check.js (alphaTab's importers on wtt's tab files) after installing
# tools/alphatab/node_modules from package-lock.json when it is missing.
#
#   tools/alphatab/check.sh FILE...     one JSON object per FILE (check.js)
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)

die() { echo "check.sh: $*" >&2; exit 2; }
command -v node >/dev/null 2>&1 || die "node not found (scripts/bootstrap installs nodejs)"
if [ ! -f "$HERE/node_modules/@coderline/alphatab/package.json" ]; then
    command -v npm >/dev/null 2>&1 || die "npm not found (scripts/bootstrap installs npm)"
    (cd "$HERE" && npm ci --no-audit --no-fund >&2) || die "npm ci failed in $HERE"
fi
exec node "$HERE/check.js" "$@"
