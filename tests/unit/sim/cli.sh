#!/bin/sh
# Checks kfleet-sim as a user runs it: help, version, exit codes for bad flags and specs,
# exact event counts, and byte-identical output for the same seed.
# usage: cli.sh <path to kfleet-sim> <source dir>
set -u
sim=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() {
    echo "FAIL: $*" >&2
    exit 1
}

"$sim" --help | grep -q -- "flag --seed" || fail "--help does not describe --seed"
"$sim" --version | grep -q "^kfleet-sim [0-9]" || fail "--version"

"$sim" --bogus >/dev/null 2>"$tmp/err"
[ $? -eq 2 ] || fail "unknown flag must exit 2"
grep -q "unknown flag" "$tmp/err" || fail "unknown flag message: $(cat "$tmp/err")"
"$sim" --events abc >/dev/null 2>"$tmp/err"
[ $? -eq 2 ] || fail "bad --events must exit 2"
"$sim" --to carrier-pigeon >/dev/null 2>"$tmp/err"
[ $? -eq 2 ] || fail "unknown output must exit 2"
"$sim" --to postgres --spec "$src/schemas/sim/shop.yaml" --events 1 >/dev/null 2>"$tmp/err"
[ $? -eq 2 ] || fail "--to postgres without --dsn must exit 2"
grep -q -- "--dsn" "$tmp/err" || fail "missing --dsn message: $(cat "$tmp/err")"
"$sim" --to stdout --resume --spec "$src/schemas/sim/shop.yaml" >/dev/null 2>"$tmp/err"
[ $? -eq 2 ] || fail "--resume with stdout must exit 2"
"$sim" --to mysql --dsn "postgres://x@y/z" --state-dir "" --spec "$src/schemas/sim/shop.yaml" \
    --events 1 >/dev/null 2>"$tmp/err"
[ $? -eq 2 ] || fail "a malformed mysql DSN must exit 2"
"$sim" --to kafka --state-dir "$tmp" --resume --spec "$src/schemas/sim/shop.yaml" \
    --set kafka.bootstrap.servers=127.0.0.1:1 --registry-url http://127.0.0.1:1 >/dev/null 2>"$tmp/err"
[ $? -eq 2 ] || fail "--resume without a progress file must exit 2"
"$sim" --seed 1 --start-time yesterday >/dev/null 2>"$tmp/err"
[ $? -eq 2 ] || fail "bad --start-time must exit 2"

printf 'tables:\n  - name: a\n    columns:\n      - {name: x, type: integr}\n' >"$tmp/bad.yaml"
"$sim" --spec "$tmp/bad.yaml" --events 1 >/dev/null 2>"$tmp/err"
[ $? -eq 2 ] || fail "bad spec must exit 2"
grep -q "bad.yaml:4: column \"x\": unknown type \"integr\"" "$tmp/err" ||
    fail "bad spec message: $(cat "$tmp/err")"

spec="$src/schemas/sim/shop.yaml"
"$sim" --to stdout --spec "$spec" --seed 9 --events 3000 --history "$tmp/h1" >"$tmp/a" 2>/dev/null ||
    fail "run a"
"$sim" --to stdout --spec "$spec" --seed 9 --events 3000 --history "$tmp/h2" >"$tmp/b" 2>/dev/null ||
    fail "run b"
cmp -s "$tmp/a" "$tmp/b" || fail "same seed gave different output"
cmp -s "$tmp/h1" "$tmp/h2" || fail "same seed gave different history"
[ "$(grep -c '"type":"change"' "$tmp/a")" -eq 3000 ] || fail "--events 3000 did not give 3000 changes"
tail -n 1 "$tmp/a" | grep -q '^{"type":"summary",' || fail "no summary line"
[ "$(grep -c '"type":"schema_change"' "$tmp/a")" -eq "$(wc -l <"$tmp/h1")" ] ||
    fail "history and stream disagree on schema changes"
"$sim" --to stdout --spec "$spec" --seed 10 --events 3000 >"$tmp/c" 2>/dev/null || fail "run c"
cmp -s "$tmp/a" "$tmp/c" && fail "another seed gave the same output"
echo "ok"
