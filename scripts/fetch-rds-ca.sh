#!/usr/bin/env bash
# Fetches the RDS CA bundle (all Regions) that the functions verify database certificates
# against; `make package` ships it next to each bootstrap as rds-ca-bundle.pem.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p certs
curl -fsSL https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem -o certs/rds-ca-bundle.pem
grep -c 'BEGIN CERTIFICATE' certs/rds-ca-bundle.pem | xargs echo "certificates:"
