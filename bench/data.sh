#!/usr/bin/env bash
# Data-binding benchmark: wtt.redis and wtt.pg against the servers' own
# benchmark clients, on the same servers, in one run.
#
#   redis:   100k SET + 100k GET, one round trip each, from a Lua script
#            vs redis-benchmark -c 1 -n 100000 -t set,get      (target >= 0.8)
#   redis:   the same pipelined by 16 vs redis-benchmark -P 16  (target >= 0.8)
#   pg:      20k primary-key SELECTs vs pgbench -S -c 1          (target >= 0.8)
#
# The script starts its own redis-server and PostgreSQL on 127.0.0.1 (random
# ports, temp dir) and stops them at the end. Last line:
#   RESULT data redis_ratio=<x> redis_pipeline_ratio=<y> pg_ratio=<z>
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HERE=$ROOT/bench/data
N_REDIS=${BENCH_REDIS_N:-100000}
N_PG=${BENCH_PG_N:-20000}
PGBIN=/usr/lib/postgresql/15/bin

log() { printf 'bench: %s\n' "$*" >&2; }
die() { printf 'bench: FAIL: %s\n' "$*" >&2; exit 1; }

TMP=
REDIS_PID=
cleanup() {
    [[ -n $REDIS_PID ]] && kill "$REDIS_PID" 2>/dev/null || true
    if [[ -n $TMP && -d $TMP/pg ]]; then
        as_pg "$PGBIN/pg_ctl" -D "$TMP/pg" -m immediate stop >/dev/null 2>&1 || true
    fi
    [[ -n $TMP ]] && rm -rf "$TMP"
}
trap cleanup EXIT

# PostgreSQL refuses to run as root: use the postgres account then.
as_pg() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "0.00" }'; }

# Combined ops/s of redis-benchmark's SET and GET rows (total ops / time).
rb_ops() {
    awk -F, '{ gsub(/"/, "") } $1 == "SET" { s = $2 } $1 == "GET" { g = $2 }
        END { if (s > 0 && g > 0) printf "%.0f", 2 / (1 / s + 1 / g); else print 0 }' "$1"
}

main() {
    cd "$ROOT"
    scripts/bootstrap >&2
    cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DWTT_BUILD_TESTS=OFF >/dev/null
    cmake --build build-release -j2 >&2
    local wtt=${WTT_BIN:-$ROOT/build-release/wtt}

    TMP=$(mktemp -d "${TMPDIR:-/tmp}/wtt-bench-data.XXXXXX")
    chmod 755 "$TMP"

    # --- servers -----------------------------------------------------------
    local rport pport
    rport=$(free_port)
    redis-server --bind 127.0.0.1 --port "$rport" --save '' --appendonly no \
        --dir "$TMP" --daemonize no >"$TMP/redis.log" 2>&1 &
    REDIS_PID=$!
    for _ in $(seq 50); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.1; done
    redis-cli -p "$rport" ping >/dev/null || die "redis-server did not start"

    pport=$(free_port)
    mkdir -p "$TMP/pg" "$TMP/pgsock"
    [[ $(id -u) -ne 0 ]] || chown postgres "$TMP/pg" "$TMP/pgsock"
    as_pg "$PGBIN/initdb" -D "$TMP/pg" -A trust -U postgres >/dev/null
    as_pg "$PGBIN/pg_ctl" -D "$TMP/pg" -l "$TMP/pg/log" -w -o \
        "-c listen_addresses=127.0.0.1 -p $pport -k $TMP/pgsock -c fsync=off" start >/dev/null
    local purl="postgresql://postgres@127.0.0.1:$pport/postgres"
    log "redis on 127.0.0.1:$rport, PostgreSQL on 127.0.0.1:$pport"

    # --- redis, one round trip per command ----------------------------------
    redis-cli -p "$rport" flushall >/dev/null
    redis-benchmark -h 127.0.0.1 -p "$rport" -c 1 -n "$N_REDIS" -t set,get --csv >"$TMP/rb1.csv"
    local rb1 w1
    rb1=$(rb_ops "$TMP/rb1.csv")
    w1=$("$wtt" run "$HERE/redis_rt.lua" "redis://127.0.0.1:$rport/0" "$N_REDIS" 1)
    log "redis-benchmark -c1:        $(tr '\n' ' ' <"$TMP/rb1.csv")"
    log "wtt.redis (1 per trip):     $w1"
    w1=${w1##*ops_rps=}

    # --- redis, pipelined by 16 ---------------------------------------------
    redis-benchmark -h 127.0.0.1 -p "$rport" -c 1 -P 16 -n "$N_REDIS" -t set,get --csv >"$TMP/rb16.csv"
    local rb16 w16
    rb16=$(rb_ops "$TMP/rb16.csv")
    w16=$("$wtt" run "$HERE/redis_rt.lua" "redis://127.0.0.1:$rport/0" "$N_REDIS" 16)
    log "redis-benchmark -c1 -P16:   $(tr '\n' ' ' <"$TMP/rb16.csv")"
    log "wtt.redis (16 per trip):    $w16"
    w16=${w16##*ops_rps=}

    # --- PostgreSQL primary-key SELECTs ---------------------------------------
    as_pg "$PGBIN/pgbench" -h 127.0.0.1 -p "$pport" -U postgres -i -s 1 -q postgres >/dev/null 2>&1
    local pgb wpg
    pgb=$(as_pg "$PGBIN/pgbench" -h 127.0.0.1 -p "$pport" -U postgres -S -c 1 -t "$N_PG" -n postgres 2>&1 |
        awk '/^tps/ { print $3; exit }')
    wpg=$("$wtt" run "$HERE/pg_select.lua" "$purl" "$N_PG" 100000)
    log "pgbench -S -c1 -t $N_PG:    tps=$pgb"
    log "wtt.pg:                     $wpg"
    wpg=${wpg##*tps=}

    echo
    printf '%-34s %12s %12s %7s\n' "workload" "peer ops/s" "wtt ops/s" "ratio"
    printf '%-34s %12s %12s %7s\n' "redis SET+GET, 1 per round trip" "$rb1" "$w1" "$(ratio "$w1" "$rb1")"
    printf '%-34s %12s %12s %7s\n' "redis SET+GET, pipelined by 16" "$rb16" "$w16" "$(ratio "$w16" "$rb16")"
    printf '%-34s %12s %12s %7s\n' "pg primary-key SELECT" "${pgb%.*}" "$wpg" "$(ratio "$wpg" "$pgb")"
    echo "peers: redis-benchmark -c 1 -n $N_REDIS -t set,get [-P 16]; pgbench -S -c 1 -t $N_PG (scale 1); targets >= 0.8"
    echo "RESULT data redis_ratio=$(ratio "$w1" "$rb1") redis_pipeline_ratio=$(ratio "$w16" "$rb16") pg_ratio=$(ratio "$wpg" "$pgb")"
}

main "$@"
