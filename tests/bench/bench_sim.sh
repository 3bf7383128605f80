#!/bin/sh
# Produce benchmark (BENCH.md): kfleet-sim generating and Avro-encoding ~250 B change events
# to Kafka vs kafka-producer-perf-test sending pre-made 250 B records to the same broker, with
# the same acks, idempotence, linger, batch size, compression and partitions; alternating
# pairs, median ratio. Prints a table and writes JSON.
# usage: bench_sim.sh [--short] [--pairs N] [--events N] [--out FILE]
# env: KFLEET_BOOTSTRAP, KFLEET_REGISTRY_URL, KFLEET_KAFKA_HOME (eval "$(tools/stack env)"),
#      KFLEET_SIM_BIN (default: <build>/producers/sim/kfleet-sim next to this run's build)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
pairs=3
events=1000000
out=""
while [ $# -gt 0 ]; do
    case $1 in
    --short) pairs=1 events=100000 ;;
    --pairs) pairs=$2; shift ;;
    --events) events=$2; shift ;;
    --out) out=$2; shift ;;
    *) echo "usage: bench_sim.sh [--short] [--pairs N] [--events N] [--out FILE]" >&2; exit 2 ;;
    esac
    shift
done
for v in KFLEET_BOOTSTRAP KFLEET_REGISTRY_URL KFLEET_KAFKA_HOME; do
    eval "val=\${$v:-}"
    if [ -z "$val" ]; then
        echo "bench_sim: $v is not set: run eval \"\$(tools/stack env)\"" >&2
        exit 1
    fi
done
sim=${KFLEET_SIM_BIN:-$src/build/producers/sim/kfleet-sim}
[ -x "$sim" ] || { echo "bench_sim: no kfleet-sim at $sim (set KFLEET_SIM_BIN)" >&2; exit 1; }
[ -n "$out" ] || out=$src/build/bench/sim.json
mkdir -p "$(dirname "$out")"
bin=$KFLEET_KAFKA_HOME/bin
partitions=3
linger=5
batch=65536
tag=$$_$(date +%s)
tmp=$(mktemp -d)
# Both sides' topics of this run are deleted when it ends, however it ends.
cleanup() {
    "$bin/kafka-topics" --bootstrap-server "$KFLEET_BOOTSTRAP" --delete --if-exists \
        --topic "bench(sim|peer)${tag}_[0-9]+(\\..*)?" >/dev/null 2>&1 ||
        echo "bench_sim: could not delete the topics bench{sim,peer}${tag}_*" >&2
    rm -rf "$tmp"
}
trap cleanup EXIT

now_ns() { date +%s%N; }

# Each side is measured twice: by its own clock without process start-up (kfleet-sim's
# output_rate: from just before its first change is produced until the last one is
# acknowledged; the perf tool's records/sec: from just before its first send until close has
# flushed everything) -- the headline ratio -- and as a whole process from exec to exit
# (kfleet-sim with topic creation and schema registration, the tool with JVM start-up).

run_sim() { # $1 = topic prefix; prints "own_rate whole_process_rate"
    t0=$(now_ns)
    "$sim" --spec "$here/bench_sim.yaml" --seed 1 --events "$events" --topic-prefix "$1" \
        --partitions $partitions --state-dir "" --log-level info --log-format logfmt \
        --set kafka.bootstrap.servers="$KFLEET_BOOTSTRAP" --set kafka.acks=all \
        --set kafka.enable.idempotence=true --set kafka.linger.ms=$linger \
        --set kafka.batch.size=$batch --set kafka.compression.type=none \
        >/dev/null 2>"$tmp/sim.log"
    t1=$(now_ns)
    own=$(sed -n 's/.*msg="simulation finished".* output_rate=\([0-9]*\).*/\1/p' "$tmp/sim.log")
    if [ -z "$own" ]; then
        echo "bench_sim: kfleet-sim reported no output rate:" >&2
        cat "$tmp/sim.log" >&2
        exit 1
    fi
    awk -v own="$own" -v n="$events" -v ns=$((t1 - t0)) 'BEGIN { printf "%s %.0f\n", own, n / (ns / 1e9) }'
}

