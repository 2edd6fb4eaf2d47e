#!/usr/bin/env bash
# The vacuum-sweep benchmark: the release `pgsteward` (built by `make package`) side by side
# with vacuumdb on a throwaway cluster. Prints a markdown table for the README.
set -euo pipefail
cd "$(dirname "$0")/.."
tables=${TABLES:-300} jobs=${JOBS:-2} plan_tables=${PLAN_TABLES:-10000}
if [ ! -x target/lambda/pgsteward/bootstrap ]; then
  EXTRA_PACKAGES="hello-lambda pgsteward-cli" scripts/package.sh
fi
command -v vacuumdb >/dev/null || { echo "vacuumdb is missing: apt-get install postgresql-client" >&2; exit 1; }
cargo build -q -p pgsteward-tests --bin bench-vacuum-sweep
echo "machine: $(nproc) cores, $(uname -m), $(date -u +%Y-%m-%d); vacuumdb $(vacuumdb --version | awk '{print $3}')"
target/debug/bench-vacuum-sweep target/lambda/pgsteward/bootstrap "$tables" "$jobs" "$plan_tables"
