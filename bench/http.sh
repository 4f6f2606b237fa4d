#!/usr/bin/env bash
# HTTP benchmark: wtt vs. nginx + lua serving the same ~100-byte JSON body.
#
# One run: bootstrap deps, build wtt (Release) if needed, start nginx+lua and
# `wtt serve` on two free 127.0.0.1 ports with the same number of workers,
# check they send byte-identical bodies, then (sequentially, never at once)
# warm up and measure each with wrk, then measure wtt again while it is
# reloaded 10 times (SIGHUP and POST /_admin/reload alternately, with the
# route file changing in between) and count the failed requests.
#
# The last line of output is always, on success:
#   RESULT http ratio=<wtt/nginx rps> non2xx_during_reload=<n>
# where n = non-2xx responses + socket errors seen by wrk during the reloads.
#
# Reference figures (from the issue; same kind of box, loopback, wrk -c64):
#   nginx + lua (content_by_lua)   ~110k req/s with 1 worker, ~144k with 2
#   bare libmicrohttpd hello in C  ~149k req/s
#   Django + gunicorn              ~5k req/s
#   target: wtt >= 0.8x nginx + lua
#
# Environment:
#   WTT_BIN         wtt binary to use (default build-release/wtt, (re)built first)
#   BENCH_WORKERS   workers for both servers (default: nproc)
#   BENCH_DURATION  seconds per measured wrk run (default 10)
#   BENCH_CONNS     wrk connections (default 64)
#   BENCH_THREADS   wrk threads (default 2)
#   BENCH_WARMUP    warm-up seconds before each measured run (default 2)
#   BENCH_RELOADS   reloads during the reload run (default 10)
#   BENCH_ONLY      "nginx": measure only the nginx peer (checks the peer's
#                   setup; prints no RESULT line)
#   BENCH_KEEP_TMP  1: keep the temp dir (configs, logs, wrk output)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HERE=$ROOT/bench/http

WORKERS=${BENCH_WORKERS:-$(nproc)}
DURATION=${BENCH_DURATION:-10}
DURATION=${DURATION%s}          # accept "10s" as well as "10"
CONNS=${BENCH_CONNS:-64}
THREADS=${BENCH_THREADS:-2}
WARMUP=${BENCH_WARMUP:-2}
WARMUP=${WARMUP%s}
RELOADS=${BENCH_RELOADS:-10}
ONLY=${BENCH_ONLY:-}
NGINX_MODULES=/usr/lib/nginx/modules   # Debian's libnginx-mod-http-{ndk,lua}

TMP=
NGINX_PID=
WTT_PID=
WRK_PID=

log() { printf 'bench: %s\n' "$*" >&2; }
warn() { printf 'bench: WARNING: %s\n' "$*" >&2; }
die() {
    printf 'bench: FAIL: %s\n' "$*" >&2
    exit 1
}

# Prints the last lines of a server log (to make a startup failure readable).
show_log() {
    if [[ -s $1 ]]; then
        printf -- '--- last lines of %s ---\n' "$1" >&2
        tail -n 30 "$1" >&2
        printf -- '---\n' >&2
    fi
}

is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }

check_params() {
    local v
    for v in WORKERS DURATION CONNS THREADS WARMUP RELOADS; do
        if ! is_uint "${!v}" || ((${!v} == 0)); then
            die "BENCH_$v must be a positive integer (got '${!v}')"
        fi
    done
    case $ONLY in "" | nginx) ;; *) die "BENCH_ONLY must be empty or 'nginx' (got '$ONLY')" ;; esac
}

# ---------------------------------------------------------------------------
# Process lifecycle
# ---------------------------------------------------------------------------

# Stops one process we started: TERM, up to 5 s grace, then KILL. Silent, so
# that nothing is printed after the RESULT line when the EXIT trap runs.
stop_pid() {
    local pid=$1 i
    [[ -n $pid ]] || return 0
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    set +e
    stop_pid "$WRK_PID"
    stop_pid "$WTT_PID"
    stop_pid "$NGINX_PID"
    if [[ -n $TMP && -d $TMP ]]; then
        [[ ${BENCH_KEEP_TMP:-0} == 1 ]] || rm -rf "$TMP"
    fi
    exit "$rc"
}

