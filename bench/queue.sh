#!/usr/bin/env bash
# Queue benchmark: wtt's Redis queue against BullMQ on the same redis-server, in one run,
# and the whole stack's end-to-end time for a 60 s clip against `wtt transcribe`.
#
#   throughput  20,000 no-op tasks (BENCH_QUEUE_N) enqueued first, then drained by
#               - BullMQ 6.7.0 (bench/queue/, npm): ONE Worker with concurrency 1, then 4;
#                 the processor returns at once
#               - wtt: 1, then 4 `wtt worker --noop` processes (claim -> complete at once),
#                 and ONE `wtt worker --noop --batch-tasks 4` (claims 4 in one call,
#                 completes them and claims the next 4 in one round trip)
#               tasks/s = N / (last finish - first start) from each system's own timestamps
#               (BullMQ job.processedOn/finishedOn, wtt task hash claimed_at/finished_at)
#   latency     1,000 tasks (BENCH_QUEUE_LAT_N) added at 200/s (BENCH_QUEUE_RATE) to idle
#               workers: p50/p99 enqueue-to-claim, BullMQ job.processedOn - job.timestamp,
#               wtt claimed_at - enqueued_at (ms)
#   end to end  tools/clips/make.sh --long (60 s): upload -> generate -> status completed
#               through web + PostgreSQL + Redis + one real worker, against
#               `wtt transcribe --midi --notes-json` on the same clip (median of 3 each)
#
# Starts its own redis-server (AOF everysec, noeviction, as scripts/stack) and PostgreSQL on
# 127.0.0.1 (random ports, temp dir) and stops them at the end. BENCH_QUEUE_SKIP_E2E=1 skips
# the end-to-end part; BENCH_QUEUE_KEEP=1 keeps the temp dir and its logs. Last line:
#   RESULT queue ratio_bullmq=<x> p99_claim_ms=<y> e2e_overhead_pct=<z>
# ratio_bullmq: the lower of wtt/BullMQ tasks/s at concurrency 1 (one worker each) and at 4
# (wtt's one worker with --batch-tasks 4 against BullMQ's one Worker with concurrency 4: the
# same shape, one process holding 4 jobs); the 4-process rows are printed too. Each a median
# of BENCH_QUEUE_ROUNDS (3) rounds run in alternating order; p99_claim_ms: the higher of
# wtt's two paced p99s.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HERE=$ROOT/bench/queue
N=${BENCH_QUEUE_N:-20000}
LAT_N=${BENCH_QUEUE_LAT_N:-1000}
RATE=${BENCH_QUEUE_RATE:-200}
E2E_RUNS=${BENCH_E2E_RUNS:-3}
ROUNDS=${BENCH_QUEUE_ROUNDS:-3}
PGBIN=/usr/lib/postgresql/15/bin

log() { printf 'bench: %s\n' "$*" >&2; }
die() { printf 'bench: FAIL: %s\n' "$*" >&2; exit 1; }

TMP=
REDIS_PID=
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    if [[ -n $REDIS_PID ]]; then kill "$REDIS_PID" 2>/dev/null || true; fi
    if [[ -n $TMP && -d $TMP/pg ]]; then
        as_pg "$PGBIN/pg_ctl" -D "$TMP/pg" -m immediate stop >/dev/null 2>&1 || true
    fi
    if [[ -n $TMP && -n ${BENCH_QUEUE_KEEP:-} ]]; then
        log "kept $TMP (logs)"
    elif [[ -n $TMP ]]; then
        rm -rf "$TMP"
    fi
}
trap cleanup EXIT

as_pg() {
    if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# jget JSON KEY: a number or string field of a one-line JSON object.
jget() { python3 -c 'import json,sys; v=json.loads(sys.argv[1]).get(sys.argv[2]); print("" if v is None else v)' "$1" "$2"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "0.00" }'; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) printf "%.3f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
imedian() { median | awk '{ printf "%.0f", $1 }'; }
now() { date +%s.%N; }

# Stops the processes in PIDS (SIGTERM: workers finish and exit 0).
stop_pids() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    PIDS=()
}

