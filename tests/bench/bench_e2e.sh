#!/usr/bin/env bash
# End-to-end benchmark: kfleet-sim -> kfleet-validate -> kfleet-sink-pg on the local stack.
# Run 1 produces as fast as the simulator can: the sustained events/s from the first produce
# to the last Postgres commit is the peak. Run 2 produces at half of that peak with the
# workers set for latency (LATENCY_SETTINGS below): p50/p99 latency from each event's Kafka
# timestamp to the sink's commit (sampled every 20 ms), after a warm-up, and per stage (to the
# input topic, to validate's commit). Both runs start producing only once every worker has
# joined its group. Every worker runs under /usr/bin/time -v for its peak RSS. JSON, a
# tab-separated series and a PNG chart (gnuplot) go under <build>/bench/. Goals (BENCH.md):
# >= 20000 events/s, p99 <= 250 ms at half of peak, <= 50 MB RSS per worker; the figures are
# reported as measured.
set -euo pipefail

export KF_PROG=bench_e2e
KF_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=tools/lib/common.sh source-path=SCRIPTDIR/../..
source "$KF_ROOT/tools/lib/common.sh"

usage() {
    cat <<USAGE
usage: tests/bench/bench_e2e.sh [--short] [--build-dir DIR] [--out FILE] [--events N]

  --short          CI mode: small runs that prove the benchmark works (figures not meaningful)
  --build-dir DIR  the build to measure (default build-run/, optimized)
  --out FILE       the JSON result (default <build-dir>/bench/e2e.json; the chart is .png beside it)
  --events N       events of the peak run (default 400000; --short 20000)
  --flush DUR      the sink's flush interval in the half-rate run (default 20ms)
  --commit DUR     validate's commit interval in the half-rate run (default 20ms)
USAGE
}

BUILD_DIR=$KF_ROOT/build-run
OUT=
SHORT=false
EVENTS=
FLUSH=20ms
COMMIT=20ms
while (($# > 0)); do
    case $1 in
    -h | --help) usage && exit 0 ;;
    --short) SHORT=true ;;
    --build-dir) BUILD_DIR=$2 && shift ;;
    --out) OUT=$2 && shift ;;
    --events) EVENTS=$2 && shift ;;
    --flush) FLUSH=$2 && shift ;;
    --commit) COMMIT=$2 && shift ;;
    *) usage >&2 && exit 2 ;;
    esac
    shift
done
BUILD_DIR=$(cd "$BUILD_DIR" && pwd)
OUT=${OUT:-$BUILD_DIR/bench/e2e.json}
EVENTS=${EVENTS:-$($SHORT && echo 20000 || echo 400000)}
HALF_SECONDS=$($SHORT && echo 5 || echo 40)
# The latency percentiles leave out the events of the first seconds of the half-rate run
# (first fetches, metadata, first transactions); they are also reported over every event.
WARMUP_SECONDS=$($SHORT && echo 1 || echo 5)
# Worker settings of the half-rate run, for latency (p99 <= 250 ms leaves each of the two
# stages about 100 ms):
# - validate commits a transaction at the latest COMMIT after its first record (default
#   100 ms, which alone is ~100 ms of the p99 at this rate);
# - (validate's transactional producer retries a request the coordinator refuses while the
#   previous transaction's markers are still being written after retry.backoff.ms: librdkafka's
#   default 100 ms put ~100 ms gaps between validate's commits, so validate sets 10 ms itself);
# - the sink applies a table's batch at the latest FLUSH after its first change (at this rate
#   a table's batch never fills to sink.batch.size first).
LATENCY_SETTINGS=(--validate-set "validate.commit.interval=$COMMIT" --sink-flush "$FLUSH")
# Settings of both runs, for memory (every worker <= 50 MB): what the workers hold besides
# their code and the contracts' unique windows is prefetched records (librdkafka's consumer
# queue; its per-record overhead is not counted in queued.max.messages.kbytes) and the sink's
# batches (held Kafka messages plus encoded rows). kfleet-validate's own defaults bound its
# prefetch (2 MiB, 1000 records per partition, 1 MiB fetches); the sink's batches are bounded
# here below its defaults (50000 rows / 4 MiB per table, for bulk loads). These bounds cost no
# throughput here.
MEMORY_SETTINGS=(--sink-set sink.batch.max.rows=5000 --sink-set sink.batch.max.bytes=2097152)
PEAK_SINK_BATCH=5000
mkdir -p "$(dirname "$OUT")"
WORK=$(dirname "$OUT")/e2e
rm -rf "$WORK"
mkdir -p "$WORK"

for v in KFLEET_BOOTSTRAP KFLEET_REGISTRY_URL KFLEET_PG_DSN; do
    [[ -n ${!v:-} ]] || kf_die "$v is not set: start the stack and run eval \"\$(tools/stack env)\""
