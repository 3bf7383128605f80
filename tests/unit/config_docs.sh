#!/bin/sh
# Checks that docs/config/ is in step with the programs' key tables: regenerates the references
# into a temporary directory and compares. Fix a failure with: tools/gen-config-docs BUILD_DIR
set -eu
src=$1
build=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$src/tools/gen-config-docs" "$build" "$tmp" >/dev/null
status=0
for f in "$tmp"/*.md; do
    name=$(basename "$f")
    if ! diff -u "$src/docs/config/$name" "$f"; then
        echo "docs/config/$name is out of date: run tools/gen-config-docs $build" >&2
        status=1
    fi
done
exit $status