# start_workers COUNT PREFIX [BATCH]: COUNT `wtt worker --noop` processes on PREFIX, each
# claiming BATCH tasks at once (1).
start_workers() {
    local i
    for ((i = 1; i <= $1; i++)); do
        env -u DATABASE_URL REDIS_URL="$RURL" WTT_KEY_PREFIX="$2" WTT_WORKER_ID="bench-$2$i" \
            WTT_BATCH_TASKS="${3:-1}" \
            "$WTT" worker --noop >>"$TMP/worker-${2%:}-$i.log" 2>&1 &
        PIDS+=($!)
    done
}

main() {
    cd "$ROOT"
    if [[ -z ${WTT_BIN:-} ]]; then
        scripts/bootstrap >&2
        cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DWTT_BUILD_TESTS=OFF >/dev/null
        cmake --build build-release -j2 >&2
    fi
    WTT=${WTT_BIN:-$ROOT/build-release/wtt}
    command -v node >/dev/null || die "node not found (Node 20 runs the BullMQ peer)"
    command -v npm >/dev/null || die "npm not found"
    if [[ ! -d $HERE/node_modules/bullmq || $HERE/package-lock.json -nt $HERE/node_modules/.package-lock.json ]]; then
        (cd "$HERE" && npm ci --no-audit --no-fund >&2) || die "npm ci failed in bench/queue"
    fi

    TMP=$(mktemp -d "${TMPDIR:-/tmp}/wtt-bench-queue.XXXXXX")
    chmod 755 "$TMP"

    # --- one redis-server for everything ----------------------------------------------
    local rport
    rport=$(free_port)
    redis-server --bind 127.0.0.1 --port "$rport" --save '' --appendonly yes \
        --appendfsync everysec --maxmemory-policy noeviction \
        --dir "$TMP" --daemonize no >"$TMP/redis.log" 2>&1 &
    REDIS_PID=$!
    for _ in $(seq 50); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.1; done
    redis-cli -p "$rport" ping >/dev/null || die "redis-server did not start"
    RURL=redis://127.0.0.1:$rport/0
    log "redis-server $(redis-server --version | awk '{ print $3 }') on 127.0.0.1:$rport (AOF everysec), $(nproc) cores"

    # --- throughput: ROUNDS rounds, each side in alternating order, medians ---------------
    # The machine is shared and noisy; one run of each would mostly measure the noise.
    local round side tps
    local -a T_b1=() T_b4=() T_bp4=() T_w1=() T_w4=() T_wb4=() E_b=() E_w=()
    for ((round = 1; round <= ROUNDS; round++)); do
        local order="b1 w1 b4 wb4 w4 bp4"
        ((round % 2 == 0)) && order="bp4 w4 wb4 b4 w1 b1"
        for side in $order; do
            case $side in
            b1 | b4)
                r=$(node "$HERE/bullmq.js" drain "$RURL" "$N" "${side#b}")
                BV=$(jget "$r" version)
                E_b+=("$(jget "$r" enqueue_per_s)") ;;
            bp4)
                r=$(node "$HERE/bullmq.js" procs "$RURL" "$N" 4) ;;
            w1 | w4 | wb4)
                local nw=${side#w} batch=1 e
                if [[ $side == wb4 ]]; then nw=1 batch=4; fi
                e=$("$WTT" run "$HERE/wtt.lua" enqueue "$RURL" "r$round$side:" "$N")
                E_w+=("$(jget "$e" enqueue_per_s)")
                start_workers "$nw" "r$round$side:" "$batch"
                r=$("$WTT" run "$HERE/wtt.lua" wait "$RURL" "r$round$side:" "$N" 600)
                stop_pids ;;
            esac
            log "round $round $side: $r"
            tps=$(jget "$r" tasks_per_s)
            case $side in
            b1) T_b1+=("$tps") ;; b4) T_b4+=("$tps") ;; bp4) T_bp4+=("$tps") ;;
            w1) T_w1+=("$tps") ;; w4) T_w4+=("$tps") ;; wb4) T_wb4+=("$tps") ;;
            esac
        done
    done
    local bt1 bt4 btp4 wt1 wt4 wtb4 eb ew
    bt1=$(printf '%s\n' "${T_b1[@]}" | imedian) bt4=$(printf '%s\n' "${T_b4[@]}" | imedian)
    btp4=$(printf '%s\n' "${T_bp4[@]}" | imedian)
    wt1=$(printf '%s\n' "${T_w1[@]}" | imedian) wt4=$(printf '%s\n' "${T_w4[@]}" | imedian)
    wtb4=$(printf '%s\n' "${T_wb4[@]}" | imedian)
    eb=$(printf '%s\n' "${E_b[@]}" | imedian) ew=$(printf '%s\n' "${E_w[@]}" | imedian)

    # --- latency: paced enqueues to idle workers ------------------------------------------
    local bl1 bl4 wl1 wl4
    bl1=$(node "$HERE/bullmq.js" latency "$RURL" "$LAT_N" 1 "$RATE")
    log "  $bl1"
    bl4=$(node "$HERE/bullmq.js" latency "$RURL" "$LAT_N" 4 "$RATE")
    log "  $bl4"
    for nw in 1 4; do
        start_workers "$nw" "l$nw:"
        sleep 1     # workers subscribed and idle
        r=$("$WTT" run "$HERE/wtt.lua" paced "$RURL" "l$nw:" "$LAT_N" "$RATE")
        stop_pids
        log "  $r"
        if [[ $nw == 1 ]]; then wl1=$r; else wl4=$r; fi
    done

    # --- end to end: the 60 s clip through the stack vs wtt transcribe -------------------
    local e2e_pct="n/a" t_cli="" t_stack=""
    if [[ -z ${BENCH_QUEUE_SKIP_E2E:-} ]]; then
        e2e
        t_cli=$E2E_CLI t_stack=$E2E_STACK
        e2e_pct=$(awk -v s="$t_stack" -v c="$t_cli" 'BEGIN { printf "%.1f", (s - c) / c * 100 }')
    fi

    # --- report -------------------------------------------------------------------------
    local r1 r4 rb4 rp4 rmin p99
    r1=$(ratio "$wt1" "$bt1") r4=$(ratio "$wt4" "$bt4") rp4=$(ratio "$wt4" "$btp4")
    rb4=$(ratio "$wtb4" "$bt4")
    rmin=$(awk -v a="$r1" -v b="$rb4" 'BEGIN { print (a < b) ? a : b }')
    p99=$(awk -v a="$(jget "$wl1" p99_ms)" -v b="$(jget "$wl4" p99_ms)" 'BEGIN { print (a > b) ? a : b }')

    echo
    printf '%-52s %10s %10s %7s\n' "no-op tasks, $N, enqueued then drained (median of $ROUNDS)" "BullMQ" "wtt" "ratio"
    printf '%-52s %10s %10s %7s\n' "enqueue/s (one call per task)" "$eb" "$ew" "$(ratio "$ew" "$eb")"
    printf '%-52s %10s %10s %7s\n' "tasks/s, concurrency 1" "$bt1" "$wt1" "$r1"
    printf '%-52s %10s %10s %7s\n' "tasks/s, conc 4: one worker, wtt --batch-tasks 4" "$bt4" "$wtb4" "$rb4"
    printf '%-52s %10s %10s %7s\n' "tasks/s, wtt 4 processes vs BullMQ one Worker c4" "$bt4" "$wt4" "$r4"
    printf '%-52s %10s %10s %7s\n' "tasks/s, 4 processes (BullMQ: 4 Workers x 1)" "$btp4" "$wt4" "$rp4"
    printf '%-52s %10s %10s\n' "enqueue-to-claim p50/p99 ms, $RATE/s, conc 1" \
        "$(jget "$bl1" p50_ms)/$(jget "$bl1" p99_ms)" "$(jget "$wl1" p50_ms)/$(jget "$wl1" p99_ms)"
    printf '%-52s %10s %10s\n' "enqueue-to-claim p50/p99 ms, $RATE/s, conc 4" \
        "$(jget "$bl4" p50_ms)/$(jget "$bl4" p99_ms)" "$(jget "$wl4" p50_ms)/$(jget "$wl4" p99_ms)"
    echo "BullMQ $BV: one Worker with concurrency N, or N Worker processes; wtt: N 'wtt worker --noop'" \
        "processes, or one with --batch-tasks 4."
    if [[ -n $t_cli ]]; then
        echo "60 s clip: wtt transcribe $t_cli s, through the stack (upload -> completed) $t_stack s," \
            "overhead $e2e_pct % (median of $E2E_RUNS)"
    fi
    echo "targets: wtt >= 1.5x BullMQ, p99 claim < 5 ms, end-to-end overhead < 10 %"
    echo "RESULT queue ratio_bullmq=$rmin p99_claim_ms=$p99 e2e_overhead_pct=$e2e_pct"
}

