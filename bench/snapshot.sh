#!/usr/bin/env bash
# The logical-backup benchmark: the release `pgsteward` (built by `make package`) streaming
# pg_dump into S3, against pg_dump writing a file, at two sizes. S3 twice: moto (Python, on the
# same cores as pg_dump and PostgreSQL) and a discard sink (tests/src/s3_sink.rs: takes the
# upload and drops the bytes, next to no CPU), which separates our streaming cost from the
# emulator's. Each of the three runs ROUNDS times (default 3), in an order rotated each round;
# figures are medians and each ratio shows its range over the rounds. Markdown output:
# throughput and peak RSS, then CPU seconds and pg_dump's waits, then the row count alone.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=${SIZES_MB:-200,1000}
if [ ! -x target/lambda/pgsteward/bootstrap ]; then
  EXTRA_PACKAGES="hello-lambda pgsteward-cli" scripts/package.sh
fi
cargo build -q -p pgsteward-tests --bin bench-snapshot
echo "machine: $(nproc) cores, $(uname -m), $(date -u +%Y-%m-%d); $(pg_dump --version)"
target/debug/bench-snapshot target/lambda/pgsteward/bootstrap "$sizes" "${ROUNDS:-3}"
