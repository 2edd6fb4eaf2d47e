#!/usr/bin/env bash
# The logical-backup benchmark: the release `pgsteward` (built by `make package`) streaming
# pg_dump into S3 on moto, against pg_dump writing a file, at two sizes. Markdown output.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=${SIZES_MB:-200,1000}
if [ ! -x target/lambda/pgsteward/bootstrap ]; then
  EXTRA_PACKAGES="hello-lambda pgsteward-cli" scripts/package.sh
fi
cargo build -q -p pgsteward-tests --bin bench-snapshot
echo "machine: $(nproc) cores, $(uname -m), $(date -u +%Y-%m-%d); $(pg_dump --version)"
target/debug/bench-snapshot target/lambda/pgsteward/bootstrap "$sizes"