# Sets E2E_CLI and E2E_STACK (median seconds).
e2e() {
    local clip=$TMP/long60.wav
    log "end to end: rendering the 60 s clip"
    tools/clips/make.sh --long "$clip" 60 >&2

    # wtt transcribe, the same outputs the worker makes (MIDI + notes JSON).
    local i t0 t1 cli=()
    mkdir -p "$TMP/cli"
    for ((i = 0; i < E2E_RUNS; i++)); do
        t0=$(now)
        "$WTT" transcribe "$clip" -o "$TMP/cli" --midi --notes-json --quiet >&2
        t1=$(now)
        cli+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')")
    done
    E2E_CLI=$(printf '%s\n' "${cli[@]}" | median)
    log "  wtt transcribe: ${cli[*]} s"

    # PostgreSQL, web (with its subscriber) and one real worker, on the same Redis.
    local pport wport url token
    pport=$(free_port)
    mkdir -p "$TMP/pg" "$TMP/pgsock" "$TMP/media"
    [[ $(id -u) -ne 0 ]] || chown postgres "$TMP/pg" "$TMP/pgsock"
    as_pg "$PGBIN/initdb" -D "$TMP/pg" -A trust -U postgres >/dev/null
    as_pg "$PGBIN/pg_ctl" -D "$TMP/pg" -l "$TMP/pg/log" -w -o \
        "-c listen_addresses=127.0.0.1 -p $pport -k $TMP/pgsock -c fsync=off" start >/dev/null
    local purl="postgresql://postgres@127.0.0.1:$pport/postgres"
    DATABASE_URL=$purl "$WTT" migrate >&2
    wport=$(free_port)
    url=http://127.0.0.1:$wport
    token=bench-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')
    env DATABASE_URL="$purl" REDIS_URL="$RURL" WTT_KEY_PREFIX=e2e: WTT_MEDIA_DIR="$TMP/media" \
        WTT_WORKER_TOKEN="$token" WTT_LISTEN="127.0.0.1:$wport" WTT_ACCESS_LOG=off \
        "$WTT" serve >"$TMP/serve.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 300); do curl -fsS -m 1 "$url/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
    curl -fsS -m 1 "$url/readyz" >/dev/null 2>&1 || { cat "$TMP/serve.log" >&2; die "wtt serve not ready"; }
    env -u DATABASE_URL REDIS_URL="$RURL" WTT_KEY_PREFIX=e2e: WTT_WEB_URL="$url" \
        WTT_WORKER_TOKEN="$token" "$WTT" worker >"$TMP/worker.log" 2>&1 &
    PIDS+=($!)
    sleep 2     # the worker loads the model and subscribes

    local stack=() out id status
    for ((i = 0; i <= E2E_RUNS; i++)); do      # run 0 warms up (page cache, first requests)
        out=$("$WTT" run "$HERE/e2e_client.lua" "$url" "$clip") || die "client: $out"
        id=${out##*id=}
        status=$(sed -n 's/.* status=\([a-z]*\).*/\1/p' <<<"$out")
        log "  run $i: $out"
        [[ $status == completed ]] || die "task $id failed: $(curl -sS "$url/transcribe/status/$id/")"
        curl -fsS -o "$TMP/e2e.mid" "$url/transcribe/midi/$id/" || die "MIDI download failed"
        ((i == 0)) || stack+=("$(sed -n 's/.*total_s=\([0-9.]*\).*/\1/p' <<<"$out")")
    done
    stop_pids
    E2E_STACK=$(printf '%s\n' "${stack[@]}" | median)
    log "  through the stack: ${stack[*]} s"
}

main "$@"
