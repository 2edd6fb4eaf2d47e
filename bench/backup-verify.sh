#!/usr/bin/env bash
# The backup-verify benchmark: the logical drill (pick, verify, teardown) of a database of
# SIZE_MB as invocations of the release Lambda binary on a local Runtime API, against a dump
# the snapshot task streamed into moto S3; RTO, RPO and the split between download + SHA-256,
# pg_restore (--jobs=1 and by size/cores), row counts and amcheck; side by side with
# sha256sum + createdb + pg_restore + a psql count per table by hand. Markdown output.
set -euo pipefail
cd "$(dirname "$0")/.."
size=${SIZE_MB:-200} rounds=${ROUNDS:-3}
bin=target/lambda/backup-verify/bootstrap
if [ ! -x "$bin" ] || [ -n "$(find functions/core/src functions/backup-verify/src -newer "$bin" -name '*.rs' | head -1)" ]; then
  scripts/ensure-tools.sh
  export PATH="$PWD/.venv/bin:$PATH"   # cargo-lambda and its zig
  .venv/bin/cargo-lambda --version >/dev/null 2>&1 ||
    .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements-package.txt
  .venv/bin/cargo-lambda lambda build --release -p backup-verify >&2
fi
cargo build -q -p pgsteward-tests --bin bench-backup-verify
echo "machine: $(nproc) cores, $(uname -m), $(date -u +%Y-%m-%d); $(psql --version)"
target/debug/bench-backup-verify "$bin" "$size" "$rounds"