# Polls until URL answers 200 (at most TIMEOUT s); fails early if the server
# process died, showing its log.
wait_http_200() {
    local url=$1 pid=$2 name=$3 timeout=$4 logf=$5 i code
    for ((i = 0; i < timeout * 10; i++)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            show_log "$logf"
            die "$name exited during startup"
        fi
        code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 1 "$url" 2>/dev/null) || true
        [[ $code == 200 ]] && return 0
        sleep 0.1
    done
    show_log "$logf"
    die "$name did not answer 200 on $url within $timeout s (last status: ${code:-none})"
}

# ---------------------------------------------------------------------------
# Setup
# ---------------------------------------------------------------------------

ensure_deps() {
    log "checking dependencies (scripts/bootstrap)"
    "$ROOT/scripts/bootstrap" >&2
    local tool
    for tool in wrk nginx curl awk; do
        command -v "$tool" >/dev/null || die "$tool not found after bootstrap"
    done
    [[ -f $NGINX_MODULES/ndk_http_module.so && -f $NGINX_MODULES/ngx_http_lua_module.so ]] ||
        die "nginx lua/ndk modules not found in $NGINX_MODULES (libnginx-mod-http-lua)"
}

# Sets WTT to the binary under test. Without WTT_BIN: configures
# build-release/ (Release) when it has no wtt yet, and always runs the
# incremental build, a no-op when up to date, so that a binary left over
# from older sources is never what gets measured.
ensure_wtt() {
    if [[ -n ${WTT_BIN:-} ]]; then
        [[ -x $WTT_BIN ]] || die "WTT_BIN=$WTT_BIN is not an executable"
        WTT=$WTT_BIN
        return
    fi
    WTT=$ROOT/build-release/wtt
    if [[ ! -x $WTT ]]; then
        log "configuring wtt (Release) in build-release/"
        cmake -S "$ROOT" -B "$ROOT/build-release" -DCMAKE_BUILD_TYPE=Release -DWTT_BUILD_TESTS=OFF >&2
    fi
    log "building wtt (build-release/, incremental)"
    cmake --build "$ROOT/build-release" -j2 >&2
    [[ -x $WTT ]] || die "build finished but $WTT is missing"
}

