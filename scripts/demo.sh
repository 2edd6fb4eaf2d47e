#!/usr/bin/env bash
# The demo: a throwaway PostgreSQL (TLS with a CA made for the run) and a moto server, a
# sample schema with a bloated table and a session idle in a transaction, then health-check
# through the CLI (table) and through the Lambda handler (secret from Secrets Manager,
# report to EventBridge, remediation dry run). Everything is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
pg_bin=${PG_BIN:-$(dirname "$(command -v initdb 2>/dev/null || ls /usr/lib/postgresql/*/bin/initdb | tail -1)")}

step "building the pgsteward command"
cargo build -q -p pgsteward-cli
pgsteward=$root/target/debug/pgsteward

work=$(mktemp -d /tmp/pgsteward-demo.XXXXXX)
chmod 755 "$work"
pg_port=$(free_port); moto_port=$(free_port)
cleanup() {
  exec 7>&- 2>/dev/null || true
  [ -n "${idle_pid:-}" ] && kill "$idle_pid" 2>/dev/null || true
  [ -n "${moto_pid:-}" ] && kill "$moto_pid" 2>/dev/null || true
  [ -f "$work/data/postmaster.pid" ] && as_pg "$pg_bin/pg_ctl" -D "$work/data" stop -m fast >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

step "starting a throwaway PostgreSQL on 127.0.0.1:$pg_port (TLS, CA generated for this run)"
(
  cd "$work"
  openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj '/CN=pgsteward demo CA' -keyout ca.key -out ca.crt 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj '/CN=localhost' -keyout server.key -out server.csr 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' >ext.cnf
  openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 -extfile ext.cnf -out server.crt 2>/dev/null
  chmod 600 server.key
  echo demo-superuser-pw >pwfile
)
[ "$(id -u)" = 0 ] && chown -R postgres "$work"
as_pg "$pg_bin/initdb" -D "$work/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
  --pwfile="$work/pwfile" --no-sync >/dev/null
cat >>"$work/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $pg_port
unix_socket_directories = '$work'
ssl = on
ssl_cert_file = '$work/server.crt'
ssl_key_file = '$work/server.key'
fsync = off
CONF
as_pg "$pg_bin/pg_ctl" -D "$work/data" -l "$work/server.log" -w start >/dev/null
export PGPASSWORD=demo-superuser-pw
psql_demo() { psql -q -X -v ON_ERROR_STOP=1 "host=127.0.0.1 port=$pg_port user=postgres dbname=${1}" "${@:2}"; }

step "sample schema: shop.orders with half its rows dead, a session idle in a transaction"
# pgsteward owns the database: VACUUM needs the table's or the database's owner (PostgreSQL 15).
psql_demo postgres <<'SQL'
CREATE ROLE app LOGIN PASSWORD 'app-pw';
CREATE ROLE pgsteward LOGIN PASSWORD 'steward-pw' IN ROLE pg_monitor, pg_signal_backend, pg_read_all_data;
CREATE DATABASE shop OWNER pgsteward;
SQL
psql_demo shop <<'SQL'
CREATE TABLE customers (id int PRIMARY KEY, name text);
INSERT INTO customers SELECT g, 'customer ' || g FROM generate_series(1, 2000) g;
ANALYZE customers;
CREATE TABLE orders (id int PRIMARY KEY, customer text, total numeric) WITH (autovacuum_enabled = false);
INSERT INTO orders SELECT g, 'customer ' || g % 100, g * 1.5 FROM generate_series(1, 50000) g;
DELETE FROM orders WHERE id % 5 <> 0;
GRANT SELECT ON orders TO app;
DO $$ BEGIN PERFORM pg_stat_force_next_flush(); END $$;
SQL
# The app's forgotten transaction: BEGIN, one query, then nothing (psql reads a fifo we keep open).
mkfifo "$work/idle.sql"
PGPASSWORD=app-pw psql -q -X "host=127.0.0.1 port=$pg_port user=app dbname=shop" <"$work/idle.sql" >/dev/null 2>&1 &
idle_pid=$!
exec 7>"$work/idle.sql"
printf 'BEGIN;\nSELECT count(*) FROM orders;\n' >&7

step "starting moto (AWS API emulator) on 127.0.0.1:$moto_port"
.venv/bin/python -m moto.server -H 127.0.0.1 -p "$moto_port" >"$work/moto.log" 2>&1 &
moto_pid=$!
for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/$moto_port) 2>/dev/null && break; sleep 0.1; done
export AWS_ENDPOINT_URL=http://127.0.0.1:$moto_port AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
secret_arn=$(.venv/bin/python - "$pg_port" <<'PY'
import json, sys, boto3
sm = boto3.client("secretsmanager")
secret = {"engine": "postgres", "host": "localhost", "port": int(sys.argv[1]),
          "username": "pgsteward", "password": "steward-pw", "dbname": "shop"}
print(sm.create_secret(Name="pgsteward/shop", SecretString=json.dumps(secret))["ARN"])
PY
)
echo "secret: $secret_arn"