run_peer() { # $1 = topic; prints "own_rate whole_process_rate"
    "$bin/kafka-topics" --bootstrap-server "$KFLEET_BOOTSTRAP" --create --topic "$1" \
        --partitions $partitions >/dev/null 2>&1
    t0=$(now_ns)
    "$bin/kafka-producer-perf-test" --topic "$1" --num-records "$events" --record-size 250 \
        --throughput -1 --producer-props bootstrap.servers="$KFLEET_BOOTSTRAP" acks=all \
        enable.idempotence=true linger.ms=$linger batch.size=$batch compression.type=none \
        2>/dev/null | tail -n 1 >"$tmp/peer"
    t1=$(now_ns)
    own=$(awk '$2 == "records" && $3 == "sent," { printf "%.0f", $4 }' "$tmp/peer")
    if [ -z "$own" ]; then
        echo "bench_sim: kafka-producer-perf-test reported no rate: $(cat "$tmp/peer")" >&2
        exit 1
    fi
    awk -v own="$own" -v n="$events" -v ns=$((t1 - t0)) 'BEGIN { printf "%s %.0f\n", own, n / (ns / 1e9) }'
}

printf '%-6s %12s %12s %7s   %12s %12s %7s\n' pair "kfleet-sim/s" "perf-test/s" ratio \
    "sim-proc/s" "peer-proc/s" ratio
: >"$tmp/rows"
i=1
while [ $i -le "$pairs" ]; do
    # Alternate which side goes first, so neither always runs on a warmer broker.
    if [ $((i % 2)) -eq 1 ]; then
        s=$(run_sim "benchsim${tag}_$i")
        p=$(run_peer "benchpeer${tag}_$i")
    else
        p=$(run_peer "benchpeer${tag}_$i")
        s=$(run_sim "benchsim${tag}_$i")
    fi
    set -- $s $p
    r=$(awk -v s="$1" -v p="$3" 'BEGIN { printf "%.3f", s / p }')
    rw=$(awk -v s="$2" -v p="$4" 'BEGIN { printf "%.3f", s / p }')
    printf '%-6s %12s %12s %7s   %12s %12s %7s\n' "$i" "$1" "$3" "$r" "$2" "$4" "$rw"
    echo "$i $1 $3 $r $2 $4 $rw" >>"$tmp/rows"
    i=$((i + 1))
done
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
col() { awk -v c="$1" '{ print $c }' "$tmp/rows" | median; }
ms=$(col 2) mp=$(col 3) mr=$(col 4) mws=$(col 5) mwp=$(col 6) mwr=$(col 7)
printf '%-6s %12s %12s %7s   %12s %12s %7s\n' median "$ms" "$mp" "$mr" "$mws" "$mwp" "$mwr"
echo "settings: $events messages per run on each side, kfleet-sim events ~250 B (Avro envelope" \
    "+ key), peer records 250 B, $partitions partitions, acks=all, idempotence on," \
    "linger.ms=$linger, batch.size=$batch, no compression, same broker, alternating pairs."
echo "ratio: each side's own clock without process start-up (kfleet-sim output_rate: first" \
    "change produced -> last acknowledged; perf-test records/sec: first send -> close flushed);" \
    "proc: whole process from exec to exit (kfleet-sim incl. topic creation and schema" \
    "registration, perf-test incl. JVM start-up)"
{
    printf '{"benchmark":"sim_produce","events":%s,"pairs":%s,' "$events" "$pairs"
    printf '"settings":{"message_bytes":250,"partitions":%s,"acks":"all","idempotence":true,' $partitions
    printf '"linger_ms":%s,"batch_size":%s,"compression":"none",' $linger $batch
    printf '"timing":"own clock without process start-up; *_process_*: exec to exit"},"runs":['
    awk '{ printf "%s{\"pair\":%s,\"kfleet_msgs_per_s\":%s,\"peer_msgs_per_s\":%s,\"ratio\":%s,\"kfleet_process_msgs_per_s\":%s,\"peer_process_msgs_per_s\":%s,\"process_ratio\":%s}", (NR > 1 ? "," : ""), $1, $2, $3, $4, $5, $6, $7 }' "$tmp/rows"
    printf '],"median":{"kfleet_msgs_per_s":%s,"peer_msgs_per_s":%s,"ratio":%s,' "$ms" "$mp" "$mr"
    printf '"kfleet_process_msgs_per_s":%s,"peer_process_msgs_per_s":%s,"process_ratio":%s},' "$mws" "$mwp" "$mwr"
    printf '"target_ratio":1.0}\n'
} >"$out"
echo "wrote $out"
