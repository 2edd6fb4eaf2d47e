#!/usr/bin/env bash
# The retention-prune benchmark: RDS API calls and time to plan over 5,000 managed snapshots
# (moto, paged by 100 like RDS), and archive-then-delete of old rows with the release
# `pgsteward` (built by `make package`) against psql's \copy to gzip. Markdown output.
set -euo pipefail
cd "$(dirname "$0")/.."
snapshots=${SNAPSHOTS:-5000} rows=${ROWS:-250000,1000000}
if [ ! -x target/lambda/pgsteward/bootstrap ]; then
  EXTRA_PACKAGES="hello-lambda pgsteward-cli" scripts/package.sh
fi
cargo build -q -p pgsteward-tests --bin bench-retention
echo "machine: $(nproc) cores, $(uname -m), $(date -u +%Y-%m-%d); $(psql --version)"
target/debug/bench-retention target/lambda/pgsteward/bootstrap "$snapshots" "$rows"