done
if [[ ! -x /usr/bin/time ]] || ! command -v gnuplot >/dev/null; then
    kf_apt_install time gnuplot-nox
fi
command -v jq >/dev/null || kf_apt_install jq

# One pipeline run; its report JSON is $WORK/<name>.json, its series $WORK/<name>.tsv.
run() {
    local name=$1
    shift
    kf_say "$name: $*"
    KF_PROG=bench_e2e "$KF_ROOT/tools/pipeline/pipeline.sh" --build-dir "$BUILD_DIR" --time \
        --run-dir "$WORK/$name" --json "$WORK/$name.json" --series "$WORK/$name.tsv" "$@" \
        >"$WORK/$name.report" 2>&1 || {
        cat "$WORK/$name.report" >&2
        kf_die "the $name run failed (report above, files in $WORK/$name)"
    }
}

# Peak RSS (kB) per worker of a run, as a JSON object.
rss_json() {
    local dir=$1 f first=true
    printf '{'
    for f in "$dir"/*.time; do
        [[ -f $f ]] || continue
        $first || printf ','
        first=false
        printf '"%s":%s' "$(basename "$f" .time)" \
            "$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$f")"
    done
    printf '}'
}

run peak --events "$EVENTS" --rate 0 --sink-batch "$PEAK_SINK_BATCH" "${MEMORY_SETTINGS[@]}"
PEAK=$(jq -r '.latency.events_per_s | floor' "$WORK/peak.json")
HALF=$((PEAK / 2))
((HALF > 0)) || kf_die "the peak run measured no throughput"
run half --events $((HALF * (HALF_SECONDS + WARMUP_SECONDS))) --rate "$HALF" \
    --warmup "${WARMUP_SECONDS}s" "${MEMORY_SETTINGS[@]}" "${LATENCY_SETTINGS[@]}"

P50=$(jq -r '.latency.p50_ms' "$WORK/half.json")
P99=$(jq -r '.latency.p99_ms' "$WORK/half.json")
ALL_P99=$(jq -r '.latency.all_p99_ms' "$WORK/half.json")
# The simulator changes schemas in a burst during the first seconds of a run (about ten a
# second, each a DDL in the sink); the sustained figure leaves out the warm-up after the last.
SETTLED_P50=$(jq -r '.latency.after_evolution.p50_ms // "null"' "$WORK/half.json")
SETTLED_P99=$(jq -r '.latency.after_evolution.p99_ms // "null"' "$WORK/half.json")
SETTLED_FROM=$(jq -r '.latency.after_evolution.from_s // "null"' "$WORK/half.json")
stage() { jq -r "(.latency.$1 // {}) | \"p50 \\(.p50_ms // \"?\") ms, p99 \\(.p99_ms // \"?\") ms\"" "$WORK/half.json"; }
RSS_PEAK=$(rss_json "$WORK/peak")
RSS_HALF=$(rss_json "$WORK/half")
MAX_RSS=$(jq -n --argjson a "$RSS_PEAK" --argjson b "$RSS_HALF" \
    '[($a | to_entries[] | select(.key != "watch") | .value), ($b | to_entries[] | select(.key != "watch") | .value)] | max')
jq -n --argjson short "$SHORT" --argjson events "$EVENTS" --argjson peak "$PEAK" \
    --argjson half "$HALF" --argjson p50 "$P50" --argjson p99 "$P99" \
    --argjson peak_batch "$PEAK_SINK_BATCH" --argjson half_s "$HALF_SECONDS" \
    --argjson warmup_s "$WARMUP_SECONDS" --arg flush "$FLUSH" --arg commit "$COMMIT" \
    --argjson rss_peak "$RSS_PEAK" --argjson rss_half "$RSS_HALF" --argjson max_rss "$MAX_RSS" \
    --slurpfile peak_report "$WORK/peak.json" --slurpfile half_report "$WORK/half.json" '{
  benchmark: "e2e",
  short: $short,
  settings: {spec: "schemas/sim/shop.yaml", seed: 42, partitions: 3, replicas: 1,
             sim: "acks=all, idempotent, linger.ms=5, ~250 B Avro values",
             validate: "exactly-once (one Kafka transaction per batch, batch.size 2000)",
             peak_events: $events, peak_rate: "unpaced", peak_sink_batch: $peak_batch,
             peak_sink_flush: "100ms",
             half_rate: $half, half_seconds: $half_s, half_warmup_s: $warmup_s,
             half_sink_flush: $flush, half_validate_commit_interval: $commit,
             half_validate_retry_backoff_ms: 10,
             memory: {validate: {"queued.max.messages.kbytes": 2048, "queued.min.messages": 5000},
                      sink: {"queued.max.messages.kbytes": 2048, "sink.batch.max.rows": 5000,
                             "sink.batch.max.bytes": 2097152}},
             latency_sampling_ms: 20, build: "as given by --build-dir"},
  peak_events_per_s: $peak,
  half_rate_events_per_s: $half,
  half_rate_p50_ms: $p50,
  half_rate_p99_ms: $p99,
  half_rate_p99_ms_every_event: $half_report[0].latency.all_p99_ms,
  half_rate_after_evolution: $half_report[0].latency.after_evolution,
  half_rate_stages: {appended: $half_report[0].latency.appended,
                     validated: $half_report[0].latency.validated,
                     sink_committed: {p50_ms: $p50, p99_ms: $p99}},
  peak_rss_kb: {peak_run: $rss_peak, half_run: $rss_half, max_worker: $max_rss},
  goals: {events_per_s: {goal: 20000, met: ($peak >= 20000)},
          p99_ms_at_half_peak: {goal: 250, met: ($p99 != null and $p99 <= 250)},
          p99_ms_at_half_peak_after_evolution: {goal: 250,
              met: (($half_report[0].latency.after_evolution.p99_ms // 1e9) <= 250)},
          rss_mb_per_worker: {goal: 50, met: ($max_rss <= 51200)}},
  checks_passed: ($peak_report[0].pass and $half_report[0].pass),
  series: {peak: $peak_report[0].latency.series, half: $half_report[0].latency.series}
}' >"$OUT"

PNG=${OUT%.json}.png
gnuplot <<GNUPLOT
set terminal pngcairo size 1200,800 noenhanced
set output "$PNG"
set multiplot layout 2,1 title "kfleet end to end: sim -> validate -> sink-pg (2 cores, Kafka and Postgres on the same box)"
set grid
set xlabel "seconds since the first event"
set ylabel "events/s committed to Postgres"
set y2label "latency ms"
set ytics nomirror
set y2tics
set title "unpaced (peak $PEAK events/s)"
plot "$WORK/peak.tsv" using 1:2 with lines lw 2 title "events/s", \
     "" using 1:4 axes x1y2 with lines title "p99 ms", "" using 1:3 axes x1y2 with lines title "p50 ms"
set title "at half of peak ($HALF events/s; validate commit $COMMIT, sink flush $FLUSH): p50 $P50 ms, p99 $P99 ms after ${WARMUP_SECONDS} s\nafter the schema evolution (from ${SETTLED_FROM} s): p50 $SETTLED_P50 ms, p99 $SETTLED_P99 ms"
plot "$WORK/half.tsv" using 1:2 with lines lw 2 title "events/s", \
     "" using 1:4 axes x1y2 with lines title "p99 ms", "" using 1:3 axes x1y2 with lines title "p50 ms"
unset multiplot
GNUPLOT

printf '\n%-36s %12s %10s %s\n' "end to end" "measured" "goal" "met"
printf '%-36s %12s %10s %s\n' "events/s (unpaced, to Postgres)" "$PEAK" ">= 20000" \
    "$(jq -r '.goals.events_per_s.met' "$OUT")"
printf '%-36s %12s %10s %s\n' "p99 ms at $HALF events/s" "$P99" "<= 250" \
    "$(jq -r '.goals.p99_ms_at_half_peak.met' "$OUT")"
printf '%-36s %12s %10s\n' "p50 ms at $HALF events/s" "$P50" ""
printf '%-36s %12s %10s %s\n' "p99 ms after the schema evolution" "$SETTLED_P99" "<= 250" \
    "$(jq -r '.goals.p99_ms_at_half_peak_after_evolution.met' "$OUT")"
printf '%-36s %12s %10s\n' "p50 ms after the schema evolution" "$SETTLED_P50" ""
printf '  (after the schema evolution: events from %s s on, %s s after the last schema change)\n' \
    "$SETTLED_FROM" "$WARMUP_SECONDS"
printf '  stages at %s events/s (from the event timestamp):\n' "$HALF"
printf '    appended to the input topic      %s\n' "$(stage appended)"
printf '    committed by validate            %s\n' "$(stage validated)"
printf '    committed by the sink            p50 %s ms, p99 %s ms (every event: p99 %s ms)\n' \
    "$P50" "$P99" "$ALL_P99"
printf '%-36s %12s %10s %s\n' "largest worker peak RSS (MB)" "$((MAX_RSS / 1024))" "<= 50" \
    "$(jq -r '.goals.rss_mb_per_worker.met' "$OUT")"
printf 'peak RSS kB, unpaced run: %s\n' "$RSS_PEAK"
printf 'peak RSS kB, half-rate run: %s\n' "$RSS_HALF"
$SHORT && printf '(short mode: small runs, figures not meaningful)\n'
printf 'JSON %s, chart %s, reports and logs in %s\n' "$OUT" "$PNG" "$WORK"
jq -e '.checks_passed' "$OUT" >/dev/null || kf_die "a run's report did not check out"
