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
trap 'rm -rf "$tmp"' EXIT

now_ns() { date +%s%N; }

run_sim() { # $1 = topic prefix; prints messages/s over the whole process
    t0=$(now_ns)
    "$sim" --spec "$here/bench_sim.yaml" --seed 1 --events "$events" --topic-prefix "$1" \
        --partitions $partitions --state-dir "" --log-level warn \
        --set kafka.bootstrap.servers="$KFLEET_BOOTSTRAP" --set kafka.acks=all \
        --set kafka.enable.idempotence=true --set kafka.linger.ms=$linger \
        --set kafka.batch.size=$batch --set kafka.compression.type=none >/dev/null
    t1=$(now_ns)
    awk -v n="$events" -v ns=$((t1 - t0)) 'BEGIN { printf "%.0f\n", n / (ns / 1e9) }'
}

run_peer() { # $1 = topic; prints records/s as the tool reports it
    "$bin/kafka-topics" --bootstrap-server "$KFLEET_BOOTSTRAP" --create --topic "$1" \
        --partitions $partitions >/dev/null 2>&1
    "$bin/kafka-producer-perf-test" --topic "$1" --num-records "$events" --record-size 250 \
        --throughput -1 --producer-props bootstrap.servers="$KFLEET_BOOTSTRAP" acks=all \
        enable.idempotence=true linger.ms=$linger batch.size=$batch compression.type=none \
        2>/dev/null | tail -n 1 >"$tmp/peer"
    awk '{ printf "%.0f\n", $4 }' "$tmp/peer"
}

printf '%-5s %14s %14s %7s\n' pair "kfleet-sim/s" "perf-test/s" ratio
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
    r=$(awk -v s="$s" -v p="$p" 'BEGIN { printf "%.3f", s / p }')
    printf '%-5s %14s %14s %7s\n' "$i" "$s" "$p" "$r"
    echo "$i $s $p $r" >>"$tmp/rows"
    i=$((i + 1))
done
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ms=$(awk '{ print $2 }' "$tmp/rows" | median)
mp=$(awk '{ print $3 }' "$tmp/rows" | median)
mr=$(awk '{ print $4 }' "$tmp/rows" | median)
printf '%-5s %14s %14s %7s\n' median "$ms" "$mp" "$mr"
echo "settings: $events messages per run, kfleet-sim events ~250 B (Avro envelope + key), peer" \
    "records 250 B, $partitions partitions, acks=all, idempotence on, linger.ms=$linger," \
    "batch.size=$batch, no compression; kfleet-sim timed as a whole process (start-up," \
    "topic creation and schema registration included), the peer as it reports itself"
{
    printf '{"benchmark":"sim_produce","events":%s,"pairs":%s,' "$events" "$pairs"
    printf '"settings":{"message_bytes":250,"partitions":%s,"acks":"all","idempotence":true,' $partitions
    printf '"linger_ms":%s,"batch_size":%s,"compression":"none"},"runs":[' $linger $batch
    awk '{ printf "%s{\"pair\":%s,\"kfleet_msgs_per_s\":%s,\"peer_msgs_per_s\":%s,\"ratio\":%s}", (NR > 1 ? "," : ""), $1, $2, $3, $4 }' "$tmp/rows"
    printf '],"median":{"kfleet_msgs_per_s":%s,"peer_msgs_per_s":%s,"ratio":%s},"target_ratio":1.0}\n' "$ms" "$mp" "$mr"
} >"$out"
echo "wrote $out"
