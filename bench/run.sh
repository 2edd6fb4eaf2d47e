#!/usr/bin/env bash
# The health-check benchmark: release Lambda binaries (built by `make package`, the same
# cargo-lambda build that ships) measured side by side with a hello-world lambda_runtime
# binary and with psql. Prints a markdown table; paste it into the README's Performance.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-25}
if [ ! -x target/lambda/health-check/bootstrap ] || [ ! -x target/lambda/hello-lambda/bootstrap ]; then
  EXTRA_PACKAGES=hello-lambda scripts/package.sh
fi
cargo build -q -p pgsteward-tests --bin bench-health-check
echo "machine: $(nproc) cores, $(uname -m), $(date -u +%Y-%m-%d)"
target/debug/bench-health-check target/lambda/health-check/bootstrap target/lambda/hello-lambda/bootstrap "$runs"
