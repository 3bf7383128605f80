#!/bin/sh
# Checks kfleet-sim's --strategy as a user runs it: loading errors exit 2 with a clear
# message, a plugin's run is byte-identical for the same seed, forbidden choices are refused
# and reported. The plugins' paths come from the environment (set by CTest).
# usage: strategy_cli.sh <path to kfleet-sim> <source dir>
set -u
sim=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() {
    echo "FAIL: $*" >&2
    exit 1
}
for var in KFLEET_SIM_HOT_KEYS KFLEET_SIM_PROMOTE_ONLY KFLEET_SIM_MISBEHAVE KFLEET_SIM_WRONG_ABI \
    KFLEET_SIM_NO_ENTRY; do
    eval "val=\${$var:-}"
    [ -n "$val" ] || fail "$var is not set: run this test through ctest"
done
spec="$src/schemas/sim/shop.yaml"

# expect_config_error <message part> <kfleet-sim arguments...>
expect_config_error() {
    want=$1
    shift
    "$sim" --to stdout --spec "$spec" --seed 1 --events 10 "$@" >/dev/null 2>"$tmp/err"
    rc=$?
    [ $rc -eq 2 ] || fail "$* exited $rc, not 2: $(cat "$tmp/err")"
    grep -qF -- "$want" "$tmp/err" || fail "$*: message lacks \"$want\": $(cat "$tmp/err")"
}

expect_config_error 'could not load strategy "/nonexistent/lib.so": No such file or directory' \
    --strategy /nonexistent/lib.so
expect_config_error "could not load strategy" --strategy "$spec"
expect_config_error "does not export kf_sim_strategy_entry()" --strategy "$KFLEET_SIM_NO_ENTRY"
expect_config_error "it was built for strategy ABI version 2, this kfleet-sim needs version 1" \
    --strategy "$KFLEET_SIM_WRONG_ABI"
expect_config_error "sim.strategy.args needs sim.strategy" --strategy-args hot=3
expect_config_error 'could not start strategy "hot_keys" with arguments "hot=zero": hot needs' \
    --strategy "$KFLEET_SIM_HOT_KEYS" --strategy-args hot=zero
"$sim" --help | grep -q -- "flag --strategy" || fail "--help does not describe --strategy"

# The same seed, specs and plugin give the same bytes; the plugin changes the stream.
run() {
    "$sim" --to stdout --spec "$spec" --seed 5 --events 5000 "$@" 2>"$tmp/log"
}
run --strategy "$KFLEET_SIM_HOT_KEYS" --strategy-args hot=5,share=0.95 >"$tmp/a" ||
    fail "hot_keys run: $(cat "$tmp/log")"
grep -q 'hot_keys.*loaded from' "$tmp/log" || fail "no strategy line in the log: $(cat "$tmp/log")"
run --strategy "$KFLEET_SIM_HOT_KEYS" --strategy-args hot=5,share=0.95 >"$tmp/b" ||
    fail "second hot_keys run"
cmp -s "$tmp/a" "$tmp/b" || fail "same seed and plugin gave different output"
run >"$tmp/plain" || fail "run without plugin"
cmp -s "$tmp/a" "$tmp/plain" && fail "the plugin did not change the stream"
[ "$(grep -c '"type":"change"' "$tmp/a")" -eq 5000 ] || fail "--events 5000 with a plugin"

# promote_only: schema changes are promotions only.
run --strategy "$KFLEET_SIM_PROMOTE_ONLY" >"$tmp/p" || fail "promote_only run: $(cat "$tmp/log")"
grep -q '"action":"promote"' "$tmp/p" || fail "promote_only promoted nothing"
grep '"type":"schema_change"' "$tmp/p" | grep -v '"action":"promote"' >/dev/null &&
    fail "promote_only made other schema changes"

# A plugin asking to drop protected columns is refused, logged, and the run still ends well.
run --strategy "$KFLEET_SIM_MISBEHAVE" --strategy-args drop_protected >"$tmp/m" ||
    fail "misbehaving run: $(cat "$tmp/log")"
grep -q "strategy choice refused" "$tmp/log" || fail "refusals not logged: $(cat "$tmp/log")"
grep -q 'msg="strategy choices refused".*refused=[1-9]' "$tmp/log" ||
    fail "no count of refusals in the summary: $(cat "$tmp/log")"
grep -q "the column is protected\|key columns are never dropped\|the update column is never dropped" \
    "$tmp/log" || fail "refusal reason missing: $(cat "$tmp/log")"
tail -n 1 "$tmp/m" | grep -q '^{"type":"summary",' || fail "no summary after refusals"

# A plugin that fails stops the run as a runtime failure (exit 1).
run --strategy "$KFLEET_SIM_MISBEHAVE" --strategy-args fail >/dev/null
rc=$?
[ $rc -eq 1 ] || fail "a failing plugin exited $rc, not 1"
grep -q 'failed choosing a mutation' "$tmp/log" || fail "plugin failure message: $(cat "$tmp/log")"
echo "ok"
