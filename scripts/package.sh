#!/usr/bin/env bash
# Builds the Lambda binaries for provided.al2023 with cargo-lambda into target/lambda/<fn>/,
# adds the RDS CA bundle when it has been fetched (scripts/fetch-rds-ca.sh), and checks that
# no binary needs a glibc newer than Amazon Linux 2023's 2.34.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"   # cargo-lambda and its zig
arch=${ARCH:-x86_64}   # or arm64
functions=(health-check vacuum-sweep snapshot retention-prune pitr-restore backup-verify)
max_glibc=2.34

scripts/ensure-tools.sh
if ! .venv/bin/cargo-lambda --version >/dev/null 2>&1; then
  .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements-package.txt
fi
flags=(--release)
[ "$arch" = arm64 ] && flags+=(--arm64)
pkgs=(); for f in "${functions[@]}" ${EXTRA_PACKAGES:-}; do pkgs+=(-p "$f"); done
.venv/bin/cargo-lambda lambda build "${flags[@]}" "${pkgs[@]}"

status=0
for f in "${functions[@]}"; do
  bin=target/lambda/$f/bootstrap
  [ -f certs/rds-ca-bundle.pem ] && cp certs/rds-ca-bundle.pem "target/lambda/$f/"
  need=$(objdump -T "$bin" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -1)
  size=$(stat -c %s "$bin")
  if [ "$(printf '%s\n%s\n' "$need" "$max_glibc" | sort -V | tail -1)" != "$max_glibc" ]; then
    echo "$f: needs glibc $need, newer than provided.al2023's $max_glibc" >&2
    status=1
  fi
  printf '%-14s %s  %.1f MiB  glibc >= %s\n' "$f" "$bin" "$(echo "$size / 1048576" | bc -l)" "$need"
done
[ -f certs/rds-ca-bundle.pem ] || echo "note: certs/rds-ca-bundle.pem is missing; run scripts/fetch-rds-ca.sh before deploying" >&2
exit $status
