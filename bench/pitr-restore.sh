#!/usr/bin/env bash
# The pitr-restore benchmark: the whole RestoreChecklist (validate, restore, wait, row counts,
# ANALYZE, connectivity, smoke, cut-over, report) as invocations of the release Lambda binary
# on a local Runtime API, against moto and a local database of TABLES tables, side by side
# with psql running the same checks by hand. Markdown output.
set -euo pipefail
cd "$(dirname "$0")/.."
tables=${TABLES:-300} rounds=${ROUNDS:-5}
bin=target/lambda/pitr-restore/bootstrap
if [ ! -x "$bin" ] || [ -n "$(find functions/core/src functions/pitr-restore/src -newer "$bin" -name '*.rs' | head -1)" ]; then
  scripts/ensure-tools.sh
  export PATH="$PWD/.venv/bin:$PATH"   # cargo-lambda and its zig
  .venv/bin/cargo-lambda --version >/dev/null 2>&1 ||
    .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements-package.txt
  .venv/bin/cargo-lambda lambda build --release -p pitr-restore >&2
fi
cargo build -q -p pgsteward-tests --bin bench-pitr-restore
echo "machine: $(nproc) cores, $(uname -m), $(date -u +%Y-%m-%d); $(psql --version)"
target/debug/bench-pitr-restore "$bin" "$tables" "$rounds"
