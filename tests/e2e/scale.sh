#!/usr/bin/env bash
# End-to-end test of horizontal scale: two replicas each of kfleet-validate and kfleet-sink-pg;
# half-way through, one of each is killed with SIGKILL and restarted. The tables must still
# equal the simulator's rows exactly (exactly-once through the Kafka transactions of validate
# and the sink's sync_markers), and the dead-letter topics hold each injected record once.
set -euo pipefail
build=${1:?usage: tests/e2e/scale.sh BUILD_DIR}
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
for v in KFLEET_BOOTSTRAP KFLEET_REGISTRY_URL KFLEET_PG_DSN; do
    if [[ -z ${!v:-} ]]; then
        echo "e2e_scale: $v is not set: start the stack and run eval \"\$(tools/stack env)\"" >&2
        exit 1
    fi
done
mkdir -p "$build/e2e"
KF_PROG=e2e_scale exec bash "$src/tools/pipeline/pipeline.sh" --build-dir "$build" \
    --events 24000 --rate 4000 --replicas 2 --chaos --json "$build/e2e/scale.json"
