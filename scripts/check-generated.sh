#!/usr/bin/env bash
# check-generated.sh fails when `sqlc generate` would change the generated
# code in internal/db/dbgen. It generates into a temporary copy, so it works
# on a dirty tree and never touches the files of the tree.
set -euo pipefail

cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

mkdir -p "$tmp/internal/db"
cp sqlc.yaml "$tmp/"
cp -R sql "$tmp/sql"
cp -R internal/db/dbgen "$tmp/internal/db/dbgen"

go tool sqlc generate -f "$tmp/sqlc.yaml"

if ! diff -ru internal/db/dbgen "$tmp/internal/db/dbgen" >"$tmp/diff"; then
	cat "$tmp/diff"
	echo
	echo "check-generated: internal/db/dbgen is out of date with sql/ and sqlc.yaml." >&2
	echo "check-generated: run 'make generate' and commit the result." >&2
	exit 1
fi
echo "check-generated: internal/db/dbgen matches sqlc generate"