# Prints two distinct free loopback ports. Both sockets are bound at once so
# the kernel cannot hand out the same port twice; the tiny race between
# closing them and the servers binding is acceptable for a benchmark.
pick_ports() {
    if command -v python3 >/dev/null; then
        python3 -c '
import socket
ss = [socket.socket() for _ in range(2)]
for s in ss:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in ss))
'
        return
    fi
    # Fallback: random high ports nobody is listening on (bounded tries).
    local ports=() p i
    for ((i = 0; i < 100 && ${#ports[@]} < 2; i++)); do
        p=$((20000 + RANDOM % 40000))
        [[ ${ports[0]:-} == "$p" ]] && continue
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && continue
        ports+=("$p")
    done
    ((${#ports[@]} == 2)) || die "could not find two free ports"
    echo "${ports[@]}"
}

# The payload lives once, in bench_route.lua; nginx gets the same bytes.
extract_body() {
    BODY=$(sed -n "s/^local BODY = '\(.*\)'\$/\1/p" "$HERE/bench_route.lua")
    [[ -n $BODY ]] || die "no \"local BODY = '...'\" line in bench/http/bench_route.lua"
    [[ $BODY != *[\'\\]* ]] || die "BODY must not contain ' or \\ (it is pasted into nginx.conf)"
    grep -q '^-- bench reload marker: ' "$HERE/bench_route.lua" ||
        die "bench_route.lua lost its '-- bench reload marker:' line (the reload phase edits it)"
}

# ---------------------------------------------------------------------------
# Servers
# ---------------------------------------------------------------------------

start_nginx() {
    local prefix=$TMP/nginx conf
    mkdir -p "$prefix/tmp"
    conf=$(<"$HERE/nginx.conf.in")
    # Quoted replacements: bash 5.2 would otherwise expand '&' in them.
    conf=${conf//@MODULE_DIR@/"$NGINX_MODULES"}
    conf=${conf//@PREFIX@/"$prefix"}
    conf=${conf//@WORKERS@/"$WORKERS"}
    conf=${conf//@PORT@/"$NGINX_PORT"}
    conf=${conf//@BODY@/"$BODY"}
    if [[ $conf =~ @[A-Z_]+@ ]]; then die "nginx.conf.in: unfilled placeholder ${BASH_REMATCH[0]}"; fi
    printf '%s\n' "$conf" >"$prefix/nginx.conf"

    # Validate first: a config error then reads as such, not as a timeout.
    if ! nginx -q -t -p "$prefix" -c "$prefix/nginx.conf" >"$prefix/check.log" 2>&1; then
        show_log "$prefix/check.log"
        show_log "$prefix/error.log"
        die "nginx rejected the generated config ($prefix/nginx.conf)"
    fi
    log "starting nginx+lua ($WORKERS workers) on 127.0.0.1:$NGINX_PORT"
    nginx -p "$prefix" -c "$prefix/nginx.conf" >"$prefix/stdout.log" 2>&1 &
    NGINX_PID=$!
    wait_http_200 "http://127.0.0.1:$NGINX_PORT/bench/json" "$NGINX_PID" nginx 10 "$prefix/error.log"
}

stop_nginx() {
    stop_pid "$NGINX_PID"
    NGINX_PID=
}

start_wtt() {
    mkdir -p "$TMP/routes" "$TMP/plugins"
    cp "$HERE/bench_route.lua" "$TMP/routes/bench.lua"
    # /livez is not built in: it is the project's own routes/health.lua.
    [[ -f $ROOT/routes/health.lua ]] || die "routes/health.lua (serves /livez) not found"
    cp "$ROOT/routes/health.lua" "$TMP/routes/health.lua"
    TOKEN=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
    log "starting wtt ($WORKERS workers) on 127.0.0.1:$WTT_PORT"
    # An empty plugins dir keeps the run hermetic, like the one-location nginx:
    # whatever lands in the repo's plugins/ later must not change the numbers.
    WTT_THREADS=$WORKERS WTT_ACCESS_LOG=off WTT_LOG_LEVEL=warn WTT_ADMIN_TOKEN=$TOKEN \
        WTT_PLUGINS_DIR=$TMP/plugins \
        "$WTT" serve --listen "127.0.0.1:$WTT_PORT" --routes-dir "$TMP/routes" \
        >"$TMP/wtt.log" 2>&1 &
    WTT_PID=$!
    wait_http_200 "http://127.0.0.1:$WTT_PORT/livez" "$WTT_PID" wtt 10 "$TMP/wtt.log"
    wait_http_200 "http://127.0.0.1:$WTT_PORT/bench/json" "$WTT_PID" wtt 10 "$TMP/wtt.log"
}

# fetch_body NAME PORT: GET /bench/json into $TMP/body.NAME; warns when the
# Content-Type is not JSON (both servers should send the same kind of reply).
fetch_body() {
    local name=$1 port=$2 ctype
    ctype=$(curl -fsS --max-time 5 -o "$TMP/body.$name" -w '%{content_type}' \
        "http://127.0.0.1:$port/bench/json") || die "$name: GET /bench/json failed"
    [[ $ctype == application/json* ]] || warn "$name: Content-Type is '$ctype', not application/json"
}

# Measuring two different payloads would make the ratio meaningless.
verify_bodies() {
    printf '%s' "$BODY" >"$TMP/body.expected"
    fetch_body nginx "$NGINX_PORT"
    if ! cmp -s "$TMP/body.nginx" "$TMP/body.expected"; then
        od -c "$TMP/body.nginx" | head -8 >&2
        die "nginx body differs from BODY in bench_route.lua"
    fi
    [[ $ONLY == nginx ]] && return 0
    fetch_body wtt "$WTT_PORT"
    if ! cmp -s "$TMP/body.nginx" "$TMP/body.wtt"; then
        printf 'nginx:\n%s\nwtt:\n%s\n' "$(od -c "$TMP/body.nginx" | head -8)" "$(od -c "$TMP/body.wtt" | head -8)" >&2
        die "wtt and nginx bodies for /bench/json are not byte-identical"
    fi
    log "bodies byte-identical ($(wc -c <"$TMP/body.wtt") bytes)"
}

# ---------------------------------------------------------------------------
# wrk and its output
# ---------------------------------------------------------------------------

# Fails with the server's log and exit status when it is no longer running
# (wrk against a dead server would otherwise just report connect errors).
require_alive() {
    local name=$1 pid=$2 logf=$3 rc=0
    kill -0 "$pid" 2>/dev/null && return 0
    wait "$pid" 2>/dev/null || rc=$?
    show_log "$logf"
    die "$name (pid $pid) is no longer running (exit status $rc; >128 means signal $((rc > 128 ? rc - 128 : 0)))"
}

# run_wrk OUTFILE SECONDS URL [wrk args...]
run_wrk() {
    local out=$1 secs=$2 url=$3
    shift 3
    wrk -t"$THREADS" -c"$CONNS" -d"${secs}s" --latency "$@" "$url" >"$out" 2>&1 ||
        {
            cat "$out" >&2
            die "wrk failed against $url"
        }
}

wrk_rps() { awk '/^Requests\/sec:/ { print $2; f = 1 } END { if (!f) print 0 }' "$1"; }

# 99% line of --latency, converted to ms (wrk prints us, ms, s or m).
wrk_p99_ms() {
    awk '$1 == "99%" {
        v = $2; m = 1
        if (v ~ /us$/)      { sub(/us$/, "", v); m = 0.001 }
        else if (v ~ /ms$/) { sub(/ms$/, "", v); m = 1 }
        else if (v ~ /s$/)  { sub(/s$/, "", v);  m = 1000 }
        else if (v ~ /m$/)  { sub(/m$/, "", v);  m = 60000 }
        printf "%.2f\n", v * m; f = 1
    } END { if (!f) print "n/a" }' "$1"
}

# wrk's own count (status > 399 only); 0 when the line is absent.
wrk_non2xx() { awk '/Non-2xx or 3xx responses:/ { n = $NF } END { print n + 0 }' "$1"; }

# "Socket errors: connect A, read B, write C, timeout D" -> A+B+C+D
wrk_sockerr() { awk '/Socket errors:/ { gsub(",", ""); n = $4 + $6 + $8 + $10 } END { print n + 0 }' "$1"; }
wrk_sockerr_detail() { awk '/Socket errors:/ { sub(/^ *Socket errors: */, ""); print; f = 1 } END { if (!f) print "none" }' "$1"; }

# Results by "<run>_<metric>": run nginx|wtt|reload, metric rps|p99|non2xx|sockerr.
declare -A R

# bench NAME ROUND URL PID LOG: warm-up, then one measured run; adds to
# R[NAME_*] (requests/s and p99 are averaged over the rounds in report_avg).
bench() {
    local name=$1 round=$2 url=$3 pid=$4 logf=$5 out=$TMP/wrk-$1-$2.txt
    require_alive "$name" "$pid" "$logf"
    log "$name (round $round): warm-up ${WARMUP}s"
    run_wrk "$TMP/wrk-$name-$round-warmup.txt" "$WARMUP" "$url"
    log "$name (round $round): wrk -t$THREADS -c$CONNS -d${DURATION}s --latency $url"
    run_wrk "$out" "$DURATION" "$url"
    require_alive "$name" "$pid" "$logf"
    R[${name}_rps_sum]=$(awk -v a="${R[${name}_rps_sum]:-0}" -v b="$(wrk_rps "$out")" 'BEGIN { printf "%.2f", a + b }')
    R[${name}_p99_sum]=$(awk -v a="${R[${name}_p99_sum]:-0}" -v b="$(wrk_p99_ms "$out")" 'BEGIN { printf "%.3f", a + b }')
    R[${name}_non2xx]=$((${R[${name}_non2xx]:-0} + $(wrk_non2xx "$out")))
    R[${name}_sockerr]=$((${R[${name}_sockerr]:-0} + $(wrk_sockerr "$out")))
    R[${name}_rounds]=$((${R[${name}_rounds]:-0} + 1))
    R[${name}_rps]=$(awk -v s="${R[${name}_rps_sum]}" -v n="${R[${name}_rounds]}" 'BEGIN { printf "%.2f", s / n }')
    R[${name}_p99]=$(awk -v s="${R[${name}_p99_sum]}" -v n="${R[${name}_rounds]}" 'BEGIN { printf "%.2f", s / n }')
}

# ---------------------------------------------------------------------------
# Reload phase
# ---------------------------------------------------------------------------

# Rewrites the marker comment so each reload loads really different bytes.
# Written beside the routes dir and renamed in, so wtt never reads half a file.
bump_route_file() {
    local i=$1 f=$TMP/routes/bench.lua
    sed "s/^-- bench reload marker: .*/-- bench reload marker: $i/" "$f" >"$TMP/bench.lua.new"
    mv "$TMP/bench.lua.new" "$f"
}

# Triggers reload I: odd ones by SIGHUP, even ones by the admin endpoint.
trigger_reload() {
    local i=$1 code
    if ((i % 2)); then
        kill -HUP "$WTT_PID" 2>/dev/null || {
            warn "reload $i: kill -HUP $WTT_PID failed (wtt gone?)"
            RELOAD_FAILS=$((RELOAD_FAILS + 1))
        }
    else
        code=$(curl -sS -o "$TMP/reload-$i.txt" -w '%{http_code}' --max-time 5 -X POST \
            -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$WTT_PORT/_admin/reload" \
            2>"$TMP/reload-$i.err") || true
        if [[ $code != 2?? ]]; then
            warn "reload $i: POST /_admin/reload: status ${code:-none} $(cat "$TMP/reload-$i.txt" "$TMP/reload-$i.err" 2>/dev/null | head -c 200 | tr '\n' ' ')"
            RELOAD_FAILS=$((RELOAD_FAILS + 1))
        fi
    fi
}

reload_phase() {
    local url="http://127.0.0.1:$WTT_PORT/bench/json" out=$TMP/wrk-reload.txt
    local interval i rc=0 n
    RELOAD_FAILS=0
    require_alive wtt "$WTT_PID" "$TMP/wtt.log"
    # Reloads at D/(R+1), 2D/(R+1), ... so all land well inside the run.
    interval=$(awk -v d="$DURATION" -v r="$RELOADS" 'BEGIN { printf "%.3f", d / (r + 1) }')
    log "reload: wrk ${DURATION}s on wtt with $RELOADS reloads, one every ${interval}s"
    wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency -s "$HERE/count_non2xx.lua" "$url" >"$out" 2>&1 &
    WRK_PID=$!
    for ((i = 1; i <= RELOADS; i++)); do
        sleep "$interval"
        bump_route_file "$i"
        trigger_reload "$i"
    done
    wait "$WRK_PID" || rc=$?
    WRK_PID=
    if ((rc != 0)); then
        cat "$out" >&2
        die "wrk (reload run) exited with $rc"
    fi

    R[reload_rps]=$(wrk_rps "$out")
    R[reload_p99]=$(wrk_p99_ms "$out")
    R[reload_sockerr]=$(wrk_sockerr "$out")
    # The script's count covers every non-2xx status; wrk's line only > 399.
    n=$(awk '/^BENCH_NON2XX / { print $2 }' "$out")
    if [[ -z $n ]]; then
        warn "count_non2xx.lua printed nothing; using wrk's 'Non-2xx or 3xx' line"
        n=$(wrk_non2xx "$out")
    fi
    R[reload_non2xx]=$n
    log "reload: socket errors: $(wrk_sockerr_detail "$out")"

    kill -0 "$WTT_PID" 2>/dev/null || {
        show_log "$TMP/wtt.log"
        warn "wtt is no longer running after the reload run"
    }
}

# /_admin/version must show every reload as a new generation (the first load
# is generation 1). Reloads may finish asynchronously: poll up to 3 s.
check_generation() {
    local want=$((RELOADS + 1)) body gen i
    for ((i = 0; i < 30; i++)); do
        body=$(curl -fsS --max-time 2 -H "Authorization: Bearer $TOKEN" \
            "http://127.0.0.1:$WTT_PORT/_admin/version" 2>&1) || body="(request failed: $body)"
        gen=$(grep -oE '"generation"[[:space:]]*:[[:space:]]*[0-9]+' <<<"$body" | grep -oE '[0-9]+$' | head -n 1) || true
        [[ -n $gen ]] && ((gen >= want)) && break
        sleep 0.1
    done
    log "/_admin/version: $body"
    if [[ -z $gen ]]; then
        warn "/_admin/version reports no generation (wanted >= $want)"
    elif ((gen < want)); then
        warn "generation $gen after $RELOADS reloads (wanted >= $want)"
    fi
    GENERATION=${gen:-n/a}
}

# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------

row() { printf '%-18s %7s %12s %10s %8s %13s\n' "$@"; }

# row LABEL RUN: one table line from R[RUN_*].
result_row() {
    row "$1" "$WORKERS" "${R[$2_rps]}" "${R[$2_p99]}" "${R[$2_non2xx]}" "${R[$2_sockerr]}"
}

report() {
    echo
    row server workers requests/s "p99 (ms)" non-2xx socket-errors
    result_row nginx+lua nginx
    if [[ $ONLY != nginx ]]; then
        result_row wtt wtt
        result_row "wtt ($RELOADS reloads)" reload
        echo
        echo "ratio wtt/nginx+lua: $RATIO   (target >= 0.80)"
        echo "reloads: $RELOADS triggered, $RELOAD_FAILS failed to trigger; generation afterwards: $GENERATION"
    fi
    echo "wrk -t$THREADS -c$CONNS -d${DURATION}s --latency, ${WARMUP}s warm-up each, 2 rounds each in ABBA order (mean shown), $(nproc) CPUs shared by wrk and server"
    echo "# reference (issue): nginx+lua ~110k req/s with 1 worker, ~144k with 2;"
    echo "#   bare libmicrohttpd hello in C ~149k; Django+gunicorn ~5k; target wtt >= 0.8x nginx+lua"
    local errs=$((R[nginx_non2xx] + R[nginx_sockerr]))
    [[ $ONLY == nginx ]] || errs=$((errs + R[wtt_non2xx] + R[wtt_sockerr]))
    if ((errs > 0)); then
        warn "$errs failed requests during the measured runs: their requests/s are not comparable"
    fi
}

main() {
    check_params
    cd "$ROOT"
    ensure_deps
    extract_body
    [[ $ONLY == nginx ]] || ensure_wtt

    TMP=$(mktemp -d "${TMPDIR:-/tmp}/wtt-bench-http.XXXXXX")
    # nginx workers drop to 'nobody' when started as root; let them in.
    chmod 755 "$TMP"
    # Said now, not in the EXIT trap: the RESULT line must stay the last line.
    [[ ${BENCH_KEEP_TMP:-0} != 1 ]] || log "keeping $TMP (BENCH_KEEP_TMP=1)"
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM

    read -r NGINX_PORT WTT_PORT < <(pick_ports)
    [[ -n ${WTT_PORT:-} ]] || die "could not pick ports"

    start_nginx
    [[ $ONLY == nginx ]] || start_wtt
    verify_bodies

    local nginx_url="http://127.0.0.1:$NGINX_PORT/bench/json"
    local wtt_url="http://127.0.0.1:$WTT_PORT/bench/json"
    if [[ $ONLY == nginx ]]; then
        bench nginx 1 "$nginx_url" "$NGINX_PID" "$TMP/nginx/error.log"
        report
        log "BENCH_ONLY=nginx: no wtt run, no RESULT line"
        return 0
    fi
    # Rounds in ABBA order (nginx, wtt, wtt, nginx): on a shared 2-core box
    # the background load drifts, and this order cancels a linear drift.
    # Each server idles (no requests) while the other is measured.
    bench nginx 1 "$nginx_url" "$NGINX_PID" "$TMP/nginx/error.log"
    bench wtt 1 "$wtt_url" "$WTT_PID" "$TMP/wtt.log"
    bench wtt 2 "$wtt_url" "$WTT_PID" "$TMP/wtt.log"
    bench nginx 2 "$nginx_url" "$NGINX_PID" "$TMP/nginx/error.log"
    stop_nginx

    reload_phase
    check_generation

    RATIO=$(awk -v w="${R[wtt_rps]}" -v n="${R[nginx_rps]}" 'BEGIN { if (n > 0) printf "%.2f", w / n; else print "0.00" }')
    report
    echo "RESULT http ratio=$RATIO non2xx_during_reload=$((R[reload_non2xx] + R[reload_sockerr]))"
}

main "$@"
