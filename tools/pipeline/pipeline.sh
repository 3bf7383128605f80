#!/usr/bin/env bash
# tools/pipeline/pipeline.sh: runs the pipeline once against the local stack, each stage its own
# process (kfleet-sim -> kfleet-validate -> kfleet-sink-pg), waits until every stage drained,
# stops the workers and prints the report of kfleet-pipeline (exit 0 only when it checks out).
# Used by tools/run, the end-to-end tests (tests/e2e/) and the benchmark (tests/bench/).
set -euo pipefail

KF_PROG=${KF_PROG:-pipeline}
KF_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=tools/lib/common.sh source-path=SCRIPTDIR/../..
source "$KF_ROOT/tools/lib/common.sh"

usage() {
    cat <<USAGE
usage: tools/pipeline/pipeline.sh [options]

  --build-dir DIR       where kfleet was built (default: build-run/)
  --events N            changes the simulator produces (default 50000)
  --rate N              changes per second (default 10000; 0 = as fast as it can)
  --seed N              the simulator's seed (default 42, so runs are comparable)
  --spec FILE           table spec (default schemas/sim/shop.yaml)
  --contract FILE       contract; repeatable (default every schemas/contracts/*.yaml)
  --replicas N          validate and sink workers of each kind (default 1)
  --chaos               SIGKILL the first validate and sink worker half-way, then restart them
  --keep-running        after the report keep the workers up until Ctrl-C
  --run-dir DIR         logs and files of the run (default <build-dir>/runs/<run id>)
  --json FILE           also write the report as JSON
  --series FILE         also write throughput and latency per second (tab-separated)
  --time                run each worker under /usr/bin/time -v (peak RSS in <run-dir>/*.time)
  --sink-batch N        the sink's rows per table and transaction (default: the sink's)
  --sink-flush DUR      the sink's flush interval (default 100ms)
  --validate-set K=V    a setting for every kfleet-validate (repeatable), e.g.
                        kafka.linger.ms=1 or validate.batch.size=500
  --sink-set K=V        a setting for every kfleet-sink-pg (repeatable)
  --drain-timeout DUR   how long the stages may take to catch up (default 180s)
  --warmup DUR          leave the events of the run's first DUR out of the latency percentiles
                        (they are also reported over every event; default 0)
  --keep-runs N         earlier runs to keep (default 3; 0 = none): at its start a run deletes
                        the topics, registry subjects, Postgres schema and kfleet_meta rows of
                        every earlier run but the newest N and those still running
                        (kfleet-pipeline prune)

Every run uses its own topic prefix and Postgres schema (run_<time>_<n>), so runs never mix.
Ctrl-C stops every process with SIGTERM, waits for them, and reports what got through.
USAGE
}

BUILD_DIR=$KF_ROOT/build-run
EVENTS=50000
RATE=10000
SEED=42
SPEC=$KF_ROOT/schemas/sim/shop.yaml
CONTRACTS=()
REPLICAS=1
CHAOS=false
KEEP=false
RUN_DIR=
JSON=
SERIES=
TIMED=false
SINK_BATCH=
SINK_FLUSH=100ms
VALIDATE_SETS=()
SINK_SETS=()
DRAIN_TIMEOUT=180s
WARMUP=0
KEEP_RUNS=3

while (($# > 0)); do
    case $1 in
    -h | --help) usage && exit 0 ;;
    --build-dir) BUILD_DIR=$2 && shift ;;
    --events) EVENTS=$2 && shift ;;
    --rate) RATE=$2 && shift ;;
    --seed) SEED=$2 && shift ;;
    --spec) SPEC=$2 && shift ;;
    --contract) CONTRACTS+=("$2") && shift ;;
    --replicas) REPLICAS=$2 && shift ;;
    --chaos) CHAOS=true ;;
    --keep-running) KEEP=true ;;
    --run-dir) RUN_DIR=$2 && shift ;;
    --json) JSON=$2 && shift ;;
    --series) SERIES=$2 && shift ;;
    --time) TIMED=true ;;
    --sink-batch) SINK_BATCH=$2 && shift ;;
    --sink-flush) SINK_FLUSH=$2 && shift ;;
    --validate-set) VALIDATE_SETS+=(--set "$2") && shift ;;
    --sink-set) SINK_SETS+=(--set "$2") && shift ;;
    --drain-timeout) DRAIN_TIMEOUT=$2 && shift ;;
    --warmup) WARMUP=$2 && shift ;;
    --keep-runs) KEEP_RUNS=$2 && shift ;;
    *) usage >&2 && exit 2 ;;
    esac
    shift
done
[[ $EVENTS =~ ^[1-9][0-9]*$ ]] || kf_die "--events must be a positive number"
[[ $RATE =~ ^[0-9]+$ ]] || kf_die "--rate must be a number"
[[ $REPLICAS =~ ^[1-9]$ ]] || kf_die "--replicas must be 1 to 9"
[[ $KEEP_RUNS =~ ^[0-9]+$ ]] || kf_die "--keep-runs must be a number"
((${#CONTRACTS[@]})) || CONTRACTS=("$KF_ROOT"/schemas/contracts/*.yaml)

SIM=$BUILD_DIR/producers/sim/kfleet-sim
VALIDATE=$BUILD_DIR/workers/validate/kfleet-validate
SINK=$BUILD_DIR/workers/sink-postgres/kfleet-sink-pg
PIPE=$BUILD_DIR/tools/pipeline/kfleet-pipeline
for b in "$SIM" "$VALIDATE" "$SINK" "$PIPE"; do
    [[ -x $b ]] || kf_die "$b is missing: build kfleet first (cmake --build $BUILD_DIR)"
done
for v in KFLEET_BOOTSTRAP KFLEET_REGISTRY_URL KFLEET_PG_DSN; do
    [[ -n ${!v:-} ]] || kf_die "$v is not set: start the stack and run: eval \"\$(tools/stack env)\""
done

RUN_ID=run_$(date +%m%d_%H%M%S)_$$
RUN_DIR=${RUN_DIR:-$BUILD_DIR/runs/$RUN_ID}
mkdir -p "$RUN_DIR"
VGROUP=$RUN_ID-validate
SGROUP=$RUN_ID-sink
COMMON=(--topic-prefix "$RUN_ID" --registry-url "$KFLEET_REGISTRY_URL"
    --set "kafka.bootstrap.servers=$KFLEET_BOOTSTRAP" --log-format json)
# A killed worker's partitions move to the others after the session timeout: keep it short.
GROUP_ARGS=(--set kafka.session.timeout.ms=6000 --set kafka.topic.metadata.refresh.interval.ms=2000)
CONTRACT_ARGS=()
for c in "${CONTRACTS[@]}"; do CONTRACT_ARGS+=(--contract "$c"); done

declare -A PIDS=() # name -> pid of every process this script started and not yet reaped
INTERRUPTED=false

# Starts a worker in the background, in its own session so that a Ctrl-C on the terminal
# reaches only this script (which then stops the workers with one SIGTERM each: a second
# signal would make them exit at once). Its log is <run-dir>/<name>.log; with --time it runs
# under /usr/bin/time -v, whose report goes to <run-dir>/<name>.time.
spawn() {
    local name=$1
    shift
    if $TIMED; then
        setsid /usr/bin/time -v -o "$RUN_DIR/$name.time" "$@" >>"$RUN_DIR/$name.log" 2>&1 &
    else
        setsid "$@" >>"$RUN_DIR/$name.log" 2>&1 &
    fi
    PIDS[$name]=$!
}

# The pid to signal: the worker itself, also when /usr/bin/time is its parent (time does not
# pass signals on).
target_pid() {
    local pid=$1 child
    if $TIMED; then
        child=$(ps -o pid= --ppid "$pid" 2>/dev/null | head -n 1 | tr -d ' ')
        [[ -n $child ]] && pid=$child
    fi
    echo "$pid"
}

# Sends sig to the named processes and waits for them (a second signal after 30 s).
stop() {
    local sig=$1 name pid
    shift
    for name in "$@"; do
        [[ -n ${PIDS[$name]:-} ]] || continue
        kill "-$sig" "$(target_pid "${PIDS[$name]}")" 2>/dev/null || true
    done
    for name in "$@"; do
        pid=${PIDS[$name]:-}
        [[ -n $pid ]] || continue
        local waited=0
        while kill -0 "$pid" 2>/dev/null && ((waited < 300)); do
            sleep 0.1
            waited=$((waited + 1))
        done
        if kill -0 "$pid" 2>/dev/null; then
            kf_warn "$name did not stop within 30 s: killing it"
            kill -KILL "$(target_pid "$pid")" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
        unset "PIDS[$name]"
    done
}

# shellcheck disable=SC2317 # invoked by the trap
on_interrupt() {
    INTERRUPTED=true
    kf_say "interrupted: stopping every stage"
    stop TERM "${!PIDS[@]}"
}
trap on_interrupt INT TERM

start_validate() {
    local i=$1
    spawn "validate-$i" "$VALIDATE" "${COMMON[@]}" "${CONTRACT_ARGS[@]}" --group "$VGROUP" \
        --transactional-id "$VGROUP-$i" --no-actions "${GROUP_ARGS[@]}" "${VALIDATE_SETS[@]}"
}

start_sink() {
    local i=$1 t
    local args=(--pg-dsn "$KFLEET_PG_DSN" --target-schema "$RUN_ID" --flush-interval "$SINK_FLUSH"
        --set "kafka.group.id=$SGROUP" "${GROUP_ARGS[@]}")
    [[ -n $SINK_BATCH ]] && args+=(--batch-size "$SINK_BATCH")
    for t in "${TABLES[@]}"; do args+=(--topic "$RUN_ID.valid.$t"); done
    spawn "sink-$i" "$SINK" "${COMMON[@]}" "${args[@]}" "${SINK_SETS[@]}"
}

START=$(kf_now)
kf_say "run $RUN_ID: $EVENTS events at ${RATE:-max}/s, seed $SEED, $REPLICAS replica(s) per worker$($CHAOS && echo ', with SIGKILL and restart half-way')"
kf_say "logs and files in $RUN_DIR"

# Earlier runs' topics, subjects, schemas and kfleet_meta rows go, but for the newest
# $KEEP_RUNS: the workers subscribe by pattern and so fetch the metadata of every topic in the
# cluster, which slows every run down as debris piles up. Failing to prune is only a warning.
"$PIPE" prune --keep-runs "$KEEP_RUNS" --registry-url "$KFLEET_REGISTRY_URL" \
    --set "kafka.bootstrap.servers=$KFLEET_BOOTSTRAP" --pg-dsn "$KFLEET_PG_DSN" ||
    kf_warn "could not delete everything of the earlier runs (see above); going on"

# The change stream of the same seed (the simulator is deterministic): the report folds it into
# the rows each table should hold. Its summary names the tables.
"$SIM" --to stdout --seed "$SEED" --events "$EVENTS" --spec "$SPEC" >"$RUN_DIR/changes.jsonl" \
    2>"$RUN_DIR/sim-stdout.log" || kf_die "kfleet-sim could not write the change stream (see $RUN_DIR/sim-stdout.log)"
mapfile -t TABLES < <(tail -n 1 "$RUN_DIR/changes.jsonl" |
    grep -o '"database":"[^"]*","table":"[^"]*"' | sed 's/"database":"\([^"]*\)","table":"\([^"]*\)"/\1.\2/')
((${#TABLES[@]})) || kf_die "the change stream has no summary naming the tables"
TABLE_ARGS=()
for t in "${TABLES[@]}"; do TABLE_ARGS+=(--table "$t"); done

"$PIPE" prepare "${COMMON[@]}" "${TABLE_ARGS[@]}" --partitions 3 --pg-dsn "$KFLEET_PG_DSN" \
    --target-schema "$RUN_ID" 2>>"$RUN_DIR/pipeline.log" ||
    kf_die "could not create the topics and the Postgres schema (see $RUN_DIR/pipeline.log)"

# The sampler of the stages (input end offsets, validate's commits, the sink's commit markers:
# latency per stage), then the workers, then the producer.
spawn watch "$PIPE" watch "${COMMON[@]}" "${TABLE_ARGS[@]}" --pg-dsn "$KFLEET_PG_DSN" \
    --sink-group "$SGROUP" --validate-group "$VGROUP" --interval 20ms --out "$RUN_DIR/markers.txt" \
    --produced-out "$RUN_DIR/produced.txt" --validated-out "$RUN_DIR/validated.txt"
for ((i = 1; i <= REPLICAS; i++)); do start_validate "$i"; done
for ((i = 1; i <= REPLICAS; i++)); do start_sink "$i"; done

# Every worker joins its group before the first event, so that the latency of the first
# events is not the time of a group join.
assigned_all() {
    local name
    for name in "${!PIDS[@]}"; do
        [[ $name == watch ]] && continue
        grep -q '"msg":"partitions assigned"' "$RUN_DIR/$name.log" 2>/dev/null || return 1
    done
}
waited=0
while ! assigned_all && ((waited < 300)) && ! $INTERRUPTED; do
    for name in "${!PIDS[@]}"; do
        kill -0 "${PIDS[$name]}" 2>/dev/null && continue
        stop TERM "${!PIDS[@]}"
        kf_die "$name exited before it was assigned partitions (see $RUN_DIR/$name.log)"
    done
    sleep 0.1
    waited=$((waited + 1))
done
((waited < 300)) || kf_warn "not every worker was assigned partitions within 30 s: starting anyway"

SIM_ARGS=(--to kafka --seed "$SEED" --events "$EVENTS" --spec "$SPEC" --expect "$RUN_DIR/expect.json"
    --state-dir "$RUN_DIR" --history "$RUN_DIR/history.jsonl")
((RATE > 0)) && SIM_ARGS+=(--rate "$RATE")
setsid "$SIM" "${COMMON[@]}" "${SIM_ARGS[@]}" 2>"$RUN_DIR/sim.log" &
PIDS[sim]=$!

if $CHAOS; then
    # half-way through the simulator's run (or after 2 s when it runs unpaced)
    half=2
    ((RATE > 0)) && half=$(awk -v e="$EVENTS" -v r="$RATE" 'BEGIN { printf "%.1f", e / r / 2 }')
    sleep "$half" || true
    if ! $INTERRUPTED; then
        kf_say "SIGKILL validate-1 and sink-1"
        stop KILL validate-1 sink-1
        sleep 1
        kf_say "restarting validate-1 and sink-1"
        start_validate 1
        start_sink 1
    fi
fi

# The name of a worker (or the sampler) that is no longer running, if any.
exited_worker() {
    local name
    for name in "${!PIDS[@]}"; do
        [[ $name == sim ]] && continue
        if ! kill -0 "${PIDS[$name]}" 2>/dev/null; then
            echo "$name"
            return
        fi
    done
}

# Reaps the worker that exited and says so.
report_exited() {
    local name=$1 status=0
    wait "${PIDS[$name]}" 2>/dev/null || status=$?
    unset "PIDS[$name]"
    kf_warn "$name exited with status $status (see $RUN_DIR/$name.log)"
}

SIM_RC=0
DEAD= # a worker that exited on its own: the run stops there
if [[ -n ${PIDS[sim]:-} ]]; then
    while kill -0 "${PIDS[sim]}" 2>/dev/null && ! $INTERRUPTED; do
        DEAD=$(exited_worker)
        [[ -n $DEAD ]] && break
        sleep 0.2
    done
    if [[ -n $DEAD ]]; then
        report_exited "$DEAD"
        kf_warn "stopping the simulator: the stages cannot catch up"
        kill -TERM "${PIDS[sim]}" 2>/dev/null || true
    fi
    wait "${PIDS[sim]}" || SIM_RC=$?
    unset "PIDS[sim]"
fi
if ! $INTERRUPTED && [[ -z $DEAD ]] && ((SIM_RC != 0)); then
    stop TERM "${!PIDS[@]}"
    kf_die "kfleet-sim failed with status $SIM_RC (see $RUN_DIR/sim.log)"
fi

DRAINED=false
if ! $INTERRUPTED && [[ -z $DEAD ]]; then
    kf_say "simulator done: waiting for validate and the sink to catch up"
    "$PIPE" drain "${COMMON[@]}" "${TABLE_ARGS[@]}" --pg-dsn "$KFLEET_PG_DSN" \
        --validate-group "$VGROUP" --sink-group "$SGROUP" --timeout "$DRAIN_TIMEOUT" \
        2>>"$RUN_DIR/pipeline.log" &
    drain_pid=$!
    # a worker that dies cannot catch up: say so at once instead of at the timeout
    while kill -0 "$drain_pid" 2>/dev/null && [[ -z $DEAD ]] && ! $INTERRUPTED; do
        sleep 0.2
        DEAD=$(exited_worker)
    done
    if [[ -n $DEAD ]]; then
        report_exited "$DEAD"
    elif ! $INTERRUPTED && wait "$drain_pid"; then
        DRAINED=true
    elif ! $INTERRUPTED; then
        kf_warn "the stages did not catch up within $DRAIN_TIMEOUT (see $RUN_DIR/pipeline.log)"
    fi
    # a background job does not get the terminal's Ctrl-C: stop it when it is still waiting
    kill -TERM "$drain_pid" 2>/dev/null || true
    wait "$drain_pid" 2>/dev/null || true
fi
DRAIN_S=$(kf_elapsed "$START")

if $INTERRUPTED || [[ -n $DEAD ]]; then
    # The simulator may have stopped early: the change stream of the report is the part it
    # produced.
    produced=$(grep -Eo '"msg":"simulation (finished|stopped)","changes":"[0-9]*"' "$RUN_DIR/sim.log" |
        grep -o '[0-9]*' | tail -n 1 || true)
    if [[ -n $produced && $produced != "$EVENTS" && $produced != 0 ]]; then
        "$SIM" --to stdout --seed "$SEED" --events "$produced" --spec "$SPEC" \
            >"$RUN_DIR/changes.jsonl" 2>>"$RUN_DIR/sim-stdout.log" || true
    fi
fi

report() {
    local args=("${COMMON[@]}" --expect "$RUN_DIR/expect.json" --changes "$RUN_DIR/changes.jsonl"
        --sim-log "$RUN_DIR/sim.log" "${CONTRACT_ARGS[@]}" --pg-dsn "$KFLEET_PG_DSN"
        --target-schema "$RUN_ID" --validate-group "$VGROUP" --sink-group "$SGROUP"
        --samples "$RUN_DIR/markers.txt" --sample-interval 20ms --warmup "$WARMUP"
        --produced-samples "$RUN_DIR/produced.txt" --validated-samples "$RUN_DIR/validated.txt")
    [[ -n $JSON ]] && args+=(--json "$JSON")
    [[ -n $SERIES ]] && args+=(--series "$SERIES")
    "$PIPE" "${args[@]}" 2>>"$RUN_DIR/pipeline.log"
}

where() {
    echo "  files             $RUN_DIR"
    echo "                    sim.log, validate-<n>.log, sink-<n>.log (JSON lines), markers.txt,"
    echo "                    produced.txt, validated.txt (stage samples),"
    echo "                    expect.json (the simulator's expected state), changes.jsonl, history.jsonl"
    echo "  Postgres          schema \"$RUN_ID\" ($KFLEET_PG_DSN), kfleet_meta.sync_markers group $SGROUP"
    echo "  topics            $RUN_ID.<db>.<table>, $RUN_ID.valid.*, $RUN_ID.dlq.*"
    echo "  took              ${DRAIN_S}s until drained"
}

RC=0
if $KEEP && ! $INTERRUPTED; then
    report || RC=$?
    where
    kf_say "workers keep running (validate and sink groups $VGROUP, $SGROUP); Ctrl-C stops them"
    while ! $INTERRUPTED; do sleep 1; done
else
    stop TERM "${!PIDS[@]}"
    report || RC=$?
    where
fi
if $TIMED; then
    for f in "$RUN_DIR"/*.time; do
        [[ -f $f ]] || continue
        printf '  peak RSS          %-12s %s kB\n' "$(basename "$f" .time)" \
            "$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$f")"
    done
fi
$INTERRUPTED && exit 130
$DRAINED || exit 1
exit "$RC"
