# pgsteward: `make demo` shows it working, `make test` runs every test.
SHELL := /bin/bash
export PATH := $(CURDIR)/.venv/bin:$(PATH)
export CARGO_TERM_COLOR ?= never

.PHONY: setup demo test test-rust test-infra package bench clean

setup:
	@scripts/ensure-tools.sh infra

## A throwaway PostgreSQL and moto, a sample schema with a bloated table and an
## idle-in-transaction session, health-check through the CLI and as a Lambda handler.
demo:
	@scripts/ensure-tools.sh
	@scripts/demo.sh

## Every Rust and infra test. One build of the workspace (debug, shared target/) serves
## the unit tests, the integration tests and the binaries they run.
test: setup test-rust test-infra

test-rust:
	cargo build --workspace --all-targets --locked
	cargo test --workspace --locked

test-infra:
	cd infra && npm ci --no-audit --no-fund --loglevel=error && npm test

## Lambda binaries for provided.al2023 (target/lambda/<fn>/bootstrap), glibc checked.
package:
	@scripts/package.sh

## health-check: init time vs a hello-world lambda_runtime binary, size, peak RSS;
## vacuum-sweep: wall time vs vacuumdb, planning time for 10,000 tables (release builds);
## pitr-restore: the whole checklist's overhead beyond ANALYZE, vs psql by hand;
## backup-verify: RTO/RPO of the logical drill of ~200 MB and its split, vs pg_restore + psql by hand.
bench:
	@scripts/ensure-tools.sh
	@EXTRA_PACKAGES="hello-lambda pgsteward-cli" scripts/package.sh
	@bench/run.sh
	@bench/vacuum.sh
	@bench/snapshot.sh
	@bench/retention.sh
	@bench/pitr-restore.sh
	@bench/backup-verify.sh

clean:
	cargo clean
	rm -rf .venv infra/node_modules infra/cdk.out
