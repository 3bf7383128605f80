#!/usr/bin/env bash
# End-to-end test: the pipeline of tools/run (kfleet-sim -> kfleet-validate -> kfleet-sink-pg,
# each its own process) on the local stack. Passes only when every Postgres table holds exactly
# the simulator's rows minus the quarantined changes, the dead-letter topics hold exactly the
# injected records (per rule, against the simulator's per-constraint counts) and no lag is left.
set -euo pipefail
build=${1:?usage: tests/e2e/pipeline.sh BUILD_DIR}
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
for v in KFLEET_BOOTSTRAP KFLEET_REGISTRY_URL KFLEET_PG_DSN; do
    if [[ -z ${!v:-} ]]; then
        echo "e2e_pipeline: $v is not set: start the stack and run eval \"\$(tools/stack env)\"" >&2
        exit 1
    fi
done
mkdir -p "$build/e2e"
KF_PROG=e2e_pipeline exec bash "$src/tools/pipeline/pipeline.sh" --build-dir "$build" \
    --events 20000 --rate 5000 --json "$build/e2e/pipeline.json"