# Demo thresholds: the idle session trips the alert in seconds instead of minutes.
export PGSTEWARD_THRESHOLDS='{"longestIdleInTransactionSeconds":{"warning":2,"critical":4}}'
sleep 5

url="postgresql://pgsteward:steward-pw@localhost:$pg_port/shop?sslrootcert=$work/ca.crt"
step "pgsteward health-check --database-url 'postgresql://pgsteward:***@localhost:$pg_port/shop?sslrootcert=…'"
"$pgsteward" health-check --database-url "$url"

summary() { .venv/bin/python -c 'import json,sys; r=json.load(sys.stdin); print(json.dumps({k: r[k] for k in ("task","target","dryRun","done","skipped","warnings")}, indent=2))'; }
export PGSTEWARD_DB_SECRET_ARN=$secret_arn PGSTEWARD_CA_BUNDLE=$work/ca.crt PGSTEWARD_EVENT_BUS=default
export PGSTEWARD_DB_IDENTIFIER=orders-prod
step "the Lambda handler, credentials from Secrets Manager: remediation dry run (events/health-check/terminate-idle-dry-run.json)"
"$pgsteward" invoke health-check --event events/health-check/terminate-idle-dry-run.json | summary

step "the idle-in-transaction CloudWatch alarm arrives (events/health-check/alarm-idle-in-transaction.json)"
"$pgsteward" invoke health-check --event events/health-check/alarm-idle-in-transaction.json | summary

unset PGSTEWARD_DB_SECRET_ARN PGSTEWARD_DB_IDENTIFIER
step "pgsteward vacuum-sweep --dry-run: the plan, with the reason for every table"
"$pgsteward" vacuum-sweep --database-url "$url" --dry-run

step "pgsteward vacuum-sweep --jobs 2: VACUUM (ANALYZE) of what needs it, SKIP_LOCKED, lock_timeout"
"$pgsteward" vacuum-sweep --database-url "$url" --jobs 2

.venv/bin/python - <<'PY'
import boto3
boto3.client("s3").create_bucket(Bucket="demo-backups")
boto3.client("rds").create_db_instance(DBInstanceIdentifier="orders-prod", DBInstanceClass="db.t3.micro",
    Engine="postgres", AllocatedStorage=20, MasterUsername="postgres", MasterUserPassword="not-used-here")
PY
step "pgsteward snapshot: the RDS snapshot of this slot (moto), tagged as managed; a second run finds it"
PGSTEWARD_DB_IDENTIFIER=orders-prod "$pgsteward" snapshot --database-url "$url"
PGSTEWARD_DB_IDENTIFIER=orders-prod "$pgsteward" snapshot --database-url "$url"

step "pgsteward snapshot --logical: pg_dump -Fc streamed into S3 (moto) with a SHA-256 and a manifest"
PGSTEWARD_DB_IDENTIFIER=shop "$pgsteward" snapshot --logical --bucket demo-backups --database-url "$url"

psql_demo shop <<'SQL'
CREATE TABLE audit_events (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, actor text, action text);
INSERT INTO audit_events SELECT g, now() - (g % 180) * interval '1 day', 'user-' || g % 50, 'login'
  FROM generate_series(1, 20000) g;
ALTER TABLE audit_events OWNER TO pgsteward;
SQL
.venv/bin/python - <<'PY'
import boto3, datetime
rds = boto3.client("rds")
day = datetime.datetime.now(datetime.timezone.utc).replace(hour=2, minute=0, second=0, microsecond=0)
for d in range(1, 46):
    tags = [{"Key": "pgsteward:managed", "Value": "true"}]
    if d == 40:
        tags.append({"Key": "pgsteward:pinned", "Value": "true"})
    name = (day - datetime.timedelta(days=d)).strftime("pgsteward-orders-prod-%Y%m%d-%H%M")
    rds.create_db_snapshot(DBInstanceIdentifier="orders-prod", DBSnapshotIdentifier=name, Tags=tags)
rds.create_db_snapshot(DBInstanceIdentifier="orders-prod", DBSnapshotIdentifier="before-upgrade-by-hand")
PY
export PGSTEWARD_RETENTION_POLICY='{"days":7,"weeks":4,"minKeep":3}'
step "pgsteward retention-prune --scope backups: 45 days of snapshots against {days: 7, weeks: 4}; the plan only"
PGSTEWARD_DB_IDENTIFIER=orders-prod "$pgsteward" retention-prune --scope backups --database-url "$url"

step "pgsteward retention-prune --apply: deleted oldest first; the unmanaged, automated and pinned ones stay"
PGSTEWARD_DB_IDENTIFIER=orders-prod "$pgsteward" retention-prune --scope backups --apply --format json --database-url "$url" |
  .venv/bin/python -c 'import json,sys; r=json.load(sys.stdin); d=[x["target"] for x in r["done"]]; k=[b["id"] for b in r["details"]["backups"] if b["decision"]=="keep"]; print(f"deleted {len(d)}, oldest first: {d[0]} … {d[-1]}\nkept {len(k)}: " + ", ".join(k)); [print("warning:", w) for w in r["warnings"]]'

export PGSTEWARD_ARCHIVE_RULES='[{"table":"public.audit_events","column":"created_at","olderThanDays":90}]'
step "pgsteward retention-prune --scope rows: audit_events older than 90 days (seed 001); the plan only"
PGSTEWARD_DB_IDENTIFIER=shop "$pgsteward" retention-prune --scope rows --bucket demo-backups --database-url "$url"

step "--apply: each batch streamed to S3 as gzip CSV, read back and counted, then committed; VACUUM ANALYZE after"
PGSTEWARD_DB_IDENTIFIER=shop PGSTEWARD_ARCHIVE_BATCH_ROWS=5000 "$pgsteward" retention-prune --scope rows --apply --bucket demo-backups --database-url "$url"
psql_demo shop -c "SELECT count(*) AS audit_rows_left, min(created_at)::date AS oldest FROM audit_events"

.venv/bin/python - <<'PY'
import boto3
subnets = [s["SubnetId"] for s in boto3.client("ec2").describe_subnets()["Subnets"]][:2]
boto3.client("rds").create_db_subnet_group(DBSubnetGroupName="demo-private", DBSubnetGroupDescription="restores",
    SubnetIds=subnets)
PY
export PGSTEWARD_DB_IDENTIFIER=orders-prod PGSTEWARD_RESTORE_SUBNET_GROUP=demo-private PGSTEWARD_RESTORE_SECURITY_GROUPS=sg-0123456789abcdef0
step "pgsteward pitr-restore: the restorable window of orders-prod (moto) and the restore it would make"
"$pgsteward" pitr-restore --target orders-restore-demo --latest --database-url "$url"

step "pitr-restore --apply: a new instance, tagged, never public; the source is not touched"
"$pgsteward" pitr-restore --target orders-restore-demo --latest --apply --database-url "$url"
endpoint=$("$pgsteward" pitr-restore wait --target orders-restore-demo --format json --database-url "$url" |
  .venv/bin/python -c '
import json, sys
def find(v):
    if isinstance(v, dict):
        if isinstance(v.get("address"), str): return v["address"]
        v = list(v.values())
    if isinstance(v, list):
        for x in v:
            a = find(x)
            if a: return a
print(find(json.load(sys.stdin)))')
echo "restored endpoint: $endpoint (moto); its SQL goes to the demo PostgreSQL through PGSTEWARD_ENDPOINT_OVERRIDE"

step "the post-restore checklist (seed 000): row counts, ANALYZE of every table, read-only smoke queries"
PGSTEWARD_DB_SECRET_ARN=$secret_arn PGSTEWARD_CA_BUNDLE=$work/ca.crt \
PGSTEWARD_ENDPOINT_OVERRIDE="$endpoint=127.0.0.1:$pg_port/localhost" \
  "$pgsteward" pitr-restore checklist --target orders-restore-demo --min-rows public.customers=2000 \
    --smoke 'SELECT count(*) FROM customers' --smoke 'SELECT max(total) FROM orders'
unset PGSTEWARD_DB_IDENTIFIER

step "pgsteward backup-verify --kind logical: the restore drill on the demo's dump (checksum, pg_restore into a scratch database, row counts vs the manifest, amcheck, RTO/RPO), tagged verified, scratch dropped"
PGSTEWARD_DB_IDENTIFIER=shop "$pgsteward" backup-verify --kind logical --bucket demo-backups --database-url "$url" \
  --verify-database-url "postgresql://postgres:demo-superuser-pw@localhost:$pg_port/postgres?sslrootcert=$work/ca.crt"

step "done: the forgotten transaction was terminated, orders was vacuumed, the backups were taken, verified by a restore drill and pruned, old rows archived, a restore checked, the reports went to EventBridge (moto)"
